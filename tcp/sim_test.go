package tcp

import (
	"maps"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
)

// simLink delivers frames after a random delay (reordering), dropping and
// duplicating some, all from a seeded generator: the run is deterministic.
type simLink struct {
	rng       *rand.Rand
	loss, dup float64
	queue     map[int64][][]byte
}

func (l *simLink) send(now int64, frame []byte) {
	if l.rng.Float64() < l.loss {
		return
	}
	copies := 1
	if l.rng.Float64() < l.dup {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		at := now + 1 + l.rng.Int64N(20)
		l.queue[at] = append(l.queue[at], append([]byte(nil), frame...))
	}
}

// simServer is a Linux-like passive opener: port 80 listens, 81 is closed
// (RST|ACK), 82 drops everything. It retransmits SYN-ACKs (1 s, 5 times) and
// counts accepted connections.
type simServer struct {
	p        Params
	half     map[uint16]*simHalf
	accepted map[uint16]bool
}

type simHalf struct {
	irs, iss Seq
	tsval    uint32
	retries  int
	next     int64
}

func (s *simServer) synAck(now int64, sport uint16, h *simHalf, out func([]byte)) {
	b := make([]byte, MaxReplyLen)
	path := &Path{SrcMAC: srvMAC, DstMAC: cliMAC, Src: srvIP, Dst: cliIP, SrcPort: 80, DstPort: sport}
	n := Build(b, path, &Reply{Flags: FlagSYN | FlagACK, Seq: h.iss, Ack: h.irs + 1, Window: 65160,
		SYNOpts: &s.p, MSS: 1460, TSVal: uint32(now), TSEcr: h.tsval})
	out(b[:n])
}

func (s *simServer) input(now int64, frame []byte, out func([]byte)) {
	var pk Packet
	if Parse(frame, &pk) != KindTCP {
		return
	}
	seg := &pk.Seg
	switch pk.DstPort {
	case 82:
		return
	case 81:
		if r, ok := NoSocketReply(seg); ok {
			b := make([]byte, MaxReplyLen)
			path := &Path{SrcMAC: srvMAC, DstMAC: cliMAC, Src: srvIP, Dst: cliIP, SrcPort: 81, DstPort: pk.SrcPort}
			out(b[:Build(b, path, &r)])
		}
		return
	}
	h := s.half[pk.SrcPort]
	switch {
	case seg.Flags == FlagSYN:
		if s.accepted[pk.SrcPort] {
			return
		}
		if h == nil {
			h = &simHalf{irs: seg.Seq, iss: Seq(uint32(pk.SrcPort) * 2654435761), next: now + 1000}
			s.half[pk.SrcPort] = h
		}
		h.tsval = seg.Opts.TSVal
		s.synAck(now, pk.SrcPort, h, out)
	case seg.Flags.Has(FlagACK) && h != nil && seg.Ack == h.iss+1:
		delete(s.half, pk.SrcPort)
		s.accepted[pk.SrcPort] = true
	}
}

func (s *simServer) tick(now int64, out func([]byte)) {
	// Sorted, so the shared generator is consumed in a fixed order.
	for _, sport := range slices.Sorted(maps.Keys(s.half)) {
		h := s.half[sport]
		if now >= h.next {
			if h.retries == 5 {
				delete(s.half, sport)
				continue
			}
			h.retries++
			h.next = now + 1000<<h.retries
			s.synAck(now, sport, h, out)
		}
	}
}

// TestSimulatedLossyHandshakes drives thousands of connections through a lossy,
// duplicating, reordering link against a Linux-like server, on a fake clock:
// every attempt ends exactly once, the outcome per port is the right one, the
// SYN schedule of blackholed attempts is R4's (TCP_SYNCNT=2: SYNs at 0..5 s,
// ETIMEDOUT at 7 s), the server accepts exactly the established ones, and no
// timer is left behind.
func TestSimulatedLossyHandshakes(t *testing.T) {
	const n = 6000
	p := DefaultParams(1500, false)
	p.SynRetries = 2
	rng := rand.New(rand.NewPCG(1, 2))
	up := &simLink{rng: rng, loss: 0.10, dup: 0.05, queue: map[int64][][]byte{}}
	down := &simLink{rng: rng, loss: 0.10, dup: 0.05, queue: map[int64][][]byte{}}
	srv := &simServer{p: DefaultParams(1500, false), half: map[uint16]*simHalf{}, accepted: map[uint16]bool{}}
	g := NewISNGen(testKey)

	conns := make([]Conn, n)
	opened := make([]int64, n)
	synTimes := make([][]int64, n)
	outcome := make([]int, n) // 0 pending, 1 established, else errno
	ends := make([]int, n)
	tpls := map[uint16]*SYNTemplate{}
	for _, dp := range []uint16{80, 81, 82} {
		path := testPath()
		path.DstPort = dp
		tpls[dp] = NewSYNTemplate(&p, path)
	}
	dport := func(i int) uint16 { return uint16(80 + i%3) }
	sport := func(i int) uint16 { return uint16(10000 + i) }
	wheel := NewWheel(n, 1024, 1, 0)
	frame := make([]byte, MaxSYNLen)
	sendSYN := func(now int64, i int, retrans bool) {
		c := &conns[i]
		ipid := c.IPID - 1
		if retrans {
			ipid = c.NextIPID()
		}
		nb := tpls[dport(i)].Stamp(frame, sport(i), c.ISS, c.tsNow(&p, uint32(now)), ipid, retrans)
		synTimes[i] = append(synTimes[i], now-opened[i])
		up.send(now, frame[:nb])
	}
	finish := func(i, result int) {
		ends[i]++
		outcome[i] = result
		wheel.Cancel(uint32(i))
	}
	expired := make([]uint32, 0, 64)
	reply := make([]byte, MaxReplyLen)
	for now := int64(0); now < 20000; now++ {
		if now < 2000 { // open 3 per ms
			for k := 0; k < 3; k++ {
				i := int(now)*3 + k
				h := g.Hash4(cliIP, srvIP, sport(i), dport(i))
				opened[i] = now
				p.Open(&conns[i], ISN(h, now*1_000_000), TSOffset(h), uint16(i), uint32(now))
				sendSYN(now, i, false)
				wheel.Schedule(uint32(i), now+p.SynRTO(0))
			}
		}
		for _, f := range up.queue[now] {
			srv.input(now, f, func(b []byte) { down.send(now, b) })
		}
		delete(up.queue, now)
		srv.tick(now, func(b []byte) { down.send(now, b) })
		for _, f := range down.queue[now] {
			var pk Packet
			if Parse(f, &pk) != KindTCP {
				t.Fatal("client got a malformed frame")
			}
			i := int(pk.DstPort) - 10000
			c := &conns[i]
			v := p.Input(c, &pk.Seg, uint32(now))
			if v.Send {
				path := &Path{SrcMAC: cliMAC, DstMAC: srvMAC, Src: cliIP, Dst: srvIP, SrcPort: sport(i), DstPort: pk.SrcPort}
				up.send(now, reply[:Build(reply, path, &v.Reply)])
			}
			switch v.Event {
			case EvEstablished:
				finish(i, 1)
			case EvFailed:
				finish(i, int(v.Err))
			case EvFastRetransmit:
				wheel.Schedule(uint32(i), now+p.TimeoutMinMs)
			}
		}
		delete(down.queue, now)
		for {
			expired = wheel.Advance(now, expired[:0])
			for _, id := range expired {
				i := int(id)
				v, resend, next := p.OnTimer(&conns[i], uint32(now))
				if v.Event == EvFailed {
					finish(i, int(v.Err))
					if dport(i) == 82 && now-opened[i] != 7000 {
						t.Errorf("R4: conn %d ETIMEDOUT after %d ms, want 7000", i, now-opened[i])
					}
				} else if resend {
					sendSYN(now, i, true)
					wheel.Schedule(id, now+next)
				}
			}
			if len(expired) < cap(expired) {
				break
			}
		}
	}
	counts := map[int]int{}
	for i := 0; i < n; i++ {
		if ends[i] != 1 {
			t.Fatalf("conn %d ended %d times", i, ends[i])
		}
		counts[outcome[i]]++
		want := map[uint16]int{80: 1, 81: int(syscall.ECONNREFUSED), 82: int(syscall.ETIMEDOUT)}[dport(i)]
		if outcome[i] != want {
			t.Errorf("conn %d to port %d: outcome %d, want %d", i, dport(i), outcome[i], want)
		}
		if dport(i) == 82 {
			want := []int64{0, 1000, 2000, 3000, 4000, 5000}
			if len(synTimes[i]) != len(want) {
				t.Fatalf("R4: conn %d SYNs at %v", i, synTimes[i])
			}
			for k := range want {
				if synTimes[i][k] != want[k] {
					t.Fatalf("R4: conn %d SYNs at %v", i, synTimes[i])
				}
			}
		}
	}
	if wheel.Len() != 0 {
		t.Fatalf("%d timers leaked", wheel.Len())
	}
	if len(srv.accepted) != counts[1] {
		t.Fatalf("server accepted %d, client established %d", len(srv.accepted), counts[1])
	}
	t.Logf("outcomes: established %d, ECONNREFUSED %d, ETIMEDOUT %d", counts[1], counts[int(syscall.ECONNREFUSED)], counts[int(syscall.ETIMEDOUT)])
}
