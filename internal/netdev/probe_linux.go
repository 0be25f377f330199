package netdev

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Conflict is an address another host answers for: its MAC.
type Conflict struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// ProbeAddrs probes addresses of both families: ProbeIPv4 for the IPv4
// ones, ProbeIPv6 for the others.
func ProbeAddrs(ifindex int, mac net.HardwareAddr, addrs []netip.Addr, wait time.Duration) ([]Conflict, error) {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	c4, err := ProbeIPv4(ifindex, mac, v4, wait)
	if err != nil {
		return nil, err
	}
	c6, err := ProbeIPv6(ifindex, mac, v6, wait)
	return append(c4, c6...), err
}

// ProbeIPv4 asks the link of interface ifindex whether anyone uses the
// IPv4 addresses addrs before this host answers ARP for them: RFC 5227's
// ARP probe (sender address 0.0.0.0, so no neighbour cache learns
// anything), three times 100 ms apart, then a wait, on a packet socket
// of the calling thread's namespace. A host that answers, or that
// announces or probes an address itself, is a conflict.
func ProbeIPv4(ifindex int, mac net.HardwareAddr, addrs []netip.Addr, wait time.Duration) ([]Conflict, error) {
	probes := make([][]byte, len(addrs))
	for i, a := range addrs {
		probes[i] = arpProbe(mac, a.As4())
	}
	return probeLink(ifindex, unix.ETH_P_ARP, probes, addrs, wait, func(f []byte) (netip.Addr, net.HardwareAddr, bool) {
		a, from, ok := arpClaim(f, mac)
		return netip.AddrFrom4(a), from, ok
	})
}

// probeLink sends probes (Ethernet frames, to the destination MAC each
// holds) three times 100 ms apart on a packet socket for protocol proto
// on interface ifindex, then waits; claim says which address a frame
// received meanwhile claims and who sent it. An address of addrs claimed
// by someone is a conflict, reported once.
func probeLink(ifindex int, proto uint16, probes [][]byte, addrs []netip.Addr, wait time.Duration,
	claim func(f []byte) (netip.Addr, net.HardwareAddr, bool)) ([]Conflict, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex}); err != nil {
		return nil, err
	}
	var out []Conflict
	seen := map[netip.Addr]bool{}
	buf := make([]byte, 256)
	deadline := time.Now().Add(200*time.Millisecond + wait)
	for round := 0; round < 3; round++ {
		for _, f := range probes {
			to := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex, Halen: 6}
			copy(to.Addr[:6], f[0:6])
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return nil, err
			}
		}
		until := time.Now().Add(100 * time.Millisecond)
		if round == 2 {
			until = deadline
		}
		for left := time.Until(until); left > 0; left = time.Until(until) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
				return nil, err
			} else if n == 0 {
				continue
			}
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if err != nil {
				continue
			}
			if a, from, ok := claim(buf[:n]); ok && slices.Contains(addrs, a) && !seen[a] {
				seen[a] = true
				out = append(out, Conflict{Addr: a, MAC: from})
			}
		}
	}
	return out, nil
}

// arpProbe is an RFC 5227 ARP probe for target from mac, in an Ethernet
// frame to the broadcast address.
func arpProbe(mac net.HardwareAddr, target [4]byte) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_ARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], mac)
	// sender IP 0.0.0.0, target MAC zero: a probe
	copy(a[24:28], target[:])
	return f
}

// arpClaim says which address an ARP frame from another host claims: the
// sender address of a reply or an announcement, or the target of another
// host's probe.
func arpClaim(f []byte, ours net.HardwareAddr) (addr [4]byte, from net.HardwareAddr, ok bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != unix.ETH_P_ARP {
		return addr, nil, false
	}
	a := f[14:]
	if binary.BigEndian.Uint16(a[2:]) != 0x0800 || a[4] != 6 || a[5] != 4 {
		return addr, nil, false
	}
	sha := net.HardwareAddr(append([]byte(nil), a[8:14]...))
	if sha.String() == ours.String() {
		return addr, nil, false
	}
	spa := [4]byte(a[14:18])
	if spa == [4]byte{} { // another host's probe for the same address
		return [4]byte(a[24:28]), sha, true
	}
	return spa, sha, true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ProbeIPv6 is ProbeIPv4 for IPv6: duplicate address detection (RFC 4862
// §5.4): a neighbour solicitation for each address from the unspecified
// address to its solicited-node group, three times 100 ms apart, then a
// wait. A host that advertises an address, or solicits it for its own
// detection, is a conflict.
func ProbeIPv6(ifindex int, mac net.HardwareAddr, addrs []netip.Addr, wait time.Duration) ([]Conflict, error) {
	probes := make([][]byte, len(addrs))
	for i, a := range addrs {
		probes[i] = dadSolicit(mac, a.As16())
	}
	return probeLink(ifindex, unix.ETH_P_IPV6, probes, addrs, wait, func(f []byte) (netip.Addr, net.HardwareAddr, bool) {
		a, from, ok := ndClaim(f, mac)
		return netip.AddrFrom16(a), from, ok
	})
}

// dadSolicit is a duplicate address detection solicitation for target
// from mac: source ::, destination target's solicited-node group, no
// source link-layer option (RFC 4861 §4.3, RFC 4862 §5.4.2).
func dadSolicit(mac net.HardwareAddr, target [16]byte) []byte {
	f := make([]byte, 14+40+24)
	group := [16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: target[13], 14: target[14], 15: target[15]}
	copy(f[0:6], []byte{0x33, 0x33, group[12], group[13], group[14], group[15]})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	ip := f[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 24)
	ip[6], ip[7] = unix.IPPROTO_ICMPV6, 255
	copy(ip[24:40], group[:])
	icmp := ip[40:]
	icmp[0] = 135 // neighbour solicitation
	copy(icmp[8:24], target[:])
	binary.BigEndian.PutUint16(icmp[2:], icmp6Checksum(ip[8:24], ip[24:40], icmp))
	return f
}

// ndClaim says which address a neighbour discovery frame from another host
// claims: the target of an advertisement, or of another host's
// duplicate address detection.
func ndClaim(f []byte, ours net.HardwareAddr) (addr [16]byte, from net.HardwareAddr, ok bool) {
	if len(f) < 14+40+24 || binary.BigEndian.Uint16(f[12:]) != unix.ETH_P_IPV6 || f[14+6] != unix.IPPROTO_ICMPV6 {
		return addr, nil, false
	}
	src := net.HardwareAddr(append([]byte(nil), f[6:12]...))
	if src.String() == ours.String() {
		return addr, nil, false
	}
	ip, icmp := f[14:], f[14+40:]
	switch {
	case icmp[0] == 136: // advertisement
	case icmp[0] == 135 && [16]byte(ip[8:24]) == [16]byte{}: // another's detection
	default:
		return addr, nil, false
	}
	return [16]byte(icmp[8:24]), src, true
}

// icmp6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// between src and dst (RFC 8200 §8.1).
func icmp6Checksum(src, dst, msg []byte) uint16 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	add(src)
	add(dst)
	s += uint32(len(msg)) + unix.IPPROTO_ICMPV6
	add(msg)
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
