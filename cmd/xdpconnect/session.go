package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/netdev"
	"github.com/xdpconnect/xdpconnect/route"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
	"golang.org/x/sys/unix"
)

// plan is what `run` was asked to do, before anything touches the system.
type plan struct {
	netns   string
	iface   string
	dsts    []netip.AddrPort
	srcs    []netip.Addr
	portLo  uint16
	portHi  uint16
	workers int
	attach  bpf.AttachMode
	// partialCsum is the --partial-checksum policy: auto, accept, reject.
	partialCsum string
	// srcRouted: dedicated sources outside the interface's subnets are
	// routed to us by the peer (--src-routed).
	srcRouted  bool
	copyMode   xsk.CopyMode
	frames     int
	synRetries int
	cfg        fastpath.Config
}

// session is the wiring of one run: XDP program, sockets, reserved ports.
type session struct {
	prog    *bpf.Program
	socks   []*xsk.Socket
	restore func()
	engine  *fastpath.Engine
	ifname  string
	dev     netdev.Info
	// attached is the XDP mode the program runs in (native or generic).
	attached bpf.AttachMode
	// dedicated says some source addresses are not the kernel's.
	dedicated bool
	notes     []string
}

func (s *session) Close() {
	for _, x := range s.socks {
		x.Close()
	}
	if s.prog != nil {
		s.prog.Close()
	}
	if s.restore != nil {
		s.restore()
	}
}

// inNS runs fn in the plan's namespace (on a throwaway thread), or here.
func (p *plan) inNS(fn func() error) error {
	if p.netns == "" {
		return fn()
	}
	return lab.Do(p.netns, fn)
}

// setup resolves routes, loads and attaches the XDP program, opens one
// socket per worker queue, reserves the port range and builds the engine.
func setup(ctx context.Context, p *plan) (_ *session, err error) {
	s := &session{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	err = p.inNS(func() error {
		var r route.Resolver
		var hops []route.NextHop
		for _, d := range p.dsts {
			nh, err := r.Resolve(ctx, d.Addr())
			if err != nil {
				return routeWords(d, err)
			}
			if p.iface != "" && nh.IfName != p.iface {
				return fmt.Errorf("%s is reached through %s, not --iface %s", d, nh.IfName, p.iface)
			}
			if len(hops) > 0 && nh.IfIndex != hops[0].IfIndex {
				return fmt.Errorf("targets leave through different interfaces (%s, %s): run one xdpconnect per interface", hops[0].IfName, nh.IfName)
			}
			hops = append(hops, nh)
		}
		nh0 := hops[0]
		s.ifname = nh0.IfName
		if s.dev, err = netdev.Inspect(nh0.IfIndex); err != nil {
			return err
		}
		if len(p.srcs) == 0 {
			p.srcs = []netip.Addr{nh0.Src}
		}
		owned, err := ownedAddrs()
		if err != nil {
			return err
		}
		if err := checkOnLink(p.srcs, owned, nh0, p.srcRouted); err != nil {
			return err
		}
		cfg := &p.cfg
		cfg.Targets, cfg.Sources = nil, nil
		for i, d := range p.dsts {
			cfg.Targets = append(cfg.Targets, fastpath.Target{Addr: d, DstMAC: [6]byte(hops[i].DstMAC)})
		}
		for _, a := range p.srcs {
			cfg.Sources = append(cfg.Sources, fastpath.Source{Addr: a, Dedicated: owned[a] == 0})
			s.dedicated = s.dedicated || owned[a] == 0
		}
		s.partialPolicy(p)
		cfg.SrcMAC = [6]byte(nh0.IfMAC)
		if p.portLo == 0 {
			if p.portLo, p.portHi, err = defaultSrcPorts(); err != nil {
				return err
			}
		}
		if l := listenersIn(p.portLo, p.portHi); len(l) > 0 {
			return fmt.Errorf("local listeners on ports %v inside --src-ports %d-%d: their traffic would be taken; choose another range", l, p.portLo, p.portHi)
		}
		cfg.PortLo, cfg.PortHi = p.portLo, p.portHi
		cfg.Params = tcp.DefaultParams(nh0.MTU, false)
		if p.synRetries > 0 {
			cfg.Params.SynRetries = p.synRetries
		}
		// One worker per active RX queue: an AF_XDP socket binds to a queue
		// in use only, and the allocated count (netlink) is usually larger.
		queues, known := s.dev.Queues()
		want := p.workers
		if want == 0 {
			want = queues
		}
		if known && want > queues {
			return usageError("--workers %d: %s has %d active RX queue(s) (%d allocated; ethtool -l %s): one worker per active queue",
				want, nh0.IfName, queues, s.dev.AllocatedRxQueues, nh0.IfName)
		}
		restore, err := reservePorts(p.portLo, p.portHi)
		if err != nil {
			return err
		}
		// Put the sysctl back in the namespace it was changed in, whatever
		// thread Close runs on.
		s.restore = func() { _ = p.inNS(func() error { restore(); return nil }) }
		if s.prog, err = bpf.Load(); err != nil {
			return err
		}
		if err := s.prog.SetPorts(p.portLo, p.portHi); err != nil {
			return err
		}
		for _, src := range cfg.Sources {
			if err := s.prog.AddAddr(src.Addr, src.Dedicated); err != nil {
				return err
			}
		}
		for q := 0; q < want; q++ {
			x, err := xsk.Open(nh0.IfIndex, q, xsk.Options{NumFrames: p.frames, RingSize: min(2048, max(p.frames/2, 8)), Mode: p.copyMode})
			if err != nil && !known && q > 0 && errors.Is(err, unix.EINVAL) {
				// The driver reports no channels: the first queue the kernel
				// refuses is the first inactive one.
				if p.workers > 0 {
					return usageError("--workers %d: %s has %d active RX queue(s): one worker per active queue", p.workers, nh0.IfName, q)
				}
				queues = q
				break
			}
			if err != nil {
				return err
			}
			s.socks = append(s.socks, x)
			if x.FallbackReason != "" && q == 0 {
				s.notes = append(s.notes, "AF_XDP: "+x.FallbackReason)
			}
			if err := s.prog.RegisterXSK(q, x.FD()); err != nil {
				return err
			}
		}
		p.workers = len(s.socks)
		if !known {
			queues = max(queues, p.workers)
		}
		if p.workers < queues {
			s.notes = append(s.notes, fmt.Sprintf("%s has %d active RX queues and %d worker(s): replies hashed to the other queues reach the kernel, which resets them", nh0.IfName, queues, p.workers))
		}
		// Attach last: from here on our flows are steered to the sockets.
		if s.attached, err = s.prog.Attach(nh0.IfIndex, p.attach); err != nil {
			return err
		}
		if s.attached == bpf.AttachGeneric && p.attach == bpf.AttachAuto {
			why := "has no native XDP"
			if errors.Is(s.prog.NativeErr, unix.ENOSPC) {
				why = "refused native XDP: a veth needs at least as many RX queues as its peer has TX queues ('ethtool -L PEER tx N' on the peer)"
			}
			s.notes = append(s.notes, fmt.Sprintf("%s (%s) %s: attached in generic (SKB) mode, which is slower; --xdp-attach native refuses instead", nh0.IfName, s.dev.Kind, why))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The plan's own limits (ports per worker, table size) are the user's
	// to fix: say so without the engine's package name.
	if err := p.cfg.Validate(len(s.socks)); err != nil {
		return nil, usageError("%v", err)
	}
	links := make([]fastpath.Link, len(s.socks))
	for i, x := range s.socks {
		links[i] = x
	}
	s.engine, err = fastpath.New(p.cfg, links)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// complete adds what the session owns to the engine's report: AF_XDP and
// XDP counters, the path, and the diagnosis.
func (s *session) complete(r *fastpath.Report, p *plan) {
	r.XSK = map[string]uint64{}
	for _, x := range s.socks {
		if st, err := x.Stats(); err == nil {
			r.XSK["rx_dropped"] += st.RxDropped
			r.XSK["rx_ring_full"] += st.RxRingFull
			r.XSK["rx_fill_ring_empty_descs"] += st.RxFillRingEmptyDescs
			r.XSK["tx_wakeups"] += st.TxWakeups
			r.XSK["kick_eagain"] += st.KickEAGAIN
		}
	}
	if c, err := s.prog.Counters(); err == nil {
		r.XDP = map[string]uint64{}
		for i, v := range c {
			r.XDP[bpf.Counter(i).String()] = v
		}
	}
	sockMode := "copy"
	if len(s.socks) > 0 && s.socks[0].ZeroCopy() {
		sockMode = "zerocopy"
	}
	queues, _ := s.dev.Queues()
	r.Path = &fastpath.Path{Interface: s.ifname, Kind: s.dev.Kind, Driver: s.dev.Driver, XDPMode: s.attached.String(),
		SocketMode: sockMode, ActiveRxQueues: max(queues, len(s.socks)), AllocatedRxQueues: s.dev.AllocatedRxQueues,
		AcceptPartialChecksum: p.cfg.AcceptPartialChecksum}
	local, _ := s.dev.LocalVirtual()
	r.Diagnosis = diagnose(diagInput{r: r, ifname: s.ifname, kind: s.dev.Kind, localVirtual: local,
		queues: r.Path.ActiveRxQueues, ports: int(p.portHi-p.portLo) + 1, sources: p.srcs, dedicated: s.dedicated,
		dsts: p.dsts, synRetries: p.cfg.Params.SynRetries})
}

// ownedAddrs maps the addresses the kernel owns to their interface index.
func ownedAddrs() (map[netip.Addr]int, error) {
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

// checkOnLink rejects source addresses the peer cannot send replies to
// over the interface: a dedicated address (not the kernel's) must be in
// one of the interface's subnets, and no source may be a subnet's
// broadcast address. A kernel-owned address of another interface is used
// as Linux would (weak host model), with a note-worthy risk the caller
// sees in the diagnosis if replies do not come back.
func checkOnLink(srcs []netip.Addr, owned map[netip.Addr]int, nh route.NextHop, routed bool) error {
	addrs, err := netlink.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: nh.IfIndex}}, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	var nets []netip.Prefix
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		nets = append(nets, netip.PrefixFrom(ip, ones))
	}
	for _, s := range srcs {
		in := false
		for _, n := range nets {
			if n.Contains(s) {
				in = true
				if n.Bits() < 31 && s == lastAddr(n) {
					return usageError("--src %s: the broadcast address of %s on %s cannot be a TCP source (EADDRNOTAVAIL)", s, n.Masked(), nh.IfName)
				}
			}
		}
		if _, ok := owned[s]; !ok && !in && !routed {
			return usageError("--src %s: not an address of this host and not in a subnet of %s (%v): nothing would send its replies here (Linux: EADDRNOTAVAIL). Use a spare address of %s's subnets, or add --src-routed if a router routes it to this host", s, nh.IfName, nets, nh.IfName)
		}
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// partialPolicy decides whether the engine takes partial checksums.
func (s *session) partialPolicy(p *plan) {
	ok, why := s.dev.LocalVirtual()
	switch p.partialCsum {
	case "accept":
		p.cfg.AcceptPartialChecksum = true
		if !ok {
			s.notes = append(s.notes, "--partial-checksum accept on "+why+": corrupted frames with a checksum field equal to the pseudo-header sum would be taken")
		}
	case "reject":
	default:
		p.cfg.AcceptPartialChecksum = ok
	}
}

// routeWords turns a route failure into what a user can act on, with the
// errno connect() would return.
func routeWords(d netip.AddrPort, err error) error {
	var re *route.Error
	if !errors.As(err, &re) {
		return fmt.Errorf("--dst %s: %w", d, err)
	}
	en, _ := re.Err.(syscall.Errno)
	name := fastpath.ErrnoName(en)
	switch {
	case re.Op == "get" && en == syscall.EADDRNOTAVAIL:
		return usageError("--dst %s: an address of this host: its traffic never leaves through a network interface, so xdpconnect cannot reach it; target a server in another host or network namespace", d)
	case re.Op == "check" && en == syscall.ENETUNREACH:
		return usageError("--dst %s: a broadcast or multicast address: TCP cannot connect to it (connect() fails with ENETUNREACH)", d)
	case re.Op == "get" && en == syscall.ENETUNREACH:
		return fmt.Errorf("--dst %s: no route to the network (ENETUNREACH, as connect() reports): check 'ip route get %s'", d, d.Addr())
	case re.Op == "neigh":
		return fmt.Errorf("--dst %s: no ARP reply from %s within 3 s (%s): is it up and on that link? ('ip neigh show %s')", d, re.Dst, name, re.Dst)
	case re.Op == "link" && en == syscall.EOPNOTSUPP:
		return fmt.Errorf("--dst %s: the route leaves through an interface without Ethernet (loopback, tun, wireguard ...): xdpconnect needs an Ethernet interface", d)
	}
	return fmt.Errorf("--dst %s: route %s: %s (%v)", d, re.Op, name, re.Err)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressLine prints attempts, established, errors and the current rate.
func progressLine(w *os.File, asked float64) func(*fastpath.Snapshot) {
	var lastAtt uint64
	var lastT float64
	return func(s *fastpath.Snapshot) {
		att := s.Get(fastpath.CntAttempted)
		rate := 0.0
		if dt := s.ElapsedSeconds - lastT; dt > 0 {
			rate = float64(att-lastAtt) / dt
		}
		lastAtt, lastT = att, s.ElapsedSeconds
		a := "max"
		if asked > 0 {
			a = strconv.FormatFloat(asked, 'f', 0, 64) + "/s"
		}
		var errs []string
		for k, v := range s.Failed {
			errs = append(errs, fmt.Sprintf("%s=%d", k, v))
		}
		fmt.Fprintf(w, "\r%6.1fs attempted %d established %d failed %d [%s] in flight %d rate %.0f/s (asked %s)\x1b[K",
			s.ElapsedSeconds, att, s.Get(fastpath.CntEstablished), s.FailedTotal(), strings.Join(errs, " "), s.InFlight(), rate, a)
	}
}
