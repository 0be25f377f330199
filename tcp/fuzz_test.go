package tcp

import (
	"encoding/binary"
	"testing"
)

func seedFrames() [][]byte {
	p := DefaultParams(1500, false)
	b := make([]byte, MaxSYNLen)
	n := NewSYNTemplate(&p, testPath()).Stamp(b, 40000, 1, 2, 3, false)
	syn := append([]byte(nil), b[:n]...)
	r := Reply{Flags: FlagSYN | FlagACK, Seq: 5, Ack: 2, SYNOpts: &p, MSS: 1460, TSVal: 9, TSEcr: 2}
	n = Build(b, &Path{SrcMAC: srvMAC, DstMAC: cliMAC, Src: srvIP, Dst: cliIP, SrcPort: 8080, DstPort: 40000}, &r)
	sa := append([]byte(nil), b[:n]...)
	// The SYN-ACK as a veth peer with TX checksum offload sends it.
	partial := append([]byte(nil), sa...)
	l4 := partial[EthHdrLen+IPv4HdrLen:]
	binary.BigEndian.PutUint16(l4[16:], refPseudoFold(partial[26:30], partial[30:34], ProtoTCP, len(l4)))
	return [][]byte{syn, sa, partial}
}

// FuzzParse feeds arbitrary frames to the parser: it must never panic, and a
// frame it takes as TCP must re-parse identically.
func FuzzParse(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var a, b Packet
		k := Parse(frame, &a)
		if k != a.Kind {
			t.Fatal("kind mismatch")
		}
		if Parse(frame, &b) != k || a != b {
			t.Fatal("parse not deterministic")
		}
		if k == KindTCP && a.Seg.PayloadLen < 0 {
			t.Fatal("negative payload")
		}
		// AcceptPartialChecksum widens exactly one case: a TCP segment
		// dropped for its checksum whose field is the pseudo-header sum.
		// Everything else parses the same with and without it.
		var c Packet
		kc := ParseWith(frame, &c, AcceptPartialChecksum)
		switch {
		case c.PartialChecksum:
			if k != KindDrop || a.Reason != DropChecksum || kc != KindTCP {
				t.Fatalf("partial checksum taken where the plain parse says %v/%v", k, a.Reason)
			}
			if ParseWith(frame, &b, AcceptPartialChecksum) != kc || b.PartialChecksum != true {
				t.Fatal("flagged parse not deterministic")
			}
		case kc != k || c != a:
			t.Fatalf("flag changed a frame without a partial checksum: %v -> %v", k, kc)
		}
	})
}

// FuzzInput feeds a connection a fuzzed sequence of segments: no panic, the
// state stays valid, a connection fails or establishes at most once, and an
// RST is never answered with an RST.
func FuzzInput(f *testing.F) {
	f.Add([]byte{0x12, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x41, 0, 0, 0})
	f.Add([]byte{0x10, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x41, 0x04, 0, 0, 0x11, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := DefaultParams(1500, false)
		c := &Conn{}
		p.Open(c, 1000000, 0, 1, 100)
		now := uint32(100)
		ends := 0
		for len(data) >= 10 {
			seg := Segment{Flags: Flags(data[0]), Seq: Seq(uint32(data[1])<<8 | uint32(data[2])),
				Ack: Seq(1000000 - 2 + uint32(data[3]&7)), Window: uint16(data[4]),
				PayloadLen: int(data[5] & 3), Opts: ParseOptions(data[6:10], data[0]&2 != 0)}
			now += uint32(data[5] >> 2)
			data = data[10:]
			v := p.Input(c, &seg, now)
			if c.State > Closed {
				t.Fatalf("bad state %d", c.State)
			}
			if v.Send && seg.Flags.Has(FlagRST) && v.Reply.Flags.Has(FlagRST) {
				t.Fatal("answered an RST with an RST")
			}
			if v.Event == EvEstablished || v.Event == EvFailed {
				ends++
			}
			if ends > 2 { // simultaneous open may establish after SYN-RECEIVED
				t.Fatalf("%d terminal events", ends)
			}
			if v.Send {
				b := make([]byte, MaxReplyLen)
				n := Build(b, testPath(), &v.Reply)
				var pk Packet
				if Parse(b[:n], &pk) != KindTCP {
					t.Fatalf("built reply does not parse: %v", pk.Reason)
				}
			}
		}
	})
}
