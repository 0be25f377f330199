package tcp

import (
	"encoding/binary"
	"math/bits"
)

// TCP option kinds.
const (
	OptEOL       = 0
	OptNOP       = 1
	OptMSS       = 2
	OptWS        = 3
	OptSACKPerm  = 4
	OptSACK      = 5
	OptTimestamp = 8
)

// Linux constants (include/net/tcp.h).
const (
	MSSDefault4 = 536  // peer MSS without the option, IPv4 (H2)
	MSSDefault6 = 1220 // peer MSS without the option, IPv6 (V4)
	MaxWScale   = 14
	minSndMSS   = 48 // tcp_min_snd_mss
)

// Params are the per-namespace sysctls and socket options that shape an
// active open. Build them with [DefaultParams]; they are read-only afterwards.
type Params struct {
	Timestamps    bool   // tcp_timestamps (1 = with per-connection offset)
	TSNoOffset    bool   // tcp_timestamps=2: TSval is the raw ms clock (I4)
	SACK          bool   // tcp_sack
	WindowScaling bool   // tcp_window_scaling
	ECN           bool   // tcp_ecn=1: SYN carries ECE|CWR (S3)
	MSS           uint16 // advertised MSS (S5)
	RcvWnd        uint32 // initial receive window (S7)
	WScale        uint8  // our window scale (S6)
	TTL           uint8  // ip_default_ttl (S1)
	TOS           uint8  // IP_TOS (S1)
	IPv6          bool   // addresses are IPv6

	SynRetries     int   // tcp_syn_retries / TCP_SYNCNT (R3)
	LinearTimeouts int   // tcp_syn_linear_timeouts (R2)
	RTOInitMs      int64 // TCP_TIMEOUT_INIT (R1)
	RTOMaxMs       int64 // tcp_rto_max_ms (R2)
	TimeoutMinMs   int64 // TCP_TIMEOUT_MIN, 2 jiffies (R5)
	RTOMinMs       int64 // TCP_RTO_MIN: the least RTO of an established connection (E8)
}

// DefaultParams returns Linux 6.18's defaults for a route with the given MTU
// (spec §0 sysctl defaults).
func DefaultParams(mtu int, ipv6 bool) Params {
	p := Params{
		Timestamps: true, SACK: true, WindowScaling: true, TTL: 64, IPv6: ipv6,
		SynRetries: 6, LinearTimeouts: 4, RTOInitMs: 1000, RTOMaxMs: 120000, TimeoutMinMs: 8, RTOMinMs: 200,
	}
	p.SetMTU(mtu)
	p.WScale = WindowScale(6291456, 212992, 65536)
	return p
}

// SetMTU derives the advertised MSS and the initial window from the route
// MTU: S5 (ipv4_default_advmss) / V4, and S7.
func (p *Params) SetMTU(mtu int) {
	mss := max(mtu-40, 256)
	mss = min(mss, 65535-40) // ipv4_default_advmss: IPV4_MAX_PMTU - headers
	if p.IPv6 {
		// ip6_default_advmss: past the largest non-jumbo payload, 65535
		// means "any MSS, rely on path MTU discovery".
		if mss = max(mtu-60, 1220); mss > 65535-20 {
			mss = 65535
		}
	}
	p.MSS = uint16(mss)
	p.RcvWnd = InitialWindow(65536, uint32(mss))
}

// InitialWindow is S7: rcv_wnd = rounddown(full_space, mss). The SYN
// announces at most 65535 of it, its window being never scaled (RFC 7323
// §2.2); the ACKs after it announce it scaled.
func InitialWindow(fullSpace, mss uint32) uint32 {
	w := fullSpace
	if w > mss {
		w -= w % mss
	}
	return w
}

// WindowScale is S6: clamp(ilog2(max(rmem2, rmemMax, space)) - 15, 0, 14).
func WindowScale(rmem2, rmemMax, space uint32) uint8 {
	m := max(rmem2, rmemMax, space)
	w := bits.Len32(m) - 1 - 15
	return uint8(min(max(w, 0), MaxWScale))
}

// SYNOptionsLen is the option length of our SYN for p (S4).
func (p *Params) SYNOptionsLen() int {
	n := 4 // MSS
	switch {
	case p.Timestamps:
		n += 12 // SACK-perm (or NOP NOP) folded into the timestamp word
	case p.SACK:
		n += 4 // NOP NOP SACK-perm
	}
	if p.WindowScaling {
		n += 4
	}
	return n
}

// WriteSYNOptions writes the SYN's options in Linux's order and returns
// their length (S4); TSecr is 0. tsvalOff reports where TSval sits (-1 when
// timestamps are off), so a template can patch it.
func (p *Params) WriteSYNOptions(b []byte, mss uint16, tsval, tsecr uint32) (n, tsvalOff int) {
	tsvalOff = -1
	b[0], b[1] = OptMSS, 4
	binary.BigEndian.PutUint16(b[2:], mss)
	n = 4
	switch {
	case p.Timestamps && p.SACK:
		b[n], b[n+1], b[n+2], b[n+3] = OptSACKPerm, 2, OptTimestamp, 10
	case p.Timestamps:
		b[n], b[n+1], b[n+2], b[n+3] = OptNOP, OptNOP, OptTimestamp, 10
	case p.SACK:
		b[n], b[n+1], b[n+2], b[n+3] = OptNOP, OptNOP, OptSACKPerm, 2
	}
	if p.Timestamps {
		tsvalOff = n + 4
		binary.BigEndian.PutUint32(b[n+4:], tsval)
		binary.BigEndian.PutUint32(b[n+8:], tsecr)
		n += 12
	} else if p.SACK {
		n += 4
	}
	if p.WindowScaling {
		b[n], b[n+1], b[n+2], b[n+3] = OptNOP, OptWS, 3, p.WScale
		n += 4
	}
	return n, tsvalOff
}

// Options are the options of a received segment (Y1).
type Options struct {
	MSS      uint16 // 0 when absent
	WScale   uint8  // valid when HasWS
	HasWS    bool
	SACKPerm bool
	HasSACK  bool // SACK blocks (not on a SYN): the receiver holds data past a hole
	SACKEdge Seq  // the blocks' highest right edge, when HasSACK
	HasTS    bool
	TSVal    uint32
	TSEcr    uint32
}

// ParseOptions parses b as Linux's tcp_parse_options does (Y1): EOL stops, NOP
// is skipped, a length below 2 or running past the header stops parsing with
// what was seen so far kept; MSS, WS and SACK-permitted count only on a SYN;
// a window scale above 14 is taken as 14 (RFC 7323 §2.3).
//
// The two layouts Linux sends nearly always are read at once, as its
// tcp_fast_parse_options reads the first: a segment's aligned timestamp
// (NOP, NOP, TS), and a SYN-ACK's MSS, SACK-permitted, TS, NOP, WS. Any
// other bytes are walked option by option (walkOptions), with the same
// outcome for these two (FuzzOptions).
func ParseOptions(b []byte, syn bool) Options {
	if len(b) == 12 && binary.BigEndian.Uint32(b) == 0x0101080a {
		return Options{HasTS: true, TSVal: binary.BigEndian.Uint32(b[4:]), TSEcr: binary.BigEndian.Uint32(b[8:])}
	}
	if len(b) == 20 && syn && binary.BigEndian.Uint16(b) == 0x0204 && binary.BigEndian.Uint32(b[4:]) == 0x0402080a && binary.BigEndian.Uint32(b[16:])>>8 == 0x010303 {
		return Options{MSS: binary.BigEndian.Uint16(b[2:]), SACKPerm: true, HasWS: true, WScale: min(b[19], MaxWScale),
			HasTS: true, TSVal: binary.BigEndian.Uint32(b[8:]), TSEcr: binary.BigEndian.Uint32(b[12:])}
	}
	return walkOptions(b, syn)
}

// walkOptions is ParseOptions for any bytes: option by option.
func walkOptions(b []byte, syn bool) Options {
	var o Options
	for len(b) > 0 {
		kind := b[0]
		if kind == OptEOL {
			break
		}
		if kind == OptNOP {
			b = b[1:]
			continue
		}
		if len(b) < 2 {
			break
		}
		l := int(b[1])
		if l < 2 || l > len(b) {
			break
		}
		switch kind {
		case OptMSS:
			if l == 4 && syn && binary.BigEndian.Uint16(b[2:]) != 0 {
				o.MSS = binary.BigEndian.Uint16(b[2:])
			}
		case OptWS:
			if l == 3 && syn {
				o.HasWS = true
				o.WScale = min(b[2], MaxWScale)
			}
		case OptSACKPerm:
			o.SACKPerm = o.SACKPerm || l == 2 && syn
		case OptSACK:
			if l >= 10 && (l-2)%8 == 0 && !syn {
				for i := 2; i < l; i += 8 {
					r := Seq(binary.BigEndian.Uint32(b[i+4:]))
					if !o.HasSACK || o.SACKEdge.LessThan(r) {
						o.SACKEdge = r
					}
					o.HasSACK = true
				}
			}
		case OptTimestamp:
			if l == 10 {
				o.HasTS = true
				o.TSVal = binary.BigEndian.Uint32(b[2:])
				o.TSEcr = binary.BigEndian.Uint32(b[6:])
			}
		}
		b = b[l:]
	}
	return o
}
