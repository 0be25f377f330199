package tcp

import (
	"encoding/binary"
	"testing"
)

// reply4 is a valid Ethernet/IPv4/TCP frame from the server with n bytes
// of payload (zeros).
func reply4(n int) []byte {
	b := make([]byte, MaxReplyLen+n)
	l := Build(b, &Path{SrcMAC: srvMAC, DstMAC: cliMAC, Src: srvIP, Dst: cliIP, SrcPort: 8080, DstPort: 40000},
		&Reply{Flags: FlagACK, Seq: 5, Ack: 6, Window: 100, TS: true, TSVal: 1, TSEcr: 2})
	f := b[:l+n]
	ip := IPv4(f[EthHdrLen:])
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-EthHdrLen))
	refresh4(f)
	return f
}

// refresh4 recomputes both checksums of an IPv4 frame after an edit.
func refresh4(f []byte) {
	ip := IPv4(f[EthHdrLen:])
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:ip.HeaderLen()]))
	if ip.Protocol() == ProtoTCP && ip.TotalLen() >= ip.HeaderLen()+TCPHdrLen && len(ip) >= ip.TotalLen() {
		TCP(ip[ip.HeaderLen():ip.TotalLen()]).SetChecksum4(ip.Src(), ip.Dst())
	}
}

func wantDrop(t *testing.T, what string, f []byte, r DropReason) {
	t.Helper()
	var pk Packet
	if k := Parse(f, &pk); k != KindDrop || pk.Reason != r {
		t.Errorf("%s: kind %v reason %v, want dropped as %v", what, k, pk.Reason, r)
	}
}

func wantTCP(t *testing.T, what string, f []byte) *Packet {
	t.Helper()
	pk := &Packet{}
	if k := Parse(f, pk); k != KindTCP {
		t.Errorf("%s: dropped as %v", what, pk.Reason)
	}
	return pk
}

// Spec §5 pre-checks (tcp_v4_rcv, ip_rcv): each header length check takes
// its exact minimum and refuses one byte less; every field that must not
// be trusted is checked.
func TestParseIPv4Bounds(t *testing.T) {
	wantTCP(t, "plain segment", reply4(0))
	if pk := wantTCP(t, "segment with 3 bytes of payload", reply4(3)); pk.Seg.PayloadLen != 3 {
		t.Errorf("payload %d, want 3", pk.Seg.PayloadLen)
	}
	// Ethernet padding after the datagram is not payload.
	f := append(reply4(0), 0, 0, 0, 0, 0, 0)
	if pk := wantTCP(t, "padded frame", f); pk.Seg.PayloadLen != 0 {
		t.Errorf("padding counted as payload: %d", pk.Seg.PayloadLen)
	}

	eth := reply4(0)[:EthHdrLen]
	wantDrop(t, "Ethernet header alone", eth, DropShort)
	binary.BigEndian.PutUint16(eth[12:], 0x88cc)
	wantDrop(t, "Ethernet header alone, LLDP", eth, DropEtherType)
	wantDrop(t, "13 bytes", eth[:13], DropShort)

	f = reply4(0)
	f[EthHdrLen] = 0x65 // version 6 in an IPv4 frame
	wantDrop(t, "IPv4 ethertype, version 6", f, DropIPVersion)
	f = reply4(0)
	f[EthHdrLen] = 0x44
	refresh4(f)
	wantDrop(t, "IHL 4", f, DropIPHeader)

	// An IP header with nothing after it: the IP checks pass, TCP's fail.
	f = reply4(0)[:EthHdrLen+IPv4HdrLen]
	binary.BigEndian.PutUint16(f[EthHdrLen+2:], IPv4HdrLen)
	refresh4(f)
	wantDrop(t, "IPv4 header only", f, DropTCPHeader)
	f = f[:EthHdrLen+IPv4HdrLen-1]
	wantDrop(t, "19 bytes of IPv4 header", f, DropShort)

	f = reply4(0)
	tl := IPv4(f[EthHdrLen:]).TotalLen()
	binary.BigEndian.PutUint16(f[EthHdrLen+2:], uint16(tl+1))
	refresh4(f)
	wantDrop(t, "total length one past the frame", f, DropIPLength)
	binary.BigEndian.PutUint16(f[EthHdrLen+2:], 19)
	refresh4(f)
	wantDrop(t, "total length under the header", f, DropIPLength)

	f = reply4(0)
	f[EthHdrLen+10] ^= 0x40
	wantDrop(t, "bad IPv4 header checksum", f, DropChecksum)

	for _, ff := range []struct {
		word uint16
		drop bool
	}{{0x4000, false}, {0x2000, true}, {0x0001, true}, {0x8000, false}} {
		f = reply4(0)
		binary.BigEndian.PutUint16(f[EthHdrLen+6:], ff.word)
		refresh4(f)
		var pk Packet
		if dropped := Parse(f, &pk) == KindDrop; dropped != ff.drop || (ff.drop && pk.Reason != DropFragment) {
			t.Errorf("flags/fragment %#04x: dropped %v (%v), want %v", ff.word, dropped, pk.Reason, ff.drop)
		}
	}
	f = reply4(0)
	f[EthHdrLen+9] = 17
	refresh4(f)
	wantDrop(t, "UDP", f, DropProto)
}

// The TCP header: the data offset lies between 20 and the segment's end;
// exactly at the end (options, no payload) is valid.
func TestParseTCPBounds(t *testing.T) {
	f := reply4(0)
	tcpOff := EthHdrLen + IPv4HdrLen
	if doff := TCP(f[tcpOff:]).DataOffset(); tcpOff+doff != len(f) {
		t.Fatalf("fixture: data offset %d does not end the frame", doff)
	}
	for _, tc := range []struct {
		doffWords byte
		ok        bool
	}{{4, false}, {5, true}, {8, true}, {9, false}, {15, false}} {
		f = reply4(0)
		f[tcpOff+12] = tc.doffWords << 4
		refresh4(f)
		var pk Packet
		k := Parse(f, &pk)
		if (k == KindTCP) != tc.ok || (!tc.ok && pk.Reason != DropTCPHeader) {
			t.Errorf("data offset %d words: %v %v, want ok %v", tc.doffWords, k, pk.Reason, tc.ok)
		}
	}
	// A TCP segment of 19 bytes, inside a consistent datagram.
	f = reply4(0)[:tcpOff+TCPHdrLen-1]
	binary.BigEndian.PutUint16(f[EthHdrLen+2:], uint16(IPv4HdrLen+TCPHdrLen-1))
	refresh4(f)
	wantDrop(t, "19-byte TCP segment", f, DropTCPHeader)
	f = reply4(1)
	f[len(f)-1] = 0x5a // payload byte not covered by the checksum
	wantDrop(t, "payload changed after the checksum", f, DropChecksum)
}

// One 802.1Q tag is looked through; a frame that ends inside the tag's
// EtherType is short.
func TestParseVLAN(t *testing.T) {
	plain := reply4(0)
	f := append(append(append([]byte{}, plain[:12]...), 0x81, 0x00, 0x00, 0x07), plain[12:]...)
	pk := wantTCP(t, "VLAN-tagged segment", f)
	if pk.SrcPort != 8080 || pk.Src != srvIP {
		t.Errorf("VLAN: %+v", pk)
	}
	wantDrop(t, "VLAN tag, nothing after it", f[:EthHdrLen+VLANTagLen], DropShort)
	if et, l := Ethernet(f[:EthHdrLen+VLANTagLen-1]).Type(); et != EtherVLAN || l != EthHdrLen {
		t.Errorf("truncated tag: type %#x length %d", et, l)
	}
}

// ARP: only Ethernet/IPv4 ARP of full length is taken.
func TestParseARP(t *testing.T) {
	b := make([]byte, 64)
	n := BuildARPReply(b, srvMAC, srvIP, cliMAC[:], cliIP)
	var pk Packet
	if Parse(b[:n], &pk) != KindARP || pk.ARPOp != ARPReply || pk.Src != srvIP || pk.Dst != cliIP {
		t.Fatalf("ARP reply: %+v", pk)
	}
	if Parse(b[:EthHdrLen+ARPLen], &pk) != KindARP {
		t.Error("unpadded ARP (28 bytes) refused")
	}
	wantDrop(t, "27 bytes of ARP", b[:EthHdrLen+ARPLen-1], DropARP)
	for i, v := range map[int]byte{1: 6, 3: 0xdd, 4: 8, 5: 16} { // htype, ptype, hlen, plen
		c := append([]byte(nil), b[:n]...)
		c[EthHdrLen+i] = v
		wantDrop(t, "ARP with a bad hardware or protocol field", c, DropARP)
	}
}

// icmp4 is an ICMPv4 error of type/code quoting our SYN (quoteLen bytes of
// it after the IP header).
func icmp4(typ, code uint8, quoteTCP int) []byte {
	p := DefaultParams(1500, false)
	syn := make([]byte, MaxSYNLen)
	NewSYNTemplate(&p, testPath()).Stamp(syn, 40000, 777, 1, 1, false)
	quote := syn[EthHdrLen : EthHdrLen+IPv4HdrLen+quoteTCP]
	b := make([]byte, EthHdrLen+IPv4HdrLen+ICMPHdrLen+len(quote))
	Ethernet(b).Encode(cliMAC[:], srvMAC[:], EtherIPv4)
	ic := b[EthHdrLen+IPv4HdrLen:]
	ic[0], ic[1] = typ, code
	binary.BigEndian.PutUint16(ic[6:], 1400)
	copy(ic[ICMPHdrLen:], quote)
	binary.BigEndian.PutUint16(ic[2:], Checksum(ic))
	IPv4(b[EthHdrLen:]).Encode(&IPv4Fields{TotalLen: uint16(len(b) - EthHdrLen), TTL: 64, Protocol: ProtoICMP, Src: srvIP, Dst: cliIP})
	return b
}

// C1: ICMP errors quoting at least 8 bytes of our segment are taken, with
// the flow seen from our side; other ICMP messages and short quotes are not.
func TestParseICMPv4(t *testing.T) {
	var pk Packet
	if Parse(icmp4(ICMPDestUnreach, ICMPFragNeeded, 8), &pk) != KindICMP || pk.Src != cliIP || pk.Dst != srvIP ||
		pk.SrcPort != 40000 || pk.DstPort != 8080 || pk.QuotedSeq != 777 || pk.ICMPMTU != 1400 || pk.ICMPCode != ICMPFragNeeded {
		t.Fatalf("frag-needed: %+v", pk)
	}
	wantDrop(t, "7 quoted bytes", icmp4(ICMPDestUnreach, 1, 7), DropICMPQuote)
	wantDrop(t, "echo request", icmp4(8, 0, 8), DropICMPType)
	f := icmp4(ICMPTimeExceeded, 0, 8)
	f[len(f)-1] ^= 1
	wantDrop(t, "bad ICMP checksum", f, DropChecksum)
	for _, typ := range []uint8{ICMPDestUnreach, ICMPTimeExceeded, ICMPParamProblem} {
		if Parse(icmp4(typ, 0, 8), &pk) != KindICMP {
			t.Errorf("ICMP type %d dropped as %v", typ, pk.Reason)
		}
	}
}

var (
	v6Src = [16]byte{0x20, 0x01, 0x00, 0x02, 15: 1}
	v6Dst = [16]byte{0x20, 0x01, 0x00, 0x02, 15: 2}
)

// v6frame wraps an upper-layer payload of next header nh in Ethernet/IPv6.
func v6frame(nh uint8, l4 []byte, src, dst [16]byte) []byte {
	b := make([]byte, EthHdrLen+IPv6HdrLen+len(l4))
	Ethernet(b).Encode(cliMAC[:], srvMAC[:], EtherIPv6)
	IPv6(b[EthHdrLen:]).Encode(&IPv6Fields{PayloadLen: uint16(len(l4)), NextHeader: nh, HopLimit: 64, Src: src, Dst: dst})
	copy(b[EthHdrLen+IPv6HdrLen:], l4)
	return b
}

// icmp6 is an ICMPv6 error from the server quoting a TCP segment of ours.
func icmp6(typ, code uint8, mtu uint32, quotedNH uint8) []byte {
	tc := make([]byte, TCPHdrLen)
	TCP(tc).Encode(&TCPFields{SrcPort: 40000, DstPort: 80, Seq: 4242, DataOffset: TCPHdrLen, Flags: FlagSYN})
	quote := v6frame(quotedNH, tc, v6Dst, v6Src)[EthHdrLen:]
	ic := make([]byte, ICMPHdrLen+len(quote))
	ic[0], ic[1] = typ, code
	binary.BigEndian.PutUint32(ic[4:], mtu)
	copy(ic[ICMPHdrLen:], quote)
	binary.BigEndian.PutUint16(ic[2:], Fold(Sum(ic, PseudoSum6(&v6Src, &v6Dst, ProtoICMPv6, uint32(len(ic))))))
	return v6frame(ProtoICMPv6, ic, v6Src, v6Dst)
}

// V5: ICMPv6 errors (types 1 to 4) quoting our TCP segment; informational
// messages and quotes of something else are not taken.
func TestParseICMPv6(t *testing.T) {
	var pk Packet
	if Parse(icmp6(ICMPv6PacketTooBig, 0, 1280, ProtoTCP), &pk) != KindICMP || !pk.V6 || pk.Src6 != v6Dst ||
		pk.Dst6 != v6Src || pk.SrcPort != 40000 || pk.DstPort != 80 || pk.QuotedSeq != 4242 || pk.ICMPMTU != 1280 {
		t.Fatalf("packet too big: %+v", pk)
	}
	if Parse(icmp6(ICMPv6PacketTooBig, 0, 100000, ProtoTCP), &pk) != KindICMP || pk.ICMPMTU != 65535 {
		t.Errorf("jumbo MTU not clamped: %d", pk.ICMPMTU)
	}
	for _, typ := range []uint8{ICMPv6DestUnreach, ICMPv6ParamProblem} {
		if Parse(icmp6(typ, 1, 0, ProtoTCP), &pk) != KindICMP || pk.ICMPType != typ || pk.ICMPCode != 1 {
			t.Errorf("ICMPv6 type %d: %v %+v", typ, pk.Reason, pk)
		}
	}
	for _, typ := range []uint8{0, 5, 128} {
		wantDrop(t, "ICMPv6 informational or unknown type", icmp6(typ, 0, 0, ProtoTCP), DropICMPType)
	}
	wantDrop(t, "quote of a UDP datagram", icmp6(ICMPv6DestUnreach, 0, 0, 17), DropICMPQuote)
	f := icmp6(ICMPv6DestUnreach, 0, 0, ProtoTCP)
	f[len(f)-1] ^= 1
	wantDrop(t, "bad ICMPv6 checksum", f, DropChecksum)
	if Parse(cutQuote(icmp6(ICMPv6DestUnreach, 0, 0, ProtoTCP), 12), &pk) != KindICMP {
		t.Errorf("quote of 8 bytes of TCP dropped as %v", pk.Reason)
	}
	wantDrop(t, "quote of 7 bytes of TCP", cutQuote(icmp6(ICMPv6DestUnreach, 0, 0, ProtoTCP), 13), DropICMPQuote)
}

// cutQuote shortens an ICMPv6 frame's quoted TCP header by n bytes,
// fixing the lengths and the checksum.
func cutQuote(f []byte, n int) []byte {
	f = f[:len(f)-n]
	binary.BigEndian.PutUint16(f[EthHdrLen+4:], uint16(len(f)-EthHdrLen-IPv6HdrLen))
	ic := f[EthHdrLen+IPv6HdrLen:]
	ic[2], ic[3] = 0, 0
	binary.BigEndian.PutUint16(ic[2:], Fold(Sum(ic, PseudoSum6(&v6Src, &v6Dst, ProtoICMPv6, uint32(len(ic))))))
	return f
}

// V2: IPv6 length checks mirror IPv4's.
func TestParseIPv6Bounds(t *testing.T) {
	tc := make([]byte, TCPHdrLen)
	TCP(tc).Encode(&TCPFields{SrcPort: 80, DstPort: 40000, Seq: 1, DataOffset: TCPHdrLen, Flags: FlagACK})
	TCP(tc).SetChecksum6(&v6Src, &v6Dst)
	f := v6frame(ProtoTCP, tc, v6Src, v6Dst)
	wantTCP(t, "IPv6 segment", f)
	binary.BigEndian.PutUint16(f[EthHdrLen+4:], TCPHdrLen+1)
	wantDrop(t, "IPv6 payload length one past the frame", f, DropIPLength)
	hdr := v6frame(ProtoTCP, nil, v6Src, v6Dst)
	wantDrop(t, "IPv6 header alone", hdr, DropTCPHeader)
	wantDrop(t, "39 bytes of IPv6 header", hdr[:len(hdr)-1], DropShort)
	f = v6frame(ProtoTCP, tc, v6Src, v6Dst)
	f[EthHdrLen] = 0x45
	wantDrop(t, "IPv6 ethertype, version 4", f, DropIPVersion)
	wantDrop(t, "IPv6 UDP", v6frame(17, tc, v6Src, v6Dst), DropProto)
}
