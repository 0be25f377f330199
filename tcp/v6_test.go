package tcp

import (
	"encoding/binary"
	"syscall"
	"testing"
)

var (
	cliIP6 = [16]byte{0x20, 0x01, 0, 2, 15: 1}
	srvIP6 = [16]byte{0x20, 0x01, 0, 2, 15: 2}
)

func testPath6() *Path {
	return &Path{SrcMAC: cliMAC, DstMAC: srvMAC, V6: true, Src6: cliIP6, Dst6: srvIP6, SrcPort: 40000, DstPort: 8080}
}

// V2, V4, S4, S8 for IPv6: the SYN byte for byte, its flow label from
// SetFlowLabel, checksums checked by tshark.
func TestSYNGoldenIPv6(t *testing.T) {
	p := DefaultParams(1500, true)
	tpl := NewSYNTemplate(&p, testPath6())
	b := make([]byte, MaxSYNLen)
	n := tpl.Stamp(b, 40000, 0x01020304, 0x0a0b0c0d, 0x1234, false)
	tpl.SetFlowLabel(b, 0xabcde)
	if n != 14+40+40 {
		t.Fatalf("len %d", n)
	}
	eq(t, "Ethernet type", b[12:14], mustHex("86dd"))
	eq(t, "V2/V3 IPv6 header", b[14:54], mustHex("600abcde 0028 06 40 20010002000000000000000000000001 20010002000000000000000000000002"))
	tcp := b[54:n]
	eq(t, "S3 TCP header (checksum aside)", append(append([]byte{}, tcp[:16]...), tcp[18:20]...),
		mustHex("9c40 1f90 01020304 00000000 a0 02 fd20 0000"))
	eq(t, "V4 options: MSS 1440", tcp[20:], mustHex("020405a0 0402080a 0a0b0c0d 00000000 01030307"))
	var pk Packet
	if Parse(b[:n], &pk) != KindTCP || !pk.V6 || pk.Src6 != cliIP6 || pk.Seg.Window != 64800 {
		t.Fatalf("own parser: %+v", pk)
	}
	lines := tshark(t, [][]byte{b[:n]}, "ipv6.flow", "tcp.options.mss_val", "tcp.checksum.status")
	if len(lines) == 0 || !oneOf(lines[0], "0x0abcde,1440,1", "0x000abcde,1440,1", "0x0abcde,1440,2", "0x000abcde,1440,2") {
		t.Errorf("tshark: %q", lines[0])
	}
	// The IPv4 template ignores a flow label.
	p4 := DefaultParams(1500, false)
	tpl4 := NewSYNTemplate(&p4, testPath())
	n4 := tpl4.Stamp(b, 1, 1, 1, 1, false)
	before := string(b[:n4])
	tpl4.SetFlowLabel(b, 0xfffff)
	if string(b[:n4]) != before {
		t.Error("SetFlowLabel changed an IPv4 SYN")
	}
}

// V7, H1 for IPv6: replies carry the path's flow label, the traffic class
// and hop limit asked for, and a checksum our parser and tshark accept.
func TestBuildIPv6(t *testing.T) {
	p := testPath6()
	p.FlowLabel = 0x12345
	b := make([]byte, MaxReplyLen)
	n := Build(b, p, &Reply{Flags: FlagACK, Seq: 100, Ack: 200, Window: 507, TOS: 0x10, TTL: 0, TS: true, TSVal: 7, TSEcr: 9})
	if n != 14+40+32 {
		t.Fatalf("len %d", n)
	}
	eq(t, "V7 IPv6 header", b[14:22], mustHex("61012345 0020 06 40"))
	var pk Packet
	if Parse(b[:n], &pk) != KindTCP || pk.Seg.Ack != 200 || !pk.Seg.Opts.HasTS || pk.Seg.Opts.TSEcr != 9 {
		t.Fatalf("parse: %+v", pk)
	}
	lines := tshark(t, [][]byte{b[:n]}, "ipv6.flow", "ipv6.tclass", "tcp.checksum.status")
	if len(lines) == 0 || !oneOf(lines[0], "0x012345,0x00000010,1", "0x00012345,0x00000010,1", "0x012345,0x10,1", "0x012345,0x00000010,2") {
		t.Errorf("tshark: %q", lines[0])
	}
}

// V3: the label is the same on every segment until a timeout
// retransmission, and new after each one.
func TestFlowLabelRerolls(t *testing.T) {
	p := DefaultParams(1500, true)
	var c Conn
	p.Open(&c, 0x11223344, 0, 1, 0)
	first := c.FlowLabel()
	seen := map[uint32]bool{first: true}
	p.Input(&c, &Segment{Flags: FlagACK, Seq: 1, Ack: 5}, 0) // an unacceptable ACK: no timeout, no new label
	if c.FlowLabel() != first || first > 0xfffff {
		t.Fatalf("label %#x, then %#x after a segment", first, c.FlowLabel())
	}
	now := uint32(0)
	for i := 0; i < 6; i++ {
		_, resend, next := p.OnTimer(&c, now)
		if !resend {
			t.Fatalf("retransmission %d not asked for", i)
		}
		now += uint32(next)
		l := c.FlowLabel()
		if seen[l] {
			t.Fatalf("retransmission %d reused label %#x", i, l)
		}
		seen[l] = true
	}
	last := c.FlowLabel()
	if v := p.Input(&c, synAck(c.ISS+1, p.TSVal(&c, now)), now); v.Event != EvEstablished || c.FlowLabel() != last {
		t.Fatalf("after the handshake (%v): label %#x, want the last SYN's %#x", v.Event, c.FlowLabel(), last)
	}
	var d Conn
	p.Open(&d, 0x11223345, 0, 1, 0)
	if d.FlowLabel() == (&Conn{ISS: 0x11223344}).FlowLabel() {
		t.Error("two connections share a label")
	}
}

// V5, V6: ICMPv6 errors abort SYN-SENT with icmpv6_err_convert's errno;
// Packet Too Big and a type-3 code-4 message (not IPv4's frag-needed) do
// not.
func TestICMPv6Input(t *testing.T) {
	p := DefaultParams(1500, true)
	cases := []struct {
		typ, code uint8
		want      syscall.Errno
	}{
		{1, 0, syscall.ENETUNREACH}, {1, 1, syscall.EACCES}, {1, 3, syscall.EHOSTUNREACH}, {1, 4, syscall.ECONNREFUSED},
		{1, 7, syscall.EPROTO}, {3, 4, syscall.EHOSTUNREACH}, {4, 0, syscall.EPROTO}, {2, 0, 0},
	}
	for _, k := range cases {
		var c Conn
		p.Open(&c, 1000, 0, 1, 0)
		v := p.ICMPInput(&c, k.typ, k.code, 1000, 1280)
		if v.Err != k.want || v.PMTU != 0 || (k.want == 0) != (c.State == SynSent) {
			t.Errorf("ICMPv6 %d/%d: %+v state %v, want %v", k.typ, k.code, v, c.State, k.want)
		}
	}
}

// Neighbour discovery for dedicated IPv6 sources: a valid solicitation is
// taken, our advertisement answers it (tshark checks it), and what RFC
// 4861 §7.1.1 says to discard is dropped.
func TestNeighbourSolicitation(t *testing.T) {
	var pk Packet
	if Parse(nsFrame(255, srvIP6), &pk) != KindNS || pk.Dst6 != cliIP6 || pk.Src6 != srvIP6 || pk.SrcMAC != srvMAC {
		t.Fatalf("solicitation: %+v", pk)
	}
	// A unicast solicitation may come without the link-layer option:
	// 24 bytes of ICMPv6.
	bare := nsFrame(255, srvIP6)[:EthHdrLen+IPv6HdrLen+24]
	binary.BigEndian.PutUint16(bare[EthHdrLen+4:], 24)
	m := bare[EthHdrLen+IPv6HdrLen:]
	m[2], m[3] = 0, 0
	ip := IPv6(bare[EthHdrLen:])
	src, dst := ip.Src(), ip.Dst()
	binary.BigEndian.PutUint16(m[2:], Fold(Sum(m, PseudoSum6(&src, &dst, ProtoICMPv6, 24))))
	if Parse(bare, &pk) != KindNS || pk.Dst6 != cliIP6 {
		t.Fatalf("solicitation without options: %v %+v", pk.Reason, pk)
	}
	if Parse(nsFrame(64, srvIP6), &pk) != KindDrop {
		t.Error("a solicitation that crossed a router was taken")
	}
	if Parse(nsFrame(255, [16]byte{}), &pk) != KindDrop {
		t.Error("duplicate address detection was taken")
	}
	bad := nsFrame(255, srvIP6)
	bad[len(bad)-1] ^= 1
	if Parse(bad, &pk) != KindDrop || pk.Reason != DropChecksum {
		t.Error("a bad checksum was taken")
	}
	b := make([]byte, NALen)
	n := BuildNA(b, cliMAC, &cliIP6, srvMAC[:], &srvIP6)
	eq(t, "NA", b[EthHdrLen+IPv6HdrLen : n][4:], mustHex("60000000 20010002000000000000000000000001 0201 020000000001"))
	lines := tshark(t, [][]byte{b[:n]}, "icmpv6.type", "icmpv6.nd.na.flag.s", "icmpv6.opt.linkaddr", "icmpv6.checksum.status", "ipv6.hlim")
	if len(lines) == 0 || lines[0] != "136,1,02:00:00:00:00:01,1,255" && lines[0] != "136,True,02:00:00:00:00:01,1,255" {
		t.Errorf("tshark: %q", lines[0])
	}
}

// V4: the IPv6 4-tuple keys the ISN hash, and differs from the IPv4 one.
func TestHash6(t *testing.T) {
	g := NewISNGen(testKey)
	h := g.Hash6(&cliIP6, &srvIP6, 40000, 80)
	other := srvIP6
	other[0] ^= 0x80 // a byte the IPv4 hash would never see
	if h == g.Hash6(&cliIP6, &other, 40000, 80) || h == g.Hash6(&cliIP6, &srvIP6, 40001, 80) {
		t.Error("the hash ignores part of the 4-tuple")
	}
	if h != g.Hash6(&cliIP6, &srvIP6, 40000, 80) {
		t.Error("not deterministic")
	}
}

// oneOf says whether s is one of the ways tshark versions print a row.
func oneOf(s string, rows ...string) bool {
	for _, r := range rows {
		if s == r {
			return true
		}
	}
	return false
}

// nsFrame is a neighbour solicitation from src (hop limit hop) for cliIP6,
// with the asker's link-layer address option.
func nsFrame(hop uint8, src [16]byte) []byte {
	b := make([]byte, EthHdrLen+IPv6HdrLen+32)
	Ethernet(b).Encode([]byte{0x33, 0x33, 0xff, 0, 0, 1}, srvMAC[:], EtherIPv6)
	dst := [16]byte{0xff, 0x02, 11: 1, 12: 0xff, 15: 1}
	IPv6(b[EthHdrLen:]).Encode(&IPv6Fields{PayloadLen: 32, NextHeader: ProtoICMPv6, HopLimit: hop, Src: src, Dst: dst})
	m := b[EthHdrLen+IPv6HdrLen:]
	m[0] = ICMPv6NeighSolicit
	copy(m[8:24], cliIP6[:])
	m[24], m[25] = 1, 1
	copy(m[26:32], srvMAC[:])
	sum := Fold(Sum(m, PseudoSum6(&src, &dst, ProtoICMPv6, 32)))
	m[2], m[3] = byte(sum>>8), byte(sum)
	return b
}
