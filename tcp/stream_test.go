package tcp

import (
	"encoding/binary"
	"testing"
)

// streaming is an established connection with an exchange started empty,
// as a Dial'ed stream starts, then n bytes written (Append).
func streaming(t *testing.T, n int) (*Params, *Conn, *Exchange) {
	t.Helper()
	p, c, x := exchanging(t, 0)
	x.Append(n)
	return p, c, x
}

const mss = 1448 // the PeerMSS of Linux's defaults over a 1500-byte MTU

// ackSeg is the peer's pure ACK of ack (relative to iss), window w (in
// its units: scale 7), echoing our timestamp of echoMs.
func ackSeg(p *Params, c *Conn, ack Seq, w uint16, echoMs uint32) *Segment {
	return &Segment{Seq: c.RcvNxt, Ack: iss + 1 + ack, Flags: FlagACK, Window: w,
		Opts: Options{HasTS: true, TSVal: 424243, TSEcr: p.TSVal(c, echoMs)}}
}

// A stream's writes extend what it sends; acknowledged bytes are released
// from the front of the caller's buffer, whose offsets then start at
// SND.UNA.
func TestStreamAppendRelease(t *testing.T) {
	p, c, x := streaming(t, 3000)
	segs, last := sendAll(p, c, x, 10020)
	if len(segs) != 3 || segs[2] != [2]int{2896, 104} || last.Flags != FlagACK|FlagPSH {
		t.Fatalf("segments %v, last %+v", segs, last)
	}
	p.ExchangeInput(c, x, ackSeg(p, c, 2896, 1000, 10020), 10021)
	if n := x.Release(); n != 2896 || x.Start != iss+1+2896 {
		t.Fatalf("released %d, start +%d", n, x.Start-iss)
	}
	if n := x.Release(); n != 0 {
		t.Fatalf("released %d twice", n)
	}
	x.Append(2000)
	if segs, _ := sendAll(p, c, x, 10021); len(segs) != 2 || segs[0] != [2]int{104, 1448} || segs[1] != [2]int{1552, 552} {
		t.Fatalf("after the release, offsets from SND.UNA: %v", segs)
	}
}

// Three duplicate ACKs start fast retransmit (RFC 5681 §3.2): the segment
// at SND.UNA at once, ssthresh half the flight, cwnd ssthresh. An ACK
// with a new window, or with data, and no SACK block is no duplicate; one
// with SACK blocks is, whatever its window and data.
func TestStreamFastRetransmit(t *testing.T) {
	p, c, x := streaming(t, 20*mss)
	if segs, _ := sendAll(p, c, x, 10020); len(segs) != InitCwnd {
		t.Fatalf("first flight %d segments", len(segs))
	}
	p.ExchangeInput(c, x, ackSeg(p, c, 0, 1000, 10020), 10021) // the window, scaled: 128000
	dup := ackSeg(p, c, 0, 1000, 10020)
	p.ExchangeInput(c, x, dup, 10022)
	p.ExchangeInput(c, x, dup, 10022)
	if x.Recovering() {
		t.Fatal("recovery after two duplicates")
	}
	// Not duplicates: a window update, data from the peer.
	p.ExchangeInput(c, x, ackSeg(p, c, 0, 999, 10020), 10022)
	withData := ackSeg(p, c, 0, 999, 10020)
	withData.PayloadLen = 100
	p.ExchangeInput(c, x, withData, 10022)
	if x.Recovering() {
		t.Fatal("a window update or a data segment counted as a duplicate ACK")
	}
	p.ExchangeInput(c, x, ackSeg(p, c, 0, 999, 10020), 10022)
	if !x.Recovering() || x.Ssthresh != 5 || x.Cwnd != 5 {
		t.Fatalf("third duplicate: recovering %v ssthresh %d cwnd %d", x.Recovering(), x.Ssthresh, x.Cwnd)
	}
	r, off, n, ok := p.NextData(c, x, 10022)
	if !ok || off != 0 || n != mss || r.Seq != iss+1 {
		t.Fatalf("fast retransmit: %v off %d n %d seq +%d", ok, off, n, r.Seq-iss)
	}
	if _, _, _, ok := p.NextData(c, x, 10022); ok {
		t.Fatal("new data beyond cwnd 5 with 10 segments out")
	}
	// A partial ACK (the recovery point is SND.NXT at the third
	// duplicate): the next hole goes at once (NewReno).
	p.ExchangeInput(c, x, ackSeg(p, c, 3*mss, 999, 10020), 10023)
	if _, off, _, ok := p.NextData(c, x, 10023); !ok || off != 3*mss || x.SndUna != iss+1+3*mss || !x.Recovering() {
		t.Fatalf("partial ACK: resend %v at %d, SND.UNA +%d", ok, off, x.SndUna-iss)
	}
	// The full ACK ends the recovery with cwnd ssthresh; above ssthresh,
	// congestion avoidance adds a segment per window acknowledged.
	p.ExchangeInput(c, x, ackSeg(p, c, 10*mss, 999, 10020), 10024)
	if x.Recovering() || x.Cwnd != 5 {
		t.Fatalf("full ACK: recovering %v cwnd %d", x.Recovering(), x.Cwnd)
	}
	sendAll(p, c, x, 10024)
	p.ExchangeInput(c, x, ackSeg(p, c, 14*mss, 999, 10024), 10025)
	if x.Cwnd != 5 {
		t.Fatalf("cwnd %d after 4 of 5 segments acknowledged", x.Cwnd)
	}
	p.ExchangeInput(c, x, ackSeg(p, c, 15*mss, 999, 10024), 10025)
	if x.Cwnd != 6 {
		t.Fatalf("cwnd %d after a window acknowledged in congestion avoidance", x.Cwnd)
	}
}

// sackSeg is a duplicate ACK of SND.UNA with one SACK block [l, r) (relative
// to iss+1), parsed from its wire form.
func sackSeg(p *Params, c *Conn, l, r Seq) *Segment {
	s := ackSeg(p, c, 0, 1000, 10020)
	o := []byte{OptNOP, OptNOP, OptSACK, 10, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(o[4:], uint32(iss+1+l))
	binary.BigEndian.PutUint32(o[8:], uint32(iss+1+r))
	s.Opts = ParseOptions(o, false)
	s.Opts.HasTS, s.Opts.TSVal, s.Opts.TSEcr = true, 424243, p.TSVal(c, 10020)
	return s
}

// SACK blocks reaching more than three segments past SND.UNA start the
// recovery on one ACK (RFC 6675 IsLost: a receiver's GRO acknowledges a
// run of segments once); a block nearer, or a D-SACK below SND.UNA, not.
func TestStreamSACKRecovery(t *testing.T) {
	p, c, x := streaming(t, 10*mss)
	sendAll(p, c, x, 10020)
	p.ExchangeInput(c, x, sackSeg(p, c, mss, 3*mss), 10021)
	if x.Recovering() {
		t.Fatal("recovery from a block two segments past the hole")
	}
	p, c, x = streaming(t, 10*mss)
	sendAll(p, c, x, 10020)
	p.ExchangeInput(c, x, sackSeg(p, c, 0xffffff00, 0), 10021) // D-SACK below SND.UNA
	if x.Recovering() {
		t.Fatal("recovery from a D-SACK")
	}
	p.ExchangeInput(c, x, sackSeg(p, c, mss, 5*mss), 10021)
	if !x.Recovering() {
		t.Fatal("no recovery from a block four segments past the hole")
	}
	if _, off, n, ok := p.NextData(c, x, 10021); !ok || off != 0 || n != mss {
		t.Fatalf("retransmission %v at %d, %d bytes", ok, off, n)
	}
}

// The SACK option: the highest right edge of its blocks, modulo 2^32; not
// on a SYN; a length that is not 2 + 8n is no SACK.
func TestParseSACK(t *testing.T) {
	// The highest edge first (a receiver lists its latest block first),
	// the other across the wrap: 16 is after 0xfffffff0 modulo 2^32.
	o := []byte{OptSACK, 18, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0}
	if got := ParseOptions(o, false); !got.HasSACK || got.SACKEdge != 16 {
		t.Fatalf("two blocks across the wrap: %+v", got)
	}
	if got := ParseOptions(o, true); got.HasSACK {
		t.Fatal("SACK on a SYN")
	}
	o[1] = 14
	if got := ParseOptions(o[:14], false); got.HasSACK {
		t.Fatal("a 14-byte SACK option")
	}
}

// An RTO halves the flight into ssthresh and restarts from one segment
// (RFC 5681 §3.1).
func TestStreamRTOThreshold(t *testing.T) {
	p, c, x := streaming(t, 10*mss)
	sendAll(p, c, x, 10020)
	rto := uint32(p.FINRTO(c))
	p.ExchangeTimer(c, x, 10020+rto) // the tail loss probe
	if _, resend, _ := p.ExchangeTimer(c, x, 10020+3*rto); !resend || x.Ssthresh != 5 || x.Cwnd != 1 {
		t.Fatalf("RTO: resend %v ssthresh %d cwnd %d", resend, x.Ssthresh, x.Cwnd)
	}
}

// The probe timeout: the RTO until an RTT is measured, then 2 SRTT + 2 ms
// with several segments out, plus TCP_RTO_MIN with one (at most the RTO);
// the RTO again once the flight had its probe.
func TestStreamProbeTimeout(t *testing.T) {
	p, c, x := streaming(t, 20*mss)
	sendAll(p, c, x, 10020)
	rto := p.FINRTO(c)
	if got := p.ExchangeTimeout(c, x); got != rto {
		t.Fatalf("no RTT sample: %d, want the RTO %d", got, rto)
	}
	// An ACK 10 ms after what it echoes: SRTT 10 ms.
	p.ExchangeInput(c, x, ackSeg(p, c, mss, 1000, 10020), 10030)
	sendAll(p, c, x, 10030)
	if got := p.ExchangeTimeout(c, x); got != 22 {
		t.Fatalf("PTO %d, want 2*10+2", got)
	}
	// Then 20 ms: SRTT 10 + (20-10)/8.
	p.ExchangeInput(c, x, ackSeg(p, c, 2*mss, 1000, 10030), 10050)
	if got := p.ExchangeTimeout(c, x); got != 24 {
		t.Fatalf("PTO %d, want 2*11.25+2 rounded down", got)
	}
	// One segment out: TCP_RTO_MIN more, 2 SRTT + 200 ms, under an RTO
	// of a second (the handshake's, say), and cut to a smaller RTO.
	p.ExchangeInput(c, x, ackSeg(p, c, x.Next-(iss+1)-mss, 1000, 10050), 10060)
	if got := p.ExchangeTimeout(c, x); got != min(rto, 24+p.RTOMinMs-2) {
		t.Fatalf("PTO with one segment out %d", got)
	}
	kept := c.RTOMs
	c.RTOMs = 1000
	if got := p.ExchangeTimeout(c, x); got != 22+p.RTOMinMs {
		t.Fatalf("PTO with one segment out, RTO 1 s: %d, want 2*11+200", got)
	}
	c.RTOMs = kept
	p.ExchangeTimer(c, x, 10100)
	if got := p.ExchangeTimeout(c, x); got != rto {
		t.Fatalf("after the probe %d, want the RTO %d", got, rto)
	}
}

// A stream shut for writing still reads in FIN-WAIT (shutdown(SHUT_WR));
// without an application (closed) data there resets (E11).
func TestStreamHalfClose(t *testing.T) {
	for _, app := range []bool{true, false} {
		p, c, x := streaming(t, 0)
		p.Close(c, false, 10020) // FIN-WAIT-1
		var xx *Exchange
		if app {
			xx = x
		}
		var v Verdict
		p.input(&v, c, xx, &Segment{Seq: 5001, Ack: iss + 2, Flags: FlagACK, PayloadLen: 10,
			Opts: Options{HasTS: true, TSVal: 424243, TSEcr: p.TSVal(c, 10020)}}, 10021)
		switch {
		case app && (c.State != FinWait2 || v.DataLen != 10 || c.RcvNxt != 5011 || v.Reply.Flags != FlagACK):
			t.Fatalf("half-closed stream: state %v, data %d, reply %v", c.State, v.DataLen, v.Reply.Flags)
		case !app && (c.State != Closed || v.Reply.Flags != FlagRST|FlagACK):
			t.Fatalf("closed: state %v, reply %v", c.State, v.Reply.Flags)
		}
	}
}

// A fast retransmit asked for by the third duplicate is dropped when an ACK
// of the whole flight comes before the segment could leave: there is no
// hole left, and what goes next is new data, a full segment, not an empty
// retransmission at SND.UNA.
func TestStreamFastRetransmitOverTaken(t *testing.T) {
	p, c, x := streaming(t, 20*mss)
	sendAll(p, c, x, 10020)
	p.ExchangeInput(c, x, ackSeg(p, c, 0, 1000, 10020), 10021)
	dup := ackSeg(p, c, 0, 1000, 10020)
	for range 3 {
		p.ExchangeInput(c, x, dup, 10022)
	}
	if !x.Recovering() {
		t.Fatal("no recovery after three duplicates")
	}
	p.ExchangeInput(c, x, ackSeg(p, c, Seq(InitCwnd*mss), 1000, 10020), 10023)
	r, off, n, ok := p.NextData(c, x, 10023)
	if !ok || off != InitCwnd*mss || n != mss || r.Seq != iss+1+Seq(InitCwnd*mss) {
		t.Fatalf("after the whole flight's ACK: %v, %d bytes at %d, seq +%d; want new data, %d bytes at %d", ok, n, off, r.Seq-iss, mss, InitCwnd*mss)
	}
}
