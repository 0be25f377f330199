package tcp

// InitCwnd is the initial congestion window in segments (TCP_INIT_CWND,
// RFC 6928): a request within it leaves at once.
const InitCwnd = 10

// maxBackoff caps the doublings of the data RTO: Linux gives up after
// tcp_retries2 (15) of them, long after any response timeout.
const maxBackoff = 15

// Exchange is a connection's request in request mode: which of its bytes
// were sent and acknowledged, and the peer's windows. The caller keeps it
// beside Conn, only in request mode, so a held connection costs nothing
// more. The request's bytes are sequence numbers Start to End.
type Exchange struct {
	SndUna Seq    // oldest unacknowledged request byte
	Next   Seq    // next request byte to send; back to SndUna on an RTO
	Start  Seq    // the request's first byte
	End    Seq    // the sequence number after the request
	Wnd    uint32 // the peer's receive window, scaled (tcp_ack_update_window)
	Cwnd   uint32 // congestion window, in segments (slow start from InitCwnd)
	// probe is where a tail loss probe starts, while probing says
	// NextData owes it; probed says this flight had its probe.
	probe           Seq
	probing, probed bool
}

// StartExchange starts sending an n-byte request on the established
// connection c, as the application's first write after connect() does
// (Q1).
func (p *Params) StartExchange(c *Conn, x *Exchange, n int) {
	// The SYN-ACK's window is never scaled (RFC 7323 §2.2).
	*x = Exchange{SndUna: c.SndNxt, Next: c.SndNxt, Start: c.SndNxt, End: c.SndNxt + Seq(n), Wnd: uint32(c.SndWnd), Cwnd: InitCwnd}
}

// NextRequest starts the next n-byte request on a kept-alive connection
// once the previous response is complete (Q6): the windows carry over, and the
// previous request counts as delivered (its response came).
func (p *Params) NextRequest(c *Conn, x *Exchange, n int) {
	x.SndUna, x.Next, x.Start, x.End = c.SndNxt, c.SndNxt, c.SndNxt, c.SndNxt+Seq(n)
	x.probing, x.probed = false, false
	c.Retrans = 0
}

// NextData is the next request segment to send, if the windows allow one:
// its header (PSH on the request's last segment, as tcp_push marks the
// end of a write) and which of the request's bytes it carries. The caller
// sets Reply.Payload to them.
func (p *Params) NextData(c *Conn, x *Exchange, nowMs uint32) (r Reply, off, n int, ok bool) {
	if x.probing {
		// The tail loss probe: the last segment sent, again.
		x.probing = false
		if x.probe.LessThan(x.Next) {
			return p.dataSegment(c, x, x.probe, int(x.Next-x.probe), nowMs), int(x.probe - x.Start), int(x.Next - x.probe), true
		}
	}
	if !x.Next.LessThan(x.End) {
		return r, 0, 0, false
	}
	limit := min(uint64(x.Wnd), uint64(x.Cwnd)*uint64(c.PeerMSS))
	avail := int64(limit) - int64(x.Next-x.SndUna)
	n = int(min(int64(x.End-x.Next), int64(c.PeerMSS), avail))
	if n <= 0 {
		return r, 0, 0, false
	}
	r = p.dataSegment(c, x, x.Next, n, nowMs)
	off = int(x.Next - x.Start)
	x.Next += Seq(n)
	if c.SndNxt.LessThan(x.Next) {
		c.SndNxt = x.Next
	}
	return r, off, n, true
}

// dataSegment is the header of the request's n bytes at seq: PSH on the
// request's last segment, as tcp_push marks the end of a write.
func (p *Params) dataSegment(c *Conn, x *Exchange, seq Seq, n int, nowMs uint32) Reply {
	f := FlagACK
	if seq+Seq(n) == x.End {
		f |= FlagPSH
	}
	return p.segment(c, f, seq, nowMs).Reply
}

// ExchangeInput is Input for a connection sending a request: its ACKs
// move the request on and its windows bound what is sent next
// (NextData). Verdict.DataLen says which of the segment's bytes are the
// response's next ones.
func (p *Params) ExchangeInput(c *Conn, x *Exchange, seg *Segment, nowMs uint32) Verdict {
	return p.input(c, x, seg, nowMs)
}

// ack takes an acceptable ACK (tcp_ack): new data acknowledged moves
// SND.UNA, grows the congestion window by the segments it covers (slow
// start) and ends the RTO backoff; the window is the segment's, scaled.
func (x *Exchange) ack(c *Conn, seg *Segment) {
	if seg.Ack.LessThan(x.SndUna) {
		return // older than what we know: no window update either
	}
	if x.SndUna.LessThan(seg.Ack) {
		mss := max(uint32(c.PeerMSS), 1)
		x.Cwnd += (uint32(seg.Ack-x.SndUna) + mss - 1) / mss
		x.SndUna = seg.Ack
		if x.Next.LessThan(x.SndUna) {
			x.Next = x.SndUna
		}
		c.Retrans = 0
		x.probed = false // a new flight gets its own probe
	}
	w := uint32(seg.Window)
	if c.WSOK() {
		w <<= c.SndWScale
	}
	x.Wnd = w
}

// ExchangeTimer is the expiry of an established connection's
// retransmission timer while its request is not acknowledged (Q4, Q5). The first
// expiry of a flight is a tail loss probe (tcp_send_loss_probe, on by
// default: tcp_early_retrans 3): the last segment sent goes again and the
// RTO is re-armed, not doubled. (Its probe timeout is 2 SRTT + TCP_RTO_MIN
// with one segment out, cut to the RTO, which it equals for any RTT up to
// TCP_RTO_MIN; a request of several segments would be probed after 2 SRTT,
// here after the RTO.) Later expiries are the RTO (tcp_retransmit_timer):
// the unacknowledged bytes go again from SND.UNA with a congestion window
// of one segment, the RTO doubling each time. For either, resend says to
// call NextData. A request the peer's zero window holds back gets a
// window probe instead (tcp_send_probe0: SND.UNA-1, no data). nextMs is 0
// when nothing is outstanding.
func (p *Params) ExchangeTimer(c *Conn, x *Exchange, nowMs uint32) (v Verdict, resend bool, nextMs int64) {
	if c.State != Established && c.State != CloseWait {
		return Verdict{}, false, 0
	}
	inFlight := x.SndUna.LessThan(x.Next) || x.Next.LessThan(c.SndNxt) && x.SndUna.LessThan(x.End)
	if !inFlight && !(x.Next.LessThan(x.End) && x.Wnd == 0) {
		return Verdict{}, false, 0
	}
	if inFlight && !x.probed && c.Retrans == 0 {
		x.probed, x.probing = true, true
		mss := Seq(max(c.PeerMSS, 1))
		x.probe = x.Start + (x.Next-1-x.Start)/mss*mss
		if x.probe.LessThan(x.SndUna) {
			x.probe = x.SndUna
		}
		return Verdict{}, true, p.FINRTO(c)
	}
	if c.Retrans < maxBackoff {
		c.Retrans++
	}
	// Every RTO re-rolls the IPv6 flow label (V3: Linux rethinks the
	// socket's txhash on each timeout); the tail loss probe above does not.
	c.flags += cfRehash
	if inFlight {
		x.Next, x.Cwnd = x.SndUna, 1
		return Verdict{}, true, p.FINRTO(c)
	}
	return p.segment(c, FlagACK, x.SndUna-1, nowMs), false, p.FINRTO(c)
}

// Pending says the request still has bytes in flight or waiting for the
// window: the connection's retransmission timer must run.
func (x *Exchange) Pending() bool { return x.SndUna.LessThan(x.End) }

// TakeKept takes data kept out of order, n bytes at seq, once RCV.NXT has
// reached it (tcp_ofo_queue, Q9): the new bytes are kept[off:off+m] and
// RCV.NXT moves past them. ok is false while a hole is still before seq;
// data wholly before RCV.NXT (it came again meanwhile) gives m 0.
func (c *Conn) TakeKept(seq Seq, n int) (off, m int, ok bool) {
	if c.RcvNxt.LessThan(seq) {
		return 0, 0, false
	}
	end := seq + Seq(n)
	if end.LessEq(c.RcvNxt) {
		return 0, 0, true
	}
	off = int(c.RcvNxt - seq)
	c.RcvNxt = end
	return off, n - off, true
}
