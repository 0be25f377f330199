package tcp

import (
	"bytes"
	"encoding/binary"
	"reflect"
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

// FuzzParse feeds arbitrary frames to the parser: it must never panic, a
// frame it takes as TCP must re-parse identically, and for IPv4 it must
// agree with an independent reading of the RFCs (refTCP4).
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
		if Parse(frame, &b) != k || !samePacket(&a, &b) {
			t.Fatal("parse not deterministic")
		}
		if k == KindTCP && a.Seg.PayloadLen < 0 {
			t.Fatal("negative payload")
		}
		// Differential oracle for untagged IPv4: an independent reading of
		// RFC 791/9293 validity (refTCP4) and the parser agree on which
		// frames are TCP segments, and on what they carry.
		// Differential oracle for untagged IPv4: an independent reading of
		// RFC 791/9293 validity (refTCP4) and the parser agree on which
		// frames are TCP segments and on what they carry, for the frame
		// as given and with its checksums made right (so that the fuzzer
		// reaches the header checks behind them).
		agree(t, frame, &a)
		if fixed := fixChecksums4(frame); fixed != nil {
			var d Packet
			Parse(fixed, &d)
			agree(t, fixed, &d)
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
		case kc != k || !samePacket(&c, &a):
			t.Fatalf("flag changed a frame without a partial checksum: %v -> %v", k, kc)
		}
	})
}

// samePacket compares two parses: every field, and the payload's bytes,
// which must lie within the frame's TCP segment.
func samePacket(a, b *Packet) bool {
	x, y := *a, *b
	x.Payload, y.Payload = nil, nil
	return reflect.DeepEqual(x, y) && bytes.Equal(a.Payload, b.Payload) && len(a.Payload) == a.Seg.PayloadLen*btoi(a.Kind == KindTCP)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzOptions: the layouts ParseOptions reads at once (Linux's aligned
// timestamp, its SYN-ACK's options) come out as walking them option by
// option does, and nothing else is taken for them: a longer block that
// starts like one, a SYN's layout on a segment without SYN, a window scale
// over 14 (Y1).
func FuzzOptions(f *testing.F) {
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8}
	synAck := []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8, 1, 3, 3, 7}
	f.Add(ts, false)
	f.Add(ts, true)
	f.Add(append(ts[:12:12], 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2), false) // and a SACK block
	f.Add(ts[:4], false)
	f.Add(synAck, true)
	f.Add(synAck, false)
	f.Add(append(synAck[:19:19], 15), true)
	f.Add(append(synAck[:2:2], 0, 0, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8, 1, 3, 3, 7), true) // MSS 0
	f.Add(append(synAck[:16:16], 1, 3, 4, 7), true)                                          // a length that is not WS's
	f.Add(append(synAck[:16:16], 0, 3, 3, 7), true)                                          // EOL before WS
	f.Add(append(synAck[:4:4], 4, 3, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8, 1, 3, 3, 7), true)
	f.Add(append([]byte{1, 1, 1, 1}, synAck[4:]...), true) // NOPs where the MSS was
	f.Fuzz(func(t *testing.T, b []byte, syn bool) {
		if got, want := ParseOptions(b, syn), walkOptions(b, syn); got != want {
			t.Fatalf("% x (syn %v): %+v, walked %+v", b, syn, got, want)
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
			if ends > 1 { // one outcome per attempt, simultaneous open included
				t.Fatalf("%d outcomes for one attempt", ends)
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

func agree(t *testing.T, frame []byte, a *Packet) {
	t.Helper()
	if len(frame) < EthHdrLen || binary.BigEndian.Uint16(frame[12:]) != EtherIPv4 {
		return
	}
	ok, sport, dport, payload := refTCP4(frame)
	if ok != (a.Kind == KindTCP) {
		t.Fatalf("reference says TCP %v, parser says %v (%v)", ok, a.Kind, a.Reason)
	}
	if ok && (a.SrcPort != sport || a.DstPort != dport || a.Seg.PayloadLen != payload) {
		t.Fatalf("parser read ports %d>%d payload %d, reference %d>%d %d", a.SrcPort, a.DstPort, a.Seg.PayloadLen, sport, dport, payload)
	}
}

// fixChecksums4 returns a copy of an IPv4 frame with its header checksum
// and, where the lengths allow, its TCP checksum recomputed; nil when the
// frame is too short to have either.
func fixChecksums4(f []byte) []byte {
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != EtherIPv4 {
		return nil
	}
	g := append([]byte(nil), f...)
	ip := g[14:]
	ihl := int(ip[0]&15) * 4
	if ihl < 20 || ihl > len(ip) {
		return nil
	}
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^refSum(ip[:ihl], 0))
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if tot >= ihl+20 && tot <= len(ip) {
		seg := ip[ihl:tot]
		seg[16], seg[17] = 0, 0
		ph := append(append([]byte{}, ip[12:20]...), 0, ip[9], byte(len(seg)>>8), byte(len(seg)))
		binary.BigEndian.PutUint16(seg[16:], ^refSum(seg, uint32(refSum(ph, 0))))
	}
	return g
}

// refSum is the RFC 1071 ones'-complement sum, folded.
func refSum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// refTCP4 is the fuzz oracle: whether frame is an untagged Ethernet/IPv4
// TCP segment that a host must take (version 4, header length at least 20
// and within the datagram, total length within the frame, header checksum,
// no fragment, TCP data offset within the segment, TCP checksum over the
// pseudo-header), written from the RFCs without the parser's helpers.
func refTCP4(f []byte) (ok bool, sport, dport uint16, payload int) {
	sum := func(b []byte, s uint32) uint32 { return uint32(refSum(b, s)) }
	if len(f) < 34 || f[12] != 0x08 || f[13] != 0x00 || f[14]>>4 != 4 {
		return
	}
	ip := f[14:]
	ihl := int(ip[0]&15) * 4
	tot := int(ip[2])<<8 | int(ip[3])
	if ihl < 20 || tot < ihl || tot > len(ip) || sum(ip[:ihl], 0) != 0xffff || (int(ip[6])<<8|int(ip[7]))&0x3fff != 0 || ip[9] != 6 {
		return
	}
	seg := ip[ihl:tot]
	if len(seg) < 20 || int(seg[12]>>4)*4 < 20 || int(seg[12]>>4)*4 > len(seg) {
		return
	}
	ph := append(append([]byte{}, ip[12:20]...), 0, 6, byte(len(seg)>>8), byte(len(seg)))
	if sum(seg, sum(ph, 0)) != 0xffff {
		return
	}
	return true, uint16(seg[0])<<8 | uint16(seg[1]), uint16(seg[2])<<8 | uint16(seg[3]), len(seg) - int(seg[12]>>4)*4
}
