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
	// Ssthresh is the slow-start threshold in segments: 0 until the
	// first loss (slow start until then, congestion avoidance above it).
	Ssthresh uint32
	// probe is where a tail loss probe starts, while probing says
	// NextData owes it; probed says this flight had its probe.
	probe           Seq
	probing, probed bool
	// Fast recovery (RFC 6582, NewReno): recover is SND.NXT when the third
	// duplicate ACK came; until an ACK passes it, each partial ACK resends
	// the segment at SND.UNA (rexmit says NextData owes it).
	recover            Seq
	dupAcks            uint8
	recovering, rexmit bool
	// caAcked counts the segments acknowledged toward the next congestion
	// window increase in congestion avoidance.
	caAcked uint32
	// srtt8 is 8 times the smoothed RTT in ms, from the timestamps the
	// peer echoes on new acknowledgements (tcp_rtt_estimator's srtt_us);
	// 0: no sample yet.
	srtt8 uint32
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
	x.recovering, x.rexmit, x.dupAcks = false, false, 0
	c.Retrans = 0
}

// NextData is the next request segment to send, if the windows allow one:
// its header (PSH on the request's last segment, as tcp_push marks the
// end of a write) and which of the request's bytes it carries. The caller
// sets Reply.Payload to them.
func (p *Params) NextData(c *Conn, x *Exchange, nowMs uint32) (r Reply, off, n int, ok bool) {
	if x.rexmit {
		// Fast retransmit: the segment at SND.UNA, once.
		x.rexmit = false
		if n := int(min(int64(x.Next-x.SndUna), int64(c.PeerMSS))); n > 0 {
			return p.dataSegment(c, x, x.SndUna, n, nowMs), int(x.SndUna - x.Start), n, true
		}
	}
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
func (p *Params) ExchangeInput(c *Conn, x *Exchange, seg *Segment, nowMs uint32) (v Verdict) {
	p.input(&v, c, x, seg, nowMs)
	return v
}

// ack takes an acceptable ACK (tcp_ack): new data acknowledged moves
// SND.UNA, grows the congestion window by the segments it covers (slow
// start) and ends the RTO backoff; the window is the segment's, scaled.
func (x *Exchange) ack(p *Params, c *Conn, seg *Segment, nowMs uint32) {
	if seg.Ack.LessThan(x.SndUna) {
		return // older than what we know: no window update either
	}
	w := uint32(seg.Window)
	if c.WSOK() {
		w <<= c.SndWScale
	}
	if x.SndUna.LessThan(seg.Ack) {
		mss := max(uint32(c.PeerMSS), 1)
		acked := (uint32(seg.Ack-x.SndUna) + mss - 1) / mss
		x.SndUna = seg.Ack
		if x.Next.LessThan(x.SndUna) {
			x.Next = x.SndUna
		}
		x.dupAcks = 0
		switch {
		case x.recovering && seg.Ack.LessThan(x.recover):
			// A partial ACK: the next hole goes at once (RFC 6582 §3.2).
			x.rexmit = true
		case x.recovering:
			x.recovering = false
			x.Cwnd = max(x.Ssthresh, 2)
		case x.Ssthresh == 0 || x.Cwnd < x.Ssthresh:
			x.Cwnd += acked // slow start
		default:
			// Congestion avoidance: a segment more per window acked.
			x.caAcked += acked
			if x.caAcked >= x.Cwnd {
				x.caAcked -= x.Cwnd
				x.Cwnd++
			}
		}
		if c.TSOK() && seg.Opts.HasTS && seg.Opts.TSEcr != 0 && c.Retrans == 0 {
			// Karn: no sample from an RTO's retransmission.
			m := uint32(max(int32(nowMs-c.tsecr(p, seg)), 0))
			if x.srtt8 == 0 {
				x.srtt8 = max(m*8, 1)
			} else {
				x.srtt8 = max(x.srtt8-x.srtt8/8+m, 1)
			}
		}
		c.Retrans = 0
		x.probed = false // a new flight gets its own probe
	} else if (seg.Opts.HasSACK || seg.PayloadLen == 0 && !seg.Flags.Has(FlagFIN) && w == x.Wnd) && x.SndUna.LessThan(x.Next) {
		// D2. A duplicate ACK (RFC 5681 §2), or one with SACK blocks whatever
		// its window and data: Linux's sender counts SACKed segments, its
		// receiver moves the window as it autotunes, and a peer sending
		// too has data on every ACK. The third starts fast retransmit,
		// unless a recovery is under way already.
		if x.dupAcks < 255 {
			x.dupAcks++
		}
		// The receiver's SACK blocks reach more than three segments past
		// the hole: it holds three or more (RFC 6675's IsLost; a peer's
		// GRO acknowledges a run of them with one ACK).
		mss := max(uint32(c.PeerMSS), 1)
		sacked := seg.Opts.HasSACK && x.SndUna.LessThan(seg.Opts.SACKEdge) && seg.Opts.SACKEdge.LessEq(x.Next) &&
			uint32(seg.Opts.SACKEdge-x.SndUna) > 3*mss
		if (x.dupAcks == 3 || sacked) && !x.recovering {
			x.Ssthresh = max(uint32(x.Next-x.SndUna)/mss/2, 2)
			x.Cwnd, x.caAcked = x.Ssthresh, 0
			x.recover, x.recovering, x.rexmit = x.Next, true, true
		}
	}
	x.Wnd = w
}

// Append adds n bytes written by the application to what the stream
// sends: they are the sequence numbers after End.
func (x *Exchange) Append(n int) { x.End += Seq(n) }

// Release forgets the bytes the peer acknowledged: Start moves to
// SND.UNA, and n is how many bytes the caller may now drop from the front
// of its send buffer (which starts at Start).
func (x *Exchange) Release() (n int) {
	n = int(x.SndUna - x.Start)
	x.Start = x.SndUna
	return n
}

// Recovering says a fast recovery is under way.
func (x *Exchange) Recovering() bool { return x.recovering }

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
		// RFC 5681 §3.1: half the flight, and slow start from one segment.
		mss := Seq(max(c.PeerMSS, 1))
		x.Ssthresh = max(uint32((x.Next-x.SndUna)/mss)/2, 2)
		x.Next, x.Cwnd, x.caAcked = x.SndUna, 1, 0
		x.recovering, x.rexmit, x.dupAcks = false, false, 0
		return Verdict{}, true, p.FINRTO(c)
	}
	return p.segment(c, FlagACK, x.SndUna-1, nowMs), false, p.FINRTO(c)
}

// ExchangeTimeout is when the retransmission timer of a connection
// sending data should fire, from now (D3): the tail loss probe's timeout
// (tcp_schedule_loss_probe: 2 SRTT plus TCP_TIMEOUT_MIN, 2 ms, or plus
// TCP_RTO_MIN with one segment out; at most the RTO) while the flight has
// not had its probe and an RTT was measured, else the RTO (FINRTO).
func (p *Params) ExchangeTimeout(c *Conn, x *Exchange) int64 {
	rto := p.FINRTO(c)
	if x.probed || c.Retrans > 0 || x.srtt8 == 0 {
		return rto
	}
	pto := int64(x.srtt8/4) + 2
	if uint32(x.Next-x.SndUna) <= uint32(c.PeerMSS) {
		pto += p.RTOMinMs - 2
	}
	return min(pto, rto)
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
