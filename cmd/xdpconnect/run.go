package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/xsk"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// runOpts are the parsed `run` flags.
type runOpts struct {
	opts        xdpconnect.Options
	plan        xdpconnect.Plan
	jsonPath    string
	htmlPath    string
	metricsAddr string
	// metricsDefault: the address was not chosen, so a taken default port
	// moves to a free one instead of failing the run.
	metricsDefault bool
	progress       time.Duration
	quiet          bool
	// Hooks for tests: the metrics address once bound, and the report
	// while metrics are still served.
	metricsBound func(addr string)
	afterRun     func(*report.Report)
}

const defaultMetricsAddr = "127.0.0.1:9464"

// parseRun turns flags into options and a plan. Defaults come from the
// library (DefaultOptions, DefaultPlan); checks that need no system state
// are the library's too (Open and Run repeat them).
func parseRun(args []string, stderr io.Writer) (*runOpts, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	o := runOpts{opts: xdpconnect.DefaultOptions(), plan: xdpconnect.DefaultPlan()}
	op, pl := &o.opts, &o.plan
	var dsts multiFlag
	fs.Var(&dsts, "dst", "target IP:PORT, [IPv6]:PORT or HOST:PORT (every address of the name); repeatable; CIDR and port ranges allowed (198.18.0.0/30:8080-8081, [2001:2::/126]:80)")
	fs.StringVar(&op.Iface, "iface", "", "outgoing interface (default: the route's)")
	src := fs.String("src", "", "source address, range A-B or CIDR, IPv4 or IPv6 (default: the route's source address, per family); addresses the kernel does not own are answered for ARP/ND by xdpconnect")
	fs.BoolVar(&op.SourcesRouted, "src-routed", false, "--src addresses outside the interface's subnets are routed to this host by the peer or a router (as in TRex-style labs)")
	srcPorts := fs.String("src-ports", "", "source port range LO-HI (default: outside ip_local_port_range; reserved in ip_local_reserved_ports while running)")
	fs.Uint64Var(&pl.Count, "count", 0, "attempts to make (0: until --duration)")
	fs.DurationVar(&pl.Duration, "duration", 0, "how long to generate (0: until --count)")
	fs.Float64Var(&pl.Rate, "rate", 0, "attempts per second (0: as fast as possible)")
	stages := fs.String("stages", "", "ramp the rate, k6's way: DURATION:RATE,... (10s:1000,30s:50000,10s:0), linear from the previous stage's rate (0 before the first); the run lasts their total")
	concStages := fs.String("concurrency-stages", "", "with --close hold: ramp the connections held open, DURATION:COUNT,... (10s:1000,30s:50000,10s:0), linear from the previous stage's count; connections above a falling bound are aborted (RST); --rate caps the opening rate")
	fs.IntVar(&pl.Concurrency, "concurrency", 0, "bound on attempts in flight plus open connections (0: none)")
	closeMode := fs.String("close", "rst", "after the handshake: rst (abort), fin (graceful close), hold (keep open until the end); synonly answers SYN-ACKs with RST (SYN-rate comparisons)")
	fs.IntVar(&op.SynRetries, "syn-retries", 0, "SYN retransmissions before ETIMEDOUT, like TCP_SYNCNT (default: the namespace's tcp_syn_retries, 6 unless changed)")
	fs.IntVar(&op.TargetStats, "target-stats", 0, "targets (the first ones) with statistics of their own in the report and metrics (default 16; the rest count as \"other\")")
	fs.IntVar(&op.Workers, "workers", 0, "workers, one per RX queue (default: one per active RX queue)")
	fs.IntVar(&op.Workers, "queues", 0, "same as --workers")
	fs.StringVar(&o.htmlPath, "html", "", "write the report as one self-contained HTML page (totals, per-second charts) to this file")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to this file (- for stdout: JSON alone, the text report goes to stderr)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", defaultMetricsAddr, "serve Prometheus metrics here while running, in the namespace xdpconnect was started in (empty: off; the default moves to a free port when taken)")
	fs.DurationVar(&pl.Drain, "drain", pl.Drain, "time in-flight attempts get after generation stops (default 5s; with a request, at least --response-timeout + 1s)")
	fs.DurationVar(&pl.Warmup, "warmup", 0, "excluded from the measured rate")
	fs.DurationVar(&pl.HoldFor, "hold-for", 0, "with --close hold: keep the connections open this long after generation ends")
	fs.BoolVar(&pl.KernelSYNs, "xdp-syn", false, "with --close synonly: the XDP program makes the SYNs and counts the answers (one SYN per probe, no retransmission, no RTT), scanner-style and faster")
	fs.BoolVar(&op.XDPTX, "xdp-tx", false, "send every frame from the XDP program (live frames, no socket buffer per frame) instead of the AF_XDP TX ring: faster in copy mode; needs native XDP and, on a veth, a peer with an XDP program or GRO on")
	fs.DurationVar(&pl.TimeWait, "time-wait", pl.TimeWait, "quarantine of a port that ended in TIME-WAIT, fin mode (default 60s, as Linux)")
	var rq requestFlags
	var tf tlsFlags
	tf.register(fs)
	fs.StringVar(&rq.HTTP, "http", "", "request mode: send an HTTP/1.1 request \"METHOD /path\" (Connection: close) on each connection and read the response")
	fs.StringVar(&rq.Host, "host", "", "with --http: the Host header (default: the first --dst)")
	fs.StringVar(&rq.Literal, "request", "", "request mode: send this request (escapes \\r \\n \\t \\xHH) on each connection")
	fs.StringVar(&rq.File, "request-file", "", "request mode: send this file's bytes on each connection")
	fs.Uint64Var(&rq.ExpectBytes, "expect-bytes", 0, "with --request/--request-file: the response ends after this many bytes (default: at the server's close)")
	fs.StringVar(&rq.Expect, "expect", "", "with --request/--request-file: the response ends at this substring (escapes as --request)")
	fs.Uint64Var(&rq.MaxResponse, "max-response", 0, "request mode: largest response in bytes; larger ones fail with EMSGSIZE (default 1 MiB)")
	fs.IntVar(&pl.RequestsPerConn, "requests-per-conn", 0, "request mode: requests per connection, each after the previous response (keep-alive; --http asks for Connection: keep-alive); then the close mode applies (default 1)")
	fs.DurationVar(&pl.ResponseTimeout, "response-timeout", 0, "request mode: time from the request to the end of its response before it fails with ETIMEDOUT (default 10s)")
	generic := fs.Bool("generic", false, "same as --xdp-attach generic")
	attach := fs.String("xdp-attach", "auto", "XDP attach mode: auto (native, else generic), native, generic")
	partial := fs.String("partial-checksum", "auto", "accept TCP segments with partial checksums (a local peer's TX checksum offload): auto (on veth and devices stacked on one), accept, reject")
	zc := fs.String("xdp-mode", "auto", "AF_XDP bind: auto (zero-copy, else copy), copy, zerocopy")
	fs.IntVar(&op.Frames, "frames", op.Frames, "UMEM frames per socket")
	fs.IntVar(&op.Batch, "batch", op.Batch, "RX/TX batch size (default 64; 256 in request mode, where one ACK then covers more of a response)")
	pin := fs.Bool("pin", true, "pin worker i to CPU i")
	fs.StringVar(&op.Netns, "netns", "", "run in this named network namespace, e.g. one made by 'xdpconnect lab up'")
	shard := fs.String("shard", "", "this node's part i/N of a run on N nodes (auto/N: i from JOB_COMPLETION_INDEX)")
	shardBy := fs.String("shard-by", "auto", "what shards partition besides count and rate: auto (--src addresses if given), none, sources, ports, targets")
	fs.StringVar(&op.RunID, "run-id", "", "ties the shards' reports together (default: a hash of the targets and the plan)")
	startAt := fs.String("start-at", "", "start the first SYN at this wall-clock time (RFC 3339 or Unix seconds): shards start together")
	fs.DurationVar(&o.progress, "progress", time.Second, "progress line interval on a terminal")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line and no text report")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError("run: unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if len(dsts) == 0 {
		return nil, usageError("run needs --dst IP:PORT")
	}
	seen := map[string]string{}
	for _, d := range dsts {
		x, err := parseTargets(d)
		if err != nil {
			return nil, usageErr{err.Error()}
		}
		for _, a := range x {
			if prev, dup := seen[a.String()]; dup {
				return nil, usageError("--dst %s: target %s is also in --dst %s: give each target once (attempts are spread over distinct targets)", d, a, prev)
			}
			seen[a.String()] = d
		}
		op.Targets = append(op.Targets, x...) // Open bounds the total
	}
	var err error
	if *src != "" {
		if op.Sources, err = parseAddrs(*src, 1<<16); err != nil {
			return nil, usageError("--src %q: %v", *src, err)
		}
	}
	if *srcPorts != "" {
		if op.PortLo, op.PortHi, err = parsePortRange(*srcPorts); err != nil {
			return nil, usageError("--src-ports: %v", err)
		}
	}
	if pl.Close, err = fastpath.ParseCloseMode(*closeMode); err != nil {
		return nil, usageError("--close: %v", err)
	}
	if *generic {
		*attach = "generic"
	}
	if op.Attach, err = bpf.ParseAttachMode(*attach); err != nil {
		return nil, usageError("--xdp-attach: %v", err)
	}
	if op.PartialChecksum, err = xdpconnect.ParsePartialPolicy(*partial); err != nil {
		return nil, usageError("--partial-checksum: %v", err)
	}
	modes := map[string]xsk.CopyMode{"auto": xsk.ModeAuto, "copy": xsk.ModeCopy, "zerocopy": xsk.ModeZeroCopy}
	var ok bool
	if op.SocketMode, ok = modes[*zc]; !ok {
		return nil, usageError("--xdp-mode %q: want auto, copy or zerocopy", *zc)
	}
	op.NoPin = !*pin
	if *shard != "" {
		if op.Shard, err = parseShard(*shard); err != nil {
			return nil, usageErr{err.Error()}
		}
	}
	if op.ShardBy, err = xdpconnect.ParseShardBy(*shardBy); err != nil {
		return nil, usageErr{err.Error()}
	}
	if *stages != "" {
		if pl.Stages, err = parseStages(*stages); err != nil {
			return nil, usageError("--stages %q: %v", *stages, err)
		}
	}
	if *concStages != "" {
		if pl.ConcurrencyStages, err = parseStages(*concStages); err != nil {
			return nil, usageError("--concurrency-stages %q: %v", *concStages, strings.ReplaceAll(err.Error(), "the rate is attempts per second", "the count is connections"))
		}
	}
	if *startAt != "" {
		if pl.StartAt, err = parseStartAt(*startAt); err != nil {
			return nil, usageErr{err.Error()}
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// The library takes a zero as "the default"; on the command line an
	// explicit zero is a mistake.
	for name, zero := range map[string]bool{"syn-retries": op.SynRetries == 0, "frames": op.Frames == 0, "batch": op.Batch == 0,
		"target-stats": op.TargetStats == 0, "requests-per-conn": pl.RequestsPerConn == 0, "max-response": rq.MaxResponse == 0,
		"expect-bytes": rq.ExpectBytes == 0, "response-timeout": pl.ResponseTimeout == 0} {
		if set[name] && zero {
			return nil, usageError("--%s 0: not a valid value (leave the flag out for the default)", name)
		}
	}
	// An empty request would silently turn request mode off.
	for name, v := range map[string]string{"http": rq.HTTP, "request": rq.Literal, "request-file": rq.File, "host": rq.Host, "expect": rq.Expect} {
		if set[name] && v == "" {
			return nil, usageError("--%s '': empty: give a value, or leave the flag out", name)
		}
	}
	rq.KeepAlive = pl.RequestsPerConn > 1
	if pl.Request, err = rq.Spec(op.Targets); err != nil {
		return nil, err
	}
	host := rq.Host
	if host == "" {
		host = op.Targets[0].Addr().String()
	}
	if pl.TLS, err = tf.build(set, host); err != nil {
		return nil, err
	}
	if pl.TLS != nil && pl.Request == nil {
		return nil, usageError("--tls needs request mode: --http, --request or --request-file")
	}
	if err := pl.Check(); err != nil {
		return nil, err // before anything is set up
	}
	if err := checkOutPath("json", o.jsonPath); err != nil {
		return nil, err
	}
	if err := checkOutPath("html", o.htmlPath); err != nil {
		return nil, err
	}
	o.metricsDefault = o.metricsAddr == defaultMetricsAddr
	return &o, nil
}

// checkOutPath fails an output flag's path before anything is sent, not
// after the whole load ran; a file made only for the check is removed
// again.
func checkOutPath(flagName, p string) error {
	if p == "" || (p == "-" && flagName == "json") {
		return nil
	}
	if p == "-" {
		return usageError("--%s -: give a file name (only --json can go to stdout)", flagName)
	}
	_, statErr := os.Stat(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return usageError("--%s %s: %v: choose a writable path", flagName, p, errors.Unwrap(err))
	}
	f.Close()
	if os.IsNotExist(statErr) {
		_ = os.Remove(p)
	}
	return nil
}

func cmdRun(args []string) error {
	o, err := parseRun(args, os.Stderr)
	if err != nil {
		return err
	}
	if err := xdpconnect.CheckCapabilities(o.opts.Netns != ""); err != nil {
		return err
	}
	r, err := execute(context.Background(), o, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	if r.Established == 0 || r.TLS != nil && r.TLS.Handshakes == 0 || r.Requests != nil && r.Requests.Requests > 0 && r.Requests.Completed == 0 {
		return errors.New(report.FailureSummary(r))
	}
	if r.RateMissed() {
		return rateMissed{fmt.Sprintf("the asked rate was not delivered: %s", r.Saturation.Limits[0].Detail)}
	}
	return nil
}

// execute runs a plan end to end: session, metrics, signals, progress,
// report.
func execute(ctx context.Context, o *runOpts, stdout, stderr io.Writer) (*report.Report, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := xdpconnect.Open(ctx, o.opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for _, n := range s.Notes() {
		fmt.Fprintln(stderr, "note:", n)
	}
	var h xdpconnect.RunHooks
	h.Interval = o.progress
	stopMetrics := func() {}
	defer func() { stopMetrics() }()
	if o.metricsAddr != "" {
		h.Started = func() error {
			bound, stopFn, err := s.ServeMetrics(o.metricsAddr)
			if err != nil && o.metricsDefault && errors.Is(err, syscall.EADDRINUSE) {
				// Another run (often in another --netns) holds the default:
				// take a free port, and say which.
				if bound, stopFn, err = s.ServeMetrics("127.0.0.1:0"); err == nil {
					fmt.Fprintf(stderr, "note: metrics: %s is in use (another xdpconnect?); serving on %s instead\n", defaultMetricsAddr, bound)
				}
			}
			if err != nil {
				return usageError("--metrics-addr %s: %v (choose another address, or --metrics-addr '' to disable)", o.metricsAddr, errors.Unwrap(err))
			}
			stopMetrics = stopFn
			if !o.quiet {
				fmt.Fprintf(stderr, "metrics: http://%s/metrics (%s)\n", bound, metricsNamespace(o.opts.Netns))
			}
			if o.metricsBound != nil {
				o.metricsBound(bound)
			}
			return nil
		}
	}
	if f, ok := stderr.(*os.File); ok && !o.quiet && isTerminal(f) {
		h.Progress = fastpath.ProgressLine(f, o.plan.Rate)
	}
	if !o.quiet {
		lo, hi := s.Ports()
		fmt.Fprintf(stderr, "xdpconnect: %d target(s) via %s, %d source address(es), ports %d-%d, %d worker(s), close=%s\n",
			len(o.opts.Targets), s.Interface(), len(s.Sources()), lo, hi, s.Workers(), o.plan.Close)
	}
	r, runErr := s.Run(ctx, o.plan, h)
	if h.Progress != nil {
		fmt.Fprintln(stderr)
	}
	if r == nil {
		return nil, runErr
	}
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
	if o.htmlPath != "" {
		if err := writeHTML(o.htmlPath, runPage(r, o.plan.Stages)); err != nil {
			return r, err
		}
	}
	// A run stopped by a failed socket: the report above, then the error.
	return r, runErr
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// metricsNamespace says which network namespace the metrics endpoint
// listens in: the one this process was started in, which with --netns is
// not the run's.
func metricsNamespace(netnsName string) string {
	here := "network namespace of this process"
	if b, err := os.Readlink("/proc/self/ns/net"); err == nil {
		here = "network namespace " + b
	}
	if netnsName != "" {
		return here + ", not --netns " + netnsName
	}
	return here
}
