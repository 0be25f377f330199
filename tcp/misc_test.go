package tcp

import (
	"syscall"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var testKey = [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// SipHash-2-4 reference vector (Aumasson & Bernstein, appendix A).
func TestSipHashVector(t *testing.T) {
	msg := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	g := NewISNGen(testKey)
	if got := sipHash24(g.k0, g.k1, msg); got != 0xa129ca6149be45e5 {
		t.Fatalf("siphash %#x", got)
	}
}

// I1: the ISN advances one per 64 ns for the same 4-tuple; I4: the TS offset
// is per 4-tuple.
func TestI1I4(t *testing.T) {
	g := NewISNGen(testKey)
	h := g.Hash4(cliIP, srvIP, 40000, 80)
	a, b := ISN(h, 1_000_000_000), ISN(h, 1_000_000_000+64*12345)
	if b-a != 12345 {
		t.Fatalf("I1: ISS2-ISS1 = %d, want 12345", b-a)
	}
	if TSOffset(h) == TSOffset(g.Hash4(cliIP, srvIP, 40002, 80)) {
		t.Fatal("I4: same TS offset for different ports")
	}
	if g.Hash4(cliIP, srvIP, 40000, 80) != h {
		t.Fatal("hash not deterministic")
	}
}

// P2: even ports first (parity of the range start), spread; P4: exhaustion
// gives EADDRNOTAVAIL; ports are shared across destinations (P3).
func TestPorts(t *testing.T) {
	pp := NewPortPicker(testKey, 42)
	set := NewPortSet(32768, 60999)
	for i := 0; i < 40; i++ {
		port, e := pp.Pick(set, cliIP[:], srvIP[:], 80, 1000)
		if e != 0 || port%2 != 0 || port < 32768 || port > 60999 {
			t.Fatalf("P2: port %d err %v", port, e)
		}
	}
	small := NewPortSet(40000, 40005)
	seen := map[uint16]bool{}
	for i := 0; i < 6; i++ {
		port, e := pp.Pick(small, cliIP[:], srvIP[:], 80, 1000)
		if e != 0 || seen[port] {
			t.Fatalf("P4: pick %d: port %d err %v", i, port, e)
		}
		if i < 3 && port%2 != 0 {
			t.Fatalf("P2: odd port %d before the even ones ran out", port)
		}
		seen[port] = true
	}
	if _, e := pp.Pick(small, cliIP[:], srvIP[:], 80, 1000); e != syscall.EADDRNOTAVAIL {
		t.Fatalf("P4: %v, want EADDRNOTAVAIL", e)
	}
	other := NewPortSet(40000, 40005) // another destination's table
	if _, e := pp.Pick(other, cliIP[:], srvIP[:], 81, 1000); e != 0 {
		t.Fatal("P3: ports not reusable for another destination")
	}
	small.Set(40003, false)
	if port, _ := pp.Pick(small, cliIP[:], srvIP[:], 80, 1000); port != 40003 {
		t.Fatalf("freed port not reused: %d", port)
	}
}

func TestQuarantine(t *testing.T) {
	q := NewQuarantine(3)
	for i := uint32(0); i < 3; i++ {
		if !q.Push(i, 10+i, int64(100+i)) {
			t.Fatal("push failed")
		}
	}
	if q.Push(9, 19, 200) {
		t.Fatal("push beyond capacity")
	}
	out := q.Expire(100, make([]Held, 0, 8))
	if len(out) != 1 || out[0] != (Held{ID: 0, Tag: 10}) {
		t.Fatalf("expire %v", out)
	}
	out = q.Expire(1000, out[:0])
	if len(out) != 2 || out[0] != (Held{ID: 1, Tag: 11}) || out[1] != (Held{ID: 2, Tag: 12}) || q.Len() != 0 {
		t.Fatalf("expire %v", out)
	}
}

func TestWheel(t *testing.T) {
	w := NewWheel(1000, 256, 1, 0)
	w.Schedule(1, 10)
	w.Schedule(2, 10)
	w.Schedule(3, 600) // more than a revolution away
	w.Schedule(4, 20)
	w.Cancel(2)
	w.Schedule(5, 5)
	w.Schedule(5, 15) // re-arm moves it
	if w.Len() != 4 {
		t.Fatalf("len %d", w.Len())
	}
	out := make([]uint32, 0, 16)
	if out = w.Advance(9, out[:0]); len(out) != 0 {
		t.Fatalf("fired early: %v", out)
	}
	if out = w.Advance(10, out[:0]); len(out) != 1 || out[0] != 1 {
		t.Fatalf("at 10: %v", out)
	}
	if out = w.Advance(300, out[:0]); len(out) != 2 {
		t.Fatalf("at 300: %v", out)
	}
	if out = w.Advance(599, out[:0]); len(out) != 0 {
		t.Fatalf("long timer fired early: %v", out)
	}
	if out = w.Advance(5000, out[:0]); len(out) != 1 || out[0] != 3 || w.Len() != 0 {
		t.Fatalf("at 5000: %v len %d", out, w.Len())
	}
	// Batches: a full out slice defers the rest, nothing is lost.
	for i := uint32(0); i < 100; i++ {
		w.Schedule(i, 6000)
	}
	total := 0
	for i := 0; i < 20 && total < 100; i++ {
		out = w.Advance(6000, make([]uint32, 0, 7))
		total += len(out)
	}
	if total != 100 || w.Len() != 0 {
		t.Fatalf("batched expiry delivered %d, %d left", total, w.Len())
	}
}

func TestParseRoundTrip(t *testing.T) {
	p := DefaultParams(1500, false)
	b := make([]byte, MaxSYNLen)
	n := NewSYNTemplate(&p, testPath()).Stamp(b, 40000, 1, 2, 3, false)
	var pk Packet
	if Parse(b[:n], &pk) != KindTCP || pk.SrcPort != 40000 || pk.DstPort != 8080 || !pk.Seg.Flags.Has(FlagSYN) ||
		pk.Seg.Opts.MSS != 1460 || !pk.Seg.Opts.HasTS || pk.Seg.Opts.TSVal != 2 || pk.Seg.Opts.WScale != 7 {
		t.Fatalf("parse %+v", pk)
	}
	b[60] ^= 0xff // corrupt an option byte
	if Parse(b[:n], &pk) != KindDrop || pk.Reason != DropChecksum {
		t.Fatalf("bad checksum not dropped: %+v", pk.Reason)
	}
	if Parse(b[:30], &pk) != KindDrop {
		t.Fatal("truncated frame taken")
	}
	if a := testing.AllocsPerRun(100, func() { Parse(b[:n], &pk) }); a != 0 {
		t.Fatalf("Parse allocates %v", a)
	}
}

// Y1: option parsing edge cases.
func TestY1Options(t *testing.T) {
	o := ParseOptions([]byte{1, 1, 3, 3, 20, 2, 4, 5, 0xb4}, true)
	if !o.HasWS || o.WScale != 14 || o.MSS != 1460 {
		t.Fatalf("WS clamp / MSS: %+v", o)
	}
	if o := ParseOptions([]byte{2, 4, 5, 0xb4}, false); o.MSS != 0 {
		t.Fatal("MSS honoured on a non-SYN")
	}
	if o := ParseOptions([]byte{2, 4, 0, 0}, true); o.MSS != 0 {
		t.Fatal("MSS 0 not ignored")
	}
	if o := ParseOptions([]byte{4, 2, 8, 1, 0, 0}, true); !o.SACKPerm || o.HasTS {
		t.Fatalf("bad length stops parsing, keeps earlier: %+v", o)
	}
	if o := ParseOptions([]byte{0, 2, 4, 5, 0xb4}, true); o.MSS != 0 {
		t.Fatal("EOL did not stop parsing")
	}
}

// V2: an IPv6 TCP segment built with the IPv6 encoder parses back, and an
// independent decoder (gopacket) verifies its checksum.
func TestIPv6EncodeParse(t *testing.T) {
	src := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	dst := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	p := DefaultParams(1500, true)
	b := make([]byte, 14+40+40)
	Ethernet(b).Encode(srvMAC[:], cliMAC[:], EtherIPv6)
	tc := TCP(b[54:])
	n, _ := p.WriteSYNOptions(tc[TCPHdrLen:], p.MSS, 7, 0)
	tc = tc[:TCPHdrLen+n]
	tc.Encode(&TCPFields{SrcPort: 40000, DstPort: 80, Seq: 9, DataOffset: uint8(TCPHdrLen + n), Flags: FlagSYN, Window: uint16(p.RcvWnd)})
	tc.SetChecksum6(&src, &dst)
	IPv6(b[14:]).Encode(&IPv6Fields{FlowLabel: 0x12345, PayloadLen: uint16(len(tc)), NextHeader: ProtoTCP, HopLimit: 64, Src: src, Dst: dst})
	frame := b[:54+len(tc)]
	var pk Packet
	if Parse(frame, &pk) != KindTCP || !pk.V6 || pk.Src6 != src || pk.SrcPort != 40000 || pk.Seg.Opts.MSS != 1440 || pk.Seg.Window != 64800 {
		t.Fatalf("parse %+v", pk)
	}
	if IPv6(frame[14:]).FlowLabel() != 0x12345 {
		t.Fatal("flow label")
	}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	tcpl, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	ip6, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if tcpl == nil || ip6 == nil {
		t.Fatal("gopacket did not decode IPv6/TCP")
	}
	want := tcpl.Checksum
	_ = tcpl.SetNetworkLayerForChecksum(ip6)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcpl); err != nil {
		t.Fatal(err)
	}
	if got := uint16(buf.Bytes()[16])<<8 | uint16(buf.Bytes()[17]); got != want {
		t.Fatalf("TCP/IPv6 checksum %#x, gopacket computes %#x", want, got)
	}
	frame[60] ^= 1
	if Parse(frame, &pk) != KindDrop || pk.Reason != DropChecksum {
		t.Fatal("corrupted IPv6 segment taken")
	}
}
