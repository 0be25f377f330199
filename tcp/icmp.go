package tcp

import "syscall"

// ICMP types used by the state machine.
const (
	ICMPEchoReply      = 0
	ICMPDestUnreach    = 3
	ICMPSourceQuench   = 4
	ICMPRedirect       = 5
	ICMPTimeExceeded   = 11
	ICMPParamProblem   = 12
	ICMPFragNeeded     = 4 // code of ICMPDestUnreach
	ICMPv6DestUnreach  = 1
	ICMPv6PacketTooBig = 2
	ICMPv6TimeExceeded = 3
	ICMPv6ParamProblem = 4
	ICMPv6NeighSolicit = 135
	ICMPv6NeighAdvert  = 136
)

// icmpUnreach maps destination-unreachable codes 0..15 to errno (C2,
// icmp_err_convert); 4 (fragmentation needed) is handled apart (C5).
var icmpUnreach = [16]syscall.Errno{
	0: syscall.ENETUNREACH, 1: syscall.EHOSTUNREACH, 2: syscall.ENOPROTOOPT, 3: syscall.ECONNREFUSED,
	4: 0, 5: syscall.EOPNOTSUPP, 6: syscall.ENETUNREACH, 7: syscall.EHOSTDOWN, 8: syscall.ENONET,
	9: syscall.ENETUNREACH, 10: syscall.EHOSTUNREACH, 11: syscall.ENETUNREACH, 12: syscall.EHOSTUNREACH,
	13: syscall.EHOSTUNREACH, 14: syscall.EHOSTUNREACH, 15: syscall.EHOSTUNREACH,
}

// ICMPErrno maps an ICMPv4 error to the errno connect() reports (C2), or 0
// when the message is ignored (C3) or is fragmentation-needed (C5).
func ICMPErrno(typ, code uint8) syscall.Errno {
	switch typ {
	case ICMPDestUnreach:
		if int(code) < len(icmpUnreach) {
			return icmpUnreach[code]
		}
	case ICMPTimeExceeded:
		if code == 0 {
			return syscall.EHOSTUNREACH
		}
	case ICMPParamProblem:
		return syscall.EPROTO
	}
	return 0
}

// ICMPv6Errno maps an ICMPv6 error to errno (V5, icmpv6_err_convert).
func ICMPv6Errno(typ, code uint8) syscall.Errno {
	switch typ {
	case ICMPv6DestUnreach:
		switch code {
		case 0:
			return syscall.ENETUNREACH
		case 1, 5, 6:
			return syscall.EACCES
		case 2, 3:
			return syscall.EHOSTUNREACH
		case 4:
			return syscall.ECONNREFUSED
		}
		return syscall.EPROTO
	case ICMPv6TimeExceeded:
		return syscall.EHOSTUNREACH
	case ICMPv6ParamProblem:
		return syscall.EPROTO
	}
	return 0
}

// MinPMTU is ip_rt_min_pmtu (C5).
const MinPMTU = 552

// ICMPVerdict is what an ICMP error does to a connection.
type ICMPVerdict struct {
	Event Event         // EvFailed, or EvNone
	Err   syscall.Errno // with EvFailed
	// PMTU > 0 asks the caller to rebuild the SYN template with MSS =
	// PMTU - 40 for the next (timer-driven) SYN (C5); NoDF then says the
	// route MTU is locked and DF must be cleared.
	PMTU int
	NoDF bool
}

// ICMPInput applies an ICMPv4 error that quotes a segment of c with
// sequence number quotedSeq (C1-C5). In SYN-SENT every mapped error aborts at
// once (C2) and no SYN is retransmitted because of it (C4); after
// ESTABLISHED errors are soft and ignored here.
func (p *Params) ICMPInput(c *Conn, typ, code uint8, quotedSeq Seq, mtu uint16) ICMPVerdict {
	if c.State != SynSent && c.State != SynRecv {
		return ICMPVerdict{}
	}
	// C1: the quoted sequence must lie in [SND.UNA, SND.NXT] = {ISS, ISS+1}.
	if quotedSeq != c.ISS && quotedSeq != c.ISS+1 {
		return ICMPVerdict{}
	}
	// V6: an IPv6 Packet Too Big leaves the SYN as it is (ICMPv6Errno
	// ignores it); type 3 code 4 is an IPv6 time exceeded.
	if !p.IPv6 && typ == ICMPDestUnreach && code == ICMPFragNeeded {
		pmtu := int(mtu)
		if pmtu < MinPMTU {
			return ICMPVerdict{PMTU: MinPMTU, NoDF: true}
		}
		return ICMPVerdict{PMTU: pmtu}
	}
	e := ICMPErrno(typ, code)
	if p.IPv6 {
		e = ICMPv6Errno(typ, code)
	}
	if e == 0 {
		return ICMPVerdict{}
	}
	c.State = Closed
	return ICMPVerdict{Event: EvFailed, Err: e}
}
