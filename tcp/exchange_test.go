package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// exchanging is an established connection (Linux's defaults) with an
// n-byte request started and nothing sent yet.
func exchanging(t *testing.T, n int) (*Params, *Conn, *Exchange) {
	t.Helper()
	p := DefaultParams(1500, false)
	c := established(t, &p)
	x := &Exchange{}
	p.StartExchange(c, x, n)
	return &p, c, x
}

// sendAll sends what NextData allows and returns the segments' (off, n).
func sendAll(p *Params, c *Conn, x *Exchange, now uint32) (segs [][2]int, last Reply) {
	for {
		r, off, n, ok := p.NextData(c, x, now)
		if !ok {
			return segs, last
		}
		segs = append(segs, [2]int{off, n})
		last = r
	}
}

// The request leaves in PeerMSS pieces within the initial window, the last
// one with PSH; ACKs move it on; the SYN-ACK's window is taken unscaled.
func TestExchangeSegmentsAndWindows(t *testing.T) {
	p, c, x := exchanging(t, 3000) // PeerMSS 1448, window 65160 unscaled, wscale 7
	segs, last := sendAll(p, c, x, 10020)
	if len(segs) != 3 || segs[0] != [2]int{0, 1448} || segs[1] != [2]int{1448, 1448} || segs[2] != [2]int{2896, 104} {
		t.Fatalf("segments %v", segs)
	}
	if last.Flags != FlagACK|FlagPSH || last.Seq != iss+1+2896 || !last.TS || c.SndNxt != iss+1+3000 {
		t.Fatalf("last segment %+v, SND.NXT %d", last, c.SndNxt-iss)
	}
	// A window of 2 units (256 bytes scaled) and a partial ACK.
	p, c, x = exchanging(t, 3000)
	x.Wnd = 1000
	segs, _ = sendAll(p, c, x, 10020)
	if len(segs) != 1 || segs[0] != [2]int{0, 1000} {
		t.Fatalf("window 1000: %v", segs)
	}
	v := p.ExchangeInput(c, x, &Segment{Seq: 5001, Ack: iss + 1 + 1000, Flags: FlagACK, Window: 2,
		Opts: Options{HasTS: true, TSVal: 424243, TSEcr: 15000}}, 10030)
	if v.Send || x.SndUna != iss+1+1000 || x.Wnd != 256 {
		t.Fatalf("ACK: %+v, SND.UNA +%d, window %d", v, x.SndUna-iss, x.Wnd)
	}
	if segs, _ = sendAll(p, c, x, 10030); len(segs) != 1 || segs[0] != [2]int{1000, 256} {
		t.Fatalf("window 256: %v", segs)
	}
	// An ACK older than SND.UNA changes nothing, not even the window.
	p.ExchangeInput(c, x, &Segment{Seq: 5001, Ack: iss + 1, Flags: FlagACK, Window: 500,
		Opts: Options{HasTS: true, TSVal: 424243, TSEcr: 15000}}, 10031)
	if x.SndUna != iss+1+1000 || x.Wnd != 256 {
		t.Fatalf("old ACK moved SND.UNA +%d window %d", x.SndUna-iss, x.Wnd)
	}
}

// The first expiry is a tail loss probe: the last segment again, the RTO
// re-armed as it was, the flow label kept. Then an RTO, with a new label,
// sends the unacknowledged bytes again
// from SND.UNA, one segment (cwnd 1), the RTO doubling; an ACK ends the
// backoff and slow start opens the window again.
func TestExchangeRetransmission(t *testing.T) {
	p, c, x := exchanging(t, 3000)
	sendAll(p, c, x, 10020)
	rto := p.FINRTO(c)
	label := c.FlowLabel()
	_, resend, next := p.ExchangeTimer(c, x, 10020+uint32(rto))
	if !resend || next != rto || c.Retrans != 0 || x.Cwnd != InitCwnd || c.FlowLabel() != label {
		t.Fatalf("TLP: resend %v next %d (rto %d), retrans %d cwnd %d, flow label %x (was %x)", resend, next, rto, c.Retrans, x.Cwnd, c.FlowLabel(), label)
	}
	if segs, last := sendAll(p, c, x, 10020+uint32(rto)); len(segs) != 1 || segs[0] != [2]int{2896, 104} || last.Flags != FlagACK|FlagPSH {
		t.Fatalf("the probe: %v", segs)
	}
	_, resend, next = p.ExchangeTimer(c, x, 10020+uint32(2*rto))
	// V3: the RTO re-rolls the IPv6 flow label; the probe did not.
	if !resend || next != 2*rto || x.Next != x.SndUna || x.Cwnd != 1 || c.FlowLabel() == label {
		t.Fatalf("RTO: resend %v next %d (rto %d), next byte +%d, cwnd %d, flow label %x (was %x)", resend, next, rto, x.Next-iss, x.Cwnd, c.FlowLabel(), label)
	}
	if segs, _ := sendAll(p, c, x, 10500); len(segs) != 1 || segs[0] != [2]int{0, 1448} {
		t.Fatalf("after the RTO: %v", segs)
	}
	if c.SndNxt != iss+1+3000 {
		t.Fatalf("SND.NXT went back to +%d", c.SndNxt-iss)
	}
	// The ACK of the first segment: cwnd 2, the other two leave.
	p.ExchangeInput(c, x, &Segment{Seq: 5001, Ack: iss + 1 + 1448, Flags: FlagACK, Window: 502,
		Opts: Options{HasTS: true, TSVal: 424243, TSEcr: 15000}}, 10600)
	if c.Retrans != 0 || x.Cwnd != 2 {
		t.Fatalf("retrans %d cwnd %d", c.Retrans, x.Cwnd)
	}
	if segs, _ := sendAll(p, c, x, 10600); len(segs) != 2 {
		t.Fatalf("after the ACK: %v", segs)
	}
	// All acknowledged: the timer has nothing to do.
	p.ExchangeInput(c, x, &Segment{Seq: 5001, Ack: iss + 1 + 3000, Flags: FlagACK, Window: 502,
		Opts: Options{HasTS: true, TSVal: 424244, TSEcr: 15000}}, 10700)
	if x.Pending() {
		t.Fatal("request still pending")
	}
	if v, resend, next := p.ExchangeTimer(c, x, 20000); v.Send || resend || next != 0 {
		t.Fatalf("idle timer: %+v %v %d", v, resend, next)
	}
}

// The tail loss probe is the last segment sent, whatever the request's
// length: two full segments probe the second, one and a bit the bit.
func TestExchangeProbeIsTheLastSegment(t *testing.T) {
	for _, tc := range []struct{ n, from, size int }{{2896, 1448, 1448}, {1449, 1448, 1}, {100, 0, 100}} {
		p, c, x := exchanging(t, tc.n)
		sendAll(p, c, x, 10020)
		if _, resend, _ := p.ExchangeTimer(c, x, 10500); !resend {
			t.Fatalf("%d bytes: no probe", tc.n)
		}
		if segs, _ := sendAll(p, c, x, 10500); len(segs) != 1 || segs[0] != [2]int{tc.from, tc.size} {
			t.Fatalf("%d bytes: probe %v, want [%d %d]", tc.n, segs, tc.from, tc.size)
		}
	}
}

// Once the connection is closing, the request's timer has nothing to do:
// the FIN's timer (OnTimer) owns the connection.
func TestExchangeTimerAfterClose(t *testing.T) {
	p, c, x := exchanging(t, 100)
	sendAll(p, c, x, 10020)
	p.Close(c, false, 10030)
	if v, resend, next := p.ExchangeTimer(c, x, 10500); v.Send || resend || next != 0 {
		t.Fatalf("in %v: %+v resend %v next %d", c.State, v, resend, next)
	}
}

// A kept-alive connection's next request starts at SND.NXT with the
// windows it had; its bytes are counted from its own start.
func TestExchangeNextRequest(t *testing.T) {
	p, c, x := exchanging(t, 100)
	sendAll(p, c, x, 10020)
	p.ExchangeInput(c, x, &Segment{Seq: 5001, Ack: iss + 101, Flags: FlagACK, Window: 3,
		Opts: Options{HasTS: true, TSVal: 424243, TSEcr: 15000}}, 10030)
	p.NextRequest(c, x, 500)
	if x.Start != iss+101 || x.Wnd != 384 || !x.Pending() {
		t.Fatalf("next request %+v", x)
	}
	segs, last := sendAll(p, c, x, 10040)
	if len(segs) != 1 || segs[0] != [2]int{0, 384} || last.Seq != iss+101 {
		t.Fatalf("next request's segments %v from %d", segs, last.Seq-iss)
	}
}

// A zero window holds the request back; the timer probes it with
// SND.UNA-1 and no data (tcp_send_probe0), and a window update lets it go.
func TestExchangeZeroWindow(t *testing.T) {
	p, c, x := exchanging(t, 100)
	x.Wnd = 0
	if segs, _ := sendAll(p, c, x, 10020); len(segs) != 0 {
		t.Fatalf("sent into a zero window: %v", segs)
	}
	if !x.Pending() {
		t.Fatal("not pending")
	}
	v, resend, next := p.ExchangeTimer(c, x, 10300)
	if resend || !v.Send || v.Reply.Seq != iss || v.Reply.Flags != FlagACK || v.Reply.Payload != nil || next != 2*p.FINRTO(&Conn{RTOMs: c.RTOMs}) {
		t.Fatalf("probe %+v resend %v next %d", v.Reply, resend, next)
	}
	p.ExchangeInput(c, x, &Segment{Seq: 5001, Ack: iss + 1, Flags: FlagACK, Window: 10,
		Opts: Options{HasTS: true, TSVal: 424243, TSEcr: 15000}}, 10400)
	if segs, _ := sendAll(p, c, x, 10400); len(segs) != 1 || segs[0] != [2]int{0, 100} {
		t.Fatalf("after the window update: %v", segs)
	}
}

// Data delivery: in-order bytes are the application's (DataAt/DataLen),
// the part of a segment across RCV.NXT only, out-of-order ones none.
func TestExchangeDataDelivery(t *testing.T) {
	p, c, x := exchanging(t, 10)
	sendAll(p, c, x, 10020)
	seg := func(seq Seq, n int) *Segment {
		return &Segment{Seq: seq, Ack: iss + 11, Flags: FlagACK | FlagPSH, Window: 502, PayloadLen: n,
			Opts: Options{HasTS: true, TSVal: 424243, TSEcr: 15000}}
	}
	if v := p.ExchangeInput(c, x, seg(5001, 100), 10030); v.DataAt != 0 || v.DataLen != 100 || !v.Send || v.Reply.Ack != 5101 {
		t.Fatalf("in order: %+v", v)
	}
	if v := p.ExchangeInput(c, x, seg(5201, 100), 10031); v.DataLen != 0 {
		t.Fatalf("out of order delivered: %+v", v)
	}
	if v := p.ExchangeInput(c, x, seg(5051, 100), 10032); v.DataAt != 50 || v.DataLen != 50 || v.Reply.Ack != 5151 {
		t.Fatalf("across RCV.NXT: %+v", v)
	}
	if v := p.ExchangeInput(c, x, seg(5001, 100), 10033); v.DataLen != 0 {
		t.Fatalf("old data delivered: %+v", v)
	}
	// The server's FIN with the last bytes: they are read, and the
	// application closes later (CLOSE-WAIT), not with a FIN of ours on
	// the spot as a bare generator does; the FIN's ACK is delayed
	// (pingpong mode), so the close carries it.
	fin := seg(5151, 10)
	fin.Flags |= FlagFIN
	v := p.ExchangeInput(c, x, fin, 10034)
	if v.DataLen != 10 || c.State != CloseWait || v.Send {
		t.Fatalf("data and FIN: %+v, state %v", v, c.State)
	}
	if v := p.ACK(c, 10035); v.Reply.Flags != FlagACK || v.Reply.Ack != 5162 {
		t.Fatalf("the delayed ACK: %+v", v.Reply)
	}
	if v := p.Close(c, true, 10035); c.State != Closed || v.Reply.Flags != FlagRST|FlagACK || v.Reply.Seq != iss+11 || v.Reply.Ack != 5162 {
		t.Fatalf("abort from CLOSE-WAIT: %+v", v.Reply)
	}
}

// exServer is a minimal server for the exchange simulation: it takes the
// request in order (cumulative ACKs, out-of-order bytes dropped), then
// sends its response in 1000-byte segments and a FIN, retransmitting
// from its SND.UNA every 200 ms until all is acknowledged.
type exServer struct {
	got    []byte
	resp   []byte
	iss    Seq // its sequence number before the response (the SYN's)
	cliISS Seq
	una    Seq
	sent   bool
	next   int64
	finAck bool
}

func (s *exServer) transmit(now int64, sport uint16, tsecr uint32, out func([]byte)) {
	b := make([]byte, MaxReplyLen+1000)
	path := &Path{SrcMAC: srvMAC, DstMAC: cliMAC, Src: srvIP, Dst: cliIP, SrcPort: 80, DstPort: sport}
	for off := int(s.una - s.iss - 1); off <= len(s.resp); off += 1000 {
		end := min(off+1000, len(s.resp))
		r := Reply{Flags: FlagACK, Seq: s.iss + 1 + Seq(off), Ack: s.cliISS + 1 + Seq(len(s.got)), Window: 1000,
			TS: true, TSVal: uint32(now), TSEcr: tsecr, Payload: s.resp[off:end]}
		if end == len(s.resp) {
			r.Flags |= FlagFIN
		}
		out(b[:Build(b, path, &r)])
		if end == len(s.resp) {
			break
		}
	}
	s.next = now + 200
}

// TestSimulatedExchange runs request and response over a link that loses,
// duplicates and reorders, on a fake clock: every server gets the request
// exactly, every client reads the response exactly, in order, once.
func TestSimulatedExchange(t *testing.T) {
	const n = 300
	p := DefaultParams(1500, false)
	rng := rand.New(rand.NewPCG(3, 4))
	up := &simLink{rng: rng, loss: 0.05, dup: 0.05, queue: map[int64][][]byte{}}
	down := &simLink{rng: rng, loss: 0.05, dup: 0.05, queue: map[int64][][]byte{}}
	req := bytes.Repeat([]byte("request."), 400) // 3200 bytes: three segments
	conns := make([]Conn, n)
	xs := make([]Exchange, n)
	srv := make([]exServer, n)
	read := make([][]byte, n)
	wheel := NewWheel(n, 1024, 1, 0)
	buf := make([]byte, MaxReplyLen+1500)
	path := func(i int) *Path {
		return &Path{SrcMAC: cliMAC, DstMAC: srvMAC, Src: cliIP, Dst: srvIP, SrcPort: uint16(10000 + i), DstPort: 80}
	}
	send := func(now int64, i int) {
		for {
			r, off, k, ok := p.NextData(&conns[i], &xs[i], uint32(now))
			if !ok {
				break
			}
			r.Payload = req[off : off+k]
			up.send(now, buf[:Build(buf, path(i), &r)])
		}
	}
	for i := range conns {
		c := &conns[i]
		p.Open(c, Seq(i)*77777, 0, 1, 0)
		srv[i] = exServer{resp: bytes.Repeat([]byte{byte('a' + i%26)}, i*37%5000), iss: Seq(i) * 99991, cliISS: c.ISS, next: 1 << 62}
		srv[i].una = srv[i].iss + 1
		p.Input(c, &Segment{Seq: srv[i].iss, Ack: c.ISS + 1, Flags: FlagSYN | FlagACK, Window: 65535,
			Opts: Options{MSS: 1460, HasTS: true, TSVal: 1, TSEcr: 0}}, 1)
		p.StartExchange(c, &xs[i], len(req))
		send(1, i)
		wheel.Schedule(uint32(i), 1+p.FINRTO(c))
	}
	expired := make([]uint32, 0, 64)
	for now := int64(1); now < 60000; now++ {
		for _, f := range up.queue[now] {
			var pk Packet
			if Parse(f, &pk) != KindTCP {
				t.Fatal("server got a malformed frame")
			}
			i := int(pk.SrcPort) - 10000
			s := &srv[i]
			seg := &pk.Seg
			srvPath := &Path{SrcMAC: srvMAC, DstMAC: cliMAC, Src: srvIP, Dst: cliIP, SrcPort: 80, DstPort: pk.SrcPort}
			if seg.Flags.Has(FlagRST) {
				if conns[i].State == Closed {
					continue // X2: a late copy of the server's FIN met no socket
				}
				t.Fatalf("conn %d reset: %+v state %v rcvnxt %d", i, seg, conns[i].State, conns[i].RcvNxt-srv[i].iss)
			}
			if seg.Flags.Has(FlagFIN) {
				// Our FIN, which must acknowledge the server's: ACK it.
				if seg.Ack == s.iss+Seq(len(s.resp))+2 {
					s.finAck = true
				}
				b := make([]byte, MaxReplyLen)
				r := Reply{Flags: FlagACK, Seq: s.iss + Seq(len(s.resp)) + 2, Ack: seg.Seq + 1, Window: 1000,
					TS: true, TSVal: uint32(now), TSEcr: seg.Opts.TSVal}
				down.send(now, b[:Build(b, srvPath, &r)])
				continue
			}
			if seg.Seq == conns[i].ISS+1+Seq(len(s.got)) && len(pk.Payload) > 0 {
				s.got = append(s.got, pk.Payload...)
			}
			if s.una.LessThan(seg.Ack) {
				s.una = seg.Ack
			}
			if len(s.got) == len(req) && !s.sent {
				s.sent = true
				s.transmit(now, pk.SrcPort, seg.Opts.TSVal, func(b []byte) { down.send(now, b) })
			} else if len(pk.Payload) > 0 {
				b := make([]byte, MaxReplyLen)
				r := Reply{Flags: FlagACK, Seq: s.una, Ack: conns[i].ISS + 1 + Seq(len(s.got)), Window: 1000,
					TS: true, TSVal: uint32(now), TSEcr: seg.Opts.TSVal}
				down.send(now, b[:Build(b, srvPath, &r)])
			}
		}
		delete(up.queue, now)
		for i := range srv {
			s := &srv[i]
			if s.sent && now >= s.next && !s.finAck {
				s.transmit(now, uint16(10000+i), 1, func(b []byte) { down.send(now, b) })
			}
		}
		for _, f := range down.queue[now] {
			var pk Packet
			if Parse(f, &pk) != KindTCP {
				t.Fatal("client got a malformed frame")
			}
			i := int(pk.DstPort) - 10000
			v := p.ExchangeInput(&conns[i], &xs[i], &pk.Seg, uint32(now))
			if v.DataLen > 0 {
				read[i] = append(read[i], pk.Payload[v.DataAt:v.DataAt+v.DataLen]...)
			}
			if v.Send {
				up.send(now, buf[:Build(buf, path(i), &v.Reply)])
			}
			send(now, i)
			if conns[i].State == CloseWait {
				// The application read the end of the stream: it closes.
				v := p.Close(&conns[i], false, uint32(now))
				up.send(now, buf[:Build(buf, path(i), &v.Reply)])
			}
		}
		delete(down.queue, now)
		expired = wheel.Advance(now, expired[:0])
		for _, id := range expired {
			i := int(id)
			c := &conns[i]
			switch {
			case c.State == LastAck:
				v, _, next := p.OnTimer(c, uint32(now))
				if v.Send {
					up.send(now, buf[:Build(buf, path(i), &v.Reply)])
				}
				if next > 0 {
					wheel.Schedule(id, now+next)
				}
			case xs[i].Pending():
				v, resend, next := p.ExchangeTimer(c, &xs[i], uint32(now))
				if v.Send {
					up.send(now, buf[:Build(buf, path(i), &v.Reply)])
				}
				if resend {
					send(now, i)
				}
				wheel.Schedule(id, now+max(next, 1))
			}
		}
		for i := range conns {
			if c := &conns[i]; c.State == LastAck && !wheel.Scheduled(uint32(i)) {
				wheel.Schedule(uint32(i), now+p.FINRTO(c))
			}
			if conns[i].State == Established && xs[i].Pending() && !wheel.Scheduled(uint32(i)) {
				wheel.Schedule(uint32(i), now+p.FINRTO(&conns[i]))
			}
		}
	}
	for i := range conns {
		if !bytes.Equal(srv[i].got, req) {
			t.Fatalf("conn %d: the server got %d bytes of the request, not the request", i, len(srv[i].got))
		}
		if !bytes.Equal(read[i], srv[i].resp) {
			t.Fatalf("conn %d: read %d bytes, the response is %d", i, len(read[i]), len(srv[i].resp))
		}
		if conns[i].State != Closed || !srv[i].finAck {
			t.Fatalf("conn %d: %v, server saw our FIN's ACK %v", i, conns[i].State, srv[i].finAck)
		}
	}
}

// The hot path: sending a request and taking a data segment allocate nothing.
func TestExchangeAllocatesNothing(t *testing.T) {
	p := DefaultParams(1500, false)
	c := established(t, &p)
	var x Exchange
	seg := &Segment{Seq: 5001, Ack: iss + 1, Flags: FlagACK, Window: 502, PayloadLen: 10,
		Opts: Options{HasTS: true, TSVal: 424243, TSEcr: 15000}}
	if a := testing.AllocsPerRun(100, func() {
		cc := *c
		p.StartExchange(&cc, &x, 3000)
		for {
			if _, _, _, ok := p.NextData(&cc, &x, 10020); !ok {
				break
			}
		}
		p.ExchangeInput(&cc, &x, seg, 10030)
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
