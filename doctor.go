package xdpconnect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/xdpconnect/xdpconnect/internal/netdev"
	"github.com/xdpconnect/xdpconnect/internal/netns"
	"github.com/xdpconnect/xdpconnect/internal/portres"
	"github.com/xdpconnect/xdpconnect/route"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// Check is one line of a preflight: a status (OK, WARN, FAIL), what was
// checked, what was found, and the fix when there is one.
type Check struct {
	Status string
	Name   string
	Detail string
	Fix    string
}

// String is the check as doctor prints it: status, name, detail, and the
// fix on a second line when there is one.
func (c Check) String() string {
	s := fmt.Sprintf("%-5s %-11s %s", c.Status, c.Name, c.Detail)
	if c.Fix != "" {
		s += fmt.Sprintf("\n      %-11s fix: %s", "", c.Fix)
	}
	return s
}

// Doctor checks what a session on an interface depends on, without
// changing anything (it attaches nothing: attaching XDP resets the rings of
// some NICs): privileges, the route and neighbour to dst (if valid), the
// driver, native XDP and zero-copy, active and allocated queues, offloads,
// MTU, ports, conntrack and rp_filter. iface or dst names the interface;
// netnsName runs the checks in that namespace.
func Doctor(ctx context.Context, iface string, dst netip.AddrPort, netnsName string) ([]Check, error) {
	checks := []Check{capsCheck(netnsName != "")}
	err := netns.Do(netnsName, func() error {
		checks = append(checks, pathChecks(ctx, iface, dst)...)
		return nil
	})
	return checks, err
}

func capsCheck(netns bool) Check {
	if err := CheckCapabilities(netns); err != nil {
		return Check{"FAIL", "privileges", strings.TrimPrefix(err.Error(), "insufficient privileges: "),
			"run as root, or: setcap " + SetcapCaps + " $(command -v xdpconnect)"}
	}
	return Check{"OK", "privileges", "CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_PERFMON, CAP_IPC_LOCK present", ""}
}

// pathChecks runs in the namespace of the run.
func pathChecks(ctx context.Context, iface string, dst netip.AddrPort) []Check {
	var out []Check
	add := func(status, name, fix, detail string, a ...any) {
		out = append(out, Check{status, name, fmt.Sprintf(detail, a...), fix})
	}
	ifindex := 0
	if iface != "" {
		l, err := netlink.LinkByName(iface)
		if err != nil {
			add("FAIL", "interface", "list interfaces with 'ip link'", "%s: no such interface in this namespace", iface)
			return out
		}
		ifindex = l.Attrs().Index
	}
	if dst.IsValid() {
		var r route.Resolver
		nh, err := r.Resolve(ctx, dst.Addr())
		var re *route.Error
		switch {
		case err == nil:
			via := "on-link"
			if nh.Gateway.IsValid() {
				via = "via gateway " + nh.Gateway.String()
			}
			add("OK", "route", "", "%s %s on %s, source %s", dst.Addr(), via, nh.IfName, nh.Src)
			add("OK", "neighbour", "", "%s is at %s", nh.Neighbour(), nh.DstMAC)
			if ifindex != 0 && nh.IfIndex != ifindex {
				add("FAIL", "interface", "give the interface the route uses, or none", "%s is reached through %s, not %s", dst.Addr(), nh.IfName, iface)
				return out
			}
			ifindex = nh.IfIndex
		case errors.As(err, &re) && re.Op == "neigh":
			add("OK", "route", "", "%s has a route", dst.Addr())
			add("FAIL", "neighbour", fmt.Sprintf("check that %s is up and on that link ('ip neigh show %s')", re.Dst, re.Dst), "no ARP or neighbour discovery reply from %s", re.Dst)
			return out
		default:
			add("FAIL", "route", "", "%s", routeWords(dst, err))
			return out
		}
	}
	in, err := netdev.Inspect(ifindex)
	if err != nil {
		add("FAIL", "interface", "", "%v", err)
		return out
	}
	add("OK", "interface", "", "%s: %s (driver %s), MTU %d", in.Name, in.Kind, orNone(in.Driver), in.MTU)
	if in.XDPAttached {
		add("FAIL", "xdp", fmt.Sprintf("stop the other program (another xdpconnect?) or detach it: ip link set dev %s xdp off", in.Name), "an XDP program is already attached to %s", in.Name)
	}
	native := in.XDP.Native()
	switch {
	case in.XDPErr != nil:
		add("WARN", "xdp", "", "the kernel does not report XDP features (%v): a run tries native mode, then generic", in.XDPErr)
	case native:
		add("OK", "xdp", "", "native XDP with redirect (features %s)", in.XDP)
	default:
		add("WARN", "xdp", "a NIC driver with native XDP, or a veth, is faster", "no native XDP on %s (features %s): runs attach in generic (SKB) mode, slower", in.Kind, in.XDP)
	}
	if in.XDP&netdev.XDPZeroCopy != 0 {
		add("OK", "zero-copy", "", "AF_XDP zero-copy supported")
	} else {
		add("WARN", "zero-copy", "", "AF_XDP copy mode only (expected on veth and in generic mode): about 1M frames/s per core")
		// Copy mode's way out: frames sent from XDP (--xdp-tx, --xdp-syn).
		if why, fix := xdpSendBlocked(in); why != "" && native {
			add("WARN", "xdp-tx", fix, "--xdp-tx and --xdp-syn unavailable: %s", why)
		} else if in.XDPErr == nil && native {
			add("OK", "xdp-tx", "", "%s takes frames sent by XDP: --xdp-tx sends every frame from the XDP program, about 2x the handshakes per core of the copy-mode TX ring", in.Name)
		}
	}
	q, known := in.Queues()
	switch {
	case !known:
		add("WARN", "queues", "", "%s reports no channels (%d allocated): a run probes the active queues when it opens its sockets", in.Name, in.AllocatedRxQueues)
	case q > runtime.NumCPU():
		add("WARN", "queues", fmt.Sprintf("ethtool -L %s combined %d", in.Name, runtime.NumCPU()), "%d active RX queues (%d allocated) but %d CPUs: workers would share cores", q, in.AllocatedRxQueues, runtime.NumCPU())
	default:
		add("OK", "queues", "", "%d active RX queue(s) of %d allocated (max %d): default %d worker(s)", q, in.AllocatedRxQueues, in.MaxRxQueues, q)
	}
	if local, why := in.LocalVirtual(); local {
		add("OK", "checksums", "", "partial checksums from a local peer's TX offload are accepted (%s)", why)
	} else {
		add("OK", "checksums", "", "full checksums required (%s); --partial-checksum accept if the peer is on this host", why)
	}
	if !native && in.GRO == netdev.Yes {
		add("WARN", "gro", fmt.Sprintf("ethtool -K %s gro off, if connections receive data", in.Name), "GRO on: in generic mode it merges received segments before XDP sees them")
	} else {
		add("OK", "gro", "", "gro %s (native XDP runs before GRO)", in.GRO)
	}
	fs := xsk.FrameSizeFor(in.MTU)
	if max := xsk.MaxRxMTU(fs); in.MTU > max {
		add("WARN", "mtu", fmt.Sprintf("ip link set dev %s mtu %d, for the full MSS", in.Name, max), "MTU %d: %d-byte UMEM frames receive frames of at most %d bytes: SYNs announce MSS %d, not %d (larger segments would not fit)", in.MTU, fs, max+14, max-40, in.MTU-40)
	} else {
		add("OK", "mtu", "", "MTU %d: SYNs announce MSS %d (%d-byte UMEM frames)", in.MTU, in.MTU-40, fs)
	}
	out = append(out, portChecks()...)
	out = append(out, sysctlChecks(in.Name)...)
	return out
}

func portChecks() []Check {
	lo, hi, err := portres.DefaultRange()
	if err != nil {
		return []Check{{"FAIL", "ports", err.Error(), "narrow net.ipv4.ip_local_port_range, or give --src-ports"}}
	}
	rng, _ := os.ReadFile(portres.SysPortRange)
	res, _ := os.ReadFile(portres.SysReserved)
	c := Check{"OK", "ports", fmt.Sprintf("default source ports %d-%d (%d per source address), outside ip_local_port_range %s; reserved now: %s",
		lo, hi, int(hi-lo)+1, strings.Join(strings.Fields(string(rng)), "-"), orNone(strings.TrimSpace(string(res)))), ""}
	if l := portres.ListenersIn(lo, hi); len(l) > 0 {
		c = Check{"WARN", "ports", fmt.Sprintf("local listeners on %v inside %d-%d: a run refuses this range", l, lo, hi), "give --src-ports outside them"}
	}
	return []Check{c}
}

func sysctlChecks(ifname string) []Check {
	var out []Check
	if cnt, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count"); err == nil {
		mx, _ := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_max")
		out = append(out, Check{"OK", "conntrack", fmt.Sprintf("loaded here (%s of %s entries): xdpconnect's frames bypass it, but a NAT or firewall on the path keeps one entry per connection for minutes",
			strings.TrimSpace(string(cnt)), strings.TrimSpace(string(mx))), ""})
	} else {
		out = append(out, Check{"OK", "conntrack", "not loaded in this namespace", ""})
	}
	all, _ := os.ReadFile("/proc/sys/net/ipv4/conf/all/rp_filter")
	dev, _ := os.ReadFile("/proc/sys/net/ipv4/conf/" + ifname + "/rp_filter")
	out = append(out, Check{"OK", "rp_filter", fmt.Sprintf("all=%s %s=%s: XDP takes our replies before reverse-path filtering; the server's rp_filter must accept our source addresses",
		strings.TrimSpace(string(all)), ifname, strings.TrimSpace(string(dev))), ""})
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
