package netdev

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Conflict is an address another host answers for: its MAC.
type Conflict struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// ProbeIPv4 asks the link of interface ifindex whether anyone uses the
// IPv4 addresses addrs before this host answers ARP for them: RFC 5227's
// ARP probe (sender address 0.0.0.0, so no neighbour cache learns
// anything), three times 100 ms apart, then a wait, on a packet socket
// of the calling thread's namespace. A host that answers, or that
// announces or probes an address itself, is a conflict.
func ProbeIPv4(ifindex int, mac net.HardwareAddr, addrs []netip.Addr, wait time.Duration) ([]Conflict, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	want := map[[4]byte]bool{}
	for _, a := range addrs {
		want[a.As4()] = true
	}
	proto := int(htons(unix.ETH_P_ARP))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex}); err != nil {
		return nil, err
	}
	bcast := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	var out []Conflict
	seen := map[[4]byte]bool{}
	buf := make([]byte, 128)
	deadline := time.Now().Add(200*time.Millisecond + wait)
	for probe := 0; ; probe++ {
		if probe < 3 {
			for a := range want {
				if err := unix.Sendto(fd, arpProbe(mac, a), 0, bcast); err != nil {
					return nil, err
				}
			}
		}
		until := time.Now().Add(100 * time.Millisecond)
		if probe >= 2 {
			until = deadline
		}
		for {
			left := time.Until(until)
			if left <= 0 {
				break
			}
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
			if a, from, ok := arpClaim(buf[:n], mac); ok && want[a] && !seen[a] {
				seen[a] = true
				out = append(out, Conflict{Addr: netip.AddrFrom4(a), MAC: from})
			}
		}
		if probe >= 2 {
			return out, nil
		}
	}
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
