package route

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NextHop is where a packet to Dst leaves and whom it is sent to.
type NextHop struct {
	Dst     netip.Addr       // the destination asked for
	IfIndex int              // outgoing interface
	IfName  string           // outgoing interface name
	IfMAC   net.HardwareAddr // outgoing interface address: our Ethernet source
	MTU     int              // route MTU if set, else the interface MTU
	Src     netip.Addr       // preferred source address
	Gateway netip.Addr       // invalid when Dst is on-link
	DstMAC  net.HardwareAddr // the neighbour's address: our Ethernet destination
}

// Neighbour is the address resolved at the link layer: the gateway, or the
// destination itself when it is on-link.
func (n NextHop) Neighbour() netip.Addr {
	if n.Gateway.IsValid() {
		return n.Gateway
	}
	return n.Dst
}

// Error is a resolution failure: Op says which step failed, Err is the errno.
type Error struct {
	Op  string
	Dst netip.Addr
	Err error
}

// Error describes the failed step, the destination and the errno.
func (e *Error) Error() string { return fmt.Sprintf("route %s %s: %v", e.Op, e.Dst, e.Err) }

// Unwrap lets errors.Is see the errno.
func (e *Error) Unwrap() error { return e.Err }

// Resolver looks up next hops in one network namespace.
type Resolver struct {
	// Handle is the netlink handle to use; nil means the calling thread's
	// namespace.
	Handle *netlink.Handle
	// NeighTimeout bounds address resolution; 0 means 3 s, the kernel's
	// own give-up time with default ARP settings (3 probes, 1 s apart).
	NeighTimeout time.Duration
}

func (r *Resolver) h() *netlink.Handle {
	if r.Handle != nil {
		return r.Handle
	}
	return &netlink.Handle{}
}

// Resolve returns the next hop for dst, resolving the neighbour if needed.
func (r *Resolver) Resolve(ctx context.Context, dst netip.Addr) (NextHop, error) {
	nh := NextHop{Dst: dst}
	fail := func(op string, err error) (NextHop, error) { return nh, &Error{Op: op, Dst: dst, Err: err} }
	dst = dst.Unmap()
	if !dst.IsValid() {
		return fail("check", syscall.EINVAL)
	}
	if dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fail("check", syscall.ENETUNREACH)
	}
	if dst.IsUnspecified() {
		// connect() to 0.0.0.0 reaches the local host, which a kernel-bypass
		// path on a physical link cannot.
		return fail("check", syscall.EADDRNOTAVAIL)
	}
	routes, err := r.h().RouteGetWithOptions(dst.AsSlice(), &netlink.RouteGetOptions{})
	if err != nil {
		var en syscall.Errno
		if errors.As(err, &en) {
			return fail("get", en)
		}
		return fail("get", err)
	}
	if len(routes) == 0 {
		return fail("get", syscall.ENETUNREACH)
	}
	rt := routes[0]
	switch rt.Type {
	case unix.RTN_UNICAST:
	case unix.RTN_BROADCAST, unix.RTN_MULTICAST:
		return fail("check", syscall.ENETUNREACH) // a subnet broadcast
	case unix.RTN_UNREACHABLE:
		return fail("get", syscall.EHOSTUNREACH)
	case unix.RTN_PROHIBIT:
		return fail("get", syscall.EACCES)
	case unix.RTN_BLACKHOLE:
		return fail("get", syscall.EINVAL)
	case unix.RTN_LOCAL:
		return fail("get", syscall.EADDRNOTAVAIL)
	default:
		return fail("get", syscall.ENETUNREACH)
	}
	link, err := r.h().LinkByIndex(rt.LinkIndex)
	if err != nil {
		return fail("link", err)
	}
	nh.IfIndex = rt.LinkIndex
	nh.IfName = link.Attrs().Name
	nh.IfMAC = link.Attrs().HardwareAddr
	nh.MTU = link.Attrs().MTU
	if rt.MTU > 0 {
		nh.MTU = rt.MTU
	}
	nh.Src, _ = netip.AddrFromSlice(rt.Src)
	nh.Src = nh.Src.Unmap()
	if gw, ok := netip.AddrFromSlice(rt.Gw); ok && rt.Gw != nil && !gw.Unmap().IsUnspecified() {
		nh.Gateway = gw.Unmap()
	}
	if link.Attrs().Flags&net.FlagLoopback != 0 || link.Attrs().EncapType == "none" || len(nh.IfMAC) == 0 {
		return fail("link", syscall.EOPNOTSUPP) // no Ethernet header to build
	}
	mac, err := r.neighbour(ctx, nh.IfIndex, nh.Neighbour())
	if err != nil {
		return fail("neigh", err)
	}
	nh.DstMAC = mac
	return nh, nil
}

const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP

func (r *Resolver) lookup(ifindex int, a netip.Addr) (mac net.HardwareAddr, state int, found bool, err error) {
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := r.h().NeighList(ifindex, fam)
	if err != nil {
		return nil, 0, false, err
	}
	for _, n := range ns {
		if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
			return n.HardwareAddr, n.State, true, nil
		}
	}
	return nil, 0, false, nil
}

// neighbour returns a's link-layer address, asking the kernel to resolve it
// (NTF_USE, as `ip neigh ... use`) and waiting when it is not known yet.
func (r *Resolver) neighbour(ctx context.Context, ifindex int, a netip.Addr) (net.HardwareAddr, error) {
	if mac, st, ok, err := r.lookup(ifindex, a); err != nil {
		return nil, err
	} else if ok && st&usable != 0 && len(mac) == 6 {
		return mac, nil
	}
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{LinkIndex: ifindex, Family: fam, IP: a.AsSlice(), Flags: netlink.NTF_USE, State: netlink.NUD_NONE}
	if err := r.h().NeighSet(n); err != nil {
		return nil, fmt.Errorf("trigger resolution: %w", err)
	}
	timeout := r.NeighTimeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sawIncomplete := false
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, syscall.EHOSTUNREACH
		case <-tick.C:
		}
		mac, st, ok, err := r.lookup(ifindex, a)
		if err != nil {
			return nil, err
		}
		switch {
		case ok && st&usable != 0 && len(mac) == 6:
			return mac, nil
		case ok && st&netlink.NUD_INCOMPLETE != 0:
			sawIncomplete = true
		case ok && st&netlink.NUD_FAILED != 0 && sawIncomplete:
			return nil, syscall.EHOSTUNREACH
		}
	}
}
