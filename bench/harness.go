// Package bench is xdpconnect's benchmark harness: named scenarios run on
// the lab, each tool against the same target with the same CPU pinning, and
// a side-by-side table of medians with min and max.
//
// Tools run as separate processes in the client namespace: xdpconnect
// itself (`run --json -`), a Go net.Dialer loop and a C epoll
// nonblocking-connect loop (built with gcc by the harness). Targets are the
// lab's Linux listener, or an XDP SYN-ACK reflector on the server veth so
// the client side is measured without the listener as the bottleneck.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect/bench/reflector"
	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/report"
)

// Options configure a harness run.
type Options struct {
	Tool      string        // the xdpconnect binary under test
	Self      string        // the harness binary, for its child processes (baseline-go, bench-xsk)
	Runs      int           // runs per tool, median reported (default 3)
	Duration  time.Duration // per run (default 5 s)
	Scenarios []string      // names; empty: the default set
	OutDir    string        // JSON and markdown go here
	Log       io.Writer
	// HoldConns is the number of connections of the memory scenario.
	HoldConns int
	// Soak is the length of the soak scenario (default 10 min).
	Soak time.Duration
}

// Row is one line of the result table.
type Row struct {
	Scenario string    `json:"scenario"`
	Tool     string    `json:"tool"`
	Target   string    `json:"target"`
	Workers  int       `json:"workers"`
	Unit     string    `json:"unit"`
	Runs     []float64 `json:"runs"`
	Median   float64   `json:"median"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	RTTp50   float64   `json:"rtt_p50_seconds,omitempty"`
	RTTp99   float64   `json:"rtt_p99_seconds,omitempty"`
	Note     string    `json:"note,omitempty"`
	// HTTP holds a request-mode row's figures beyond its rate (http-open).
	HTTP *HTTPFigures `json:"http,omitempty"`
	// CPUBusy is each CPU's median busy share during the row's runs, where
	// the scenario records it (tls: the client on CPU 0, the server on 1).
	CPUBusy []float64 `json:"cpu_busy,omitempty"`
}

// DefaultScenarios is what `make bench` runs.
var DefaultScenarios = []string{"reflector", "listener", "reflector-v6", "listener-v6", "workers2", "loss1", "hold-memory", "metrics", "synonly", "xsk", "ceiling", "rtt", "http", "http-open", "tls"}

func (o *Options) logf(f string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, f+"\n", a...)
	}
}

// Run executes the scenarios and returns the rows.
func Run(o Options) ([]Row, error) {
	if o.Runs == 0 {
		o.Runs = 3
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.HoldConns == 0 {
		o.HoldConns = 1000000
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = DefaultScenarios
	}
	var rows []Row
	for _, sc := range o.Scenarios {
		o.logf("== scenario %s", sc)
		var r []Row
		var err error
		switch sc {
		case "reflector", "reflector-v6":
			r, err = o.compare(sc, true, 1, 0)
		case "listener", "listener-v6":
			r, err = o.compare(sc, false, 1, 0)
		case "workers2":
			r, err = o.xdpconnectOnly(sc, 2, 0)
		case "loss1":
			r, err = o.compare(sc, true, 1, 1)
		case "hold-memory":
			r, err = o.holdMemory()
		case "xsk":
			r, err = o.xskCompare()
		case "ceiling":
			r, err = o.ceiling()
		case "soak":
			r, err = o.soak()
		case "metrics":
			r, err = o.metricsOverhead()
		case "synonly":
			r, err = o.synOnly()
		case "rtt":
			r, err = o.rttScenario()
		case "http":
			r, err = o.httpScenario()
		case "http-open":
			r, err = o.httpOpen()
		case "tls":
			r, err = o.tlsScenario()
		default:
			return rows, fmt.Errorf("bench: unknown scenario %q (have %v)", sc, DefaultScenarios)
		}
		if err != nil {
			return rows, fmt.Errorf("scenario %s: %w", sc, err)
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func summarize(r *Row) {
	s := slices.Clone(r.Runs)
	slices.Sort(s)
	if len(s) == 0 {
		return
	}
	r.Min, r.Max, r.Median = s[0], s[len(s)-1], quantile(s, 0.5)
}

// bed is a lab with a target: the reflector or the Linux listener.
type bed struct {
	l       *lab.Lab
	refl    *reflector.Reflector
	ifindex int // client veth
	dst     netip.AddrPort
	// wire makes kernel clients receive what a wire carries: with an XDP
	// program on the client veth (withPass), the server's TCP segments
	// cross the pair at its MTU as they do with xdpconnect, and are
	// merged again by GRO, instead of crossing as one 64 KiB GSO packet.
	wire bool
}

func newBed(reflect bool, queues int, lossPct uint16) (*bed, error) {
	l, err := lab.Up(lab.Options{Name: fmt.Sprintf("bench%d", os.Getpid()), ListenPorts: []int{8080}, Queues: queues})
	if err != nil {
		return nil, err
	}
	b := &bed{l: l, dst: netip.AddrPortFrom(l.ServerAddr, 8080)}
	b.ifindex, _, err = l.ClientLink()
	if err == nil && reflect {
		err = lab.Do(l.ServerNS, func() error {
			idx, err := netIfindex(lab.ServerIf)
			if err != nil {
				return err
			}
			b.refl, err = reflector.Attach(idx, reflector.Reflect, 8080)
			if err == nil && lossPct > 0 {
				err = b.refl.SetLoss(reflector.Reflect, 8080, lossPct)
			}
			return err
		})
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bed) close() {
	if b.refl != nil {
		b.refl.Close()
	}
	b.l.Close()
}

// withPass attaches a pass program to the client veth while fn runs: veth
// drops XDP_TX'd frames unless the receiving side has an XDP program (or
// GRO), and kernel clients have none of their own.
func (b *bed) withPass(fn func() error) error {
	if b.refl == nil && !b.wire {
		return fn()
	}
	var pass *reflector.Reflector
	err := lab.Do(b.l.ClientNS, func() (err error) {
		pass, err = reflector.Attach(b.ifindex, reflector.Pass, 0)
		return err
	})
	if err != nil {
		return err
	}
	defer pass.Close()
	return fn()
}

func (o *Options) runXDPConnect(b *bed, workers int, args ...string) (*report.Report, error) {
	r, code, err := o.runXDPConnectStatus(b, workers, args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("xdpconnect: exit status %d", code)
	}
	return r, err
}

// runXDPConnectStatus runs xdpconnect and returns its report with its exit
// status: a run can report and still exit non-zero (3: the asked rate was
// not delivered; 1: nothing completed).
func (o *Options) runXDPConnectStatus(b *bed, workers int, args ...string) (*report.Report, int, error) {
	cpus := "0"
	if workers > 1 {
		cpus = "0-" + strconv.Itoa(workers-1)
	}
	a := []string{"-c", cpus, o.Tool, "run", "--netns", b.l.ClientNS, "--dst", b.dst.String(), "--json", "-", "--quiet",
		"--metrics-addr", "", "--workers", strconv.Itoa(workers), "--drain", "2s"}
	a = append(a, args...)
	out, err := exec.Command("taskset", a...).Output()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, 0, err
		}
		// Exit 2 is a refusal and 130 an interruption: no report to read.
		code = ee.ExitCode()
		if code != 1 && code != 3 {
			return nil, code, fmt.Errorf("xdpconnect: %v: %s", err, ee.Stderr)
		}
	}
	var r report.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, code, fmt.Errorf("xdpconnect output (exit %d): %w: %q", code, err, out)
	}
	return &r, code, nil
}

// runBaseline runs a kernel client for o.Duration: connections, or with
// req (an HTTP/1.1 GET of /) a request on each.
func (o *Options) runBaseline(b *bed, tool string, conns int, req string) (*BaselineResult, error) {
	secs := strconv.FormatFloat(o.Duration.Seconds(), 'f', 1, 64)
	var args []string
	switch tool {
	case "go-dialer":
		args = []string{"-c", "0", "ip", "netns", "exec", b.l.ClientNS, o.Self, "baseline-go", "--dst", b.dst.String(),
			"--conns", strconv.Itoa(conns), "--duration", secs + "s"}
		if req != "" {
			args = append(args, "--http", "/")
		}
	case "c-epoll":
		bin, err := buildEpoll()
		if err != nil {
			return nil, err
		}
		args = []string{"-c", "0", "ip", "netns", "exec", b.l.ClientNS, bin, b.dst.Addr().String(),
			strconv.Itoa(int(b.dst.Port())), secs, strconv.Itoa(conns)}
		if req != "" {
			args = append(args, req)
		}
	}
	var res BaselineResult
	err := b.withPass(func() error {
		out, err := exec.Command("taskset", args...).Output()
		if err != nil {
			return fmt.Errorf("%s: %w", tool, err)
		}
		return json.Unmarshal(bytes.TrimSpace(out), &res)
	})
	if err != nil {
		return nil, err
	}
	if res.Seconds == 0 || res.Handshakes == 0 {
		// A baseline that connects nowhere measures nothing: say so
		// instead of printing a ratio against zero.
		return nil, fmt.Errorf("%s to %s: no handshake in %.1f s (%d errors)", tool, b.dst, res.Seconds, res.Errors)
	}
	return &res, nil
}

var epollBin string

func buildEpoll() (string, error) {
	if epollBin != "" {
		return epollBin, nil
	}
	dir, err := os.MkdirTemp("", "xdpc-bench")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "epoll.c")
	if err := os.WriteFile(src, []byte(EpollC), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "epoll")
	if out, err := exec.Command("gcc", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %v: %s", err, out)
	}
	epollBin = bin
	return bin, nil
}

// compare runs xdpconnect, the Go dialer and C epoll against one target;
// a scenario named "-v6" connects to its IPv6 address.
func (o *Options) compare(sc string, reflect bool, workers int, loss uint16) ([]Row, error) {
	b, err := newBed(reflect, workers, loss)
	if err != nil {
		return nil, err
	}
	defer b.close()
	target := "linux-listener"
	if reflect {
		target = "xdp-reflector"
	}
	if strings.HasSuffix(sc, "-v6") {
		b.dst = netip.AddrPortFrom(b.l.ServerAddr6, b.dst.Port())
		target += ", IPv6"
	}
	if loss > 0 {
		target += fmt.Sprintf(" (%d%% SYN loss)", loss)
	}
	x := Row{Scenario: sc, Tool: "xdpconnect", Target: target, Workers: workers, Unit: "handshakes/s"}
	g := Row{Scenario: sc, Tool: "go-dialer (256 goroutines)", Target: target, Workers: 1, Unit: "handshakes/s"}
	c := Row{Scenario: sc, Tool: "c-epoll (256 in flight)", Target: target, Workers: 1, Unit: "handshakes/s"}
	var p50, p99 []float64
	var tr traces
	for i := 0; i < o.Runs; i++ {
		r, err := o.runXDPConnect(b, workers, "--duration", o.Duration.String())
		if err != nil {
			return nil, err
		}
		x.Runs = append(x.Runs, r.CPS)
		p50, p99 = append(p50, r.RTT.P50), append(p99, r.RTT.P99)
		o.logf("  xdpconnect run %d: %.0f/s (rtt p50 %.0fus)", i+1, r.CPS, r.RTT.P50*1e6)
		last := i == o.Runs-1
		if last {
			tr.addXDPConnect("xdpconnect", r)
		}
		for _, t := range []*Row{&g, &c} {
			tool := "go-dialer"
			if t == &c {
				tool = "c-epoll"
			}
			res, err := o.runBaseline(b, tool, 256, "")
			if err != nil {
				return nil, err
			}
			v := float64(res.Handshakes) / res.Seconds
			t.Runs = append(t.Runs, v)
			o.logf("  %s run %d: %.0f/s", tool, i+1, v)
			if last {
				tr.addBaseline(tool, res)
			}
		}
	}
	if o.OutDir != "" {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return nil, err
		}
		if err := tr.write(o.OutDir, sc, target); err != nil {
			return nil, fmt.Errorf("plots: %w", err)
		}
	}
	slices.Sort(p50)
	slices.Sort(p99)
	x.RTTp50, x.RTTp99 = p50[len(p50)/2], p99[len(p99)/2]
	rows := []Row{x, g, c}
	for i := range rows {
		summarize(&rows[i])
	}
	return rows, nil
}

func (o *Options) xdpconnectOnly(sc string, workers int, loss uint16) ([]Row, error) {
	b, err := newBed(true, workers, loss)
	if err != nil {
		return nil, err
	}
	defer b.close()
	x := Row{Scenario: sc, Tool: "xdpconnect", Target: "xdp-reflector", Workers: workers, Unit: "handshakes/s",
		Note: "2-queue veth, worker per queue; the reflector shares the 2 cores"}
	for i := 0; i < o.Runs; i++ {
		r, err := o.runXDPConnect(b, workers, "--duration", o.Duration.String())
		if err != nil {
			return nil, err
		}
		x.Runs = append(x.Runs, r.CPS)
		o.logf("  xdpconnect %d workers run %d: %.0f/s", workers, i+1, r.CPS)
	}
	summarize(&x)
	return []Row{x}, nil
}

// holdMemory holds N connections from many dedicated source addresses and
// reports what each costs: the growth of the peak RSS from a run that
// fills one source's ports (62,500) to one that fills N, per connection
// added. Both runs use every slot of their table, so neither counts
// pages the other leaves untouched.
func (o *Options) holdMemory() ([]Row, error) {
	b, err := newBed(true, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	const perSource = 62500 // 16 sources hold 1,000,000 with every slot used
	n := o.HoldConns
	srcs := (n + perSource - 1) / perSource
	measure := func(count, sources int) (*report.Report, error) {
		src := fmt.Sprintf("198.18.128.1-198.18.128.%d", sources)
		return o.runXDPConnect(b, 1, "--count", strconv.Itoa(count), "--close", "hold", "--src", src,
			"--src-ports", "2000-64499", "--frames", "8192")
	}
	row := Row{Scenario: "hold-memory", Tool: "xdpconnect", Target: "xdp-reflector", Workers: 1, Unit: "bytes/held connection"}
	var bigRSS, smallRSS []float64
	for i := 0; i < o.Runs; i++ {
		small, err := measure(perSource, 1)
		if err != nil {
			return nil, err
		}
		big, err := measure(n, srcs)
		if err != nil {
			return nil, err
		}
		if big.Established != uint64(n) || small.Established != perSource {
			return nil, fmt.Errorf("held %d and %d connections, asked %d and %d", small.Established, big.Established, perSource, n)
		}
		per := float64(big.MaxRSSBytes-small.MaxRSSBytes) / float64(big.Established-small.Established)
		row.Runs = append(row.Runs, per)
		bigRSS, smallRSS = append(bigRSS, float64(big.MaxRSSBytes)), append(smallRSS, float64(small.MaxRSSBytes))
		o.logf("  run %d: held %d connections: peak RSS %d MiB, %.1f B/connection (table and timers %d MiB)", i+1, big.Established,
			big.MaxRSSBytes>>20, per, big.TableBytes>>20)
	}
	summarize(&row)
	row.Note = fmt.Sprintf("%d held from %d sources; peak RSS %.0f MiB (%.0f MiB holding %d), medians", n, srcs,
		median(bigRSS)/(1<<20), median(smallRSS)/(1<<20), perSource)
	return []Row{row}, nil
}

// Markdown renders rows as a table with xdpconnect's ratio to each peer of
// the same scenario.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| scenario | tool | target | workers | median | min-max | unit | rtt p50/p99 | vs xdpconnect |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := ""
		for _, x := range rows {
			if x.Scenario == r.Scenario && x.Tool == "xdpconnect" && !strings.HasPrefix(r.Tool, "xdpconnect") && r.Median > 0 && x.Unit == r.Unit {
				ratio = fmt.Sprintf("xdpconnect %.2fx", x.Median/r.Median)
			}
		}
		rtt := ""
		if r.RTTp50 > 0 {
			rtt = fmt.Sprintf("%.0f/%.0f us", r.RTTp50*1e6, r.RTTp99*1e6)
		}
		if r.Note != "" && ratio == "" {
			ratio = r.Note
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.0f | %.0f-%.0f | %s | %s | %s |\n", r.Scenario, r.Tool, r.Target, r.Workers,
			r.Median, r.Min, r.Max, r.Unit, rtt, ratio)
	}
	return b.String()
}

// Write stores rows as results.json and results.md in dir, and the
// ratios to each peer as summary.png.
func Write(dir string, rows []Row) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, _ := json.MarshalIndent(rows, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "results.json"), j, 0o644); err != nil {
		return err
	}
	md := Markdown(rows)
	if h := HTTPMarkdown(rows); strings.Count(h, "\n") > 2 {
		md += "\n" + h
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return writeSummary(dir, rows)
}

// soak runs at full rate with 1 % SYN loss for o.Soak and checks the books:
// nothing stuck in flight, attempted = established + failed, and peak memory.
func (o *Options) soak() ([]Row, error) {
	if o.Soak == 0 {
		o.Soak = 10 * time.Minute
	}
	b, err := newBed(true, 1, 1)
	if err != nil {
		return nil, err
	}
	defer b.close()
	r, err := o.runXDPConnect(b, 1, "--duration", o.Soak.String(), "--drain", "10s")
	if err != nil {
		return nil, err
	}
	if r.InFlight != 0 || r.Attempted != r.Established+r.FailedTotal() {
		return nil, fmt.Errorf("soak: books do not balance: %+v", r)
	}
	o.logf("  soak %v: %d attempts, %d established, failures %v, %d retransmits, peak RSS %d MiB", o.Soak, r.Attempted, r.Established, r.Failed, r.Retransmits, r.MaxRSSBytes>>20)
	return []Row{{Scenario: "soak", Tool: "xdpconnect", Target: "xdp-reflector (1% SYN loss)", Workers: 1, Unit: "handshakes/s",
		Runs: []float64{r.CPS}, Median: r.CPS, Min: r.CPS, Max: r.CPS,
		Note: fmt.Sprintf("%v; in flight 0; books balance; peak RSS %d MiB", o.Soak, r.MaxRSSBytes>>20)}}, nil
}

// metricsOverhead compares the handshake rate with metrics off and with
// metrics on and scraped every second (the shipped scrape interval), in
// alternating runs.
func (o *Options) metricsOverhead() ([]Row, error) {
	b, err := newBed(true, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	const addr = "127.0.0.1:19464"
	off := Row{Scenario: "metrics", Tool: "xdpconnect, metrics off", Target: "xdp-reflector", Workers: 1, Unit: "handshakes/s"}
	on := Row{Scenario: "metrics", Tool: "xdpconnect, scraped every 1 s", Target: "xdp-reflector", Workers: 1, Unit: "handshakes/s"}
	for i := 0; i < o.Runs; i++ {
		r, err := o.runXDPConnect(b, 1, "--duration", o.Duration.String())
		if err != nil {
			return nil, err
		}
		off.Runs = append(off.Runs, r.CPS)
		stop := make(chan struct{})
		scrapes := make(chan int, 1)
		go func() {
			n := 0
			t := time.NewTicker(time.Second) // deploy/prometheus.yml scrapes every 1 s
			defer t.Stop()
			for {
				select {
				case <-stop:
					scrapes <- n
					return
				case <-t.C:
					if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						n++
					}
				}
			}
		}()
		r, err = o.runXDPConnect(b, 1, "--duration", o.Duration.String(), "--metrics-addr", addr)
		close(stop)
		n := <-scrapes
		if err != nil {
			return nil, err
		}
		on.Runs = append(on.Runs, r.CPS)
		o.logf("  run %d: off %.0f/s, on %.0f/s (%d scrapes)", i+1, off.Runs[i], r.CPS, n)
	}
	summarize(&off)
	summarize(&on)
	on.Note = fmt.Sprintf("rate change with metrics: %+.1f %%", (on.Median/off.Median-1)*100)
	return []Row{off, on}, nil
}

// synRate runs cmd (pinned to CPU 0 in the client namespace) and measures,
// at the reflector, the SYNs it sends per second over its active window
// (first to last 20 ms sample in which SYNs arrived).
func synRate(b *bed, sink bool, args ...string) (float64, error) {
	type sample struct {
		t time.Time
		n uint64
	}
	stop := make(chan struct{})
	samples := make(chan []sample, 1)
	go func() {
		var s []sample
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			n, _ := b.refl.SYNs()
			s = append(s, sample{time.Now(), n})
			select {
			case <-stop:
				samples <- s
				return
			case <-t.C:
			}
		}
	}()
	full := append([]string{"-c", "0", "ip", "netns", "exec", b.l.ClientNS}, args...)
	// masscan 1.3 sometimes stops sending and never exits ("waiting -N
	// secs"): a minute bounds it, and the SYNs it sent until then are
	// measured.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "taskset", full...).CombinedOutput()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	s := <-samples
	// Against the sink nothing answers, and xdpconnect says so with exit
	// status 1; the SYNs counted are the measure, also of a scanner that
	// had to be stopped.
	var ee *exec.ExitError
	if err != nil && ctx.Err() == nil && !(sink && errors.As(err, &ee) && ee.ExitCode() == 1) {
		return 0, fmt.Errorf("%s: %v: %s", args[0], err, out)
	}
	first, last := -1, -1
	for i := 1; i < len(s); i++ {
		if s[i].n > s[i-1].n {
			if first < 0 {
				first = i - 1
			}
			last = i
		}
	}
	if first < 0 {
		return 0, fmt.Errorf("%s sent no SYN to the reflector: %s", args[0], out)
	}
	return float64(s[last].n-s[first].n) / s[last].t.Sub(s[first].t).Seconds(), nil
}

// synOnly compares SYN rates, never handshakes: xdpconnect --close synonly
// with masscan and zmap (when installed), all aimed at the lab range
// 198.18.0.0/15 and counted by the reflector, which answers any port.
func (o *Options) synOnly() ([]Row, error) {
	b, err := newBed(true, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.refl.SetMode(reflector.Reflect, 0); err != nil {
		return nil, err
	}
	_, cmac, err := b.l.ClientLink()
	if err != nil {
		return nil, err
	}
	srv, err := lab.LinkByName(b.l.ServerNS, lab.ServerIf)
	if err != nil {
		return nil, err
	}
	smac := srv.Attrs().HardwareAddr.String()
	secs := strconv.FormatFloat(o.Duration.Seconds(), 'f', 1, 64) + "s"
	tools := []struct {
		name string
		args []string
	}{
		{"xdpconnect --close synonly", []string{o.Tool, "run", "--dst", b.dst.String(), "--duration", secs, "--close", "synonly",
			"--quiet", "--metrics-addr", "", "--workers", "1"}},
	}
	if liveFrames(o) {
		tools = append(tools, struct {
			name string
			args []string
		}{"xdpconnect --close synonly --xdp-syn", []string{o.Tool, "run", "--dst", b.dst.String(), "--duration", secs, "--close", "synonly",
			"--xdp-syn", "--quiet", "--metrics-addr", "", "--workers", "1"}})
	}
	// Ten probes per address of the lab's /15 (1.3 M SYNs), all through
	// the client veth to the reflector; nothing leaves the lab.
	if _, err := exec.LookPath("masscan"); err == nil {
		tools = append(tools, struct {
			name string
			args []string
		}{"masscan 1.3", []string{"masscan", "198.18.0.0/15", "-p8080-8089", "--rate", "100000000", "--router-mac", smac,
			"--adapter-ip", lab.ClientAddr.String(), "--adapter-mac", cmac.String(), "--adapter-port", "40000", "-e", lab.ClientIf, "--wait", "0"}})
	} else {
		o.logf("  masscan not installed: left out")
	}
	if _, err := exec.LookPath("zmap"); err == nil {
		tools = append(tools, struct {
			name string
			args []string
		}{"zmap 2.1", []string{"zmap", "-p", "8080", "-i", lab.ClientIf, "-G", smac, "-S", lab.ClientAddr.String(), "-r", "100000000",
			"-P", "10", "-T", "1", "-c", "0", "-b", "/dev/null", "-o", "/dev/null", "-q", "--disable-syslog", "198.18.0.0/15"}})
	} else {
		o.logf("  zmap not installed: left out")
	}
	// Against the reflector (answers, which each tool resets) and against a
	// sink that only counts the SYNs.
	var rows []Row
	for _, mode := range []reflector.Mode{reflector.Reflect, reflector.Count} {
		if err := b.refl.SetMode(mode, 0); err != nil {
			return nil, err
		}
		target := "xdp-reflector, SYN-only"
		if mode == reflector.Count {
			target = "SYN sink (counts, no answers)"
		}
		var group []Row
		for _, tl := range tools {
			// The worker's SYN-only probes keep their port until answered
			// or timed out (Linux's schedule): against a sink they stall.
			if mode == reflector.Count && tl.name == "xdpconnect --close synonly" {
				continue
			}
			row := Row{Scenario: "synonly", Tool: tl.name, Target: target, Workers: 1, Unit: "SYN/s"}
			for i := 0; i < o.Runs; i++ {
				args := tl.args
				if tl.name[:3] == "xdp" {
					args = append([]string{args[0], args[1], "--netns", b.l.ClientNS}, args[2:]...)
					v, err := synRate(b, mode == reflector.Count, args...)
					if err != nil {
						return nil, err
					}
					row.Runs = append(row.Runs, v)
				} else {
					// Like every client in a comparison, the scanners get the
					// pass program so the reflected SYN-ACKs reach them (and the
					// kernel, which resets them) as on a real link.
					var v float64
					err := b.withPass(func() (err error) {
						v, err = synRate(b, mode == reflector.Count, args...)
						return err
					})
					if err != nil {
						return nil, err
					}
					row.Runs = append(row.Runs, v)
				}
				o.logf("  %s -> %s run %d: %.0f SYN/s", tl.name, target, i+1, row.Runs[len(row.Runs)-1])
			}
			summarize(&row)
			group = append(group, row)
		}
		// The scanners' rows say how the best xdpconnect row compares.
		best := 0.0
		for _, r := range group {
			if strings.HasPrefix(r.Tool, "xdpconnect") {
				best = max(best, r.Median)
			}
		}
		for i := range group {
			if !strings.HasPrefix(group[i].Tool, "xdpconnect") && group[i].Median > 0 {
				group[i].Note = fmt.Sprintf("xdpconnect's best %.2fx", best/group[i].Median)
			}
		}
		rows = append(rows, group...)
	}
	return rows, nil
}

// liveFrames says whether the kernel sends XDP live frames (--xdp-tx,
// --xdp-syn); the rows that need them are left out, and said so, where it
// refuses.
func liveFrames(o *Options) bool {
	if err := bpf.LiveFrames(); err != nil {
		o.logf("  rows with frames made by XDP left out: %v", err)
		return false
	}
	return true
}
