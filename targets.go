package xdpconnect

import (
	"errors"
	"fmt"
	"net/netip"
)

// MaxTargets bounds the targets of a session (every target needs table
// space for each source port).
const MaxTargets = 1 << 16

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// CheckTarget says in words what is wrong with a target that no TCP
// connection can reach or that xdpconnect cannot, with connect()'s errno.
// What depends on the host's routes (its own addresses, subnet
// broadcasts) is checked when the route is resolved (Open).
func CheckTarget(a netip.Addr) error {
	switch {
	case a.Is4In6():
		return errors.New("an IPv4-mapped IPv6 address: give the IPv4 address itself")
	case a.IsLinkLocalUnicast():
		return errors.New("a link-local address: give a global one (xdpconnect resolves routes, not scopes)")
	case a.Zone() != "":
		return fmt.Errorf("a global address with a zone (%%%s): a zone names the link of a link-local address only; give the address without it", a.Zone())
	case a.IsUnspecified():
		return errors.New("the unspecified address means this host (connect() would reach it over loopback); xdpconnect sends through a network interface: target a server in another host or network namespace")
	case a.IsLoopback():
		return errors.New("a loopback address: xdpconnect sends through a network interface and cannot reach this host's own services; target a server in another host or network namespace")
	case a.IsMulticast():
		return errors.New("a multicast address: TCP cannot connect to it (connect() fails with ENETUNREACH)")
	case a == limitedBroadcast:
		return errors.New("the broadcast address: TCP cannot connect to it (connect() fails with ENETUNREACH)")
	}
	return nil
}

// checkSrc rejects source addresses no reply could come back to.
func checkSrc(a netip.Addr, dsts []netip.AddrPort) error {
	switch {
	case a.Is4In6() || a.Zone() != "" || a.IsLinkLocalUnicast():
		return errors.New("give a plain IPv4 or global IPv6 address")
	case a.IsUnspecified():
		return errors.New("the unspecified address is not one replies can reach: leave it out to use the route's source address")
	case a.IsLoopback():
		return errors.New("a loopback address cannot be a source on a network interface (connect() fails with EADDRNOTAVAIL)")
	case a.IsMulticast(), a == limitedBroadcast:
		return errors.New("a multicast or broadcast address cannot be a TCP source (connect() fails with EADDRNOTAVAIL)")
	}
	for _, d := range dsts {
		if d.Addr() == a {
			return fmt.Errorf("is the target's own address (%s): a connection to itself is not a load test", d)
		}
	}
	return nil
}
