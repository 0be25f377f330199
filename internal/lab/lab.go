package lab

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/xdpconnect/xdpconnect/internal/netdev"
	xnetns "github.com/xdpconnect/xdpconnect/internal/netns"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace a lab creates.
const Prefix = "xdc-"

// Interface names inside the lab namespaces. They can repeat across labs
// because every lab has its own namespaces.
const (
	ClientIf       = "xc0" // client side of the client link
	ServerIf       = "xs0" // server side of the server link
	RouterClientIf = "xr0" // router side facing the client (router topology)
	RouterServerIf = "xr1" // router side facing the server (router topology)
	BridgeIf       = "br0" // the bridge of the bridge topology
	MacvlanIf      = "xm0" // client macvlan on top of ClientIf (macvlan topology)
)

// Fixed lab addresses. Each lab has its own namespaces, so labs never clash.
var (
	ClientAddr       = netip.MustParseAddr("198.18.0.1")
	ServerAddrDirect = netip.MustParseAddr("198.18.0.2")
	RouterClientAddr = netip.MustParseAddr("198.18.0.254")
	RouterServerAddr = netip.MustParseAddr("198.19.0.254")
	ServerAddrRouted = netip.MustParseAddr("198.19.0.2")
	// The client subnet is a /16, so the dedicated sources below are spare
	// addresses of it, as a scanner's --source-ip usually is.
	clientPrefixBits  = 16
	serverRoutedPrefx = netip.MustParsePrefix("198.19.0.0/24")
	// DedicatedSources is an on-link range, not owned by the client kernel,
	// that the server side can reach by ARP: xdpconnect answers ARP for the
	// addresses it uses from it.
	DedicatedSources = netip.MustParsePrefix("198.18.128.0/17")

	// IPv6, in the benchmarking range 2001:2::/48 (RFC 5180): every lab is
	// dual-stack, the client subnet 2001:2::/64, the routed server's
	// 2001:2:1::/64.
	ClientAddr6        = netip.MustParseAddr("2001:2::1")
	ServerAddr6Direct  = netip.MustParseAddr("2001:2::2")
	RouterClientAddr6  = netip.MustParseAddr("2001:2::fe")
	RouterServerAddr6  = netip.MustParseAddr("2001:2:1::fe")
	ServerAddr6Routed  = netip.MustParseAddr("2001:2:1::2")
	client6Bits        = 64
	serverRoutedPrefx6 = netip.MustParsePrefix("2001:2:1::/64")
	// DedicatedSources6 is on-link in the client subnet, not owned by the
	// client kernel: xdpconnect answers neighbour solicitations for them.
	DedicatedSources6 = netip.MustParsePrefix("2001:2::1:0/112")
)

// ErrNoNetem means the kernel cannot impair links with netem.
var ErrNoNetem = errors.New("netem unavailable")

// Netem is a netem qdisc configuration (tc-netem(8) semantics).
type Netem struct {
	LossPct      float32 // random loss, percent
	DuplicatePct float32 // duplication, percent
	ReorderPct   float32 // percent of packets sent immediately (needs DelayUs)
	DelayUs      uint32  // fixed delay, microseconds
	JitterUs     uint32  // delay jitter, microseconds
	Limit        uint32  // queue limit in packets; 0 means 10000
}

// Options describes a topology.
type Options struct {
	// Name makes the lab's namespace names unique; a random one when empty.
	Name string
	// Router puts a router namespace between client and server, so the
	// client reaches the server through a gateway.
	Router bool
	// Bridge puts a Linux bridge namespace between client and server, the
	// way a container's veth reaches its neighbours: client veth, bridge,
	// server veth, one subnet.
	Bridge bool
	// Clients is the number of client namespaces on the bridge (Bridge
	// only; 0 means 1): ClientNS at ClientAddr, the others in
	// Lab.MoreClients at MoreClientAddr(i), as nodes of a cluster.
	Clients int
	// Macvlan gives the client its address on a macvlan on top of its veth
	// (a device without native XDP); the run's interface is MacvlanIf.
	Macvlan bool
	// MTU is the MTU of the client-server veth, both ends, in the direct
	// topology (0: 1500, the kernel's default).
	MTU int
	// Queues is the number of RX/TX queues allocated to the client veth
	// (and its peer); 0 leaves the kernel's default, as `ip link add ...
	// type veth` does.
	Queues int
	// ActiveQueues sets the client veth's active channels (ethtool -L) to
	// fewer than Queues; 0 leaves the kernel's choice.
	ActiveQueues int
	// TxChecksumOff turns TX checksum offload off on the veth that sends
	// towards the client, so its frames carry full checksums. The default
	// (off: offload on) is what every user's veth and container has: frames
	// with partial checksums.
	TxChecksumOff bool
	// PeerGRO turns GRO on at the veth facing the client: a veth drops
	// frames its peer sends with XDP (the SYNs of --xdp-syn) without GRO or
	// an XDP program of its own. A real NIC's wire has no such condition.
	PeerGRO bool
	// ListenPorts are the TCP ports the server listener accepts on; none
	// means no listener.
	ListenPorts []int
	// Hold keeps accepted connections open until Close instead of closing
	// them with FIN right after accept.
	Hold bool
	// ServerNetem impairs the server's egress (SYN-ACKs towards the client).
	ServerNetem *Netem
	// RouterNetem impairs both egress directions of the router (needs Router).
	RouterNetem *Netem
}

// Lab is a running topology. Close removes it.
type Lab struct {
	Name     string
	ClientNS string
	ServerNS string
	RouterNS string // empty without a router or bridge (the bridge's namespace)
	// ClientIf is the interface the client runs on (ClientIf or MacvlanIf).
	ClientIf string
	// MoreClients are the namespaces of clients 1.. (Options.Clients).
	MoreClients []string
	// ServerAddr is the address the client connects to; ServerAddr6 its
	// IPv6 address.
	ServerAddr  netip.Addr
	ServerAddr6 netip.Addr
	// Gateway is the client's next hop to the server (invalid if direct).
	Gateway netip.Addr
	// Listener is the server's TCP listener (nil without ListenPorts).
	Listener *Listener

	opts Options
}

// Up creates the topology described by o. On error everything created so far
// is removed again.
func Up(o Options) (_ *Lab, err error) {
	if o.Name == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Name = hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(o.Name, "/ ") || len(o.Name) > 40 {
		return nil, fmt.Errorf("lab: bad name %q", o.Name)
	}
	if o.RouterNetem != nil && !o.Router {
		return nil, errors.New("lab: RouterNetem needs Router")
	}
	if o.Router && o.Bridge {
		return nil, errors.New("lab: Router and Bridge exclude each other")
	}
	if o.Clients > 1 && !o.Bridge {
		return nil, errors.New("lab: several clients need Bridge")
	}
	base := Prefix + o.Name
	l := &Lab{Name: o.Name, ClientNS: base + "-cli", ServerNS: base + "-srv", ClientIf: ClientIf, opts: o}
	switch {
	case o.Router:
		l.RouterNS = base + "-rtr"
	case o.Bridge:
		l.RouterNS = base + "-brg"
	}
	if o.Macvlan {
		l.ClientIf = MacvlanIf
	}
	for i := 1; i < o.Clients; i++ {
		l.MoreClients = append(l.MoreClients, fmt.Sprintf("%s-cl%d", base, i))
	}
	for _, ns := range l.namespaces() {
		if xnetns.Exists(ns) {
			// Not ours: checked before the deferred cleanup is armed.
			return nil, fmt.Errorf("lab: namespace %s already exists (lab name in use; `xdpconnect lab down --all` removes leftovers)", ns)
		}
	}
	defer func() {
		if err != nil {
			_ = l.Close()
		}
	}()
	for _, ns := range l.namespaces() {
		if err := createNS(ns); err != nil {
			return nil, err
		}
	}
	if err := setOwner(o.Name, os.Getpid()); err != nil {
		return nil, err
	}
	switch {
	case o.Router:
		err = l.buildRouted()
	case o.Bridge:
		err = l.buildBridged()
	default:
		err = l.buildDirect()
	}
	if err != nil {
		return nil, err
	}
	if len(o.ListenPorts) > 0 {
		l.Listener, err = Listen(l.ServerNS, []netip.Addr{l.ServerAddr, l.ServerAddr6}, o.ListenPorts, o.Hold)
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Lab) namespaces() []string {
	ns := []string{l.ClientNS, l.ServerNS}
	if l.RouterNS != "" {
		ns = append(ns, l.RouterNS)
	}
	return append(ns, l.MoreClients...)
}

// Close stops the listener and deletes the lab's namespaces, which removes
// their interfaces. It is safe to call more than once.
func (l *Lab) Close() error {
	var errs []error
	if l.Listener != nil {
		errs = append(errs, l.Listener.Close())
	}
	for _, ns := range l.namespaces() {
		errs = append(errs, deleteNS(ns))
	}
	errs = append(errs, removeOwner(l.Name))
	return errors.Join(errs...)
}

// Exists reports whether the lab's namespaces are all present.
func (l *Lab) Exists() bool {
	for _, ns := range l.namespaces() {
		if !xnetns.Exists(ns) {
			return false
		}
	}
	return true
}

func handleAt(ns string) (*netlink.Handle, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("lab: open namespace %s: %w", ns, err)
	}
	defer h.Close()
	return netlink.NewHandleAt(h)
}

// vethPair creates a veth with end a in namespace nsA and end b in nsB,
// both with MTU mtu (0: 1500).
func vethPair(nsA, a, nsB, b string, queues, mtu int) error {
	ha, err := handleAt(nsA)
	if err != nil {
		return err
	}
	defer ha.Close()
	hb, err := netns.GetFromName(nsB)
	if err != nil {
		return err
	}
	defer hb.Close()
	// Queues 0 leaves the kernel's default, as `ip link add` does.
	v := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: a, NumTxQueues: queues, NumRxQueues: queues, MTU: cmp.Or(mtu, 1500)},
		PeerName:  b, PeerNamespace: netlink.NsFd(hb),
	}
	if err := ha.LinkAdd(v); err != nil {
		return fmt.Errorf("lab: add veth %s/%s: %w", a, b, err)
	}
	return nil
}

type ifSetup struct {
	name   string
	addr   netip.Prefix
	addr6  netip.Prefix    // optional
	routes []netlink.Route // LinkIndex filled in
}

// configure brings up lo and the named interfaces with their addresses and
// routes, inside ns.
func configure(ns string, ifs []ifSetup, sysctls map[string]string) error {
	h, err := handleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return err
	}
	// No duplicate address detection on the link-local addresses either:
	// until it ends (a second or more) they are tentative, and neighbour
	// discovery in a fresh lab waits on them. The kernel skips DAD only
	// when both "all" and the interface say so.
	if err := Do(ns, func() error {
		for _, dev := range append([]string{"all"}, ifNames(ifs)...) {
			if err := writeSysctl("net/ipv6/conf/"+dev+"/accept_dad", "0"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for _, s := range ifs {
		link, err := h.LinkByName(s.name)
		if err != nil {
			return fmt.Errorf("lab: %s in %s: %w", s.name, ns, err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: s.addr.Addr().AsSlice(), Mask: net.CIDRMask(s.addr.Bits(), 32)}}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("lab: address %s on %s: %w", s.addr, s.name, err)
		}
		if s.addr6.IsValid() {
			// No duplicate address detection: the address is usable at
			// once, as the lab's subnets have nobody else on them.
			a6 := &netlink.Addr{IPNet: &net.IPNet{IP: s.addr6.Addr().AsSlice(), Mask: net.CIDRMask(s.addr6.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
			if err := h.AddrAdd(link, a6); err != nil {
				return fmt.Errorf("lab: address %s on %s: %w", s.addr6, s.name, err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			return err
		}
		for _, r := range s.routes {
			r.LinkIndex = link.Attrs().Index
			if err := h.RouteAdd(&r); err != nil {
				return fmt.Errorf("lab: route %v in %s: %w", r.Dst, ns, err)
			}
		}
	}
	if len(sysctls) == 0 {
		return nil
	}
	return Do(ns, func() error {
		for k, v := range sysctls {
			if err := writeSysctl(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func ifNames(ifs []ifSetup) []string {
	names := make([]string, len(ifs))
	for i, s := range ifs {
		names[i] = s.name
	}
	return names
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// serverSysctls let a Linux listener keep up with a load generator: an
// overflowing accept queue drops final ACKs, and the server's accept count
// falls below the client's established count.
var serverSysctls = map[string]string{
	"net/core/somaxconn":           "65535",
	"net/ipv4/tcp_max_syn_backlog": "65535",
}

func (l *Lab) buildDirect() error {
	if err := vethPair(l.ClientNS, ClientIf, l.ServerNS, ServerIf, l.opts.Queues, l.opts.MTU); err != nil {
		return err
	}
	return l.buildOneSubnet()
}

// buildBridged joins client and server through a bridge namespace, as a
// container runtime joins a container's veth to the host's bridge.
func (l *Lab) buildBridged() error {
	br := l.RouterNS
	if err := vethPair(l.ClientNS, ClientIf, br, "xb0", l.opts.Queues, 0); err != nil {
		return err
	}
	if err := vethPair(l.ServerNS, ServerIf, br, "xb1", 0, 0); err != nil {
		return err
	}
	ports := []string{"xb0", "xb1"}
	for i, ns := range l.MoreClients {
		port := fmt.Sprintf("xb%d", i+2)
		if err := vethPair(ns, ClientIf, br, port, 0, 0); err != nil {
			return err
		}
		if err := configure(ns, []ifSetup{{name: ClientIf, addr: netip.PrefixFrom(MoreClientAddr(i+1), clientPrefixBits),
			addr6: netip.PrefixFrom(MoreClientAddr6(i+1), client6Bits)}}, nil); err != nil {
			return err
		}
		ports = append(ports, port)
	}
	h, err := handleAt(br)
	if err != nil {
		return err
	}
	defer h.Close()
	bridge := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeIf}}
	if err := h.LinkAdd(bridge); err != nil {
		return fmt.Errorf("lab: add bridge: %w", err)
	}
	for _, n := range append(ports, BridgeIf) {
		link, err := h.LinkByName(n)
		if err != nil {
			return err
		}
		if n != BridgeIf {
			if err := h.LinkSetMaster(link, bridge); err != nil {
				return fmt.Errorf("lab: %s into the bridge: %w", n, err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			return err
		}
	}
	return l.buildOneSubnet()
}

// buildOneSubnet addresses client and server on one subnet (direct or
// bridged); with Macvlan the client's address is on a macvlan on ClientIf.
func (l *Lab) buildOneSubnet() error {
	l.ServerAddr, l.ServerAddr6 = ServerAddrDirect, ServerAddr6Direct
	cli := []ifSetup{{name: ClientIf, addr: netip.PrefixFrom(ClientAddr, clientPrefixBits), addr6: netip.PrefixFrom(ClientAddr6, client6Bits)}}
	if l.opts.Macvlan {
		h, err := handleAt(l.ClientNS)
		if err != nil {
			return err
		}
		defer h.Close()
		lower, err := h.LinkByName(ClientIf)
		if err != nil {
			return err
		}
		mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: MacvlanIf, ParentIndex: lower.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}
		if err := h.LinkAdd(mv); err != nil {
			return fmt.Errorf("lab: add macvlan: %w", err)
		}
		if err := h.LinkSetUp(lower); err != nil {
			return err
		}
		cli[0].name = MacvlanIf
	}
	if err := configure(l.ClientNS, cli, nil); err != nil {
		return err
	}
	srv := []ifSetup{{name: ServerIf, addr: netip.PrefixFrom(ServerAddrDirect, clientPrefixBits), addr6: netip.PrefixFrom(ServerAddr6Direct, client6Bits),
		routes: []netlink.Route{{Dst: ipnet(DedicatedSources), Scope: netlink.SCOPE_LINK}}}}
	if err := configure(l.ServerNS, srv, serverSysctls); err != nil {
		return err
	}
	return l.afterBuild()
}

func (l *Lab) buildRouted() error {
	if err := vethPair(l.ClientNS, ClientIf, l.RouterNS, RouterClientIf, l.opts.Queues, 0); err != nil {
		return err
	}
	if err := vethPair(l.RouterNS, RouterServerIf, l.ServerNS, ServerIf, 1, 0); err != nil {
		return err
	}
	l.ServerAddr, l.ServerAddr6 = ServerAddrRouted, ServerAddr6Routed
	l.Gateway = RouterClientAddr
	cli := []ifSetup{{name: ClientIf, addr: netip.PrefixFrom(ClientAddr, clientPrefixBits), addr6: netip.PrefixFrom(ClientAddr6, client6Bits),
		routes: []netlink.Route{{Dst: ipnet(serverRoutedPrefx), Gw: RouterClientAddr.AsSlice()},
			{Dst: ipnet(serverRoutedPrefx6), Gw: RouterClientAddr6.AsSlice()}}}}
	if err := configure(l.ClientNS, cli, nil); err != nil {
		return err
	}
	rtr := []ifSetup{
		{name: RouterClientIf, addr: netip.PrefixFrom(RouterClientAddr, clientPrefixBits), addr6: netip.PrefixFrom(RouterClientAddr6, client6Bits),
			routes: []netlink.Route{{Dst: ipnet(DedicatedSources), Scope: netlink.SCOPE_LINK}}},
		{name: RouterServerIf, addr: netip.PrefixFrom(RouterServerAddr, 24), addr6: netip.PrefixFrom(RouterServerAddr6, 64)},
	}
	if err := configure(l.RouterNS, rtr, map[string]string{"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1"}); err != nil {
		return err
	}
	srv := []ifSetup{{name: ServerIf, addr: netip.PrefixFrom(ServerAddrRouted, 24), addr6: netip.PrefixFrom(ServerAddr6Routed, 64),
		routes: []netlink.Route{{Dst: ipnet(netip.MustParsePrefix("0.0.0.0/0")), Gw: RouterServerAddr.AsSlice()},
			{Dst: ipnet(netip.MustParsePrefix("::/0")), Gw: RouterServerAddr6.AsSlice()}}}}
	if err := configure(l.ServerNS, srv, serverSysctls); err != nil {
		return err
	}
	if err := l.SetNetem(l.RouterNS, RouterClientIf, l.opts.RouterNetem); err != nil {
		return err
	}
	if err := l.SetNetem(l.RouterNS, RouterServerIf, l.opts.RouterNetem); err != nil {
		return err
	}
	return l.afterBuild()
}

// afterBuild does what every topology needs: the client's active channels,
// full checksums towards the client when asked (TxChecksumOff; by default
// the peers keep the kernel's TX checksum offload, as users' veths do), and
// the server-side impairment.
func (l *Lab) afterBuild() error {
	peerNS, peerIf := l.ServerNS, ServerIf
	switch {
	case l.opts.Router:
		peerNS, peerIf = l.RouterNS, RouterClientIf
	case l.opts.Bridge:
		peerNS, peerIf = l.RouterNS, "xb0"
	}
	if l.opts.ActiveQueues > 0 {
		// Both ends: native XDP on a veth wants at least as many RX queues
		// as the peer has TX queues.
		for ns, ifname := range map[string]string{l.ClientNS: ClientIf, peerNS: peerIf} {
			if err := Do(ns, func() error { return netdev.SetRxTxChannels(ifname, l.opts.ActiveQueues) }); err != nil {
				return fmt.Errorf("lab: channels of %s: %w", ifname, err)
			}
		}
	}
	if l.opts.PeerGRO {
		if err := Do(peerNS, func() error { return netdev.SetGRO(peerIf, true) }); err != nil {
			return fmt.Errorf("lab: GRO of %s: %w", peerIf, err)
		}
	}
	if l.opts.TxChecksumOff {
		for ns, ifname := range map[string]string{l.ServerNS: ServerIf, peerNS: peerIf} {
			if err := Do(ns, func() error { return netdev.SetTxChecksum(ifname, false) }); err != nil {
				return fmt.Errorf("lab: tx checksum offload of %s: %w", ifname, err)
			}
		}
	}
	return l.SetNetem(l.ServerNS, ServerIf, l.opts.ServerNetem)
}

// SetNetem replaces (or with nil removes) the netem qdisc on ifname in ns.
func (l *Lab) SetNetem(ns, ifname string, n *Netem) error {
	h, err := handleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	attrs := netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
	if n == nil {
		q := netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{})
		if err := h.QdiscDel(q); err != nil && !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") && !strings.Contains(err.Error(), "invalid argument") {
			return err
		}
		return nil
	}
	limit := n.Limit
	if limit == 0 {
		limit = 10000
	}
	q := netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{
		Latency: n.DelayUs, Jitter: n.JitterUs, Loss: n.LossPct, Duplicate: n.DuplicatePct,
		ReorderProb: n.ReorderPct, Limit: limit,
	})
	if err := h.QdiscReplace(q); err != nil {
		if errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file") {
			return fmt.Errorf("lab: netem on %s/%s: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): %w", ns, ifname, ErrNoNetem)
		}
		return fmt.Errorf("lab: netem on %s/%s: %w", ns, ifname, err)
	}
	return nil
}

// ClientLink returns the index and MAC of the client interface.
func (l *Lab) ClientLink() (int, net.HardwareAddr, error) {
	link, err := LinkByName(l.ClientNS, l.ClientIf)
	if err != nil {
		return 0, nil, err
	}
	return link.Attrs().Index, link.Attrs().HardwareAddr, nil
}

// String describes the topology for `xdpconnect lab status`.
func (l *Lab) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s\n", l.Name)
	fmt.Fprintf(&b, "  client  netns %-22s %s %s/16 %s/64\n", l.ClientNS, l.ClientIf, ClientAddr, ClientAddr6)
	if l.opts.Bridge {
		fmt.Fprintf(&b, "  bridge  netns %-22s %s\n", l.RouterNS, BridgeIf)
		fmt.Fprintf(&b, "  server  netns %-22s %s %s/16 %s/64\n", l.ServerNS, ServerIf, ServerAddrDirect, ServerAddr6Direct)
	} else if l.RouterNS != "" {
		fmt.Fprintf(&b, "  router  netns %-22s %s %s/16 %s/64, %s %s/24 %s/64\n", l.RouterNS, RouterClientIf, RouterClientAddr, RouterClientAddr6,
			RouterServerIf, RouterServerAddr, RouterServerAddr6)
		fmt.Fprintf(&b, "  server  netns %-22s %s %s/24 %s/64 (via gateway %s, %s)\n", l.ServerNS, ServerIf, ServerAddrRouted, ServerAddr6Routed,
			RouterClientAddr, RouterClientAddr6)
	} else {
		fmt.Fprintf(&b, "  server  netns %-22s %s %s/16 %s/64\n", l.ServerNS, ServerIf, ServerAddrDirect, ServerAddr6Direct)
	}
	fmt.Fprintf(&b, "  dedicated sources %s and %s (answered for ARP and ND by xdpconnect)\n", DedicatedSources, DedicatedSources6)
	return b.String()
}

// MoreClientAddr is the address of client i >= 1 of a multi-client lab.
func MoreClientAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}) }

// MoreClientAddr6 is the IPv6 address of client i >= 1.
func MoreClientAddr6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(10 + i)})
}

// Open returns the lab of that name created earlier (by another process),
// without a listener handle. It fails if the lab does not exist.
func Open(name string) (*Lab, error) {
	base := Prefix + name
	l := &Lab{Name: name, ClientNS: base + "-cli", ServerNS: base + "-srv", ServerAddr: ServerAddrDirect, ServerAddr6: ServerAddr6Direct, ClientIf: ClientIf}
	if xnetns.Exists(base + "-rtr") {
		l.RouterNS = base + "-rtr"
		l.ServerAddr, l.ServerAddr6 = ServerAddrRouted, ServerAddr6Routed
		l.Gateway = RouterClientAddr
		l.opts.Router = true
	}
	if xnetns.Exists(base + "-brg") {
		l.RouterNS = base + "-brg"
		l.opts.Bridge = true
	}
	if _, err := LinkByName(l.ClientNS, MacvlanIf); err == nil {
		l.ClientIf = MacvlanIf
	}
	if !l.Exists() {
		return nil, fmt.Errorf("lab %s: not found", name)
	}
	return l, nil
}

// Names lists the labs present on the machine.
func Names() ([]string, error) {
	nss, err := listNS(Prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nss {
		if strings.HasSuffix(n, "-cli") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(n, Prefix), "-cli"))
		}
	}
	return out, nil
}

// LinkByName returns interface ifname of namespace ns.
func LinkByName(ns, ifname string) (netlink.Link, error) {
	h, err := handleAt(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.LinkByName(ifname)
}
