package netdev

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// OwnedAddrs maps the addresses the kernel owns (in the calling thread's
// namespace) to their interface index.
func OwnedAddrs() (map[netip.Addr]int, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	m := map[netip.Addr]int{}
	for _, a := range addrs {
		if x, ok := netip.AddrFromSlice(a.IP); ok {
			m[x.Unmap()] = a.LinkIndex
		}
	}
	return m, nil
}

// SourceError says why a source address cannot be used on an interface.
type SourceError struct {
	Addr   netip.Addr
	Reason string
	// OffLink says the address is in none of the interface's subnets:
	// usable only if a router sends its traffic here.
	OffLink bool
}

func (e *SourceError) Error() string { return e.Addr.String() + ": " + e.Reason }

// CheckSources rejects source addresses the peer could not send replies to
// over interface ifindex (named ifname): an address the kernel does not own
// (not in owned) must be in one of the interface's subnets unless routed
// says a router sends its traffic here, and no source may be a subnet's
// broadcast address. The error is a *SourceError for the first bad one.
func CheckSources(srcs []netip.Addr, owned map[netip.Addr]int, ifindex int, ifname string, routed bool) error {
	addrs, err := netlink.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	var nets []netip.Prefix
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ip = ip.Unmap(); ip.Is4() && ones > 32 {
			ones -= 96
		}
		nets = append(nets, netip.PrefixFrom(ip, ones))
	}
	for _, s := range srcs {
		in := false
		for _, n := range nets {
			if n.Contains(s) {
				in = true
				if s.Is4() && n.Bits() < 31 && s == lastAddr(n) {
					return &SourceError{Addr: s, Reason: fmt.Sprintf("the broadcast address of %s on %s cannot be a TCP source (EADDRNOTAVAIL)", n.Masked(), ifname)}
				}
			}
		}
		if _, ok := owned[s]; !ok && !in && !routed {
			return &SourceError{Addr: s, OffLink: true, Reason: fmt.Sprintf("not an address of this host and not in a subnet of %s (%v): nothing would send its replies here (Linux: EADDRNOTAVAIL). Use a spare address of %s's subnets", ifname, nets, ifname)}
		}
	}
	return nil
}

// lastAddr is an IPv4 prefix's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
