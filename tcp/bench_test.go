package tcp

import "testing"

func BenchmarkStampSYN(b *testing.B) {
	p := DefaultParams(1500, false)
	tpl := NewSYNTemplate(&p, testPath())
	g := NewISNGen(testKey)
	buf := make([]byte, MaxSYNLen)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sport := uint16(10000 + i&0x3fff)
		h := g.Hash4(cliIP, srvIP, sport, 8080)
		tpl.Stamp(buf, sport, ISN(h, int64(i)*1000), uint32(i)+TSOffset(h), uint16(i), false)
	}
}

// BenchmarkSynAckToACK parses a SYN-ACK frame, runs the state machine and
// builds the third ACK: the per-handshake receive path.
func BenchmarkSynAckToACK(b *testing.B) {
	p := DefaultParams(1500, false)
	frames := seedFrames()
	sa := frames[1]
	out := make([]byte, MaxReplyLen)
	path := testPath()
	var pk Packet
	var c Conn
	b.ReportAllocs()
	for b.Loop() {
		Parse(sa, &pk)
		p.Open(&c, 1, 0, 1, 5)
		v := p.Input(&c, &pk.Seg, 6)
		Build(out, path, &v.Reply)
	}
}

func BenchmarkWheelScheduleCancel(b *testing.B) {
	w := NewWheel(1<<20, 4096, 1, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := uint32(i & (1<<20 - 1))
		w.Schedule(id, int64(i&4095)+1000)
		w.Cancel(id)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	p := DefaultParams(1500, false)
	tpl := NewSYNTemplate(&p, testPath())
	buf := make([]byte, MaxSYNLen)
	sa := seedFrames()[1]
	var pk Packet
	var c Conn
	w := NewWheel(1024, 256, 1, 0)
	out := make([]uint32, 0, 16)
	g := NewISNGen(testKey)
	pp := NewPortPicker(testKey, 1)
	set := NewPortSet(1000, 60000)
	checks := map[string]func(){
		"stamp": func() { tpl.Stamp(buf, 1, 2, 3, 4, false) },
		"hash":  func() { g.Hash4(cliIP, srvIP, 1, 2) },
		"synack": func() {
			Parse(sa, &pk)
			p.Open(&c, 1, 0, 1, 5)
			v := p.Input(&c, &pk.Seg, 6)
			Build(buf, testPath(), &v.Reply)
		},
		"wheel": func() { w.Schedule(7, 50); w.Cancel(7); out = w.Advance(10, out[:0]) },
		"ports": func() { port, _ := pp.Pick(set, cliIP[:], srvIP[:], 80, 0); set.Set(port, false) },
	}
	for name, fn := range checks {
		if a := testing.AllocsPerRun(200, fn); a != 0 {
			t.Errorf("%s allocates %v per run", name, a)
		}
	}
}
