package tcp

import "encoding/binary"

// Sizes and protocol numbers.
const (
	EthHdrLen   = 14
	VLANTagLen  = 4
	IPv4HdrLen  = 20 // without options
	IPv6HdrLen  = 40
	TCPHdrLen   = 20 // without options
	ICMPHdrLen  = 8
	ARPLen      = 28
	EtherIPv4   = 0x0800
	EtherIPv6   = 0x86DD
	EtherARP    = 0x0806
	EtherVLAN   = 0x8100
	EtherQinQ   = 0x88A8
	ProtoTCP    = 6
	ProtoICMP   = 1
	ProtoICMPv6 = 58
)

// TCP flag bits (RFC 9293 §3.1, RFC 3168).
const (
	FlagFIN Flags = 0x01
	FlagSYN Flags = 0x02
	FlagRST Flags = 0x04
	FlagPSH Flags = 0x08
	FlagACK Flags = 0x10
	FlagURG Flags = 0x20
	FlagECE Flags = 0x40
	FlagCWR Flags = 0x80
)

// Flags is the TCP flags byte.
type Flags uint8

// Has reports whether all bits of m are set.
func (f Flags) Has(m Flags) bool { return f&m == m }

// String lists the flags, e.g. "SYN|ACK".
func (f Flags) String() string {
	names := [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	s := ""
	for i, n := range names {
		if f&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// Ethernet is a view of an Ethernet II header.
type Ethernet []byte

// Dst is the destination MAC.
func (e Ethernet) Dst() []byte { return e[0:6] }

// Src is the source MAC.
func (e Ethernet) Src() []byte { return e[6:12] }

// Type is the EtherType after at most one VLAN tag, and the header length.
func (e Ethernet) Type() (etype uint16, hdrLen int) {
	t := binary.BigEndian.Uint16(e[12:])
	if (t == EtherVLAN || t == EtherQinQ) && len(e) >= EthHdrLen+VLANTagLen {
		return binary.BigEndian.Uint16(e[16:]), EthHdrLen + VLANTagLen
	}
	return t, EthHdrLen
}

// Encode writes dst, src and EtherType.
func (e Ethernet) Encode(dst, src []byte, etype uint16) {
	copy(e[0:6], dst)
	copy(e[6:12], src)
	binary.BigEndian.PutUint16(e[12:], etype)
}

// IPv4 is a view of an IPv4 header.
type IPv4 []byte

// HeaderLen is IHL in bytes.
func (ip IPv4) HeaderLen() int { return int(ip[0]&0x0f) * 4 }

// Version is the IP version nibble.
func (ip IPv4) Version() uint8 { return ip[0] >> 4 }

// TOS is the type-of-service byte.
func (ip IPv4) TOS() uint8 { return ip[1] }

// TotalLen is the datagram length.
func (ip IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(ip[2:])) }

// ID is the identification field.
func (ip IPv4) ID() uint16 { return binary.BigEndian.Uint16(ip[4:]) }

// FlagsFrag is the flags and fragment offset word.
func (ip IPv4) FlagsFrag() uint16 { return binary.BigEndian.Uint16(ip[6:]) }

// TTL is the time to live.
func (ip IPv4) TTL() uint8 { return ip[8] }

// Protocol is the payload protocol.
func (ip IPv4) Protocol() uint8 { return ip[9] }

// Checksum is the header checksum field.
func (ip IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(ip[10:]) }

// Src is the source address.
func (ip IPv4) Src() [4]byte { return [4]byte(ip[12:16]) }

// Dst is the destination address.
func (ip IPv4) Dst() [4]byte { return [4]byte(ip[16:20]) }

// IPv4Fields are the fields Encode writes.
type IPv4Fields struct {
	TOS      uint8
	TotalLen uint16
	ID       uint16
	DF       bool
	TTL      uint8
	Protocol uint8
	Src, Dst [4]byte
}

// Encode writes a 20-byte header with a valid checksum.
func (ip IPv4) Encode(f *IPv4Fields) {
	ip[0] = 0x45
	ip[1] = f.TOS
	binary.BigEndian.PutUint16(ip[2:], f.TotalLen)
	binary.BigEndian.PutUint16(ip[4:], f.ID)
	var ff uint16
	if f.DF {
		ff = 0x4000
	}
	binary.BigEndian.PutUint16(ip[6:], ff)
	ip[8] = f.TTL
	ip[9] = f.Protocol
	copy(ip[12:16], f.Src[:])
	copy(ip[16:20], f.Dst[:])
	// The sum from the fields, not read back from the header: every
	// segment sent pays for it.
	s := uint32(0x4500|uint16(f.TOS)) + uint32(f.TotalLen) + uint32(f.ID) + uint32(ff) + uint32(f.TTL)<<8 + uint32(f.Protocol) +
		PseudoSum4(f.Src, f.Dst, 0, 0)
	binary.BigEndian.PutUint16(ip[10:], Fold(s))
}

// IPv6 is a view of an IPv6 header.
type IPv6 []byte

// PayloadLen is the payload length.
func (ip IPv6) PayloadLen() int { return int(binary.BigEndian.Uint16(ip[4:])) }

// NextHeader is the next header.
func (ip IPv6) NextHeader() uint8 { return ip[6] }

// Src is the source address.
func (ip IPv6) Src() [16]byte { return [16]byte(ip[8:24]) }

// Dst is the destination address.
func (ip IPv6) Dst() [16]byte { return [16]byte(ip[24:40]) }

// IPv6Fields are the fields Encode writes (V2).
type IPv6Fields struct {
	TrafficClass uint8
	FlowLabel    uint32 // 20 bits
	PayloadLen   uint16
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     [16]byte
}

// Encode writes a 40-byte header without extension headers.
func (ip IPv6) Encode(f *IPv6Fields) {
	binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(ip[4:], f.PayloadLen)
	ip[6] = f.NextHeader
	ip[7] = f.HopLimit
	copy(ip[8:24], f.Src[:])
	copy(ip[24:40], f.Dst[:])
}

// Version is the IP version nibble.
func (ip IPv6) Version() uint8 { return ip[0] >> 4 }

// FlowLabel is the 20-bit flow label (V3).
func (ip IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(ip[0:]) & 0xfffff }

// HopLimit is the hop limit.
func (ip IPv6) HopLimit() uint8 { return ip[7] }

// TCP is a view of a TCP header.
type TCP []byte

// SrcPort is the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:]) }

// DstPort is the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:]) }

// Seq is the sequence number.
func (t TCP) Seq() Seq { return Seq(binary.BigEndian.Uint32(t[4:])) }

// Ack is the acknowledgment number.
func (t TCP) Ack() Seq { return Seq(binary.BigEndian.Uint32(t[8:])) }

// DataOffset is the header length in bytes.
func (t TCP) DataOffset() int { return int(t[12]>>4) * 4 }

// Flags is the flags byte.
func (t TCP) Flags() Flags { return Flags(t[13]) }

// Window is the raw window field.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[14:]) }

// Checksum is the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:]) }

// Options are the option bytes.
func (t TCP) Options() []byte { return t[TCPHdrLen:t.DataOffset()] }

// TCPFields are the fields Encode writes.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         Seq
	DataOffset       uint8 // bytes
	Flags            Flags
	Window           uint16
}

// Encode writes the fixed header; the checksum field is zeroed.
func (t TCP) Encode(f *TCPFields) {
	binary.BigEndian.PutUint16(t[0:], f.SrcPort)
	binary.BigEndian.PutUint16(t[2:], f.DstPort)
	binary.BigEndian.PutUint32(t[4:], uint32(f.Seq))
	binary.BigEndian.PutUint32(t[8:], uint32(f.Ack))
	t[12] = (f.DataOffset / 4) << 4
	t[13] = uint8(f.Flags)
	binary.BigEndian.PutUint16(t[14:], f.Window)
	t[16], t[17], t[18], t[19] = 0, 0, 0, 0
}

// SetChecksum4 computes and stores the checksum of segment t over IPv4.
func (t TCP) SetChecksum4(src, dst [4]byte) {
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[16:], Fold(Sum(t, PseudoSum4(src, dst, ProtoTCP, uint16(len(t))))))
}

// SetChecksum6 computes and stores the checksum of segment t over IPv6.
func (t TCP) SetChecksum6(src, dst *[16]byte) {
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[16:], Fold(Sum(t, PseudoSum6(src, dst, ProtoTCP, uint32(len(t))))))
}

// ICMP is a view of an ICMP (or ICMPv6) header.
type ICMP []byte

// Type is the message type.
func (c ICMP) Type() uint8 { return c[0] }

// Code is the message code.
func (c ICMP) Code() uint8 { return c[1] }

// MTU is the next-hop MTU of a fragmentation-needed message (RFC 1191).
func (c ICMP) MTU() uint16 { return binary.BigEndian.Uint16(c[6:]) }

// ARP is a view of an Ethernet/IPv4 ARP packet.
type ARP []byte

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// Op is the operation.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:]) }

// SenderMAC is the sender hardware address.
func (a ARP) SenderMAC() []byte { return a[8:14] }

// SenderIP is the sender protocol address.
func (a ARP) SenderIP() [4]byte { return [4]byte(a[14:18]) }

// TargetIP is the target protocol address.
func (a ARP) TargetIP() [4]byte { return [4]byte(a[24:28]) }

// Valid reports whether a is Ethernet/IPv4 ARP.
func (a ARP) Valid() bool {
	return len(a) >= ARPLen && binary.BigEndian.Uint16(a[0:]) == 1 && binary.BigEndian.Uint16(a[2:]) == EtherIPv4 && a[4] == 6 && a[5] == 4
}
