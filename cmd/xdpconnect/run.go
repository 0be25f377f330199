package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/xsk"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// runOpts are the parsed `run` flags.
type runOpts struct {
	plan        plan
	jsonPath    string
	metricsAddr string
	// metricsDefault: the address was not chosen, so a taken default port
	// moves to a free one instead of failing the run.
	metricsDefault bool
	progress       time.Duration
	quiet          bool
	// Hooks for tests and the bench harness: the metrics address once
	// bound, and the report while metrics are still served.
	metricsBound func(addr string)
	afterRun     func(*fastpath.Report)
}

func parseRun(args []string, stderr io.Writer) (*runOpts, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dsts multiFlag
	var o runOpts
	fs.Var(&dsts, "dst", "target IP:PORT; repeatable; CIDR and port ranges allowed (198.18.0.0/30:8080-8081)")
	fs.StringVar(&o.plan.iface, "iface", "", "outgoing interface (default: the route's)")
	src := fs.String("src", "", "source address, range A-B or CIDR (default: the route's source address); addresses the kernel does not own are answered for ARP by xdpconnect")
	fs.BoolVar(&o.plan.srcRouted, "src-routed", false, "--src addresses outside the interface's subnets are routed to this host by the peer or a router (as in TRex-style labs)")
	srcPorts := fs.String("src-ports", "", "source port range LO-HI (default: outside ip_local_port_range; reserved in ip_local_reserved_ports while running)")
	fs.Uint64Var(&o.plan.cfg.Count, "count", 0, "attempts to make (0: until --duration)")
	fs.DurationVar(&o.plan.cfg.Duration, "duration", 0, "how long to generate (0: until --count)")
	fs.Float64Var(&o.plan.cfg.Rate, "rate", 0, "attempts per second (0: as fast as possible)")
	fs.IntVar(&o.plan.cfg.Concurrency, "concurrency", 0, "bound on attempts in flight plus open connections (0: none)")
	closeMode := fs.String("close", "rst", "after the handshake: rst (abort), fin (graceful close), hold (keep open until the end); synonly answers SYN-ACKs with RST (SYN-rate comparisons)")
	fs.IntVar(&o.plan.synRetries, "syn-retries", 0, "SYN retransmissions before ETIMEDOUT, like TCP_SYNCNT (default: tcp_syn_retries, 6)")
	fs.IntVar(&o.plan.workers, "workers", 0, "workers, one per RX queue (default: the interface's RX queues)")
	queues := fs.Int("queues", 0, "same as --workers")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to this file (- for stdout)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", defaultMetricsAddr, "serve Prometheus metrics here while running, in the namespace xdpconnect was started in (empty: off; the default moves to a free port when taken)")
	fs.DurationVar(&o.plan.cfg.Drain, "drain", 5*time.Second, "time in-flight attempts get after generation stops")
	fs.DurationVar(&o.plan.cfg.Warmup, "warmup", 0, "excluded from the measured rate")
	fs.DurationVar(&o.plan.cfg.HoldFor, "hold-for", 0, "with --close hold: keep the connections open this long after generation ends")
	fs.DurationVar(&o.plan.cfg.TimeWait, "time-wait", 60*time.Second, "quarantine of a port that ended in TIME-WAIT (fin mode)")
	generic := fs.Bool("generic", false, "same as --xdp-attach generic")
	attach := fs.String("xdp-attach", "auto", "XDP attach mode: auto (native, else generic), native, generic")
	partial := fs.String("partial-checksum", "auto", "accept TCP segments with partial checksums (a local peer's TX checksum offload): auto (on veth and devices stacked on one), accept, reject")
	zc := fs.String("xdp-mode", "auto", "AF_XDP bind: auto (zero-copy, else copy), copy, zerocopy")
	fs.IntVar(&o.plan.frames, "frames", 8192, "UMEM frames per socket")
	fs.IntVar(&o.plan.cfg.Batch, "batch", 64, "RX/TX batch size")
	fs.BoolVar(&o.plan.cfg.Pin, "pin", true, "pin worker i to CPU i")
	fs.StringVar(&o.plan.netns, "netns", "", "run in this named network namespace, e.g. one made by 'xdpconnect lab up'")
	fs.DurationVar(&o.progress, "progress", time.Second, "progress line interval on a terminal")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line and no text report")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError("run: unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if len(dsts) == 0 {
		return nil, usageError("run needs --dst IP:PORT")
	}
	seen := map[netip.AddrPort]string{}
	for _, d := range dsts {
		x, err := parseDst(d)
		if err != nil {
			return nil, usageErr{err.Error()}
		}
		for _, a := range x {
			if prev, dup := seen[a]; dup {
				return nil, usageError("--dst %s: target %s is also in --dst %s: give each target once (attempts are spread over distinct targets)", d, a, prev)
			}
			seen[a] = d
		}
		o.plan.dsts = append(o.plan.dsts, x...)
		if len(o.plan.dsts) > maxTargets {
			return nil, usageError("--dst: %d targets in all; at most %d per run", len(o.plan.dsts), maxTargets)
		}
	}
	if *src != "" {
		a, err := parseAddrs(*src, 1<<16)
		if err != nil {
			return nil, usageError("--src %q: %v", *src, err)
		}
		for _, x := range a {
			if err := checkSrc(x, o.plan.dsts); err != nil {
				return nil, usageError("--src %s: %v", x, err)
			}
		}
		o.plan.srcs = a
	}
	if *srcPorts != "" {
		var err error
		if o.plan.portLo, o.plan.portHi, err = parseRange(*srcPorts); err != nil {
			return nil, usageError("--src-ports: %v", err)
		}
	}
	var err error
	if o.plan.cfg.Close, err = fastpath.ParseCloseMode(*closeMode); err != nil {
		return nil, usageError("--close: %v", err)
	}
	if *queues != 0 {
		o.plan.workers = *queues
	}
	if *generic {
		*attach = "generic"
	}
	if o.plan.attach, err = bpf.ParseAttachMode(*attach); err != nil {
		return nil, usageError("--xdp-attach: %v", err)
	}
	switch *partial {
	case "auto", "accept", "reject":
		o.plan.partialCsum = *partial
	default:
		return nil, usageError("--partial-checksum %q: want auto, accept or reject", *partial)
	}
	if err := checkNumbers(&o.plan, fs); err != nil {
		return nil, err
	}
	switch *zc {
	case "auto":
		o.plan.copyMode = xsk.ModeAuto
	case "copy":
		o.plan.copyMode = xsk.ModeCopy
	case "zerocopy":
		o.plan.copyMode = xsk.ModeZeroCopy
	default:
		return nil, usageError("--xdp-mode %q: want auto, copy or zerocopy", *zc)
	}
	if o.plan.cfg.Count == 0 && o.plan.cfg.Duration == 0 {
		return nil, usageError("run needs --count or --duration (every run is bounded)")
	}
	if o.plan.netns != "" {
		if _, err := os.Stat(filepath.Join("/run/netns", o.plan.netns)); err != nil {
			return nil, usageError("--netns %s: no such network namespace ('ip netns list' shows them)", o.plan.netns)
		}
	}
	o.metricsDefault = o.metricsAddr == defaultMetricsAddr
	o.plan.cfg.Idle = time.Millisecond
	if o.jsonPath != "" && o.jsonPath != "-" {
		// Fail before anything is sent, not after the whole load ran; a
		// file made only for the check is removed again.
		_, statErr := os.Stat(o.jsonPath)
		f, err := os.OpenFile(o.jsonPath, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return nil, usageError("--json %s: %v: choose a writable path", o.jsonPath, errors.Unwrap(err))
		}
		f.Close()
		if os.IsNotExist(statErr) {
			_ = os.Remove(o.jsonPath)
		}
	}
	return &o, nil
}

// checkNumbers rejects numeric flags that would make a run unbounded,
// meaningless or unable to start.
func checkNumbers(p *plan, fs *flag.FlagSet) error {
	c := &p.cfg
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"duration", c.Duration}, {"drain", c.Drain}, {"warmup", c.Warmup}, {"hold-for", c.HoldFor}, {"time-wait", c.TimeWait}} {
		if d.v < 0 {
			return usageError("--%s %s: must not be negative", d.name, d.v)
		}
	}
	switch {
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0:
		return usageError("--rate %v: want a finite number of attempts per second >= 0 (0: as fast as possible)", c.Rate)
	case c.Concurrency < 0:
		return usageError("--concurrency %d: must not be negative (0: no bound)", c.Concurrency)
	case p.workers < 0:
		return usageError("--workers %d: want 1 or more (default: one per active RX queue)", p.workers)
	case p.frames < 64 || p.frames > 1<<18 || p.frames&(p.frames-1) != 0:
		return usageError("--frames %d: want a power of two from 64 to 262144 (UMEM frames per socket, 2 KiB each)", p.frames)
	case c.Batch < 1 || c.Batch > p.frames/4:
		return usageError("--batch %d: want 1..%d (a quarter of --frames)", c.Batch, p.frames/4)
	case set["syn-retries"] && (p.synRetries < 1 || p.synRetries > 127):
		return usageError("--syn-retries %d: want 1..127 (TCP_SYNCNT)", p.synRetries)
	case set["hold-for"] && c.Close != fastpath.CloseHold:
		return usageError("--hold-for needs --close hold (other close modes do not keep connections open)")
	case c.Warmup > 0 && c.Duration > 0 && c.Warmup >= c.Duration:
		return usageError("--warmup %s must be shorter than --duration %s", c.Warmup, c.Duration)
	}
	return nil
}

func cmdRun(args []string) error {
	o, err := parseRun(args, os.Stderr)
	if err != nil {
		return err
	}
	if err := checkCaps(o.plan.netns != ""); err != nil {
		return err
	}
	r, err := execute(context.Background(), o, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	if r.Established == 0 {
		return errors.New(failureSummary(r))
	}
	return nil
}

const defaultMetricsAddr = "127.0.0.1:9464"

// metricsWhere says which network namespace the metrics endpoint is in: the
// one xdpconnect was started in, which with --netns is not the run's.
func metricsWhere(netns string) string {
	here := "network namespace of this process"
	if b, err := os.Readlink("/proc/self/ns/net"); err == nil {
		here = "network namespace " + b
	}
	if netns != "" {
		return here + ", not --netns " + netns
	}
	return here
}

// execute runs a plan end to end: setup, metrics, signals, progress, report.
func execute(ctx context.Context, o *runOpts, stdout, stderr io.Writer) (*fastpath.Report, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := setup(ctx, &o.plan)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for _, n := range s.notes {
		fmt.Fprintln(stderr, "note:", n)
	}
	if o.metricsAddr != "" {
		bound, stopMetrics, err := serveMetrics(o.metricsAddr, s)
		if err != nil && o.metricsDefault && errors.Is(err, syscall.EADDRINUSE) {
			// Another run (often in another --netns) holds the default:
			// take a free port, and say which.
			bound, stopMetrics, err = serveMetrics("127.0.0.1:0", s)
			if err == nil {
				fmt.Fprintf(stderr, "note: metrics: %s is in use (another xdpconnect?); serving on %s instead\n", defaultMetricsAddr, bound)
			}
		}
		if err != nil {
			return nil, usageError("--metrics-addr %s: %v (choose another address, or --metrics-addr '' to disable)", o.metricsAddr, errors.Unwrap(err))
		}
		defer stopMetrics()
		if !o.quiet {
			fmt.Fprintf(stderr, "metrics: http://%s/metrics (%s)\n", bound, metricsWhere(o.plan.netns))
		}
		if o.metricsBound != nil {
			o.metricsBound(bound)
		}
	}
	var progress func(*fastpath.Snapshot)
	if f, ok := stderr.(*os.File); ok && !o.quiet && isTerminal(f) {
		progress = progressLine(f, o.plan.cfg.Rate)
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "xdpconnect: %d target(s) via %s, %d source address(es), ports %d-%d, %d worker(s), close=%s\n",
			len(o.plan.dsts), s.ifname, len(o.plan.srcs), o.plan.portLo, o.plan.portHi, s.engine.Workers(), o.plan.cfg.Close)
	}
	r, err := s.engine.Run(ctx, o.progress, progress)
	if progress != nil {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return nil, err
	}
	s.complete(r, &o.plan)
	if o.afterRun != nil {
		o.afterRun(r)
	}
	if !o.quiet {
		// With --json - stdout carries the JSON alone.
		if o.jsonPath == "-" {
			r.WriteText(stderr)
		} else {
			r.WriteText(stdout)
		}
	}
	switch o.jsonPath {
	case "":
	case "-":
		if err := r.WriteJSON(stdout); err != nil {
			return r, err
		}
	default:
		f, err := os.Create(o.jsonPath)
		if err != nil {
			return r, err
		}
		defer f.Close()
		if err := r.WriteJSON(f); err != nil {
			return r, err
		}
	}
	return r, nil
}
