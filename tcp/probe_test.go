package tcp

import (
	"syscall"
	"testing"
)

// ProbeInput answers an acceptable SYN-ACK as a SYN scanner does: RST at
// SEG.ACK (no ACK flag, window 0, ctl-reply IP header), closed, no ACK of
// the SYN-ACK; Y2 and Y3 still apply, and an RST still refuses (Y4).
func TestProbeInput(t *testing.T) {
	p := DefaultParams(1500, false)
	c := openConn(t, &p)
	v := p.ProbeInput(c, synAck(iss+1, 10000+5000), 10020)
	r := v.Reply
	if v.Event != EvProbeAnswered || c.State != Closed || !v.Send {
		t.Fatalf("verdict %+v, state %v", v, c.State)
	}
	if r.Flags != FlagRST || r.Seq != iss+1 || r.Window != 0 || r.TS || r.IPID != 0 || r.TTL != 64 {
		t.Fatalf("reply %+v: want RST seq ISS+1, no ACK, no options, ID 0", r)
	}
	// A later copy of the same SYN-ACK finds the connection closed: no
	// second answer counted as a probe.
	if v := p.ProbeInput(c, synAck(iss+1, 10000+5000), 10030); v.Event == EvProbeAnswered {
		t.Fatal("a closed probe answered twice")
	}

	c = openConn(t, &p)
	if v := p.ProbeInput(c, synAck(iss+2, 0), 10020); v.Event == EvProbeAnswered || c.State != SynSent || v.Reply.Seq != iss+2 {
		t.Fatalf("Y2: unacceptable ACK: %+v, state %v", v, c.State)
	}
	if v := p.ProbeInput(c, synAck(iss+1, 9000+5000), 10020); v.Event == EvProbeAnswered || c.State != SynSent || !v.Send {
		t.Fatalf("Y3: TSecr before our first SYN: %+v, state %v", v, c.State)
	}
	rst := &Segment{Seq: 5000, Ack: iss + 1, Flags: FlagRST | FlagACK}
	if v := p.ProbeInput(c, rst, 10020); v.Event != EvFailed || v.Err != syscall.ECONNREFUSED {
		t.Fatalf("Y4: %+v", v)
	}
}

// HandshakeRTT without timestamps: only a SYN that was never retransmitted
// can be timed (R7).
func TestHandshakeRTTNoTimestamps(t *testing.T) {
	p := DefaultParams(1500, false)
	c := openConn(t, &p)
	sa := synAck(iss+1, 0)
	sa.Opts.HasTS = false
	if latest, _, ok := p.HandshakeRTT(c, sa, 10000, 10020, 0); !latest || !ok {
		t.Fatalf("one SYN: latest %v ok %v", latest, ok)
	}
	if _, _, ok := p.HandshakeRTT(c, sa, 11000, 11020, 1); ok {
		t.Fatal("a retransmitted SYN timed without timestamps")
	}
}
