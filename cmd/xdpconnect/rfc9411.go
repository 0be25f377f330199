package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/internal/rfc9411"
	"github.com/xdpconnect/xdpconnect/report"
)

// rfcFlags are rfc9411's own flags; every other flag is a `run` flag
// (targets, sources, interface, namespace ...) and goes to parseRun.
type rfcFlags struct {
	test      rfc9411.Test
	target    float64
	sizes     []string
	path      string
	perConn   int
	set       rfc9411.Settings
	noSearch  bool
	jsonPath  string
	htmlPath  string
	synRetry  int
	runArgs   []string
	setByUser map[string]bool
	families  string
	device    string
	// Shards: this node's part, and the exchange with the others (nil
	// when alone).
	shard xdpconnect.Shard
	x     *exchange
	runs  int
	// exchange, runID and settings make x once the targets are known.
	exchange exchange
	runID    string
	settings []string
}

// rfcRunFlagsTaken are run flags the procedure sets itself.
var rfcRunFlagsTaken = []string{"http", "request", "request-file", "rate", "count", "duration", "stages", "close", "concurrency",
	"hold-for", "requests-per-conn", "json", "quiet", "xdp-syn", "warmup", "shard", "start-at", "run-id", "tls"}

func parseRFC9411(args []string) (*rfcFlags, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return nil, usageError("rfc9411 needs a test: cps, tps, latency or concurrent, or over TLS https-cps, https-tps, https-latency or https-concurrent (xdpconnect rfc9411 cps --target 10000 --dst IP:80 ...)")
	}
	f := &rfcFlags{test: rfc9411.Test(args[0]), set: rfc9411.DefaultSettings()}
	known := false
	for _, t := range rfc9411.Tests {
		known = known || t == f.test
	}
	if !known {
		return nil, usageError("rfc9411 %q: want cps, tps, latency or concurrent, or over TLS https-cps, https-tps, https-latency or https-concurrent", args[0])
	}
	fs := flag.NewFlagSet("rfc9411 "+args[0], flag.ContinueOnError)
	fs.Float64Var(&f.target, "target", 0, "the target objective (RFC 9411 4.3.4): connections/s (cps, latency), transactions/s (tps), or open connections (concurrent)")
	sizes := fs.String("sizes", "1k,2k,4k,16k,64k", "object sizes, one pass each (RFC 9411 7.2.3.2: 1, 2, 4, 16 and 64 KByte)")
	fs.StringVar(&f.path, "path", "/{size}", "the path requested; {size} is replaced by each of --sizes")
	fs.IntVar(&f.perConn, "requests-per-conn", 10, "tps: HTTP transactions per connection (keep-alive)")
	fs.DurationVar(&f.set.RampUp, "ramp-up", f.set.RampUp, "ramp-up phase: the objective grows linearly from 0")
	fs.DurationVar(&f.set.Sustain, "sustain", f.set.Sustain, "sustain phase: the objective holds; only its whole seconds are measured")
	fs.DurationVar(&f.set.RampDown, "ramp-down", f.set.RampDown, "ramp-down phase: the objective falls linearly to 0")
	maxFailed := fs.Float64("max-failed", 100*f.set.MaxFailed, "validation: failed transactions, percent of those begun (RFC 9411 7.x.3.4: under 0.001)")
	maxReset := fs.Float64("max-reset", 100*f.set.MaxReset, "validation: connections ended by the device's RST, percent (RFC 9411 7.x.3.4: under 0.001)")
	maxDev := fs.Float64("max-rate-deviation", 100*f.set.MaxRateDeviation, "validation: per-second rate's largest deviation from the sustain mean, percent")
	maxConc := fs.Float64("max-concurrent-deviation", 100*f.set.MaxConcurrentDeviation, "validation (concurrent): open connections' largest deviation, percent")
	initial := fs.Float64("initial", 100*f.set.InitialShare, "step 1's objective, percent of --target")
	resolution := fs.Float64("resolution", 100*f.set.Resolution, "step 3 ends when passing and failing objectives are this percent of --target apart")
	fs.IntVar(&f.set.MaxSearch, "max-search", f.set.MaxSearch, "step 3's largest number of runs")
	fs.BoolVar(&f.noSearch, "no-search", false, "stop after step 2 (the target) even when it fails")
	fs.StringVar(&f.device, "device", "", "the device under test in your words (model, software version, configuration), kept in the result")
	fs.StringVar(&f.jsonPath, "json", "", "write the procedure's result as JSON to this file (- for stdout)")
	fs.StringVar(&f.htmlPath, "html", "", "write the result as one self-contained HTML page (per-second charts of every step, the criteria table) to this file")
	fs.StringVar(&f.families, "families", "auto", "passes by address family: 4, 6, mixed, a list of them, or auto (each family --dst gives, and mixed when it gives both)")
	fs.IntVar(&f.synRetry, "syn-retries", 3, "SYN retransmissions before a connection fails (RFC 9411 4.3.1.1: up to three retries)")
	shard := fs.String("shard", "", "this node's part i/N of the procedure on N nodes (auto/N: i from JOB_COMPLETION_INDEX); needs --exchange")
	exchangeDir := fs.String("exchange", "", "sharded: a directory every shard reads and writes (a shared volume); shards start each run together and judge the merged run")
	exchangeTimeout := fs.Duration("exchange-timeout", 2*time.Minute, "sharded: how long a shard waits for the others at each run's start and end")
	startAt := fs.String("start-at", "", "sharded: the first run's start (RFC 3339 or Unix seconds); default: 3 s after the last shard is ready")
	runID := fs.String("run-id", "", "sharded: names the procedure in --exchange (default: a hash of the arguments but --shard)")
	own, rest := splitFlags(fs, args[1:])
	f.runArgs = rest
	if err := parseFlags(fs, own, os.Stdout); err != nil {
		return nil, err
	}
	f.setByUser = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.setByUser[fl.Name] = true })
	if f.target <= 0 || math.IsInf(f.target, 0) || math.IsNaN(f.target) {
		return nil, usageError("rfc9411 %s needs --target, a positive objective in %s", f.test, f.test.Unit())
	}
	for _, s := range strings.Split(*sizes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			f.sizes = append(f.sizes, s)
		}
	}
	if len(f.sizes) == 0 {
		return nil, usageError("--sizes %q: give at least one size", *sizes)
	}
	if !strings.Contains(f.path, "{size}") && len(f.sizes) > 1 {
		return nil, usageError("--path %q has no {size}: every pass would fetch the same object; add {size} or give one --sizes", f.path)
	}
	if f.perConn < 1 {
		return nil, usageError("--requests-per-conn %d: at least 1", f.perConn)
	}
	if f.synRetry < 1 || f.synRetry > 255 {
		return nil, usageError("--syn-retries %d: between 1 and 255", f.synRetry)
	}
	f.set.MaxFailed, f.set.MaxReset = *maxFailed/100, *maxReset/100
	f.set.MaxRateDeviation, f.set.MaxConcurrentDeviation = *maxDev/100, *maxConc/100
	f.set.InitialShare, f.set.Resolution = *initial/100, *resolution/100
	if err := f.set.Check(); err != nil {
		return nil, usageError("rfc9411: %v", err)
	}
	for _, a := range rest {
		name := strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0]
		for _, taken := range rfcRunFlagsTaken {
			if strings.HasPrefix(a, "-") && name == taken {
				return nil, usageError("rfc9411: --%s is set by the procedure; leave it out", name)
			}
		}
	}
	if err := checkOutPath("json", f.jsonPath); err != nil {
		return nil, err
	}
	if err := checkOutPath("html", f.htmlPath); err != nil {
		return nil, err
	}
	if *shard != "" {
		var err error
		if f.shard, err = parseShard(*shard); err != nil {
			return nil, usageError("%v", err)
		}
	}
	switch {
	case f.shard.Sharded() && *exchangeDir == "":
		return nil, usageError("rfc9411 --shard %s needs --exchange DIR, a directory all shards share: each run's verdict is the merged run's", f.shard)
	case !f.shard.Sharded() && (*exchangeDir != "" || *startAt != "" || *runID != ""):
		return nil, usageError("rfc9411: --exchange, --start-at and --run-id are for shards: give --shard i/N (N > 1) too")
	case *exchangeTimeout <= 0:
		return nil, usageError("--exchange-timeout %v: must be positive", *exchangeTimeout)
	}
	if f.shard.Sharded() {
		f.exchange = exchange{dir: *exchangeDir, shard: f.shard, timeout: *exchangeTimeout}
		if *startAt != "" {
			var err error
			if f.exchange.first, err = parseStartAt(*startAt); err != nil {
				return nil, usageError("%v", err)
			}
		}
		f.runID = *runID
		// What defines the procedure, the same on every node.
		f.settings = []string{string(f.test)}
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "shard", "exchange", "exchange-timeout", "json", "html", "device", "run-id":
			default:
				f.settings = append(f.settings, fl.Name+"="+fl.Value.String())
			}
		})
	}
	return f, nil
}

// splitFlags takes fs's flags (and their values) out of args; the rest,
// in order, are another command's.
func splitFlags(fs *flag.FlagSet, args []string) (own, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		fl := fs.Lookup(name)
		if !strings.HasPrefix(a, "-") || fl == nil {
			rest = append(rest, a)
			continue
		}
		own = append(own, a)
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) && i+1 < len(args) {
			i++
			own = append(own, args[i])
		}
	}
	return own, rest
}

// rfcStep is one run of the procedure.
type rfcStep struct {
	Step      string              `json:"step"`
	Objective float64             `json:"objective"`
	Measured  rfc9411.Measured    `json:"measured"`
	Criteria  []rfc9411.Criterion `json:"criteria"`
	Pass      bool                `json:"pass"`
	// Saturated: the generator was the limit of this run (its reasons).
	Saturated bool     `json:"saturated"`
	Limits    []string `json:"saturation_reasons,omitempty"`
	// Timeline is the run second by second, without its histograms.
	Timeline []report.Second `json:"timeline"`
}

// rfcPass is one object size's and address family's procedure and its
// result.
type rfcPass struct {
	Size string `json:"size"`
	// Family is the pass's targets: "4", "6" or "mixed".
	Family string    `json:"family"`
	Path   string    `json:"path"`
	Steps  []rfcStep `json:"steps"`
	// Result is the highest objective that met every criterion (0: not
	// even step 1's).
	Result float64 `json:"result"`
	// EquipmentLimit: a failing run was limited by the generator, so
	// Result is a floor of the device's capacity, not its maximum.
	EquipmentLimit bool   `json:"equipment_limit"`
	Verdict        string `json:"verdict"`
}

// testbed is the test equipment and the device under test as the report
// names them.
type testbed struct {
	Device    string   `json:"device,omitempty"` // --device, the user's words
	Version   string   `json:"xdpconnect_version"`
	Args      []string `json:"args"`
	Kernel    string   `json:"kernel"`
	CPU       string   `json:"cpu"`
	CPUs      int      `json:"cpus"`
	Interface string   `json:"interface,omitempty"`
	Driver    string   `json:"driver,omitempty"`
	XDPMode   string   `json:"xdp_mode,omitempty"`
	AFXDPMode string   `json:"af_xdp_mode,omitempty"`
	Workers   int      `json:"workers,omitempty"`
}

// hostTestbed is what the host says of itself.
func hostTestbed(device string) testbed {
	tb := testbed{Device: device, Version: version, Args: os.Args[1:], CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		tb.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				tb.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return tb
}

// rfcResult is the procedure's JSON.
type rfcResult struct {
	Test     string           `json:"test"`
	Section  string           `json:"section"`
	Unit     string           `json:"unit"`
	Target   float64          `json:"target"`
	Settings rfc9411.Settings `json:"settings"`
	// TCP is the test equipment's TCP as RFC 9411 4.3.1.1 asks it be
	// reported, from the first run's report.
	TCP *report.Settings `json:"tcp,omitempty"`
	// Testbed is what the result was measured on (RFC 9411 sections 5
	// and 6: the testbed and what a report names).
	Testbed testbed   `json:"testbed"`
	Passes  []rfcPass `json:"passes"`
	// Shards is how many nodes ran each step (0: this one alone); every
	// step was judged on their merged run, exchanged in Exchange.
	Shards   int    `json:"shards,omitempty"`
	Exchange string `json:"exchange,omitempty"`
}

func cmdRFC9411(args []string) error {
	f, err := parseRFC9411(args)
	if err != nil {
		return err
	}
	// The run flags are checked before anything is sent.
	o, err := f.runOpts(f.sizes[0], 1, "mixed")
	if err != nil {
		return err
	}
	fams, err := passFamilies(f.families, o.opts.Targets)
	if err != nil {
		return err
	}
	if f.shard.Sharded() {
		id := f.runID
		if id == "" {
			id = procedureID(f.settings, o.opts.Targets)
		}
		if f.x, err = newExchange(f.exchange, id); err != nil {
			return err
		}
	}
	res := rfcResult{Test: string(f.test), Section: f.test.Section(), Unit: f.test.Unit(), Target: f.target, Settings: f.set,
		Testbed: hostTestbed(f.device)}
	if f.x != nil {
		res.Shards, res.Exchange = f.shard.Count, f.x.dir
	}
	ctx := context.Background()
	for _, fam := range fams {
		for _, size := range f.sizes {
			p, err := f.procedure(ctx, size, fam, &res, os.Stderr)
			if err != nil {
				return err
			}
			res.Passes = append(res.Passes, p)
		}
	}
	// With --json - stdout carries the JSON alone.
	text := io.Writer(os.Stdout)
	if f.jsonPath == "-" {
		text = os.Stderr
	}
	writeRFCText(text, &res)
	if f.jsonPath != "" {
		out := io.Writer(os.Stdout)
		if f.jsonPath != "-" {
			fh, err := os.Create(f.jsonPath)
			if err != nil {
				return err
			}
			defer fh.Close()
			out = fh
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&res); err != nil {
			return err
		}
	}
	if f.htmlPath != "" {
		if err := writeHTML(f.htmlPath, rfcPage(&res)); err != nil {
			return err
		}
	}
	for _, p := range res.Passes {
		if p.Result == 0 {
			return fmt.Errorf("rfc9411: step 1 (the initial objective) failed its validation criteria for %s over %s: see the criteria above", p.Size, familyName(p.Family))
		}
	}
	return nil
}

// runOpts are the run of one objective: the user's run flags plus the
// phases and the RFC's client settings.
func (f *rfcFlags) runOpts(size string, objective float64, family string) (*runOpts, error) {
	path := strings.ReplaceAll(f.path, "{size}", size)
	a := append([]string{}, f.runArgs...)
	closeMode := "fin" // 4.3.1.1: connections end with a FIN handshake, never an RST
	if f.test.Base() == rfc9411.Concurrent {
		closeMode = "hold"
	}
	a = append(a, "--http", "GET "+path, "--quiet", "--close", closeMode, "--syn-retries", strconv.Itoa(f.synRetry))
	if !hasFlag(a, "metrics-addr") {
		a = append(a, "--metrics-addr", "")
	}
	if f.test.HTTPS() {
		a = append(a, "--tls")
		// 4.3.1.3's key exchange, secp256r1, and its TLS 1.2 suites with
		// AES-128-GCM, unless the user chose: full handshakes (no
		// --tls-resume), both versions offered.
		if !hasFlag(a, "tls-curves") {
			a = append(a, "--tls-curves", "P-256")
		}
		if !hasFlag(a, "tls-ciphers") {
			a = append(a, "--tls-ciphers", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
		}
	}
	s := f.set
	switch f.test.Base() {
	case rfc9411.Concurrent:
		// Connections open at a steady rate over the ramp-up, each makes
		// its requests and stays open through the sustain phase; the
		// ramp-down is the closing of all of them at the end.
		n := uint64(math.Round(objective))
		rate := objective / max(s.RampUp.Seconds(), 1)
		// Two GETs with keep-alive: the server keeps the connection (one
		// GET would ask it to close), and the second shows it usable.
		a = append(a, "--count", strconv.FormatUint(n, 10), "--rate", strconv.FormatFloat(rate, 'f', 3, 64),
			"--hold-for", (s.Sustain + time.Second).String(), "--requests-per-conn", "2")
	default:
		rate := objective
		if f.test.Base() == rfc9411.TPS {
			// The objective is transactions: connections at 1/N of it.
			rate /= float64(f.perConn)
			a = append(a, "--requests-per-conn", strconv.Itoa(f.perConn))
		}
		a = append(a, "--stages", fmt.Sprintf("%s:%g,%s:%g,%s:0", max(s.RampUp, time.Millisecond), rate, s.Sustain, rate,
			max(s.RampDown, time.Millisecond)))
	}
	o, err := parseRun(a, io.Discard)
	if err != nil || family == "mixed" {
		return o, err
	}
	var keep []netip.AddrPort
	for _, t := range o.opts.Targets {
		if t.Addr().Is4() == (family == "4") {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		return nil, usageError("rfc9411: --families %s: no --dst of that family", family)
	}
	o.opts.Targets = keep
	return o, nil
}

// passFamilies are the passes --families asks for over targets: auto is
// each family the targets have, and mixed as well when they have both
// (RFC 9411 asks for IPv4, IPv6 and mixed traffic).
func passFamilies(spec string, targets []netip.AddrPort) ([]string, error) {
	has := map[string]bool{}
	for _, t := range targets {
		has[map[bool]string{true: "4", false: "6"}[t.Addr().Is4()]] = true
	}
	if spec == "auto" {
		var out []string
		for _, f := range []string{"4", "6"} {
			if has[f] {
				out = append(out, f)
			}
		}
		if len(out) == 2 {
			out = append(out, "mixed")
		}
		return out, nil
	}
	var out []string
	for _, f := range strings.Split(spec, ",") {
		switch f = strings.TrimSpace(f); {
		case f == "mixed" && has["4"] && has["6"], f == "4" && has["4"], f == "6" && has["6"]:
			out = append(out, f)
		case f == "4" || f == "6" || f == "mixed":
			return nil, usageError("--families %s: --dst gives no target for the %s pass", spec, familyName(f))
		default:
			return nil, usageError("--families %q: want 4, 6, mixed, a list of them, or auto", spec)
		}
	}
	return out, nil
}

func familyName(f string) string {
	switch f {
	case "4":
		return "IPv4"
	case "6":
		return "IPv6"
	}
	return "IPv4 and IPv6 mixed"
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && n == name {
			return true
		}
	}
	return false
}

// procedure runs steps 1 to 3 for one object size (RFC 9411 7.x.4).
func (f *rfcFlags) procedure(ctx context.Context, size, family string, res *rfcResult, log io.Writer) (rfcPass, error) {
	p := rfcPass{Size: size, Family: family, Path: strings.ReplaceAll(f.path, "{size}", size)}
	run := func(name string, objective float64) (rfcStep, error) {
		o, err := f.runOpts(size, objective, family)
		if err != nil {
			return rfcStep{}, err
		}
		key := fmt.Sprintf("%03d", f.runs)
		f.runs++
		if f.x != nil {
			// This shard's part of the run, started with the others.
			o.opts.Shard, o.opts.RunID = f.shard, filepath.Base(f.x.dir)+"-"+key
			if o.plan.StartAt, err = f.x.start(ctx, key); err != nil {
				return rfcStep{}, err
			}
		}
		fmt.Fprintf(log, "rfc9411 %s %s over %s: %s at %.0f %s ...\n", f.test, p.Path, familyName(family), name, objective, f.test.Unit())
		r, err := execute(ctx, o, io.Discard, io.Discard)
		if err != nil {
			return rfcStep{}, err
		}
		if p := r.Path; p != nil && res.Testbed.Interface == "" {
			tb := &res.Testbed
			tb.Interface, tb.Driver, tb.XDPMode, tb.AFXDPMode, tb.Workers = p.Interface, p.Driver, p.XDPMode, p.SocketMode, r.Workers
		}
		if res.TCP == nil {
			res.TCP = r.TCP
			if res.TCP == nil {
				res.TCP = r.TCP6
			}
		}
		var shardLimits []string
		if f.x != nil {
			// Judged on the merged run: every shard the same verdict. The
			// testbed above is this node's (the merged run has no path).
			if r, shardLimits, err = f.x.merged(ctx, key, r); err != nil {
				return rfcStep{}, err
			}
		}
		st := rfcStep{Step: name, Objective: objective, Timeline: stepTimeline(r.Timeline)}
		st.Measured, st.Criteria = rfc9411.Judge(f.test, objective, r.Timeline, f.set)
		st.Pass = rfc9411.Passed(st.Criteria)
		switch {
		case f.x != nil:
			st.Saturated, st.Limits = len(shardLimits) > 0, shardLimits
		case r.Saturation != nil && r.Saturation.Saturated:
			st.Saturated = true
			for _, l := range r.Saturation.Limits {
				st.Limits = append(st.Limits, l.Detail)
			}
		}
		fmt.Fprintf(log, "  %s: %.1f %s in sustain, %s\n", verdictWord(st.Pass), st.Measured.KPI, f.test.Unit(), failedNames(st.Criteria))
		p.Steps = append(p.Steps, st)
		if !st.Pass && st.Saturated {
			p.EquipmentLimit = true
		}
		return st, nil
	}
	initial := math.Max(math.Round(f.target*f.set.InitialShare), 1)
	st, err := run("step 1: initial objective", initial)
	if err != nil {
		return p, err
	}
	if !st.Pass {
		p.Verdict = fmt.Sprintf("step 1 failed at the initial objective (%.0f %s): the RFC stops here (%s)", initial, f.test.Unit(), failedNames(st.Criteria))
		if st.Saturated {
			p.Verdict += "; the test equipment was the limit, not the device"
		}
		return p, nil
	}
	p.Result = initial
	st, err = run("step 2: target objective", f.target)
	if err != nil {
		return p, err
	}
	if st.Pass {
		p.Result = f.target
		p.Verdict = fmt.Sprintf("the target objective %.0f %s met every validation criterion", f.target, f.test.Unit())
		return p, nil
	}
	if !f.noSearch {
		s := rfc9411.NewSearch(initial, f.target, f.set)
		if st.Saturated {
			s.Bound(f.set.EquipmentCeiling(st.Measured.KPI))
		}
		for i := 1; ; i++ {
			obj, ok := s.Next()
			if !ok {
				break
			}
			st, err := run(fmt.Sprintf("step 3: search %d", i), obj)
			if err != nil {
				return p, err
			}
			s.Record(obj, st.Pass)
			if !st.Pass && st.Saturated {
				s.Bound(f.set.EquipmentCeiling(st.Measured.KPI))
			}
		}
		p.Result = s.Lo
	}
	p.Verdict = fmt.Sprintf("the highest objective that met every validation criterion: %.0f %s (target %.0f)", p.Result, f.test.Unit(), f.target)
	if p.EquipmentLimit {
		p.Verdict += "; a failing run was limited by the test equipment (xdpconnect saturated), not by the device: the device's maximum is at least this, not this"
	}
	return p, nil
}

func failedNames(cs []rfc9411.Criterion) string {
	var names []string
	for _, c := range cs {
		if !c.Pass {
			names = append(names, c.Name+" ("+c.Detail+")")
		}
	}
	if len(names) == 0 {
		return "every criterion met"
	}
	return "failed: " + strings.Join(names, "; ")
}

func writeRFCText(w io.Writer, res *rfcResult) {
	fmt.Fprintf(w, "RFC 9411 %s (section %s), target %.0f %s\n", res.Test, res.Section, res.Target, res.Unit)
	tb := &res.Testbed
	if tb.Device != "" {
		fmt.Fprintf(w, "device under test: %s\n", tb.Device)
	}
	fmt.Fprintf(w, "test equipment: xdpconnect %s, Linux %s, %s (%d CPUs), %s (%s), XDP %s, AF_XDP %s, %d worker(s)\n",
		tb.Version, tb.Kernel, tb.CPU, tb.CPUs, tb.Interface, tb.Driver, tb.XDPMode, tb.AFXDPMode, tb.Workers)
	s := res.Settings
	fmt.Fprintf(w, "phases: ramp-up %v, sustain %v (measured: its whole seconds), ramp-down %v\n", s.RampUp, s.Sustain, s.RampDown)
	if t := res.TCP; t != nil {
		fmt.Fprintf(w, "test equipment TCP (4.3.1.1): mss %d, receive window %d (scale %d), initial window 10 segments, SYN retries %d, SACK %v, timestamps %d, PSH on each request's last segment\n",
			t.MSS, t.Window, t.WindowScale, t.SynRetries, t.SACK, t.Timestamps)
	}
	for _, p := range res.Passes {
		fmt.Fprintf(w, "\n%s (GET %s) over %s\n", p.Size, p.Path, familyName(p.Family))
		for _, st := range p.Steps {
			fmt.Fprintf(w, "  %-26s objective %-10.0f measured %-12.1f %s", st.Step, st.Objective, st.Measured.KPI, verdictWord(st.Pass))
			if st.Saturated {
				fmt.Fprintf(w, " [test equipment saturated: %s]", strings.Join(st.Limits, "; "))
			}
			fmt.Fprintln(w)
			for _, c := range st.Criteria {
				fmt.Fprintf(w, "    %-4s %-45s %s (RFC 9411 %s)\n", map[bool]string{true: "ok", false: "FAIL"}[c.Pass], c.Name, c.Detail, c.Section)
			}
			m := st.Measured
			if m.TTLB.P50 > 0 {
				fmt.Fprintf(w, "    time to first byte min %s mean %s p50 %s p99 %s max %s\n", dur(m.TTFBMin), dur(m.TTFBMean), dur(m.TTFB.P50), dur(m.TTFB.P99), dur(m.TTFB.Max))
				fmt.Fprintf(w, "    time to last byte  min %s mean %s p50 %s p99 %s max %s\n", dur(m.TTLBMin), dur(m.TTLBMean), dur(m.TTLB.P50), dur(m.TTLB.P99), dur(m.TTLB.Max))
			}
		}
		fmt.Fprintf(w, "  result: %s\n", p.Verdict)
	}
}

func dur(sec float64) string { return time.Duration(sec * 1e9).Round(time.Microsecond).String() }
