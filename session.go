package xdpconnect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/netdev"
	"github.com/xdpconnect/xdpconnect/internal/netns"
	"github.com/xdpconnect/xdpconnect/internal/portres"
	"github.com/xdpconnect/xdpconnect/internal/sysctl"
	"github.com/xdpconnect/xdpconnect/metrics"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/route"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
	"golang.org/x/sys/unix"
)

// Session is the wiring of one interface for a set of targets: the XDP
// program, the AF_XDP sockets, the reserved ports. It runs one plan (or
// serves Dial) and is undone by Close.
type Session struct {
	// tlsLive is the HTTPS run's timeline under way (nil: none), which
	// the metrics read.
	tlsLive atomic.Pointer[tlsTimeline]
	opts    Options
	prog    *bpf.Program
	socks   []*xsk.Socket
	txq     []*bpf.TxQueue // per socket, with Options.XDPTX
	restore func()
	ifname  string
	dev     netdev.Info
	// attached is the XDP mode the program runs in (native or generic).
	attached  bpf.AttachMode
	targets   []fastpath.Target
	sources   []fastpath.Source
	srcMAC    [6]byte
	mtu       int
	outages   []netdev.Outage // of the interface during the run
	rxMTU     int             // the MTU the SYNs' MSS is derived from: what the UMEM frames receive whole
	sysctls   tcp.Sysctls     // the namespace's TCP settings, read at Open
	dedicated bool            // some sources are not the kernel's (ARP answered here)
	queues    int             // active RX queues
	notes     []string
	// targetsGiven are the targets before sharding: the run ID hashes them,
	// the same on every shard.
	targetsGiven []netip.AddrPort

	mu      sync.Mutex
	engine  *fastpath.Engine
	dialEnd context.CancelFunc // stops a dial-only engine
	dialRun chan struct{}      // closed when it has returned
	dialErr error              // what ended it early (a failed socket)
}

// Open resolves the targets' route, checks the options against the
// interface, reserves the source ports, loads and attaches the XDP program
// and opens one AF_XDP socket per worker. Nothing is sent until Run or
// Dial. Close undoes it all.
func Open(ctx context.Context, o Options) (_ *Session, err error) {
	d := DefaultOptions()
	if o.Frames == 0 {
		o.Frames = d.Frames
	}
	if o.Idle == 0 {
		o.Idle = d.Idle
	}
	o.sourcesGiven = len(o.Sources) > 0
	if err := o.check(); err != nil {
		return nil, err
	}
	given := o.Targets
	if err := o.partition(false); err != nil {
		return nil, err
	}
	s := &Session{opts: o, targetsGiven: given}
	if o.Key == ([16]byte{}) {
		k, err := bootKey(secretPath)
		if err != nil {
			s.notes = append(s.notes, fmt.Sprintf("ISNs are keyed for this run alone (%v): a server still holding one of its 4-tuples in TIME-WAIT from an earlier run may answer the SYN with an ACK, and the attempt waits for its retransmission", err))
		}
		s.opts.Key = k // zero: the engine draws one
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := netns.Do(o.Netns, func() error { return s.open(ctx) }); err != nil {
		return nil, err
	}
	return s, nil
}

// check validates what needs no system state.
func (o *Options) check() error {
	if len(o.Targets) == 0 {
		return optionErr("Targets", nil, "no target: give one or more")
	}
	if len(o.Targets) > MaxTargets {
		return optionErr("Targets", nil, "%d targets in all; at most %d per run", len(o.Targets), MaxTargets)
	}
	seen := map[netip.AddrPort]bool{}
	for _, t := range o.Targets {
		if seen[t] {
			return optionErr("Targets", t, "given twice: give each target once (attempts are spread over distinct targets)")
		}
		seen[t] = true
		if err := CheckTarget(t.Addr()); err != nil {
			return optionErr("Targets", t.Addr(), "%v", err)
		}
	}
	for _, a := range o.Sources {
		if err := checkSrc(a, o.Targets); err != nil {
			return optionErr("Sources", a, "%v", err)
		}
	}
	switch {
	case o.Workers < 0:
		return optionErr("Workers", o.Workers, "want 1 or more (0: one per active RX queue)")
	case o.Frames < 64 || o.Frames > 1<<18 || o.Frames&(o.Frames-1) != 0:
		return optionErr("Frames", o.Frames, "want a power of two from 64 to 262144 (UMEM frames per socket, 2 KiB each)")
	case o.Batch < 0 || o.Batch > o.Frames:
		return optionErr("Batch", o.Batch, "want 1..%d (at most {Frames}; 0: the default)", o.Frames)
	case o.SynRetries < 0 || o.SynRetries > 127:
		return optionErr("SynRetries", o.SynRetries, "want 1..127 (TCP_SYNCNT)")
	case o.TargetStats < 0 || o.TargetStats > 1024:
		return optionErr("TargetStats", o.TargetStats, "want 1..1024 (each is a metrics series)")
	case o.PortLo != 0 && o.PortHi < o.PortLo:
		return optionErr("Ports", fmt.Sprintf("%d-%d", o.PortLo, o.PortHi), "the low port is above the high one: want LO-HI with 1 <= LO <= HI <= 65535")
	case o.Shard.Count < 0 || o.Shard.Count > 0 && (o.Shard.Index < 0 || o.Shard.Index >= o.Shard.Count):
		return optionErr("Shard", o.Shard, "the index must be 0..%d of a count of 1 or more", max(o.Shard.Count-1, 0))
	case o.Netns != "" && !netns.Exists(o.Netns):
		return optionErr("Netns", o.Netns, "no such network namespace ('ip netns list' shows them)")
	}
	return nil
}

// open runs in the session's namespace.
func (s *Session) open(ctx context.Context) error {
	o := &s.opts
	// The SYNs are the namespace's, as connect() would send them there.
	s.sysctls = sysctl.ReadTCP("/proc/sys")
	if o.Iface != "" {
		if _, err := net.InterfaceByName(o.Iface); err != nil {
			return optionErr("Iface", o.Iface, "no such interface in this namespace ('ip link' lists them)")
		}
	}
	var r route.Resolver
	var hops []route.NextHop
	for _, d := range o.Targets {
		nh, err := r.Resolve(ctx, d.Addr())
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("interrupted while resolving the route to %s: %w", d, context.Cause(ctx))
		}
		if err != nil {
			return routeWords(d, err)
		}
		if o.Iface != "" && nh.IfName != o.Iface {
			return optionErr("Iface", o.Iface, "target %s is reached through %s", d, nh.IfName)
		}
		if len(hops) > 0 && nh.IfIndex != hops[0].IfIndex {
			return optionErr("Targets", nil, "targets leave through different interfaces (%s, %s): open one session per interface", hops[0].IfName, nh.IfName)
		}
		hops = append(hops, nh)
	}
	nh0 := hops[0]
	s.ifname, s.mtu = nh0.IfName, nh0.MTU
	// A UMEM frame must take a whole received frame: 4 KiB frames where
	// the MTU needs them, and SYNs that announce no larger MSS than the
	// frames receive, as Linux announces no more than it can take.
	frameSize := xsk.FrameSizeFor(s.mtu)
	s.rxMTU = min(s.mtu, xsk.MaxRxMTU(frameSize))
	if s.rxMTU < s.mtu {
		s.notes = append(s.notes, fmt.Sprintf("%s has MTU %d; AF_XDP frames of %d bytes receive frames of at most %d bytes, so the SYNs announce MSS %d (IPv4) instead of %d: the server's segments then fit",
			s.ifname, s.mtu, frameSize, s.rxMTU+14, s.rxMTU-40, s.mtu-40))
	}
	var err error
	if s.dev, err = netdev.Inspect(nh0.IfIndex); err != nil {
		return err
	}
	// A family without a given source uses its first target's route
	// source, as connect() would pick it.
	var fam [2]bool
	for _, a := range o.Sources {
		fam[familyOf(a)] = true
	}
	for _, nh := range hops {
		if f := familyOf(nh.Dst); !fam[f] {
			if !nh.Src.IsValid() {
				return optionErr("Targets", nh.Dst, "its route has no source address ('ip route get %s'): give {Sources}", nh.Dst)
			}
			o.Sources = append(o.Sources, nh.Src)
			fam[f] = true
		}
	}
	owned, err := netdev.OwnedAddrs()
	if err != nil {
		return err
	}
	err = netdev.CheckSources(o.Sources, owned, nh0.IfIndex, nh0.IfName, o.SourcesRouted)
	if se, ok := errors.AsType[*netdev.SourceError](err); ok {
		if se.OffLink {
			return optionErr("Sources", se.Addr, "%s, or set {SourcesRouted} if a router routes it to this host", se.Reason)
		}
		return optionErr("Sources", se.Addr, "%s", se.Reason)
	} else if err != nil {
		return err
	}
	for i, d := range o.Targets {
		s.targets = append(s.targets, fastpath.Target{Addr: d, DstMAC: [6]byte(hops[i].DstMAC)})
	}
	var probe []netip.Addr
	for _, a := range o.Sources {
		_, mine := owned[a]
		s.sources = append(s.sources, fastpath.Source{Addr: a, Dedicated: !mine})
		s.dedicated = s.dedicated || !mine
		if !mine && !o.SourcesRouted {
			probe = append(probe, a)
		}
	}
	// Before the program answers ARP for a dedicated address, nobody else
	// may: on a real LAN that would take another host's traffic.
	if len(probe) > 0 {
		conflicts, err := netdev.ProbeAddrs(nh0.IfIndex, nh0.IfMAC, probe, 200*time.Millisecond)
		if err != nil {
			return fmt.Errorf("probing the source addresses on %s (ARP, duplicate address detection): %w", nh0.IfName, err)
		}
		if len(conflicts) > 0 {
			c := conflicts[0]
			return optionErr("Sources", c.Addr, "another host (MAC %s) answers for it on %s (an ARP probe or duplicate address detection): answering for it would take that host's traffic; choose spare addresses", c.MAC, nh0.IfName)
		}
	}
	s.srcMAC = [6]byte(nh0.IfMAC)
	if o.PortLo == 0 {
		if o.PortLo, o.PortHi, err = portres.DefaultRange(); err != nil {
			return optionErr("Ports", nil, "%v", err)
		}
	}
	if err := o.partition(true); err != nil {
		return err
	}
	if l := portres.ListenersIn(o.PortLo, o.PortHi); len(l) > 0 {
		return optionErr("Ports", fmt.Sprintf("%d-%d", o.PortLo, o.PortHi), "local listeners on ports %v inside the range: their traffic would be taken; choose another range", l)
	}
	// One worker per active RX queue: an AF_XDP socket binds to a queue in
	// use only, and the allocated count (netlink) is usually larger.
	queues, known := s.dev.Queues()
	want := o.Workers
	if want == 0 {
		want = queues
	}
	if known && want > queues {
		return optionErr("Workers", want, "%s has %d active RX queue(s) (%d allocated; ethtool -l %s): one worker per active queue",
			nh0.IfName, queues, s.dev.AllocatedRxQueues, nh0.IfName)
	}
	restore, err := portres.Reserve(o.PortLo, o.PortHi)
	switch {
	case errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES):
		// A container without privileges sees /proc/sys read-only. The
		// default range is outside ip_local_port_range already; the
		// reservation only keeps explicit binds off it.
		s.notes = append(s.notes, fmt.Sprintf("ports %d-%d not reserved in ip_local_reserved_ports (%v): a program that binds them explicitly would take their traffic", o.PortLo, o.PortHi, err))
	case err != nil:
		return err
	default:
		// Put the sysctl back in the namespace it was changed in, whatever
		// thread Close runs on.
		s.restore = func() { _ = netns.Do(o.Netns, func() error { restore(); return nil }) }
	}
	txWorkers := 0
	if o.XDPTX {
		if err := s.checkXDPSend("XDPTX"); err != nil {
			return err
		}
		txWorkers = want
	}
	if s.prog, err = bpf.Load(txWorkers); err != nil {
		return err
	}
	if s.prog.NoStamps {
		s.notes = append(s.notes, "this kernel refuses bpf_xdp_adjust_meta to XDP programs: replies are timed when a worker's loop finds them, not on arrival, so handshake RTTs include up to one loop's time")
	}
	if err := s.prog.SetPorts(o.PortLo, o.PortHi); err != nil {
		return err
	}
	for _, src := range s.sources {
		if err := s.prog.AddAddr(src.Addr, src.Dedicated); err != nil {
			return err
		}
	}
	for q := 0; q < want; q++ {
		x, err := xsk.Open(nh0.IfIndex, q, xsk.Options{NumFrames: o.Frames, FrameSize: frameSize, RingSize: min(8192, max(o.Frames/2, 8)), Mode: o.SocketMode})
		if err != nil && !known && q > 0 && errors.Is(err, unix.EINVAL) {
			// The driver reports no channels: the first queue the kernel
			// refuses is the first inactive one.
			if o.Workers > 0 {
				return optionErr("Workers", o.Workers, "%s has %d active RX queue(s): one worker per active queue", nh0.IfName, q)
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
	if !known {
		queues = max(queues, len(s.socks))
	}
	s.queues = queues
	if len(s.socks) < queues {
		s.notes = append(s.notes, fmt.Sprintf("%s has %d active RX queues and %d worker(s): replies hashed to the other queues reach the kernel, which resets them", nh0.IfName, queues, len(s.socks)))
	}
	if local, why := s.dev.LocalVirtual(); o.PartialChecksum == PartialAccept && !local {
		s.notes = append(s.notes, "partial checksums accepted on "+why+": corrupted frames with a checksum field equal to the pseudo-header sum would be taken")
	}
	// Attach last: from here on our flows are steered to the sockets.
	if s.attached, err = s.prog.Attach(nh0.IfIndex, o.Attach); err != nil {
		return err
	}
	if s.attached == bpf.AttachGeneric && o.Attach == bpf.AttachAuto {
		why := "has no native XDP"
		switch {
		case errors.Is(s.prog.NativeErr, unix.ENOSPC):
			why = "refused native XDP: a veth needs at least as many RX queues as its peer has TX queues ('ethtool -L PEER tx N' on the peer)"
		case errors.Is(s.prog.NativeErr, unix.ERANGE):
			why = fmt.Sprintf("refused native XDP at MTU %d (ERANGE: the driver's XDP limit, about 3.5k on a veth, is below it)", s.mtu)
		}
		s.notes = append(s.notes, fmt.Sprintf("%s (%s) %s: attached in generic (SKB) mode, which is slower; the native attach mode refuses instead", nh0.IfName, s.dev.Kind, why))
	}
	if o.XDPTX {
		return s.openXDPTX()
	}
	return nil
}

// partialOK says partial checksums can only come from a local peer here.
func (s *Session) partialOK() bool {
	ok, _ := s.dev.LocalVirtual()
	return ok
}

// Notes are what the session decided that a user should know (fallbacks,
// queues without a worker ...).
func (s *Session) Notes() []string { return s.notes }

// Interface is the interface the session sends through.
func (s *Session) Interface() string { return s.ifname }

// Workers is the number of workers (sockets).
func (s *Session) Workers() int { return len(s.socks) }

// Sources are the source addresses in use.
func (s *Session) Sources() []netip.Addr { return s.opts.Sources }

// Ports are the source ports in use.
func (s *Session) Ports() (lo, hi uint16) { return s.opts.PortLo, s.opts.PortHi }

// config is the engine's configuration for plan p.
func (s *Session) config(p Plan) fastpath.Config {
	o := &s.opts
	c := fastpath.Config{Targets: s.targets, Sources: s.sources, SrcMAC: s.srcMAC, PortLo: o.PortLo, PortHi: o.PortHi,
		Params: tcp.DefaultParams(s.rxMTU, false), Rate: p.Rate, Stages: p.Stages, Concurrency: p.Concurrency, Count: p.Count,
		ConcurrencyStages: p.ConcurrencyStages,
		Duration:          p.Duration, Warmup: p.Warmup, Drain: p.Drain, Close: p.Close, HoldFor: p.HoldFor, TimeWait: p.TimeWait,
		Key: o.Key, Batch: o.Batch, Pin: !o.NoPin, Idle: o.Idle, TargetStats: o.TargetStats,
		Request: p.Request, ResponseTimeout: p.ResponseTimeout, RequestsPerConn: p.RequestsPerConn}
	c.Params6 = tcp.DefaultParams(s.rxMTU, true)
	for _, p := range []*tcp.Params{&c.Params, &c.Params6} {
		s.sysctls.Apply(p)
		if o.SynRetries > 0 {
			p.SynRetries = o.SynRetries
		}
	}
	switch o.PartialChecksum {
	case PartialAccept:
		c.AcceptPartialChecksum = true
	case PartialAuto:
		c.AcceptPartialChecksum = s.partialOK()
	}
	return c
}

// ServeMetrics serves the session's Prometheus metrics on addr until the
// returned stop is called; call it from RunHooks.Started (or after the
// first Dial), once the engine exists.
func (s *Session) ServeMetrics(addr string) (bound string, stop func(), err error) {
	s.mu.Lock()
	eng := s.engine
	s.mu.Unlock()
	if eng == nil {
		return "", nil, errors.New("metrics: the session has no engine yet")
	}
	src := metrics.Sources{Engine: eng, Sockets: s.socks}
	src.TLS = func() (metrics.TLSCounts, bool) {
		tl := s.tlsLive.Load()
		if tl == nil {
			return metrics.TLSCounts{}, false
		}
		return tl.counts(), true
	}
	prog := s.prog
	src.XDP = func() ([]metrics.XDPCounter, error) {
		c, err := prog.Counters()
		if err != nil {
			return nil, err
		}
		out := make([]metrics.XDPCounter, 0, bpf.NumDecisions)
		for i, v := range c[:bpf.NumDecisions] {
			k := bpf.Counter(i)
			out = append(out, metrics.XDPCounter{Action: k.Action(), Reason: k.String(), Value: v})
		}
		return out, nil
	}
	return metrics.Serve(addr, src)
}

// Close stops a dial-only engine, closes the sockets, detaches the program
// and puts the port reservation back. It is safe to call more than once.
func (s *Session) Close() error {
	if s.dialEnd != nil {
		s.dialEnd()
		<-s.dialRun
		s.dialEnd = nil
	}
	for _, x := range s.socks {
		x.Close()
	}
	s.socks, s.txq = nil, nil
	var err error
	if s.prog != nil {
		err = s.prog.Close()
		s.prog = nil
	}
	if s.restore != nil {
		s.restore()
		s.restore = nil
	}
	return err
}

// complete adds what the session owns to the engine's report: AF_XDP and
// XDP counters, the path, and the diagnosis.
func (s *Session) complete(r *report.Report, cfg *fastpath.Config) {
	r.XSK = &report.XSKStats{}
	for _, x := range s.socks {
		if st, err := x.Stats(); err == nil {
			r.XSK.RxDropped += st.RxDropped
			r.XSK.RxRingFull += st.RxRingFull
			r.XSK.RxFillRingEmpty += st.RxFillRingEmptyDescs
			r.XSK.TxWakeups += st.TxWakeups
			r.XSK.KickEAGAIN += st.KickEAGAIN
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
	r.Path = &report.Path{Interface: s.ifname, Kind: s.dev.Kind, Driver: s.dev.Driver, XDPMode: s.attached.String(),
		SocketMode: sockMode, ActiveRxQueues: s.queues, AllocatedRxQueues: s.dev.AllocatedRxQueues,
		AcceptPartialChecksum: cfg.AcceptPartialChecksum, PortLo: cfg.PortLo, PortHi: cfg.PortHi}
	for _, a := range s.opts.Sources {
		r.Path.Sources = append(r.Path.Sources, a.String())
	}
	r.Notes = s.notes
	for _, o := range s.outages {
		r.Outages = append(r.Outages, report.Outage{Interface: s.ifname, StartSeconds: o.Start.Seconds(), EndSeconds: o.End.Seconds()})
	}
	if r.Saturation != nil {
		r.Saturation.Judge(r) // again, with the AF_XDP counters in
	}
	r.Diagnosis = report.Diagnose(report.Evidence{Report: r, Interface: s.ifname, Kind: s.dev.Kind, LocalVirtual: s.partialOK(),
		Queues: s.queues, Ports: int(cfg.PortHi-cfg.PortLo) + 1, Sources: s.opts.Sources, Dedicated: s.dedicated, Routed: s.opts.SourcesRouted,
		Targets: s.opts.Targets, SynRetries: cfg.Params.SynRetries})
}

// familyOf is 0 for IPv4 and 1 for IPv6.
func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// routeWords turns a route failure into what a user can act on, with the
// errno connect() would return.
func routeWords(d netip.AddrPort, err error) error {
	var re *route.Error
	if !errors.As(err, &re) {
		return fmt.Errorf("target %s: %w", d, err)
	}
	en, _ := re.Err.(syscall.Errno)
	name := fastpath.ErrnoName(en)
	switch {
	case re.Op == "check" && en == syscall.ENETUNREACH:
		return optionErr("Targets", d, "a broadcast or multicast address: TCP cannot connect to it (connect() fails with ENETUNREACH)")
	case re.Op == "get" && en == syscall.EADDRNOTAVAIL:
		return optionErr("Targets", d, "an address of this host: its traffic never leaves through a network interface, so xdpconnect cannot reach it; target a server in another host or network namespace")
	case re.Op == "get" && en == syscall.ENETUNREACH:
		return fmt.Errorf("target %s: no route to the network (ENETUNREACH, as connect() reports): check 'ip route get %s'", d, d.Addr())
	case re.Op == "neigh":
		return fmt.Errorf("target %s: no ARP or neighbour discovery reply from %s within 3 s (%s): is it up and on that link? ('ip neigh show %s')", d, re.Dst, name, re.Dst)
	case re.Op == "link" && en == syscall.EOPNOTSUPP:
		return fmt.Errorf("target %s: the route leaves through an interface without Ethernet (loopback, tun, wireguard ...): xdpconnect needs an Ethernet interface", d)
	}
	return fmt.Errorf("target %s: route %s: %s (%v)", d, re.Op, name, re.Err)
}
