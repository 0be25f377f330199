package xdpconnect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/netdev"
	"github.com/xdpconnect/xdpconnect/internal/netns"
	"github.com/xdpconnect/xdpconnect/internal/syngen"
	"github.com/xdpconnect/xdpconnect/internal/xdptx"
	"github.com/xdpconnect/xdpconnect/report"
	"golang.org/x/sys/unix"
)

// Running a session's engine: a Plan (Run, or the XDP program's SYN-only
// probes with KernelSYNs: internal/syngen), single connections (Dial),
// and what a run may ask of the session meanwhile (Stats).

// Check says whether the plan can run (bounded, non-negative times and
// rates, HoldFor only with CloseHold ...) as an *OptionError naming the
// field; Run checks it too.
func (p *Plan) Check() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Duration", p.Duration}, {"Drain", p.Drain}, {"Warmup", p.Warmup}, {"HoldFor", p.HoldFor}, {"TimeWait", p.TimeWait}} {
		if d.v < 0 {
			return optionErr(d.name, d.v, "must not be negative")
		}
	}
	if len(p.Stages) > 0 {
		if _, err := fastpath.CheckStages(p.Stages, p.Rate, p.Duration); err != nil {
			ce, _ := errors.AsType[*fastpath.ConfigError](err)
			return optionErr(ce.Field, nil, "%s", ce.Reason)
		}
	}
	if len(p.ConcurrencyStages) > 0 {
		if _, err := fastpath.CheckConcurrencyStages(p.ConcurrencyStages, p.Close, p.Concurrency, len(p.Stages) > 0, p.Request != nil, p.Duration); err != nil {
			ce, _ := errors.AsType[*fastpath.ConfigError](err)
			return optionErr(ce.Field, nil, "%s", ce.Reason)
		}
	}
	switch {
	case p.Rate != p.Rate || p.Rate > 1e300 || p.Rate < 0:
		return optionErr("Rate", p.Rate, "want a finite number of attempts per second >= 0 (0: as fast as possible)")
	case p.Concurrency < 0:
		return optionErr("Concurrency", p.Concurrency, "must not be negative (0: no bound)")
	case p.Count == 0 && p.Duration == 0 && len(p.Stages) == 0 && len(p.ConcurrencyStages) == 0:
		return &OptionError{Reason: "a run needs {Count} or {Duration}: every run is bounded", Err: ErrUnbounded}
	case p.HoldFor > 0 && p.Close != fastpath.CloseHold:
		return optionErr("HoldFor", p.HoldFor, "needs {Close} hold (other close modes do not keep connections open)")
	case p.KernelSYNs && p.Close != fastpath.CloseSYNOnly:
		return optionErr("KernelSYNs", nil, "needs {Close} synonly (the kernel makes SYN-only probes; handshakes need the worker)")
	case p.KernelSYNs && (p.Concurrency > 0 || p.Warmup > 0):
		return optionErr("KernelSYNs", nil, "takes no {Concurrency} or {Warmup}: its probes keep no state")
	case p.Warmup > 0 && p.Duration > 0 && p.Warmup >= p.Duration:
		return optionErr("Warmup", p.Warmup, "must be shorter than {Duration} %s", p.Duration)
	case p.Duration == 0 && p.Rate > 0 && float64(p.Count)/p.Rate > maxPlanSeconds:
		return optionErr("Rate", p.Rate, "%d attempts at this rate take %s, more than a day: raise the rate, or bound the run with {Duration}",
			p.Count, time.Duration(min(float64(p.Count)/p.Rate, 1e9)*float64(time.Second)).Round(time.Second))
	case !p.StartAt.IsZero() && time.Until(p.StartAt) > 24*time.Hour:
		return optionErr("StartAt", p.StartAt.Format(time.RFC3339), "more than a day away")
	case p.Request != nil && p.KernelSYNs:
		return optionErr("KernelSYNs", nil, "makes SYN-only probes: no {Request}")
	}
	if err := p.checkRequest(); err != nil {
		return err
	}
	return p.checkTLS()
}

// maxPlanSeconds is the longest a plan bounded by its count alone may take
// at its rate: beyond a day, a unit or a typo is likelier than intent.
const maxPlanSeconds = 24 * 60 * 60

// RunHooks let a caller watch a run.
type RunHooks struct {
	// Started is called once the engine exists, before the first SYN
	// (serve metrics here); an error stops the run before it starts.
	Started func() error
	// Progress, if set, gets a snapshot about every Interval (default 1 s),
	// reused once it returns.
	Progress func(*fastpath.Snapshot)
	Interval time.Duration
}

// Run runs plan p: generation until its count or duration (or ctx ends),
// then the drain and the close mode. The report has the engine's counts and
// the session's: AF_XDP and XDP counters, the path, and a diagnosis of
// missing or dropped replies. A session runs one plan. If a socket fails for
// good (the interface went away), the run stops at once and Run returns the
// report so far with the error.
func (s *Session) Run(ctx context.Context, p Plan, h RunHooks) (*report.Report, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	whole := p
	p = p.ForShard(s.opts.Shard)
	cfg := s.config(p)
	var r *report.Report
	var err error
	switch {
	case p.KernelSYNs:
		r, err = s.runKernelSYNs(ctx, p, cfg, h)
	case p.TLS != nil:
		r, err = s.runTLS(ctx, p, cfg, h)
	default:
		r, err = s.runEngine(ctx, p, cfg, h)
	}
	if r != nil {
		if sh := s.opts.Shard; sh.Sharded() {
			r.RunID = s.opts.RunID
			if r.RunID == "" {
				r.RunID = RunID(s.targetsGiven, whole, sh)
			}
			r.Shard = &report.ShardInfo{Index: sh.Index, Count: sh.Count, PlanCount: whole.Count}
		}
	}
	return r, err
}

// runEngine runs p on the engine: the workers make the SYNs.
func (s *Session) runEngine(ctx context.Context, p Plan, cfg fastpath.Config, h RunHooks) (*report.Report, error) {
	cfg.LinkDown = new(atomic.Bool)
	eng, err := s.engineFor(cfg, h)
	if err != nil {
		return nil, err
	}
	if err := waitStart(ctx, p.StartAt); err != nil {
		return nil, err
	}
	stopWatch := s.watchLink(cfg.LinkDown)
	r, err := eng.Run(ctx, h.Interval, h.Progress)
	s.outages = stopWatch()
	if r != nil {
		if err != nil {
			r.Stopped = err.Error()
		}
		s.complete(r, &cfg)
	}
	return r, err
}

// waitRunning waits up to a second for eng's Run, started on another
// goroutine, to be under way; false if it is not.
func waitRunning(eng *fastpath.Engine) bool {
	for deadline := time.Now().Add(time.Second); !eng.Running(); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// runBehind runs eng on a goroutine of its own (an engine that only
// dials, while the caller makes the load): finish stops it and returns
// its report; later calls return the same.
func runBehind(ctx context.Context, eng *fastpath.Engine, interval time.Duration, progress func(*fastpath.Snapshot)) (finish func() (*report.Report, error)) {
	engCtx, stop := context.WithCancel(ctx)
	var r *report.Report
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err = eng.Run(engCtx, interval, progress)
	}()
	return func() (*report.Report, error) {
		stop()
		<-done
		return r, err
	}
}

// waitStart waits until at (Plan.StartAt; zero: no wait), or ctx's end.
func waitStart(ctx context.Context, at time.Time) error {
	if d := time.Until(at); !at.IsZero() && d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// engineFor makes the run's engine, then calls the Started hook.
func (s *Session) engineFor(cfg fastpath.Config, h RunHooks) (*fastpath.Engine, error) {
	eng, err := s.newEngine(cfg)
	if err == nil && h.Started != nil {
		err = h.Started()
	}
	return eng, err
}

func (s *Session) newEngine(cfg fastpath.Config) (*fastpath.Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newEngineLocked(cfg)
}

func (s *Session) newEngineLocked(cfg fastpath.Config) (*fastpath.Engine, error) {
	if s.engine != nil {
		return nil, ErrSessionUsed
	}
	// The plan's own limits (ports per worker, table size) are the user's
	// to fix.
	if err := cfg.Validate(len(s.socks)); err != nil {
		return nil, optionErr("Plan", nil, "%v", err)
	}
	links := make([]fastpath.Link, len(s.socks))
	for i, x := range s.socks {
		links[i] = x
		if s.txq != nil {
			links[i] = xdptx.New(x, s.txq[i])
		}
	}
	eng, err := fastpath.New(cfg, links)
	if err != nil {
		return nil, err
	}
	s.engine = eng
	return eng, nil
}

// Dial opens one connection to dst, one of the session's targets, and
// waits for the handshake, as a blocking connect() does: the error is the
// kernel's (errors.Is(err, syscall.ECONNREFUSED), ETIMEDOUT ...). During
// Run it shares the running engine; otherwise the first Dial starts an
// engine that only dials, until Close.
func (s *Session) Dial(ctx context.Context, dst netip.AddrPort) (*fastpath.Conn, error) {
	s.mu.Lock()
	if s.engine != nil && s.dialRun == nil && !s.engine.Running() {
		// The engine of a finished Run: its sockets serve nothing now.
		s.mu.Unlock()
		return nil, ErrSessionUsed
	}
	if s.engine == nil {
		// The first Dial starts the dial-only engine; concurrent ones wait
		// on the lock and find it.
		if err := s.startDialerLocked(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	eng := s.engine
	s.mu.Unlock()
	// Dial needs the engine running: its Run starts on another goroutine
	// (a Dial to an engine that did not start fails with ENETDOWN).
	waitRunning(eng)
	c, err := eng.Dial(ctx, dst)
	if err != nil && s.dialRun != nil {
		select {
		case <-s.dialRun: // the dial-only engine ended: say why
			if s.dialErr != nil {
				return nil, fmt.Errorf("%w (%w)", err, s.dialErr)
			}
		default:
		}
	}
	return c, err
}

// DialContext is Dial for code written against net.Dialer (a
// net/http.Transport's DialContext, gRPC's dialer, crypto/tls.Client over
// it): address is "host:port", the host an IP literal or a name that
// resolves to one of the session's targets on that port; network is
// "tcp", "tcp4" or "tcp6". Errors are *net.OpError, as net's are.
func (s *Session) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var want func(netip.Addr) bool
	switch network {
	case "tcp":
		want = func(netip.Addr) bool { return true }
	case "tcp4":
		want = netip.Addr.Is4
	case "tcp6":
		want = netip.Addr.Is6
	default:
		return fail(net.UnknownNetworkError(network))
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return fail(err)
	}
	port, err := net.LookupPort(network, portText)
	if err != nil {
		return fail(err)
	}
	addrs := []netip.Addr{}
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = append(addrs, a.Unmap())
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return fail(err)
	}
	for _, a := range addrs {
		dst := netip.AddrPortFrom(a.Unmap(), uint16(port))
		if !want(dst.Addr()) || !s.isTarget(dst) {
			continue
		}
		c, err := s.Dial(ctx, dst)
		if err != nil {
			// The kernel's errno, as net's dial errors carry it.
			var errno unix.Errno
			if errors.As(err, &errno) {
				err = os.NewSyscallError("connect", errno)
			}
			return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(dst), Err: err}
		}
		return c, nil
	}
	return fail(fmt.Errorf("%s is not one of the session's targets: %w", address, unix.EINVAL))
}

func (s *Session) isTarget(dst netip.AddrPort) bool {
	for _, t := range s.opts.Targets {
		if t == dst {
			return true
		}
	}
	return false
}

func (s *Session) startDialerLocked() error {
	cfg := s.config(DefaultPlan())
	cfg.DialOnly = true
	eng, err := s.newEngineLocked(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.dialEnd, s.dialRun = cancel, make(chan struct{})
	go func() {
		defer close(s.dialRun)
		_, s.dialErr = eng.Run(ctx, time.Second, nil)
	}()
	return nil
}

// Stats is a snapshot of the running (or last) engine's counters.
func (s *Session) Stats() fastpath.Snapshot {
	s.mu.Lock()
	eng := s.engine
	s.mu.Unlock()
	if eng == nil {
		return fastpath.Snapshot{}
	}
	return eng.Snapshot()
}

// runKernelSYNs runs p (Close synonly) with the kernel making the SYNs.
func (s *Session) runKernelSYNs(ctx context.Context, p Plan, cfg fastpath.Config, h RunHooks) (*report.Report, error) {
	o := &s.opts
	if err := s.checkXDPSend("KernelSYNs"); err != nil {
		return nil, err
	}
	// The SYNs leave by the interface, named in its namespace.
	if err := netns.Do(o.Netns, func() error { return s.prog.SetTxDevice(s.dev.Index) }); err != nil {
		return nil, fmt.Errorf("SYN-only probes by the XDP program: %w", err)
	}
	nports := int(o.PortHi-o.PortLo) + 1
	pairs, err := syngen.Pairs(s.prog, &cfg, nports)
	if le, ok := errors.AsType[*syngen.LimitError](err); ok {
		return nil, optionErr("KernelSYNs", nil, "%v: narrow {Ports}", le)
	} else if err != nil {
		return nil, err
	}
	// The engine serves ARP, neighbour discovery and strays meanwhile.
	dial := cfg
	dial.DialOnly, dial.Count, dial.Duration = true, 0, 0
	eng, err := s.engineFor(dial, h)
	if err != nil {
		return nil, err
	}
	finish := runBehind(ctx, eng, time.Hour, nil)
	defer finish()
	if err := s.prog.SetScan(true); err != nil {
		return nil, err
	}
	defer func() { _ = s.prog.SetScan(false) }()
	// A cancel while waiting ends in the (empty) report below.
	_ = waitStart(ctx, p.StartAt)
	start := time.Now()
	var genErr error
	// The generator runs on a thread of its own (netns.Do's), pinned to
	// the first CPU as a worker would be.
	err = netns.Do(o.Netns, func() error {
		// internal/cpu is the engine's (docs/architecture.md): the first
		// CPU directly.
		var set unix.CPUSet
		set.Set(0)
		_ = unix.SchedSetaffinity(0, &set)
		genErr = syngen.Generate(ctx, s.prog, syngen.Plan{Count: p.Count, Duration: p.Duration, Rate: p.Rate}, pairs)
		return nil
	})
	if err == nil {
		err = genErr
	}
	genEnd := time.Since(start)
	// Answers get up to Drain (default 1 s) once the last SYN left, and
	// the wait ends early when every probe has one.
	drain := p.Drain
	if drain == 0 {
		drain = time.Second
	}
	var sc bpf.ScanCounts
	for deadline := time.Now().Add(drain); ; time.Sleep(10 * time.Millisecond) {
		var rerr error
		if sc, rerr = s.prog.ScanCounts(); rerr != nil {
			err = errors.Join(err, rerr)
			break
		}
		if syngen.Answered(&sc) >= sc.Sent || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	r, runErr := finish()
	if r == nil {
		return nil, errors.Join(err, runErr)
	}
	syngen.Report(r, &sc, genEnd)
	s.complete(r, &cfg)
	if sc.Sent > 0 && syngen.Answered(&sc) == 0 && s.dev.Kind == "veth" {
		r.Diagnosis = append([]report.Finding{{Count: sc.Sent,
			Cause: "no SYN made by the XDP program was answered: a veth drops frames sent by XDP unless its peer has an XDP program or GRO on",
			Fix:   "turn GRO on at the peer veth ('ethtool -K PEER gro on' in its namespace), or leave --xdp-syn out"}}, r.Diagnosis...)
	}
	if err != nil {
		r.Stopped = err.Error()
	}
	return r, err
}

// watchLink follows the interface's link state from now (in the session's
// namespace) until the returned stop, which keeps its outages for the
// report; down is true while the link is down. Without link events (no
// permission) there are none.
func (s *Session) watchLink(down *atomic.Bool) (stop func() []netdev.Outage) {
	var w func() []netdev.Outage
	_ = netns.Do(s.opts.Netns, func() (err error) {
		w, err = netdev.WatchLink(s.dev.Index, func(up bool) { down.Store(!up) })
		return err
	})
	if w == nil {
		return func() []netdev.Outage { return nil }
	}
	return w
}
