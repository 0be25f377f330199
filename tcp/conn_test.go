package tcp

import (
	"syscall"
	"testing"
)

const iss = Seq(1000000)

func openConn(t *testing.T, p *Params) *Conn {
	t.Helper()
	c := &Conn{}
	p.Open(c, iss, 5000, 77, 10000)
	return c
}

func synAck(ack Seq, tsecr uint32) *Segment {
	return &Segment{Seq: 5000, Ack: ack, Flags: FlagSYN | FlagACK, Window: 65160,
		Opts: Options{MSS: 1460, HasWS: true, WScale: 7, SACKPerm: true, HasTS: true, TSVal: 424242, TSEcr: tsecr}}
}

// Y6, H1, H2: an acceptable SYN-ACK establishes and the third ACK is exact.
func TestY6EstablishAndH1ACK(t *testing.T) {
	p := DefaultParams(1500, false)
	c := openConn(t, &p)
	v := p.Input(c, synAck(iss+1, 10000+5000), 10020)
	if v.Event != EvEstablished || c.State != Established || !v.Send {
		t.Fatalf("Y6: %+v state %v", v, c.State)
	}
	r := v.Reply
	if r.Flags != FlagACK || r.Seq != iss+1 || r.Ack != 5001 || r.Window != 502 || !r.TS || r.TSEcr != 424242 || r.TSVal != 10020+5000 {
		t.Fatalf("H1 ACK %+v", r)
	}
	if r.IPID != 78 {
		t.Errorf("S2: ACK IP ID %d, want SYN's 77 + 1", r.IPID)
	}
	if c.PeerMSS != 1448 || c.SndWScale != 7 || !c.SACKOK() || !c.TSOK() || c.SndWnd != 65160 {
		t.Errorf("H2: %+v", c)
	}
	// R7: the SYN-ACK echoes the first (and latest) SYN's TSval: timed
	// exactly by the caller. Had a retransmission left at 10011, the echo
	// times the first SYN instead: 20 ms.
	if latest, _, ok := p.HandshakeRTT(c, synAck(iss+1, 10000+5000), 10000, 10020, 0); !latest || !ok {
		t.Errorf("R7: latest %v ok %v", latest, ok)
	}
	if latest, ms, ok := p.HandshakeRTT(c, synAck(iss+1, 10000+5000), 10011, 10020, 1); latest || ms != 20 || !ok {
		t.Errorf("R7: latest %v ms %d ok %v, want the echo's 20 ms", latest, ms, ok)
	}
	// A SYN that left up to 7 ms after the millisecond its TSval carries
	// (a late flush) is still the one echoed; 8 ms is R5's least gap
	// between two SYNs, and an echo newer than the SYN is not ours.
	for _, tc := range []struct {
		sentMs uint32
		latest bool
	}{{10007, true}, {10008, false}, {9999, false}} {
		if latest, _, _ := p.HandshakeRTT(c, synAck(iss+1, 10000+5000), tc.sentMs, 10020, 0); latest != tc.latest {
			t.Errorf("R7: SYN stamped at 10000, left at %d: latest %v, want %v", tc.sentMs, latest, tc.latest)
		}
	}
	b := make([]byte, MaxReplyLen)
	n := Build(b, testPath(), &r)
	eq(t, "H1 options", b[54:n], mustHex("0101080a 00003aac 00067932"))
	decode(t, b[:n])
}

// H2: no options -> MSS 536, no scaling, window 64240 unscaled.
func TestH2NoOptions(t *testing.T) {
	p := DefaultParams(1500, false)
	c := openConn(t, &p)
	v := p.Input(c, &Segment{Seq: 1, Ack: iss + 1, Flags: FlagSYN | FlagACK, Window: 100}, 10001)
	if v.Event != EvEstablished || c.PeerMSS != 536 || c.TSOK() || c.WSOK() || v.Reply.Window != 64240 || v.Reply.TS {
		t.Fatalf("H2: %+v %+v", v.Reply, c)
	}
	c2 := openConn(t, &p)
	p.Input(c2, &Segment{Seq: 1, Ack: iss + 1, Flags: FlagSYN | FlagACK, Opts: Options{MSS: 100, HasTS: true, TSVal: 1}}, 10001)
	if c2.PeerMSS != 88 {
		t.Fatalf("H2: MSS 100 with TS -> %d, want 88", c2.PeerMSS)
	}
}

// Y2, R5: an unacceptable ACK gets a ctl-reply RST with seq = SEG.ACK, no
// ACK flag, and triggers the fast retransmit while nothing was retransmitted.
func TestY2UnacceptableACK(t *testing.T) {
	p := DefaultParams(1500, false)
	for _, ack := range []Seq{iss, iss + 2, iss + 100} {
		c := openConn(t, &p)
		v := p.Input(c, synAck(ack, 0), 10005)
		if !v.Send || v.Reply.Flags != FlagRST || v.Reply.Seq != ack || v.Reply.Window != 0 || v.Reply.TS || v.Reply.IPID != 0 {
			t.Errorf("Y2 ack=%d: %+v", ack-iss, v.Reply)
		}
		if v.Event != EvFastRetransmit || c.State != SynSent {
			t.Errorf("R5: event %v state %v", v.Event, c.State)
		}
	}
	// RST|ACK with a bad ACK: no reply, fast retransmit still.
	c := openConn(t, &p)
	v := p.Input(c, &Segment{Ack: iss + 5, Flags: FlagRST | FlagACK}, 10005)
	if v.Send || v.Event != EvFastRetransmit || c.State != SynSent {
		t.Errorf("Y2 RST|ACK: %+v", v)
	}
	// After a retransmission R5 does not apply.
	c = openConn(t, &p)
	p.OnTimer(c, 11000)
	v = p.Input(c, synAck(iss+7, 0), 11005)
	if v.Event == EvFastRetransmit {
		t.Error("R5 applied after a retransmission")
	}
	// X1: ctl-reply TOS keeps DSCP, drops ECN bits.
	c = openConn(t, &p)
	s := synAck(iss, 0)
	s.TOS = 0x2b
	if v := p.Input(c, s, 10001); v.Reply.TOS != 0x28 {
		t.Errorf("X1 TOS %#x", v.Reply.TOS)
	}
}

// Y3: PAWS on the SYN-ACK.
func TestY3PAWS(t *testing.T) {
	p := DefaultParams(1500, false)
	for _, ecr := range []uint32{uint32(15000 - 100000 + 1<<32), 15000 + 100000} {
		c := openConn(t, &p)
		v := p.Input(c, synAck(iss+1, ecr), 10050)
		if !v.Send || v.Reply.Flags != FlagRST || v.Reply.Seq != iss+1 || c.State != SynSent || v.Event != EvNone {
			t.Errorf("Y3 TSecr %d: %+v state %v", ecr, v, c.State)
		}
	}
	c := openConn(t, &p)
	if v := p.Input(c, synAck(iss+1, 0), 10050); v.Event != EvEstablished {
		t.Errorf("Y3: TSecr 0 must be accepted, got %+v", v)
	}
}

// Y4, Y5, Y7.
func TestY4Y5Y7(t *testing.T) {
	p := DefaultParams(1500, false)
	c := openConn(t, &p)
	v := p.Input(c, &Segment{Ack: iss + 1, Flags: FlagRST | FlagACK}, 10001)
	if v.Event != EvFailed || v.Err != syscall.ECONNREFUSED || v.Send || c.State != Closed {
		t.Errorf("Y4: %+v", v)
	}
	c = openConn(t, &p)
	v = p.Input(c, &Segment{Ack: iss + 1, Flags: FlagSYN | FlagRST | FlagACK}, 10001)
	if v.Err != syscall.ECONNREFUSED {
		t.Errorf("Y4 SYN|RST|ACK: %+v", v)
	}
	c = openConn(t, &p)
	if v := p.Input(c, &Segment{Ack: iss + 1, Flags: FlagACK}, 10001); v.Send || v.Event != EvNone || c.State != SynSent {
		t.Errorf("Y5: %+v", v)
	}
	for _, f := range []Flags{FlagRST, FlagFIN, 0} {
		c = openConn(t, &p)
		if v := p.Input(c, &Segment{Seq: 9, Flags: f}, 10001); v.Send || c.State != SynSent {
			t.Errorf("Y7 flags %v: %+v", f, v)
		}
	}
}

// Y6: payload and FIN on the SYN-ACK are not acknowledged.
func TestY6PayloadFINIgnored(t *testing.T) {
	p := DefaultParams(1500, false)
	c := openConn(t, &p)
	s := synAck(iss+1, 0)
	s.Flags |= FlagFIN
	s.PayloadLen = 5
	v := p.Input(c, s, 10001)
	if c.State != Established || v.Reply.Ack != 5001 {
		t.Fatalf("Y6: state %v ack %d", c.State, v.Reply.Ack)
	}
}

// Y8: simultaneous open.
func TestY8SimultaneousOpen(t *testing.T) {
	p := DefaultParams(1500, false)
	c := openConn(t, &p)
	v := p.Input(c, &Segment{Seq: 7000, Flags: FlagSYN, Opts: Options{MSS: 1460, HasTS: true, TSVal: 99, SACKPerm: true, HasWS: true, WScale: 7}}, 10003)
	r := v.Reply
	if c.State != SynRecv || r.Flags != FlagSYN|FlagACK || r.Seq != iss || r.Ack != 7001 || r.Window != 64240 || r.SYNOpts == nil || r.TSEcr != 99 {
		t.Fatalf("Y8 SYN-ACK %+v state %v", r, c.State)
	}
	b := make([]byte, MaxReplyLen)
	n := Build(b, testPath(), &r)
	eq(t, "Y8 options", b[54:n], mustHex("020405b4 0402080a 00003a9b 00000063 01030307"))
	decode(t, b[:n])
	// A crossed SYN-ACK completes with an ACK carrying a D-SACK.
	v = p.Input(c, &Segment{Seq: 7000, Ack: iss + 1, Flags: FlagSYN | FlagACK, Opts: Options{HasTS: true, TSVal: 100}}, 10004)
	if v.Event != EvEstablished || !v.Send || !v.Reply.DSACK || v.Reply.SackL != 7000 || v.Reply.SackR != 7001 {
		t.Fatalf("Y8 crossed: %+v", v)
	}
	// Or the peer's plain ACK completes silently.
	c = openConn(t, &p)
	p.Input(c, &Segment{Seq: 7000, Flags: FlagSYN}, 10003)
	if v := p.Input(c, &Segment{Seq: 7001, Ack: iss + 1, Flags: FlagACK}, 10004); v.Event != EvEstablished || v.Send {
		t.Fatalf("Y8 ACK: %+v", v)
	}
}

// R1-R4: the SYN schedule and ETIMEDOUT, for the default and TCP_SYNCNT 2, 1.
func TestR4Schedule(t *testing.T) {
	cases := []struct {
		retries int
		syns    []int64
		failAt  int64
	}{
		{6, []int64{0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67}, 131},
		// Past the default the count of retransmissions (retries plus
		// linear timeouts, tcp_write_timeout) ends the attempt, before the
		// elapsed-time limit would.
		{7, []int64{0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67, 131}, 251},
		{2, []int64{0, 1, 2, 3, 4, 5}, 7},
		{1, []int64{0, 1, 2}, 3},
	}
	for _, cs := range cases {
		p := DefaultParams(1500, false)
		p.SynRetries = cs.retries
		c := &Conn{}
		p.Open(c, iss, 0, 0, 0)
		syns := []int64{0}
		at := p.SynRTO(0)
		for {
			v, resend, next := p.OnTimer(c, uint32(at))
			if v.Event == EvFailed {
				if v.Err != syscall.ETIMEDOUT || at != cs.failAt*1000 {
					t.Errorf("R3 retries=%d: %v at %d ms, want ETIMEDOUT at %d s", cs.retries, v.Err, at, cs.failAt)
				}
				break
			}
			if !resend {
				t.Fatal("no resend and no failure")
			}
			syns = append(syns, at/1000)
			at += next
		}
		if len(syns) != len(cs.syns) {
			t.Errorf("R4 retries=%d: SYNs at %v, want %v", cs.retries, syns, cs.syns)
			continue
		}
		for i := range syns {
			if syns[i] != cs.syns[i] {
				t.Errorf("R4 retries=%d: SYNs at %v, want %v", cs.retries, syns, cs.syns)
				break
			}
		}
	}
}

// C1, C2, C4, C5: ICMP in SYN-SENT.
func TestICMPInSynSent(t *testing.T) {
	p := DefaultParams(1500, false)
	table := []struct {
		typ, code uint8
		want      syscall.Errno
	}{
		{3, 0, syscall.ENETUNREACH}, {3, 1, syscall.EHOSTUNREACH}, {3, 2, syscall.ENOPROTOOPT}, {3, 3, syscall.ECONNREFUSED},
		{3, 5, syscall.EOPNOTSUPP}, {3, 6, syscall.ENETUNREACH}, {3, 7, syscall.EHOSTDOWN}, {3, 8, syscall.ENONET},
		{3, 9, syscall.ENETUNREACH}, {3, 10, syscall.EHOSTUNREACH}, {3, 11, syscall.ENETUNREACH}, {3, 12, syscall.EHOSTUNREACH},
		{3, 13, syscall.EHOSTUNREACH}, {3, 14, syscall.EHOSTUNREACH}, {3, 15, syscall.EHOSTUNREACH},
		{11, 0, syscall.EHOSTUNREACH}, {12, 0, syscall.EPROTO}, {12, 1, syscall.EPROTO},
		{3, 16, 0}, {11, 1, 0}, {4, 0, 0}, {5, 1, 0}, // C3 ignored
	}
	for _, e := range table {
		for _, q := range []Seq{iss, iss + 1} {
			c := openConn(t, &p)
			v := p.ICMPInput(c, e.typ, e.code, q, 0)
			if v.Err != e.want || (e.want != 0) != (c.State == Closed) {
				t.Errorf("C2 %d/%d: %v state %v, want %v", e.typ, e.code, v.Err, c.State, e.want)
			}
		}
	}
	for _, q := range []Seq{iss - 1, iss + 2} {
		c := openConn(t, &p)
		if v := p.ICMPInput(c, 3, 1, q, 0); v.Event != EvNone || c.State != SynSent {
			t.Errorf("C1 quoted seq ISS%+d accepted", int32(q-iss))
		}
	}
	c := openConn(t, &p)
	if v := p.ICMPInput(c, 3, 4, iss, 1000); v.PMTU != 1000 || v.NoDF || c.State != SynSent {
		t.Errorf("C5: %+v", v)
	}
	if v := p.ICMPInput(c, 3, 4, iss, 300); v.PMTU != 552 || !v.NoDF {
		t.Errorf("C5 below min_pmtu: %+v", v)
	}
	// After ESTABLISHED errors are soft (C2 contrast).
	p.Input(c, synAck(iss+1, 0), 10001)
	if v := p.ICMPInput(c, 3, 1, iss+1, 0); v.Event != EvNone || c.State != Established {
		t.Error("C2: ICMP aborted an established connection")
	}
}

func established(t *testing.T, p *Params) *Conn {
	c := openConn(t, p)
	if v := p.Input(c, synAck(iss+1, 15000), 10010); v.Event != EvEstablished {
		t.Fatal("not established")
	}
	return c
}

// E10: abortive close. E8: graceful close through TIME-WAIT. E9.
func TestCloseModes(t *testing.T) {
	p := DefaultParams(1500, false)
	c := established(t, &p)
	v := p.Close(c, true, 10100)
	if v.Reply.Flags != FlagRST|FlagACK || v.Reply.Seq != iss+1 || v.Reply.Ack != 5001 || !v.Reply.TS || c.State != Closed {
		t.Errorf("E10: %+v", v.Reply)
	}
	c = established(t, &p)
	v = p.Close(c, false, 10100)
	if v.Reply.Flags != FlagFIN|FlagACK || v.Reply.Seq != iss+1 || c.State != FinWait1 {
		t.Fatalf("E8 FIN: %+v", v.Reply)
	}
	p.Input(c, &Segment{Seq: 5001, Ack: iss + 2, Flags: FlagACK}, 10101)
	if c.State != FinWait2 {
		t.Fatalf("E8: after ACK of FIN state %v", c.State)
	}
	v = p.Input(c, &Segment{Seq: 5001, Ack: iss + 2, Flags: FlagFIN | FlagACK, TOS: 0x11}, 10102)
	if c.State != TimeWait || v.Event != EvTimeWait || v.Reply.Ack != 5002 || v.Reply.Seq != iss+2 || v.Reply.Flags != FlagACK {
		t.Fatalf("E8 TIME-WAIT: %+v state %v", v, c.State)
	}
	// The orphan's FIN-WAIT-2 is a TIME-WAIT mini-socket already: its
	// ACK is a ctl-reply (E9).
	if v.Reply.IPID != 0 || v.Reply.TOS != 0x10 || !v.Reply.TS {
		t.Errorf("E8: final ACK from FIN-WAIT-2: IP ID %d TOS %#x TS %v, want a ctl-reply", v.Reply.IPID, v.Reply.TOS, v.Reply.TS)
	}
	// FIN|ACK acking our FIN in FIN-WAIT-1: the socket itself acks it,
	// next in its IP ID sequence.
	c = established(t, &p)
	p.Close(c, false, 10100)
	id := c.IPID
	v = p.Input(c, &Segment{Seq: 5001, Ack: iss + 2, Flags: FlagFIN | FlagACK}, 10102)
	if c.State != TimeWait || v.Event != EvTimeWait || v.Reply.IPID != id || v.Reply.Ack != 5002 {
		t.Fatalf("E8: FIN|ACK in FIN-WAIT-1: %+v state %v, want IP ID %d", v, c.State, id)
	}
	v = p.Input(c, &Segment{Seq: 5001, Ack: iss + 2, Flags: FlagFIN | FlagACK}, 10103)
	if !v.Send || v.Reply.IPID != 0 || v.Reply.Ack != 5002 {
		t.Errorf("E9: retransmitted FIN -> %+v", v.Reply)
	}
	if v := p.Input(c, &Segment{Seq: 5002, Flags: FlagRST}, 10104); v.Event != EvClosed {
		t.Errorf("E9: RST in TIME-WAIT -> %+v", v)
	}
	// The server closes first: our FIN rides on its ACK; its ACK closes.
	c = established(t, &p)
	v = p.Input(c, &Segment{Seq: 5001, Ack: iss + 1, Flags: FlagFIN | FlagACK}, 10200)
	if v.Reply.Flags != FlagFIN|FlagACK || v.Reply.Ack != 5002 || v.Reply.Seq != iss+1 || c.State != LastAck {
		t.Fatalf("E8 passive: %+v", v.Reply)
	}
	if v := p.Input(c, &Segment{Seq: 5002, Ack: iss + 2, Flags: FlagACK}, 10201); v.Event != EvClosed {
		t.Fatalf("LAST-ACK: %+v", v)
	}
}

// E3, E4, E5, H3: validation after ESTABLISHED.
func TestEstablishedValidation(t *testing.T) {
	p := DefaultParams(1500, false)
	c := established(t, &p)
	// H3: duplicate SYN-ACK -> challenge ACK, then rate-limited (E4).
	if v := p.Input(c, synAck(iss+1, 15000), 10100); !v.Send || v.Reply.Flags != FlagACK || v.Reply.Ack != 5001 {
		t.Fatalf("H3: %+v", v)
	}
	if v := p.Input(c, synAck(iss+1, 15000), 10300); v.Send {
		t.Fatal("E4: second challenge ACK within 500 ms")
	}
	if v := p.Input(c, synAck(iss+1, 15000), 10700); !v.Send {
		t.Fatal("E4: challenge ACK after 500 ms suppressed")
	}
	// E5: keepalive with one garbage byte: ACK + D-SACK every time.
	for i := 0; i < 2; i++ {
		v := p.Input(c, &Segment{Seq: 5000, Ack: iss + 1, Flags: FlagACK, PayloadLen: 1}, 10701)
		if !v.Send || !v.Reply.DSACK || v.Reply.SackL != 5000 || v.Reply.SackR != 5001 {
			t.Fatalf("E5: %+v", v.Reply)
		}
	}
	// E1: in-order data is ACKed at once.
	if v := p.Input(c, &Segment{Seq: 5001, Ack: iss + 1, Flags: FlagACK | FlagPSH, PayloadLen: 100}, 10800); v.Reply.Ack != 5101 {
		t.Fatalf("E1: %+v", v.Reply)
	}
	// E3(3): in-window RST not at RCV.NXT -> challenge ACK; exact -> reset.
	c.LastChlMs = 0
	if v := p.Input(c, &Segment{Seq: 5200, Flags: FlagRST}, 10900); !v.Send || c.State != Established {
		t.Fatalf("E3 RST in window: %+v", v)
	}
	if v := p.Input(c, &Segment{Seq: 5101, Flags: FlagRST}, 10901); v.Event != EvReset || v.Err != syscall.ECONNRESET {
		t.Fatalf("E3 RST exact: %+v", v)
	}
}

// X2: no connection.
func TestX2NoSocket(t *testing.T) {
	r, ok := NoSocketReply(&Segment{Seq: 5000, Ack: iss + 1, Flags: FlagSYN | FlagACK})
	if !ok || r.Flags != FlagRST || r.Seq != iss+1 {
		t.Errorf("X2 late SYN-ACK: %+v", r)
	}
	r, ok = NoSocketReply(&Segment{Seq: 5000, Flags: FlagSYN, PayloadLen: 3})
	if !ok || r.Flags != FlagRST|FlagACK || r.Seq != 0 || r.Ack != 5004 {
		t.Errorf("X2 SYN: %+v", r)
	}
	if _, ok := NoSocketReply(&Segment{Flags: FlagRST | FlagACK}); ok {
		t.Error("X2: answered an RST")
	}
}
