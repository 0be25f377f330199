package tcp

import "encoding/binary"

// MaxSYNLen is the largest SYN frame we build (Ethernet + VLAN + IPv4 + TCP
// with 40 option bytes).
const MaxSYNLen = EthHdrLen + VLANTagLen + IPv4HdrLen + TCPHdrLen + 40

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
}

// Build writes an Ethernet/IPv4/TCP frame for r on path p into b (at least
// MaxReplyLen bytes) and returns its length. Checksums are final (S8).
func Build(b []byte, p *Path, r *Reply) int {
	Ethernet(b).Encode(p.DstMAC[:], p.SrcMAC[:], EtherIPv4)
	t := TCP(b[EthHdrLen+IPv4HdrLen:])
	opts := t[TCPHdrLen:]
	n := 0
	if r.SYNOpts != nil {
		n, _ = r.SYNOpts.WriteSYNOptions(opts, r.MSS, r.TSVal, r.TSEcr)
	} else {
		if r.TS {
			opts[0], opts[1], opts[2], opts[3] = OptNOP, OptNOP, OptTimestamp, 10
			binary.BigEndian.PutUint32(opts[4:], r.TSVal)
			binary.BigEndian.PutUint32(opts[8:], r.TSEcr)
			n = 12
		}
		if r.DSACK {
			opts[n], opts[n+1], opts[n+2], opts[n+3] = OptNOP, OptNOP, OptSACK, 10
			binary.BigEndian.PutUint32(opts[n+4:], uint32(r.SackL))
			binary.BigEndian.PutUint32(opts[n+8:], uint32(r.SackR))
			n += 12
		}
	}
	tl := TCPHdrLen + n
	t.Encode(&TCPFields{SrcPort: p.SrcPort, DstPort: p.DstPort, Seq: r.Seq, Ack: r.Ack,
		DataOffset: uint8(tl), Flags: r.Flags, Window: r.Window})
	t = t[:tl]
	t.SetChecksum4(p.Src, p.Dst)
	ttl := r.TTL
	if ttl == 0 {
		ttl = 64
	}
	IPv4(b[EthHdrLen:]).Encode(&IPv4Fields{TOS: r.TOS, TotalLen: uint16(IPv4HdrLen + tl), ID: r.IPID,
		DF: !p.NoDF, TTL: ttl, Protocol: ProtoTCP, Src: p.Src, Dst: p.Dst})
	return EthHdrLen + IPv4HdrLen + tl
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
	Ethernet(b).Encode(p.DstMAC[:], p.SrcMAC[:], EtherIPv4)
	t.ipOff = EthHdrLen
	t.tcpOff = t.ipOff + IPv4HdrLen
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
	t.tcpSum = Sum(tcp[:tl], PseudoSum4(p.Src, p.Dst, ProtoTCP, uint16(tl)))
	binary.BigEndian.PutUint16(tcp[12:], t.flagsWord)
	ttl := params.TTL
	if ttl == 0 {
		ttl = 64
	}
	ip := IPv4(b[t.ipOff:])
	ip.Encode(&IPv4Fields{TOS: params.TOS, TotalLen: uint16(IPv4HdrLen + tl), DF: !p.NoDF, TTL: ttl,
		Protocol: ProtoTCP, Src: p.Src, Dst: p.Dst})
	ip[10], ip[11] = 0, 0
	t.ipSum = Sum(ip[:IPv4HdrLen], 0)
	t.n = t.tcpOff + tl
}

// Len is the frame length.
func (t *SYNTemplate) Len() int { return t.n }

// Stamp writes a SYN for one connection into b and returns its length.
// retransmit clears ECE|CWR as tcp_ecn_fallback does (S9).
func (t *SYNTemplate) Stamp(b []byte, sport uint16, seq Seq, tsval uint32, ipid uint16, retransmit bool) int {
	copy(b[:t.n], t.frame[:t.n])
	binary.BigEndian.PutUint16(b[t.ipOff+4:], ipid)
	binary.BigEndian.PutUint16(b[t.ipOff+10:], Fold(t.ipSum+uint32(ipid)))
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
