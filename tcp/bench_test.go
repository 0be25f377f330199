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
	p6 := DefaultParams(1500, true)
	tpl6 := NewSYNTemplate(&p6, testPath6())
	// A SYN-ACK to an IPv6 SYN, and a solicitation for our address.
	sa6 := make([]byte, MaxReplyLen)
	sa6 = sa6[:Build(sa6, &Path{V6: true, Src6: srvIP6, Dst6: cliIP6, SrcPort: 8080, DstPort: 40000},
		&Reply{Flags: FlagSYN | FlagACK, Seq: 5000, Ack: 2, Window: 65160, SYNOpts: &p6, MSS: 1440, TSVal: 9, TSEcr: 3})]
	ns := nsFrame(255, srvIP6)
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
		"wheel":  func() { w.Schedule(7, 50); w.Cancel(7); out = w.Advance(10, out[:0]) },
		"ports":  func() { port, _ := pp.Pick(set, cliIP[:], srvIP[:], 80, 0); set.Set(port, false) },
		"stamp6": func() { tpl6.Stamp(buf, 1, 2, 3, 4, false); tpl6.SetFlowLabel(buf, c.FlowLabel()) },
		"hash6":  func() { g.Hash6(&cliIP6, &srvIP6, 1, 2) },
		"synack6": func() {
			Parse(sa6, &pk)
			p6.Open(&c, 1, 0, 1, 5)
			v := p6.Input(&c, &pk.Seg, 6)
			path := testPath6()
			path.FlowLabel = c.FlowLabel()
			Build(buf, path, &v.Reply)
		},
		"ports6": func() { port, _ := pp.Pick(set, cliIP6[:], srvIP6[:], 80, 0); set.Set(port, false) },
		"ns": func() {
			if Parse(ns, &pk) == KindNS {
				BuildNA(buf, cliMAC, &pk.Dst6, pk.SrcMAC[:], &pk.Src6)
			}
		},
	}
	for name, fn := range checks {
		if a := testing.AllocsPerRun(200, fn); a != 0 {
			t.Errorf("%s allocates %v per run", name, a)
		}
	}
}

// BenchmarkSum is the checksum of a full-size segment's payload: every
// received segment's cost per byte.
func BenchmarkSum(b *testing.B) {
	buf := make([]byte, 1448)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	b.SetBytes(int64(len(buf)))
	var s uint32
	for b.Loop() {
		s += Sum(buf[1:], s)
	}
	_ = s
}
