package tcp

import "encoding/binary"

// Kind is what a received frame is, as far as xdpconnect cares.
type Kind uint8

// Kinds of frames.
const (
	KindDrop Kind = iota // malformed or not ours: Packet.Reason says why
	KindTCP              // a TCP segment: Packet.Seg, addresses, ports
	KindICMP             // an ICMP error quoting a TCP segment we may have sent
	KindARP              // an ARP packet
	KindNS               // an IPv6 neighbour solicitation: Dst6 is its target, Src6 the asker
)

// DropReason says why a frame was not taken. Values index counters.
type DropReason uint8

// Drop reasons.
const (
	DropNone DropReason = iota
	DropShort
	DropEtherType
	DropIPVersion
	DropIPHeader
	DropIPLength
	DropFragment
	DropProto
	DropTCPHeader
	DropChecksum
	DropICMPType
	DropICMPQuote
	DropARP
	NumDropReasons
)

var dropNames = [...]string{"none", "short", "ethertype", "ip_version", "ip_header", "ip_length", "fragment",
	"protocol", "tcp_header", "checksum", "icmp_type", "icmp_quote", "arp"}

// String is the reason's name, as used in metric labels.
func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return "unknown"
}

// Packet is a parsed frame. It holds no references into the frame except
// where noted, so it can live in a preallocated batch array.
type Packet struct {
	Kind   Kind
	Reason DropReason
	// IPv4 addresses of the outer header (TCP), or of the quoted header
	// (ICMP: Src is our address, Dst the peer).
	Src, Dst         [4]byte
	SrcPort, DstPort uint16
	SrcMAC           [6]byte
	TOS              uint8
	Seg              Segment // TCP
	// ICMP
	ICMPType, ICMPCode uint8
	ICMPMTU            uint16
	QuotedSeq          Seq
	// ARP
	ARPOp uint16
	// V6 marks an IPv6 frame: its addresses are Src6/Dst6 (quoted ones for
	// ICMPv6), and Src/Dst are zero.
	V6         bool
	Src6, Dst6 [16]byte
	// PartialChecksum marks a TCP segment accepted with a partial checksum
	// (see [AcceptPartialChecksum]).
	PartialChecksum bool
	// Payload is the TCP segment's data, within the parsed frame.
	Payload []byte
}

// ParseFlags widen what [ParseWith] accepts.
type ParseFlags uint8

// AcceptPartialChecksum accepts a TCP segment whose checksum field holds
// the folded pseudo-header sum instead of the full checksum. That is what a
// CHECKSUM_PARTIAL frame looks like when the kernel hands it over before the
// checksum was completed: a veth peer with TX checksum offload (the default,
// and every container's) sends its frames so, and Linux's receive path
// trusts them because they never crossed a wire. Set it only for links whose
// frames can only come from such a local peer; every other bad checksum is
// still dropped.
const AcceptPartialChecksum ParseFlags = 1 << 0

// Parse classifies frame without allocating. TCP checksums are verified
// (spec §5 pre-checks: a bad checksum or data offset is dropped silently).
// IPv6 frames without extension headers are parsed too (Packet.V6).
func Parse(frame []byte, p *Packet) Kind { return ParseWith(frame, p, 0) }

// ParseWith is [Parse] with flags.
func ParseWith(frame []byte, p *Packet, fl ParseFlags) Kind {
	*p = Packet{}
	drop := func(r DropReason) Kind { p.Kind, p.Reason = KindDrop, r; return KindDrop }
	if len(frame) < EthHdrLen {
		return drop(DropShort)
	}
	eth := Ethernet(frame)
	et, l2 := eth.Type()
	copy(p.SrcMAC[:], eth.Src())
	switch et {
	case EtherIPv4:
	case EtherARP:
		a := ARP(frame[l2:])
		if !a.Valid() {
			return drop(DropARP)
		}
		p.Kind, p.ARPOp = KindARP, a.Op()
		p.Src, p.Dst = a.SenderIP(), a.TargetIP()
		return KindARP
	case EtherIPv6:
		return parseIPv6(frame[l2:], p, fl, drop)
	default:
		return drop(DropEtherType)
	}
	ipb := frame[l2:]
	if len(ipb) < IPv4HdrLen {
		return drop(DropShort)
	}
	ip := IPv4(ipb)
	if ip.Version() != 4 {
		return drop(DropIPVersion)
	}
	ihl := ip.HeaderLen()
	if ihl < IPv4HdrLen || ihl > len(ipb) {
		return drop(DropIPHeader)
	}
	tot := ip.TotalLen()
	if tot < ihl || tot > len(ipb) {
		return drop(DropIPLength)
	}
	if Checksum(ipb[:ihl]) != 0 {
		return drop(DropChecksum)
	}
	if ip.FlagsFrag()&0x3fff != 0 {
		return drop(DropFragment)
	}
	p.TOS = ip.TOS()
	p.Src, p.Dst = ip.Src(), ip.Dst()
	l4 := ipb[ihl:tot]
	switch ip.Protocol() {
	case ProtoTCP:
		return parseTCP(l4, PseudoSum4(p.Src, p.Dst, ProtoTCP, uint16(len(l4))), p, fl, drop)
	case ProtoICMP:
		return parseICMP(l4, p, drop)
	}
	return drop(DropProto)
}

// parseTCP checks and parses a TCP segment whose pseudo-header sums to
// pseudo (IPv4 or IPv6).
func parseTCP(l4 []byte, pseudo uint32, p *Packet, fl ParseFlags, drop func(DropReason) Kind) Kind {
	if len(l4) < TCPHdrLen {
		return drop(DropTCPHeader)
	}
	t := TCP(l4)
	doff := t.DataOffset()
	if doff < TCPHdrLen || doff > len(l4) {
		return drop(DropTCPHeader)
	}
	if Fold(Sum(l4, pseudo)) != 0 {
		// A partial checksum is the pseudo-header sum folded but not
		// complemented (the kernel's ~csum_tcpudp_magic(...)).
		if fl&AcceptPartialChecksum == 0 || t.Checksum() != ^Fold(pseudo) {
			return drop(DropChecksum)
		}
		p.PartialChecksum = true
	}
	p.SrcPort, p.DstPort = t.SrcPort(), t.DstPort()
	f := t.Flags()
	p.Seg = Segment{Seq: t.Seq(), Ack: t.Ack(), Flags: f, Window: t.Window(), PayloadLen: len(l4) - doff, TOS: p.TOS,
		Opts: ParseOptions(l4[TCPHdrLen:doff], f.Has(FlagSYN))}
	p.Payload = l4[doff:]
	p.Kind = KindTCP
	return KindTCP
}

// parseICMP takes destination unreachable, time exceeded and parameter
// problem messages that quote an IPv4 header and at least 8 bytes of TCP
// (RFC 792), and reports the quoted flow from our side: Src/SrcPort are ours.
func parseICMP(l4 []byte, p *Packet, drop func(DropReason) Kind) Kind {
	if len(l4) < ICMPHdrLen+IPv4HdrLen+8 {
		return drop(DropICMPQuote)
	}
	if Checksum(l4) != 0 {
		return drop(DropChecksum)
	}
	c := ICMP(l4)
	switch c.Type() {
	case ICMPDestUnreach, ICMPTimeExceeded, ICMPParamProblem:
	default:
		return drop(DropICMPType)
	}
	q := IPv4(l4[ICMPHdrLen:])
	ihl := q.HeaderLen()
	if q.Version() != 4 || ihl < IPv4HdrLen || len(q) < ihl+8 || q.Protocol() != ProtoTCP {
		return drop(DropICMPQuote)
	}
	qt := q[ihl:]
	p.ICMPType, p.ICMPCode, p.ICMPMTU = c.Type(), c.Code(), c.MTU()
	p.Src, p.Dst = q.Src(), q.Dst()
	p.SrcPort, p.DstPort = binary.BigEndian.Uint16(qt[0:]), binary.BigEndian.Uint16(qt[2:])
	p.QuotedSeq = Seq(binary.BigEndian.Uint32(qt[4:]))
	p.Kind = KindICMP
	return KindICMP
}

func parseIPv6(b []byte, p *Packet, fl ParseFlags, drop func(DropReason) Kind) Kind {
	if len(b) < IPv6HdrLen {
		return drop(DropShort)
	}
	ip := IPv6(b)
	if ip.Version() != 6 {
		return drop(DropIPVersion)
	}
	pl := ip.PayloadLen()
	if IPv6HdrLen+pl > len(b) {
		return drop(DropIPLength)
	}
	p.V6 = true
	p.Src6, p.Dst6 = ip.Src(), ip.Dst()
	p.TOS = uint8(binary.BigEndian.Uint16(b[0:]) >> 4)
	l4 := b[IPv6HdrLen : IPv6HdrLen+pl]
	switch ip.NextHeader() {
	case ProtoTCP:
		return parseTCP(l4, PseudoSum6(&p.Src6, &p.Dst6, ProtoTCP, uint32(len(l4))), p, fl, drop)
	case ProtoICMPv6:
		if len(l4) >= nsLen && l4[0] == ICMPv6NeighSolicit {
			return parseNS(l4, ip, p, drop)
		}
		// Errors (V5): type 1..4, quoting an IPv6 header and 8 bytes of TCP.
		if len(l4) < ICMPHdrLen+IPv6HdrLen+8 {
			return drop(DropICMPQuote)
		}
		if Fold(Sum(l4, PseudoSum6(&p.Src6, &p.Dst6, ProtoICMPv6, uint32(len(l4))))) != 0 {
			return drop(DropChecksum)
		}
		c := ICMP(l4)
		if c.Type() < ICMPv6DestUnreach || c.Type() > ICMPv6ParamProblem {
			return drop(DropICMPType)
		}
		q := IPv6(l4[ICMPHdrLen:])
		if q.Version() != 6 || q.NextHeader() != ProtoTCP {
			return drop(DropICMPQuote)
		}
		qt := l4[ICMPHdrLen+IPv6HdrLen:]
		p.ICMPType, p.ICMPCode = c.Type(), c.Code()
		p.ICMPMTU = uint16(min(binary.BigEndian.Uint32(l4[4:]), 65535))
		p.Src6, p.Dst6 = q.Src(), q.Dst()
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(qt[0:]), binary.BigEndian.Uint16(qt[2:])
		p.QuotedSeq = Seq(binary.BigEndian.Uint32(qt[4:]))
		p.Kind = KindICMP
		return KindICMP
	}
	return drop(DropProto)
}

// nsLen is a neighbour solicitation without options: type, code, checksum,
// reserved, target (RFC 4861 §4.3).
const nsLen = 24

// parseNS takes a neighbour solicitation as RFC 4861 §7.1.1 validates it:
// hop limit 255 (it cannot have crossed a router), code 0, a valid
// checksum, a target that is not multicast. A solicitation from the
// unspecified address is duplicate address detection, which a dedicated
// source does not answer (it never claims the address for itself).
func parseNS(l4 []byte, ip IPv6, p *Packet, drop func(DropReason) Kind) Kind {
	if ip.HopLimit() != 255 || l4[1] != 0 || p.Src6 == ([16]byte{}) || l4[8] == 0xff {
		return drop(DropICMPType)
	}
	if Fold(Sum(l4, PseudoSum6(&p.Src6, &p.Dst6, ProtoICMPv6, uint32(len(l4))))) != 0 {
		return drop(DropChecksum)
	}
	p.Dst6 = [16]byte(l4[8:24])
	p.Kind = KindNS
	return KindNS
}
