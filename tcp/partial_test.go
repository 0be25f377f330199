package tcp

import (
	"encoding/binary"
	"testing"
)

// refPseudoFold is the folded, uncomplemented pseudo-header sum computed
// word by word, independently of the package's Sum/Fold: what the kernel
// leaves in the checksum field of a CHECKSUM_PARTIAL segment.
func refPseudoFold(src, dst []byte, proto uint8, length int) uint16 {
	var s uint32
	for i := 0; i+1 < len(src); i += 2 {
		s += uint32(src[i])<<8 | uint32(src[i+1])
		s += uint32(dst[i])<<8 | uint32(dst[i+1])
	}
	s += uint32(proto) + uint32(length>>16) + uint32(length&0xffff)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// A segment as a veth peer with TX checksum offload sends it (checksum
// field = pseudo-header fold) is taken only with AcceptPartialChecksum, and
// flagged; any other wrong checksum is dropped with or without the flag.
func TestPartialChecksum(t *testing.T) {
	p := DefaultParams(1500, false)
	b := make([]byte, MaxSYNLen)
	n := NewSYNTemplate(&p, testPath()).Stamp(b, 40000, 1, 2, 3, false)
	frame := b[:n]
	l4 := frame[EthHdrLen+IPv4HdrLen:]
	var pk Packet
	if ParseWith(frame, &pk, AcceptPartialChecksum) != KindTCP || pk.PartialChecksum {
		t.Fatalf("full checksum: kind %v partial %v", pk.Kind, pk.PartialChecksum)
	}
	partial := refPseudoFold(frame[26:30], frame[30:34], ProtoTCP, len(l4))
	binary.BigEndian.PutUint16(l4[16:], partial)
	if Parse(frame, &pk) != KindDrop || pk.Reason != DropChecksum {
		t.Fatalf("partial checksum taken without the flag: %+v", pk)
	}
	if ParseWith(frame, &pk, AcceptPartialChecksum) != KindTCP || !pk.PartialChecksum || pk.SrcPort != 40000 {
		t.Fatalf("partial checksum not taken with the flag: %+v", pk)
	}
	for _, bad := range []uint16{partial + 1, partial - 1, ^partial, 0} {
		binary.BigEndian.PutUint16(l4[16:], bad)
		if ParseWith(frame, &pk, AcceptPartialChecksum) != KindDrop || pk.Reason != DropChecksum {
			t.Fatalf("checksum %#x (partial would be %#x) taken", bad, partial)
		}
	}
	if a := testing.AllocsPerRun(100, func() { ParseWith(frame, &pk, AcceptPartialChecksum) }); a != 0 {
		t.Fatalf("ParseWith allocates %v", a)
	}
}

// The same for IPv6, whose pseudo-header has 32-bit length.
func TestPartialChecksumIPv6(t *testing.T) {
	src := [16]byte{0x20, 0x01, 0x00, 0x02, 15: 1}
	dst := [16]byte{0x20, 0x01, 0x00, 0x02, 15: 2}
	b := make([]byte, 14+40+20)
	Ethernet(b).Encode(srvMAC[:], cliMAC[:], EtherIPv6)
	tc := TCP(b[54:])
	tc.Encode(&TCPFields{SrcPort: 80, DstPort: 40000, Seq: 9, Ack: 10, DataOffset: TCPHdrLen, Flags: FlagSYN | FlagACK, Window: 100})
	IPv6(b[14:]).Encode(&IPv6Fields{PayloadLen: TCPHdrLen, NextHeader: ProtoTCP, HopLimit: 64, Src: src, Dst: dst})
	binary.BigEndian.PutUint16(tc[16:], refPseudoFold(src[:], dst[:], ProtoTCP, TCPHdrLen))
	var pk Packet
	if Parse(b, &pk) != KindDrop {
		t.Fatal("IPv6 partial checksum taken without the flag")
	}
	if ParseWith(b, &pk, AcceptPartialChecksum) != KindTCP || !pk.PartialChecksum || !pk.V6 {
		t.Fatalf("IPv6 partial checksum: %+v", pk)
	}
}
