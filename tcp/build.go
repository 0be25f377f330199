package tcp

import "encoding/binary"

// MaxSYNLen is the largest SYN frame we build (Ethernet + VLAN + IPv6 + TCP
// with 40 option bytes).
const MaxSYNLen = EthHdrLen + VLANTagLen + IPv6HdrLen + TCPHdrLen + 40

// MaxReplyLen is the largest reply frame Build writes.
const MaxReplyLen = MaxSYNLen

// Path is the link and network identity of one direction of a flow: what our
// frames carry as source and destination.
type Path struct {
	SrcMAC, DstMAC [6]byte
	Src, Dst       [4]byte
	SrcPort        uint16
	DstPort        uint16
	// NoDF leaves Don't Fragment off: the route's MTU was locked at 552
	// after a frag-needed error reporting less (C5).
	NoDF bool
	// V6 makes the frame IPv6 between Src6 and Dst6 (Src and Dst unused),
	// with FlowLabel (V3).
	V6         bool
	Src6, Dst6 [16]byte
	FlowLabel  uint32
}

// ipLen is the length of p's IP header.
func (p *Path) ipLen() int {
	if p.V6 {
		return IPv6HdrLen
	}
	return IPv4HdrLen
}

// ether is p's EtherType.
func (p *Path) ether() uint16 {
	if p.V6 {
		return EtherIPv6
	}
	return EtherIPv4
}

// pseudo is the TCP pseudo-header sum of a tl-byte segment on p.
func (p *Path) pseudo(tl int) uint32 {
	if p.V6 {
		return PseudoSum6(&p.Src6, &p.Dst6, ProtoTCP, uint32(tl))
	}
	return PseudoSum4(p.Src, p.Dst, ProtoTCP, uint16(tl))
}

// encodeIP writes p's IP header for a tl-byte TCP segment: IPv4 as S1/X1
// (TOS, ID, DF unless NoDF, TTL), IPv6 as V2/V7 (traffic class, flow label,
// hop limit; no ID).
func (p *Path) encodeIP(b []byte, tl int, tos uint8, id uint16, ttl uint8) {
	if ttl == 0 {
		ttl = 64
	}
	if p.V6 {
		IPv6(b).Encode(&IPv6Fields{TrafficClass: tos, FlowLabel: p.FlowLabel, PayloadLen: uint16(tl),
			NextHeader: ProtoTCP, HopLimit: ttl, Src: p.Src6, Dst: p.Dst6})
		return
	}
	IPv4(b).Encode(&IPv4Fields{TOS: tos, TotalLen: uint16(IPv4HdrLen + tl), ID: id,
		DF: !p.NoDF, TTL: ttl, Protocol: ProtoTCP, Src: p.Src, Dst: p.Dst})
}

// Reply is a segment to build with [Build].
type Reply struct {
	Flags  Flags
	Seq    Seq
	Ack    Seq
	Window uint16
	IPID   uint16
	TOS    uint8
	TTL    uint8
	// TS adds the timestamp option as Linux lays it out on non-SYN segments:
	// NOP NOP TS (E2, H1).
	TS           bool
	TSVal, TSEcr uint32
	// DSACK adds one SACK block [SackL, SackR) (Y8 crossed SYN-ACK, E5).
	DSACK        bool
	SackL, SackR Seq
	// SYNOpts lays out the options of a SYN (S4) instead, for the
	// simultaneous-open SYN-ACK (Y8); needs Params.
	SYNOpts *Params
	MSS     uint16
	// Payload is the segment's data (request mode): b must hold it after
	// the headers.
	Payload []byte
}

// Build writes an Ethernet/IP/TCP frame for r on path p into b (at least
// MaxReplyLen bytes, plus the payload's) and returns its length. Checksums are final (S8).
func Build(b []byte, p *Path, r *Reply) int {
	Ethernet(b).Encode(p.DstMAC[:], p.SrcMAC[:], p.ether())
	il := p.ipLen()
	tl := encodeTCP(b[EthHdrLen+il:], p.SrcPort, p.DstPort, r, p.pseudo(0))
	p.encodeIP(b[EthHdrLen:], tl, r.TOS, r.IPID, r.TTL)
	return EthHdrLen + il + tl
}

// encodeTCP writes r's TCP segment from sport to dport into t with its
// checksum, pseudo being the pseudo-header's sum without the length, and
// returns the segment's length. The checksum is summed from the values
// written, not read back: a word load across the narrower stores that
// just wrote it waits for them to reach the cache (no store forwarding),
// which made the sum of a 32-byte header cost 20 ns.
func encodeTCP(t TCP, sport, dport uint16, r *Reply, pseudo uint32) int {
	opts := t[TCPHdrLen:]
	n := 0
	var s uint32
	if r.SYNOpts != nil {
		n, _ = r.SYNOpts.WriteSYNOptions(opts, r.MSS, r.TSVal, r.TSEcr)
		s = Sum(opts[:n], 0)
	} else {
		if r.TS {
			opts[0], opts[1], opts[2], opts[3] = OptNOP, OptNOP, OptTimestamp, 10
			binary.BigEndian.PutUint32(opts[4:], r.TSVal)
			binary.BigEndian.PutUint32(opts[8:], r.TSEcr)
			n = 12
			s += (OptNOP<<8 | OptNOP) + (OptTimestamp<<8 | 10) + sum32(r.TSVal) + sum32(r.TSEcr)
		}
		if r.DSACK {
			opts[n], opts[n+1], opts[n+2], opts[n+3] = OptNOP, OptNOP, OptSACK, 10
			binary.BigEndian.PutUint32(opts[n+4:], uint32(r.SackL))
			binary.BigEndian.PutUint32(opts[n+8:], uint32(r.SackR))
			n += 12
			s += (OptNOP<<8 | OptNOP) + (OptSACK<<8 | 10) + sum32(uint32(r.SackL)) + sum32(uint32(r.SackR))
		}
	}
	hl := TCPHdrLen + n
	tl := hl + copy(t[hl:], r.Payload)
	t.Encode(&TCPFields{SrcPort: sport, DstPort: dport, Seq: r.Seq, Ack: r.Ack,
		DataOffset: uint8(hl), Flags: r.Flags, Window: r.Window})
	s += uint32(sport) + uint32(dport) + sum32(uint32(r.Seq)) + sum32(uint32(r.Ack)) + (uint32(hl/4)<<12 | uint32(r.Flags)) + uint32(r.Window)
	if len(r.Payload) > 0 {
		s = Sum(r.Payload, s) // the caller's bytes, not the copy just written
	}
	binary.BigEndian.PutUint16(t[16:], Fold(s+pseudo+uint32(tl)))
	return tl
}

// sum32 is the sum of v's two 16-bit words.
func sum32(v uint32) uint32 { return v>>16 + v&0xffff }

// ReplyTemplate is the Ethernet and IP headers of one path's segments
// other than SYNs (ACKs, data, FINs, RSTs), built once: Build copies them
// and finishes the IP header from sums of its constant words, so a
// segment costs its TCP header and one sum over it.
type ReplyTemplate struct {
	hdr      [EthHdrLen + IPv6HdrLen]byte
	n        int // the headers' length
	v6       bool
	tos, ttl uint8
	dport    uint16
	ipSum    uint32 // IPv4: the header's sum without total length and ID
	pseudo   uint32 // the pseudo-header's sum without the length
}

// Reset builds t for path p (SrcPort and FlowLabel ignored: they are the
// connection's) and segments with IP TOS tos and TTL ttl (0: 64).
func (t *ReplyTemplate) Reset(p *Path, tos, ttl uint8) {
	if ttl == 0 {
		ttl = 64
	}
	*t = ReplyTemplate{v6: p.V6, tos: tos, ttl: ttl, dport: p.DstPort, pseudo: p.pseudo(0)}
	b := t.hdr[:]
	Ethernet(b).Encode(p.DstMAC[:], p.SrcMAC[:], p.ether())
	t.n = EthHdrLen + p.ipLen()
	p.encodeIP(b[EthHdrLen:], 0, tos, 0, ttl)
	if !p.V6 {
		ip := IPv4(b[EthHdrLen:])
		ip[2], ip[3], ip[10], ip[11] = 0, 0, 0, 0
		t.ipSum = Sum(ip[:IPv4HdrLen], 0)
	}
}

// Build writes r's frame from source port sport (flow label for IPv6)
// into b, as Build would on the template's path, and returns its length;
// 0 when r is not the template's to build (a SYN's options, another TOS or
// TTL): use Build then.
func (t *ReplyTemplate) Build(b []byte, sport uint16, flowLabel uint32, r *Reply) int {
	ttl := r.TTL
	if ttl == 0 {
		ttl = 64
	}
	if r.SYNOpts != nil || r.TOS != t.tos || ttl != t.ttl {
		return 0
	}
	copy(b[:t.n], t.hdr[:t.n])
	tl := encodeTCP(b[t.n:], sport, t.dport, r, t.pseudo)
	ip := b[EthHdrLen:]
	if t.v6 {
		binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(ip)&^0xfffff|flowLabel&0xfffff)
		binary.BigEndian.PutUint16(ip[4:], uint16(tl))
	} else {
		total := uint16(IPv4HdrLen + tl)
		binary.BigEndian.PutUint16(ip[2:], total)
		binary.BigEndian.PutUint16(ip[4:], r.IPID)
		binary.BigEndian.PutUint16(ip[10:], Fold(t.ipSum+uint32(total)+uint32(r.IPID)))
	}
	return t.n + tl
}

// BuildARPReply writes an ARP reply telling requester (mac, ip) that ourIP
// is at ourMAC, and returns its length.
func BuildARPReply(b []byte, ourMAC [6]byte, ourIP [4]byte, reqMAC []byte, reqIP [4]byte) int {
	Ethernet(b).Encode(reqMAC, ourMAC[:], EtherARP)
	a := b[EthHdrLen:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], EtherIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], ARPReply)
	copy(a[8:14], ourMAC[:])
	copy(a[14:18], ourIP[:])
	copy(a[18:24], reqMAC)
	copy(a[24:28], reqIP[:])
	// Pad to the Ethernet minimum so the frame is not a runt on real links.
	for i := EthHdrLen + ARPLen; i < 60; i++ {
		b[i] = 0
	}
	return 60
}

// NALen is the length of the neighbour advertisement BuildNA writes.
const NALen = EthHdrLen + IPv6HdrLen + 32

// BuildNA writes the neighbour advertisement (RFC 4861 §7.2.4) answering a
// solicitation from (reqMAC, reqIP) for ourIP, one of our dedicated IPv6
// sources, at ourMAC: solicited and override set, router clear, our MAC in
// a target link-layer address option, hop limit 255. It returns the length
// (NALen). This is the IPv6 counterpart of BuildARPReply.
func BuildNA(b []byte, ourMAC [6]byte, ourIP *[16]byte, reqMAC []byte, reqIP *[16]byte) int {
	Ethernet(b).Encode(reqMAC, ourMAC[:], EtherIPv6)
	IPv6(b[EthHdrLen:]).Encode(&IPv6Fields{PayloadLen: 32, NextHeader: ProtoICMPv6, HopLimit: 255, Src: *ourIP, Dst: *reqIP})
	m := b[EthHdrLen+IPv6HdrLen : NALen]
	clear(m)
	m[0] = ICMPv6NeighAdvert
	m[4] = 0x60 // S|O
	copy(m[8:24], ourIP[:])
	m[24], m[25] = 2, 1 // target link-layer address, 8 bytes
	copy(m[26:32], ourMAC[:])
	binary.BigEndian.PutUint16(m[2:], Fold(Sum(m, PseudoSum6(ourIP, reqIP, ProtoICMPv6, 32))))
	return NALen
}

// SYNTemplate is a SYN to one destination from one source address, built once
// (S1-S8). Stamp patches the source port, sequence number, TSval and IP ID and
// finishes both checksums from sums precomputed over the constant bytes, so a
// SYN costs a copy and a few additions.
type SYNTemplate struct {
	frame     [MaxSYNLen]byte
	n         int
	ipOff     int
	tcpOff    int
	tsOff     int // absolute offset of TSval, -1 without timestamps
	ipSum     uint32
	tcpSum    uint32
	flagsWord uint16 // doff|flags word as on the first SYN
	ecn       bool
	v6        bool
}

// NewSYNTemplate builds the template for path p (SrcPort ignored) with the
// option set and MSS of params.
func NewSYNTemplate(params *Params, p *Path) *SYNTemplate {
	t := &SYNTemplate{}
	t.Reset(params, p, params.MSS)
	return t
}

// Reset rebuilds t, e.g. with a smaller MSS after ICMP fragmentation-needed
// (C5, S9: the retransmitted SYN re-reads the MSS).
func (t *SYNTemplate) Reset(params *Params, p *Path, mss uint16) {
	b := t.frame[:]
	for i := range b {
		b[i] = 0
	}
	Ethernet(b).Encode(p.DstMAC[:], p.SrcMAC[:], p.ether())
	t.ipOff = EthHdrLen
	t.tcpOff = t.ipOff + p.ipLen()
	t.v6 = p.V6
	tcp := TCP(b[t.tcpOff:])
	on, tsv := params.WriteSYNOptions(tcp[TCPHdrLen:], mss, 0, 0)
	tl := TCPHdrLen + on
	flags := FlagSYN
	if params.ECN {
		flags |= FlagECE | FlagCWR // S3
		t.ecn = true
	}
	win := min(params.RcvWnd, 65535) // S3/S7: never scaled
	tcp.Encode(&TCPFields{DstPort: p.DstPort, DataOffset: uint8(tl), Flags: flags, Window: uint16(win)})
	t.flagsWord = binary.BigEndian.Uint16(tcp[12:])
	tcp[12], tcp[13] = 0, 0 // variable: summed per stamp
	t.tsOff = -1
	if tsv >= 0 {
		t.tsOff = t.tcpOff + TCPHdrLen + tsv
	}
	t.tcpSum = Sum(tcp[:tl], p.pseudo(tl))
	binary.BigEndian.PutUint16(tcp[12:], t.flagsWord)
	p.encodeIP(b[t.ipOff:], tl, params.TOS, 0, params.TTL)
	if !p.V6 {
		ip := IPv4(b[t.ipOff:])
		ip[10], ip[11] = 0, 0
		t.ipSum = Sum(ip[:IPv4HdrLen], 0)
	}
	t.n = t.tcpOff + tl
}

// Len is the frame length.
func (t *SYNTemplate) Len() int { return t.n }

// SYNParts are a template's frame and what a stamper outside Go (the XDP
// SYN generator) needs to do what Stamp does: the offsets of the IP and TCP
// headers and of TSval (0 without timestamps), the sums of the constant
// bytes, the data-offset and flags word.
type SYNParts struct {
	Frame                []byte
	IPOff, TCPOff, TSOff int
	IPSum, TCPSum        uint32
	FlagsWord            uint16
	V6                   bool
}

// Parts returns t's parts; Frame is a copy with the variable fields zero.
func (t *SYNTemplate) Parts() SYNParts {
	p := SYNParts{Frame: append([]byte(nil), t.frame[:t.n]...), IPOff: t.ipOff, TCPOff: t.tcpOff, IPSum: t.ipSum, TCPSum: t.tcpSum,
		FlagsWord: t.flagsWord, V6: t.v6}
	if t.tsOff > 0 {
		p.TSOff = t.tsOff
	}
	return p
}

// SetFlowLabel writes an IPv6 SYN's flow label (V3) into b, a frame Stamp
// wrote; an IPv4 SYN has none. The label is outside every checksum.
func (t *SYNTemplate) SetFlowLabel(b []byte, label uint32) {
	if t.v6 {
		w := binary.BigEndian.Uint32(b[t.ipOff:])
		binary.BigEndian.PutUint32(b[t.ipOff:], w&^0xfffff|label&0xfffff)
	}
}

// Stamp writes a SYN for one connection into b and returns its length.
// retransmit clears ECE|CWR as tcp_ecn_fallback does (S9). An IPv6 SYN has
// no IP ID (ipid is ignored) and gets its flow label from SetFlowLabel.
func (t *SYNTemplate) Stamp(b []byte, sport uint16, seq Seq, tsval uint32, ipid uint16, retransmit bool) int {
	copy(b[:t.n], t.frame[:t.n])
	if !t.v6 {
		binary.BigEndian.PutUint16(b[t.ipOff+4:], ipid)
		binary.BigEndian.PutUint16(b[t.ipOff+10:], Fold(t.ipSum+uint32(ipid)))
	}
	tcp := b[t.tcpOff:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint32(tcp[4:], uint32(seq))
	fw := t.flagsWord
	if retransmit && t.ecn {
		fw &^= uint16(FlagECE | FlagCWR)
		tcp[13] = byte(fw)
	}
	s := t.tcpSum + uint32(sport) + uint32(seq>>16) + uint32(seq&0xffff) + uint32(fw)
	if t.tsOff >= 0 {
		binary.BigEndian.PutUint32(b[t.tsOff:], tsval)
		s += tsval>>16 + tsval&0xffff
	}
	binary.BigEndian.PutUint16(tcp[16:], Fold(s))
	return t.n
}
