package tcp

import (
	"math"
	"syscall"
)

// State is a TCP connection state (RFC 9293 §3.3.2).
type State uint8

// Connection states. Free is an unused table entry.
const (
	Free State = iota
	SynSent
	SynRecv
	Established
	FinWait1
	FinWait2
	Closing
	TimeWait
	CloseWait
	LastAck
	Closed
)

var stateNames = [...]string{"FREE", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK", "CLOSED"}

// String is the state's RFC 9293 name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "?"
}

// Conn flags.
const (
	cfTS   = 1 << iota // timestamps negotiated (H2)
	cfWS               // window scaling negotiated
	cfSACK             // SACK negotiated

	// cfRehash is the unit of the top nibble of flags: the count, mod 16,
	// of timeout retransmissions over the connection's life. Each one
	// re-rolls the IPv6 flow label (V3), and the label stays after the
	// handshake, so Retrans (reset then) cannot stand in. It lives in the
	// flags byte to keep Conn at 44 bytes.
	cfRehash = 1 << 4
)

// Conn is the state of one connection: 44 bytes, kept in the caller's table.
// Times are milliseconds of the caller's monotonic clock; TSval on the wire
// is that clock plus TSOff (I3, I4).
type Conn struct {
	State     State
	flags     uint8
	Retrans   uint8 // SYN (or FIN) retransmissions so far
	SndWScale uint8 // peer's window scale (H2)
	IPID      uint16
	PeerMSS   uint16 // send MSS (H2)
	ISS       Seq
	IRS       Seq
	SndNxt    Seq
	RcvNxt    Seq
	TSOff     uint32
	StartMs   uint32 // first SYN sent: de-offset TSval of the first SYN (Y3, R3)
	TSRecent  uint32 // peer's last TSval (E2)
	LastChlMs uint32 // when the last challenge/dup ACK left, plus 1 (E4 rate limit)
	SndWnd    uint16 // peer's window, unscaled on the SYN-ACK (Y6)
	RTOMs     uint16 // RTO from the handshake's RTT sample, for our FIN (E8)
}

// FlowLabel is the connection's IPv6 flow label (V3): random per
// connection (derived from the keyed ISS), and new after every timeout
// retransmission. Linux's is rol32(sk_txhash, 16), sk_txhash being
// re-drawn on each RTO; a mix of ISS and the re-roll count is as random to
// an observer and needs no state.
func (c *Conn) FlowLabel() uint32 {
	x := uint32(c.ISS) ^ uint32(c.flags/cfRehash)*0x9e3779b9
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return x & 0xfffff
}

// TSOK reports whether timestamps were negotiated.
func (c *Conn) TSOK() bool { return c.flags&cfTS != 0 }

// WSOK reports whether window scaling was negotiated.
func (c *Conn) WSOK() bool { return c.flags&cfWS != 0 }

// SACKOK reports whether SACK was negotiated.
func (c *Conn) SACKOK() bool { return c.flags&cfSACK != 0 }

// Segment is a received TCP segment as the state machine needs it.
type Segment struct {
	Seq, Ack   Seq
	Flags      Flags
	Window     uint16
	PayloadLen int
	TOS        uint8
	Opts       Options
}

// Event is what a verdict means for the caller's books.
type Event uint8

// Events.
const (
	EvNone           Event = iota
	EvEstablished          // handshake complete (count it once)
	EvFailed               // attempt failed with Verdict.Err
	EvFastRetransmit       // re-arm the SYN timer to TimeoutMinMs (R5)
	EvReset                // established connection reset by the peer (ECONNRESET)
	EvTimeWait             // entered TIME-WAIT: quarantine the port
	EvClosed               // connection fully closed, entry reusable
	EvProbeAnswered        // SYN-only probe answered by a SYN-ACK, reset (ProbeInput)
)

// Verdict is the result of feeding the state machine.
type Verdict struct {
	Event Event
	Err   syscall.Errno
	// Send is true when Reply must be built and sent (with the flow's path,
	// direction reversed to the received segment).
	Send  bool
	Reply Reply
	// DataAt and DataLen are the segment's new in-order bytes, which the
	// application reads (payload offset and length; DataLen 0: none).
	DataAt, DataLen int
}

// tsNow is our TSval for the connection at nowMs (I3).
func (c *Conn) tsNow(p *Params, nowMs uint32) uint32 {
	if p.TSNoOffset {
		return nowMs
	}
	return nowMs + c.TSOff
}

// TSVal is the connection's timestamp value at nowMs (I3, I4).
func (p *Params) TSVal(c *Conn, nowMs uint32) uint32 { return c.tsNow(p, nowMs) }

// Open starts an active open (tcp_connect): SYN-SENT, SND.NXT = ISS+1. It
// returns the TSval to stamp on the SYN. ipid is the random initial IP ID (S2), which
// the first SYN carries; retransmissions take NextIPID.
func (p *Params) Open(c *Conn, iss Seq, tsOff uint32, ipid uint16, nowMs uint32) (tsval uint32) {
	*c = Conn{State: SynSent, ISS: iss, SndNxt: iss + 1, TSOff: tsOff, StartMs: nowMs, IPID: ipid + 1}
	if p.TSNoOffset {
		c.TSOff = 0
	}
	return c.tsNow(p, nowMs)
}

// NextIPID returns the IP ID for the next datagram the connection sends and
// advances it (S2).
func (c *Conn) NextIPID() uint16 {
	id := c.IPID
	c.IPID++
	return id
}

// SynRTO is the retransmission timeout after `backoff` expiries (R1, R2):
// TCP_TIMEOUT_INIT while backoff <= linear timeouts, doubling afterwards,
// capped at RTOMax.
func (p *Params) SynRTO(backoff int) int64 {
	rto := p.RTOInitMs
	for i := p.LinearTimeouts + 1; i <= backoff; i++ {
		rto *= 2
		if rto >= p.RTOMaxMs {
			return p.RTOMaxMs
		}
	}
	return rto
}

// OnTimer handles the expiry of the connection's retransmission timer at
// nowMs. In SYN-SENT it applies the give-up test (R3) and either fails the
// attempt with ETIMEDOUT or asks for a retransmitted SYN (resend) and says
// when the timer fires next (R2). In FIN-WAIT-1/LAST-ACK it retransmits the
// FIN. A timer that finds another state was cancelled lazily: nothing to do.
func (p *Params) OnTimer(c *Conn, nowMs uint32) (v Verdict, resend bool, nextMs int64) {
	switch c.State {
	case SynSent, SynRecv:
		elapsed := int64(nowMs - c.StartMs)
		limit := int64(1)<<(p.SynRetries+1) - 1
		if int(c.Retrans) >= p.SynRetries+p.LinearTimeouts || elapsed >= limit*p.RTOInitMs {
			c.State = Closed
			return Verdict{Event: EvFailed, Err: syscall.ETIMEDOUT}, false, 0
		}
		c.Retrans++
		c.flags += cfRehash // wraps within the nibble
		return Verdict{}, true, p.SynRTO(int(c.Retrans))
	case FinWait1, LastAck, Closing:
		if c.Retrans >= 8 {
			c.State = Closed
			return Verdict{Event: EvClosed}, false, 0
		}
		c.Retrans++
		c.flags += cfRehash // wraps within the nibble
		v = p.segment(c, FlagFIN|FlagACK, c.SndNxt-1, nowMs)
		return v, false, p.FINRTO(c)
	case TimeWait:
		c.State = Closed
		return Verdict{Event: EvClosed}, false, 0
	}
	return Verdict{}, false, 0
}

// segment is a segment the connection itself sends (not a ctl-reply): IP ID
// from the socket (S2), window scaled (H1), timestamps when negotiated (E2).
func (p *Params) segment(c *Conn, f Flags, seq Seq, nowMs uint32) (v Verdict) {
	p.segmentTo(&v, c, f, seq, nowMs)
	return v
}

// segmentTo is segment written into v. The handshake's path (Input,
// Close) writes its verdict in place: a 120-byte Verdict returned by value
// through each layer was copied at each (40 ns a handshake).
func (p *Params) segmentTo(v *Verdict, c *Conn, f Flags, seq Seq, nowMs uint32) {
	win := p.announced(c)
	if c.WSOK() {
		win >>= p.WScale // H1: 64240 -> 502
	}
	// Field by field into v: a literal is built aside and copied whole,
	// and the copy's wide loads wait on the narrow stores that just wrote it.
	*v = Verdict{}
	v.Send = true
	r := &v.Reply
	r.Flags, r.Seq, r.Ack, r.Window, r.IPID, r.TOS, r.TTL = f, seq, c.RcvNxt, uint16(min(win, 65535)), c.NextIPID(), p.TOS, p.TTL
	if c.TSOK() {
		r.TS, r.TSVal, r.TSEcr = true, c.tsNow(p, nowMs), c.TSRecent
	}
}

// announced is the receive window our segments announce: the initial
// window rounded up to the scale's unit (H1: 64240 -> 502 << 7 = 64256),
// which is also the window the peer may fill (tcp_receive_window).
func (p *Params) announced(c *Conn) uint32 {
	if !c.WSOK() {
		return min(p.RcvWnd, 65535)
	}
	unit := uint32(1) << p.WScale
	return min((p.RcvWnd+unit-1)>>p.WScale, 65535) << p.WScale // shifts: a division was a DIVL a segment
}

// Announced is the receive window the connection's segments announce,
// the most the peer may send ahead of RCV.NXT: a caller that announces
// less (a stream's free buffer space) sets Reply.Window itself.
func (p *Params) Announced(c *Conn) uint32 { return p.announced(c) }

// ctlRST is the ctl-reply RST of X1/Y2: seq = SEG.ACK, no ACK flag, window 0,
// no options, IP ID 0, TOS from the segment without ECN bits.
func ctlRST(seg *Segment) Verdict {
	return Verdict{Send: true, Reply: Reply{Flags: FlagRST, Seq: seg.Ack, TOS: seg.TOS &^ 3, TTL: 64}}
}

// NoSocketReply is X2: the answer to a segment for which no connection
// exists. ok is false for an RST, which is never answered.
func NoSocketReply(seg *Segment) (r Reply, ok bool) {
	if seg.Flags.Has(FlagRST) {
		return r, false
	}
	if seg.Flags.Has(FlagACK) {
		return ctlRST(seg).Reply, true
	}
	ack := seg.Seq + Seq(seg.PayloadLen)
	if seg.Flags.Has(FlagSYN) {
		ack++
	}
	if seg.Flags.Has(FlagFIN) {
		ack++
	}
	return Reply{Flags: FlagRST | FlagACK, Ack: ack, TOS: seg.TOS &^ 3, TTL: 64}, true
}

// Input processes a received segment for c at nowMs, in Linux's order of
// checks (spec §5, §6, §9). seg.Opts must have been parsed with syn =
// seg.Flags has SYN.
func (p *Params) Input(c *Conn, seg *Segment, nowMs uint32) (v Verdict) {
	p.input(&v, c, nil, seg, nowMs)
	return v
}

// input is Input with request mode's exchange (nil without), written
// into v.
func (p *Params) input(v *Verdict, c *Conn, x *Exchange, seg *Segment, nowMs uint32) {
	switch c.State {
	case SynSent:
		p.synSent(v, c, seg, nowMs)
	case SynRecv:
		*v = p.synRecv(c, seg, nowMs)
	case Established, FinWait1, FinWait2, Closing, CloseWait, LastAck:
		p.synchronized(v, c, x, seg, nowMs)
	case TimeWait:
		p.timeWait(v, c, seg, nowMs)
	default:
		*v = Verdict{}
		if r, ok := NoSocketReply(seg); ok {
			*v = Verdict{Send: true, Reply: r}
		}
	}
}

// tsecr returns the de-offset TSecr (I5).
func (c *Conn) tsecr(p *Params, seg *Segment) uint32 {
	if p.TSNoOffset {
		return seg.Opts.TSEcr
	}
	return seg.Opts.TSEcr - c.TSOff
}

func (p *Params) synSent(v *Verdict, c *Conn, seg *Segment, nowMs uint32) {
	f := seg.Flags
	if f.Has(FlagACK) {
		// Y2: acceptable iff SEG.ACK == ISS+1 (ISS < ack <= SND.NXT).
		if seg.Ack != c.ISS+1 {
			*v = Verdict{}
			if !f.Has(FlagRST) {
				*v = ctlRST(seg)
			}
			if c.Retrans == 0 {
				v.Event = EvFastRetransmit // R5
			}
			return
		}
		if !p.synAckPAWS(c, seg, nowMs) { // Y3
			*v = Verdict{}
			if !f.Has(FlagRST) {
				*v = ctlRST(seg) // an RST is never answered
			}
			return
		}
		if f.Has(FlagRST) { // Y4
			c.State = Closed
			*v = Verdict{Event: EvFailed, Err: syscall.ECONNREFUSED}
			return
		}
		if !f.Has(FlagSYN) { // Y5
			*v = Verdict{}
			return
		}
		// Y6: ESTABLISHED; payload, FIN and URG on the SYN-ACK are ignored.
		p.negotiate(c, seg)
		c.State = Established
		c.RcvNxt = seg.Seq + 1
		c.IRS = seg.Seq
		p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs) // H1
		v.Event = EvEstablished
		p.setRTO(c, seg, nowMs)
		c.Retrans = 0
		return
	}
	// Y7: no ACK bit.
	if f.Has(FlagRST) || !f.Has(FlagSYN) {
		*v = Verdict{}
		return
	}
	// Y8: simultaneous open.
	p.negotiate(c, seg)
	c.State = SynRecv
	c.IRS = seg.Seq
	c.RcvNxt = seg.Seq + 1
	r := Reply{Flags: FlagSYN | FlagACK, Seq: c.ISS, Ack: c.RcvNxt, Window: uint16(min(p.RcvWnd, 65535)),
		IPID: c.NextIPID(), TOS: p.TOS, TTL: p.TTL, SYNOpts: p, MSS: p.MSS, TSVal: c.tsNow(p, nowMs), TSEcr: c.TSRecent}
	*v = Verdict{Send: true, Reply: r}
}

// synAckPAWS is Y3: a SYN-ACK's echoed timestamp (de-offset, I5) must lie
// between our first SYN and now; TSecr 0 is accepted.
func (p *Params) synAckPAWS(c *Conn, seg *Segment, nowMs uint32) bool {
	if !p.Timestamps || !seg.Opts.HasTS || seg.Opts.TSEcr == 0 {
		return true
	}
	ecr := c.tsecr(p, seg)
	return int32(ecr-c.StartMs) >= 0 && int32(nowMs-ecr) >= 0
}

// ProbeInput is Input for a SYN-only probe, as SYN scanners (masscan, zmap)
// send them: an acceptable SYN-ACK (Y2, Y3) is answered with an RST at
// SEG.ACK without completing the handshake, and the connection closes
// (EvProbeAnswered). Every other segment is handled as Input does (an RST
// still refuses, Y4).
func (p *Params) ProbeInput(c *Conn, seg *Segment, nowMs uint32) (v Verdict) {
	f := seg.Flags
	if c.State == SynSent && f.Has(FlagSYN|FlagACK) && !f.Has(FlagRST) && seg.Ack == c.ISS+1 && p.synAckPAWS(c, seg, nowMs) {
		c.State = Closed
		v = ctlRST(seg)
		v.Event = EvProbeAnswered
		return v
	}
	p.input(&v, c, nil, seg, nowMs)
	return v
}

// HandshakeRTT says how to time the handshake that seg (an acceptable
// SYN-ACK) completes, from what the connection knew before seg was input:
// lastSynMs is when our latest SYN left (on the clock nowMs is on) and
// retrans how many SYN retransmissions preceded it. When the SYN-ACK
// answers the latest SYN (its TSecr echoes that SYN's TSval, or there was
// only one SYN), latest is true: the caller, which knows exactly when that
// SYN left, times it on its own clock. Otherwise the echoed timestamp
// gives a millisecond sample (R7, ms); without timestamps a retransmitted
// SYN cannot be timed (ok false).
//
// The latest SYN's TSval carries the millisecond it was built in, and it
// may have left a few milliseconds later (its batch flushed late): an echo
// up to TimeoutMinMs older than lastSynMs is still the latest SYN's. An
// earlier SYN's is older than that: the SYN after it waits at least
// TimeoutMinMs (R5).
func (p *Params) HandshakeRTT(c *Conn, seg *Segment, lastSynMs, nowMs uint32, retrans uint8) (latest bool, ms int64, ok bool) {
	if !p.Timestamps || !seg.Opts.HasTS || seg.Opts.TSEcr == 0 {
		return retrans == 0, 0, retrans == 0
	}
	if d := int32(p.TSVal(c, lastSynMs) - seg.Opts.TSEcr); d >= 0 && int64(d) < p.TimeoutMinMs {
		return true, 0, true
	}
	return false, int64(int32(nowMs - c.tsecr(p, seg))), true
}

// setRTO is E8's starting RTO, taken when the handshake completes (before
// Retrans is cleared): the first RTT sample m sets it as tcp_rtt_estimator
// does (SRTT m, RTTVAR max(2m, TCP_RTO_MIN)): m + max(2m, 200 ms). The
// sample is the timestamp echo's, or the time since the first SYN if
// there was no other; without one (a retransmitted SYN, no timestamps)
// the RTO falls back to 3 s (RFC 6298 5.7, tcp_init_transfer).
func (p *Params) setRTO(c *Conn, seg *Segment, nowMs uint32) {
	m := int64(-1)
	if c.TSOK() && seg.Opts.HasTS && seg.Opts.TSEcr != 0 {
		m = int64(int32(nowMs - c.tsecr(p, seg)))
	} else if c.Retrans == 0 {
		m = int64(int32(nowMs - c.StartMs))
	}
	rto := 3 * p.RTOInitMs
	if m >= 0 {
		rto = m + max(2*m, p.RTOMinMs)
	}
	c.RTOMs = uint16(min(rto, math.MaxUint16))
}

// FINRTO is how long our FIN (or request data) waits for its ACK after
// c.Retrans retransmissions (E8): the handshake's RTO (at least
// TCP_RTO_MIN), doubled each time, at most tcp_rto_max_ms.
func (p *Params) FINRTO(c *Conn) int64 {
	return min(max(int64(c.RTOMs), p.RTOMinMs)<<c.Retrans, p.RTOMaxMs)
}

// negotiate is H2.
func (p *Params) negotiate(c *Conn, seg *Segment) {
	o := &seg.Opts
	c.flags &^= cfTS | cfWS | cfSACK // the re-roll count stays
	if p.Timestamps && o.HasTS {
		c.flags |= cfTS
		c.TSRecent = o.TSVal
	}
	if p.WindowScaling && o.HasWS {
		c.flags |= cfWS
		c.SndWScale = o.WScale
	}
	if p.SACK && o.SACKPerm {
		c.flags |= cfSACK
	}
	mss := uint32(MSSDefault4)
	if p.IPv6 {
		mss = MSSDefault6
	}
	if o.MSS != 0 {
		mss = uint32(o.MSS)
	}
	mss = min(mss, uint32(p.MSS)) // our own MTU bounds what we send
	if c.TSOK() {
		mss -= 12
	}
	c.PeerMSS = uint16(max(mss, minSndMSS))
	c.SndWnd = seg.Window // unscaled on the SYN-ACK (Y6)
}

func (p *Params) synRecv(c *Conn, seg *Segment, nowMs uint32) Verdict {
	f := seg.Flags
	if f.Has(FlagRST) {
		if seg.Seq == c.RcvNxt {
			// Past SYN-SENT, tcp_reset reports a reset, not a refusal.
			c.State = Closed
			return Verdict{Event: EvFailed, Err: syscall.ECONNRESET}
		}
		return Verdict{}
	}
	if !f.Has(FlagACK) {
		return Verdict{}
	}
	if seg.Ack != c.ISS+1 {
		return ctlRST(seg)
	}
	c.State = Established
	p.setRTO(c, seg, nowMs)
	c.Retrans = 0
	c.replaceTSRecent(seg) // the ACK completing it is processed with FLAG_UPDATE_TS_RECENT
	v := Verdict{Event: EvEstablished}
	if f.Has(FlagSYN) && seg.Seq == c.IRS {
		// Crossed SYN-ACK: ACK it with a D-SACK for [IRS, IRS+1) (Y8).
		v2 := p.segment(c, FlagACK, c.SndNxt, nowMs)
		v.Send, v.Reply = true, v2.Reply
		if c.SACKOK() {
			v.Reply.DSACK, v.Reply.SackL, v.Reply.SackR = true, c.IRS, c.IRS+1
		}
	}
	return v
}

// replaceTSRecent is E2's tcp_replace_ts_recent: TS.Recent follows an
// acceptable segment that starts at or before RCV.NXT, never backwards.
func (c *Conn) replaceTSRecent(seg *Segment) {
	if c.TSOK() && seg.Opts.HasTS && seg.Seq.LessEq(c.RcvNxt) && int32(seg.Opts.TSVal-c.TSRecent) >= 0 {
		c.TSRecent = seg.Opts.TSVal
	}
}

// pawsDiscard is E2's PAWS test (tcp_paws_discard): a timestamp older than
// TS.Recent by more than 1 marks a segment of an old incarnation or a
// replay, unless the segment is a pure duplicate ACK within the replay
// window (tcp_disordered_ack: one RTO of timestamp ticks).
func (p *Params) pawsDiscard(c *Conn, seg *Segment, end Seq) bool {
	if !c.TSOK() || !seg.Opts.HasTS || c.TSRecent == 0 {
		return false
	}
	old := int32(c.TSRecent - seg.Opts.TSVal)
	if old <= 1 {
		return false
	}
	disordered := seg.Flags.Has(FlagACK) && end == seg.Seq && seg.Seq == c.RcvNxt && seg.Ack == c.SndNxt &&
		int64(old) <= p.FINRTO(c)*1024/1000
	return !disordered
}

// dupAck answers an unacceptable segment as tcp_send_dupack does: an ACK
// of where we are, with a D-SACK block for data we had already (E5); one
// without data is rate-limited as a challenge ACK (E4,
// tcp_oow_rate_limited), one with data always answered.
func (p *Params) dupAck(v *Verdict, c *Conn, seg *Segment, end Seq, nowMs uint32) {
	if seg.PayloadLen == 0 && !seg.Flags.Has(FlagFIN) || seg.Flags.Has(FlagSYN) {
		p.challenge(v, c, nowMs)
		return
	}
	p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs)
	if c.SACKOK() && seg.Seq.LessThan(c.RcvNxt) {
		r := end
		if c.RcvNxt.LessThan(r) {
			r = c.RcvNxt
		}
		v.Reply.DSACK, v.Reply.SackL, v.Reply.SackR = true, seg.Seq, r
	}
}

// challenge sends a dup/challenge ACK unless one went out in the last 500 ms
// (E4, tcp_invalid_ratelimit).
func (p *Params) challenge(v *Verdict, c *Conn, nowMs uint32) {
	if c.LastChlMs != 0 && int32(nowMs-(c.LastChlMs-1)) < 500 {
		*v = Verdict{}
		return
	}
	c.LastChlMs = nowMs + 1 // 0 means "never sent"
	p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs)
}

// synchronized handles ESTABLISHED and the closing states: the minimum a
// connection generator needs (E1-E5, E8, E10, E11), in the order of
// tcp_validate_incoming: PAWS, the sequence check, RST, SYN, then the ACK
// and the segment's text. It writes its verdict into v (segmentTo).
func (p *Params) synchronized(v *Verdict, c *Conn, x *Exchange, seg *Segment, nowMs uint32) {
	f := seg.Flags
	// end is SEG.SEQ + SEG.LEN, SYN and FIN counted.
	end := seg.Seq + Seq(seg.PayloadLen)
	if f.Has(FlagSYN) {
		end++ // a SYN takes a sequence number
	}
	if f.Has(FlagFIN) {
		end++ // so does a FIN
	}
	if !f.Has(FlagRST) && p.pawsDiscard(c, seg, end) { // E2
		p.dupAck(v, c, seg, end, nowMs)
		return
	}
	// E3 (1), tcp_sequence: the segment must overlap the window we
	// announced, its last byte included.
	if end.LessThan(c.RcvNxt) || (c.RcvNxt + Seq(p.announced(c))).LessThan(seg.Seq) {
		if f.Has(FlagRST) {
			*v = Verdict{}
			return
		}
		p.dupAck(v, c, seg, end, nowMs)
		return
	}
	if f.Has(FlagRST) { // E3 (2), (3)
		if seg.Seq == c.RcvNxt {
			c.State = Closed
			*v = Verdict{Event: EvReset, Err: syscall.ECONNRESET}
			return
		}
		p.challenge(v, c, nowMs)
		return
	}
	if f.Has(FlagSYN) { // E3 (4), H3: challenge ACK
		p.challenge(v, c, nowMs)
		return
	}
	if !f.Has(FlagACK) {
		*v = Verdict{}
		return
	}
	if c.SndNxt.LessThan(seg.Ack) { // E3 (5): ACK of something not sent
		p.challenge(v, c, nowMs)
		return
	}
	c.replaceTSRecent(seg)
	if x != nil {
		x.ack(p, c, seg, nowMs)
	}
	// Our FIN acknowledged?
	finAcked := seg.Ack == c.SndNxt
	// An orphan whose FIN was acked by an earlier segment is a TIME-WAIT
	// mini-socket (tcp_time_wait with TCP_FIN_WAIT2); one acked by this
	// segment, which also carries the peer's FIN, is still a socket.
	// A stream the application only shut for writing (x set in FIN-WAIT)
	// is still a socket that reads.
	miniSocket := c.State == FinWait2 && x == nil
	switch c.State {
	case FinWait1:
		if finAcked {
			c.State = FinWait2
			c.Retrans = 0
		}
	case Closing:
		if finAcked {
			c.State = TimeWait
			*v = Verdict{Event: EvTimeWait}
			return
		}
	case LastAck:
		if finAcked {
			c.State = Closed
			*v = Verdict{Event: EvClosed}
			return
		}
	}
	n := seg.PayloadLen
	if seg.Seq != c.RcvNxt {
		if end == seg.Seq {
			// A bare ACK (or window probe) ahead of RCV.NXT: nothing to
			// queue or answer (tcp_data_queue drops an empty segment).
			*v = Verdict{}
			return
		}
		if !seg.Seq.LessThan(c.RcvNxt) {
			// E1: out-of-order data: a duplicate ACK with a SACK block
			// for it (tcp_sack_new_ofo_skb); nothing is queued.
			p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs)
			if c.SACKOK() {
				v.Reply.DSACK, v.Reply.SackL, v.Reply.SackR = true, seg.Seq, end
			}
			return
		}
		if end.LessEq(c.RcvNxt) {
			// E5: all of it had come before: ACK at once with a D-SACK.
			p.dupAck(v, c, seg, end, nowMs)
			return
		}
		// Across RCV.NXT: the new part is taken and the old one
		// D-SACKed on the ACK (tcp_data_queue).
		old := c.RcvNxt
		n -= int(old - seg.Seq)
		p.text(v, c, f, n, miniSocket, x != nil, seg, nowMs)
		if v.Send && c.SACKOK() && v.Reply.Flags&FlagRST == 0 {
			v.Reply.DSACK, v.Reply.SackL, v.Reply.SackR = true, seg.Seq, old
		}
		return
	}
	p.text(v, c, f, n, miniSocket, x != nil, seg, nowMs)
}

// text is the segment's text once it is acceptable and at RCV.NXT: n new
// bytes of data, and the FIN if f has it (E1, E8, E11). The data is the
// application's unless the segment reset the connection. app says an
// application reads it (request mode): the server's FIN then leaves the
// connection in CLOSE-WAIT for it to close.
func (p *Params) text(v *Verdict, c *Conn, f Flags, n int, miniSocket, app bool, seg *Segment, nowMs uint32) {
	p.takeText(v, c, f, n, miniSocket, app, seg, nowMs)
	if n > 0 && !v.Reply.Flags.Has(FlagRST) {
		v.DataAt, v.DataLen = seg.PayloadLen-n, n
	}
}

func (p *Params) takeText(v *Verdict, c *Conn, f Flags, n int, miniSocket, app bool, seg *Segment, nowMs uint32) {
	fin := f.Has(FlagFIN)
	if n == 0 && !fin {
		*v = Verdict{}
		return
	}
	c.RcvNxt += Seq(n)
	if !fin {
		if (c.State == FinWait1 || c.State == FinWait2) && !app {
			// E11: data after our receive side shut down resets; a
			// stream shut only for writing (app) reads it.
			c.State = Closed
			p.segmentTo(v, c, FlagRST|FlagACK, c.SndNxt, nowMs)
			v.Event = EvClosed
			return
		}
		p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs) // E1: quick ACK
		return
	}
	c.RcvNxt++
	switch c.State {
	case Established:
		if app {
			// The application reads the end of the stream and closes in
			// its own way (its close mode): until then CLOSE-WAIT. The
			// FIN puts the socket in pingpong mode (tcp_fin), so its ACK
			// waits for the delayed-ACK timer, and the close that comes
			// first carries it (an RST|ACK, or our FIN|ACK): Q3.
			c.State = CloseWait
			*v = Verdict{}
			return
		}
		// The server closed first. A generator has nothing more to send:
		// our FIN rides on the ACK of theirs, as Linux's delayed ACK merges
		// them when the application closes at once (E1, E8).
		c.State = LastAck
		c.SndNxt++
		c.Retrans = 0
		p.segmentTo(v, c, FlagFIN|FlagACK, c.SndNxt-1, nowMs)
	case FinWait1:
		// Simultaneous close: our FIN not acked yet (a segment that acks
		// it has moved us to FIN-WAIT-2 above).
		c.State = Closing
		p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs)
	case FinWait2:
		// E8: the mini-socket acks the peer's FIN as a ctl-reply, IP ID 0
		// (E9); the socket itself, next in its IP ID sequence.
		c.State = TimeWait
		p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs)
		if miniSocket {
			p.timeWait(v, c, seg, nowMs)
		}
		v.Event = EvTimeWait
	default:
		p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs)
	}
}

// timeWait is E9: retransmitted FINs and stray segments get an ACK with the
// final numbers (a ctl-reply: IP ID 0); an RST destroys the TIME-WAIT.
func (p *Params) timeWait(v *Verdict, c *Conn, seg *Segment, nowMs uint32) {
	if seg.Flags.Has(FlagRST) {
		c.State = Closed
		*v = Verdict{Event: EvClosed}
		return
	}
	p.segmentTo(v, c, FlagACK, c.SndNxt, nowMs)
	v.Reply.IPID = 0 // a ctl-reply
	v.Reply.TOS = seg.TOS &^ 3
}

// ACK is the connection's pure ACK of all it received (a delayed ACK due).
func (p *Params) ACK(c *Conn, nowMs uint32) Verdict { return p.segment(c, FlagACK, c.SndNxt, nowMs) }

// Close closes an established connection in the given way: abortive (RST|ACK
// with seq = SND.NXT, E10) or graceful (FIN|ACK, FIN-WAIT-1, E8). A
// connection not yet established is simply forgotten (A2 from SYN-SENT: no
// RST is sent).
func (p *Params) Close(c *Conn, abort bool, nowMs uint32) (v Verdict) {
	switch c.State {
	case Established, CloseWait:
		if abort {
			c.State = Closed
			p.segmentTo(&v, c, FlagRST|FlagACK, c.SndNxt, nowMs)
			v.Event = EvClosed
			return v
		}
		if c.State == CloseWait {
			c.State = LastAck
		} else {
			c.State = FinWait1
		}
		c.SndNxt++
		c.Retrans = 0
		p.segmentTo(&v, c, FlagFIN|FlagACK, c.SndNxt-1, nowMs)
		return v
	case SynSent, SynRecv:
		c.State = Closed
		return Verdict{Event: EvClosed}
	case FinWait1, FinWait2, Closing, LastAck, TimeWait:
		if abort {
			c.State = Closed
			p.segmentTo(&v, c, FlagRST|FlagACK, c.SndNxt, nowMs)
			v.Event = EvClosed
			return v
		}
	}
	return Verdict{}
}
