package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/route"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// plan is what `run` was asked to do, before anything touches the system.
type plan struct {
	netns      string
	iface      string
	dsts       []netip.AddrPort
	srcs       []netip.Addr
	portLo     uint16
	portHi     uint16
	workers    int
	generic    bool
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
	notes   []string
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

// rxQueues is the number of RX queues of the interface, asked over netlink
// (sysfs shows the namespace it was mounted in, not the calling thread's).
func rxQueues(ifindex int) int {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 1
	}
	return max(l.Attrs().NumRxQueues, 1)
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
				return fmt.Errorf("%s: %w", d, err)
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
		if len(p.srcs) == 0 {
			p.srcs = []netip.Addr{nh0.Src}
		}
		owned, err := ownedAddrs()
		if err != nil {
			return err
		}
		cfg := &p.cfg
		cfg.Targets, cfg.Sources = nil, nil
		for i, d := range p.dsts {
			cfg.Targets = append(cfg.Targets, fastpath.Target{Addr: d, DstMAC: [6]byte(hops[i].DstMAC)})
		}
		for _, a := range p.srcs {
			cfg.Sources = append(cfg.Sources, fastpath.Source{Addr: a, Dedicated: !owned[a]})
		}
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
		queues := rxQueues(nh0.IfIndex)
		if p.workers == 0 {
			p.workers = queues
		}
		if p.workers > queues {
			return fmt.Errorf("%d workers but %s has %d RX queue(s): one worker per queue", p.workers, nh0.IfName, queues)
		}
		if p.workers < queues {
			s.notes = append(s.notes, fmt.Sprintf("%s has %d RX queues and %d worker(s): replies on other queues go to the kernel", nh0.IfName, queues, p.workers))
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
		for q := 0; q < p.workers; q++ {
			x, err := xsk.Open(nh0.IfIndex, q, xsk.Options{NumFrames: p.frames, RingSize: min(2048, max(p.frames/2, 8)), Mode: p.copyMode})
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
		// Attach last: from here on our flows are steered to the sockets.
		return s.prog.Attach(nh0.IfIndex, p.generic)
	})
	if err != nil {
		return nil, err
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

// ownedAddrs lists the addresses the kernel owns on any interface.
func ownedAddrs() (map[netip.Addr]bool, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	m := map[netip.Addr]bool{}
	for _, a := range addrs {
		if x, ok := netip.AddrFromSlice(a.IP); ok {
			m[x.Unmap()] = true
		}
	}
	return m, nil
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
