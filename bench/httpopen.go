package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect/bench/reflector"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/report"
)

// The http-open scenario asks of every tool what a user asks of a load
// generator against a web server: how many requests a second it completes
// with one request per connection (closed loop, 256 in flight), and what
// the server's latency is when it is asked for a fixed rate below and
// above that capacity (open loop). The peers are the kernel clients users
// run today: ab (no keep-alive), wrk with "Connection: close" and h2load
// --h1 with "Connection: close", the only one of the three with a rate
// mode. nginx counts what it served, so every row can be checked against
// the server's own books.

// httpOpenSizes are the objects fetched from nginx.
var httpOpenSizes = []string{"1k", "16k", "64k"}

// httpOpenLoads are the open-loop rates, in percent of xdpconnect's
// closed-loop capacity for the object.
var httpOpenLoads = []int{50, 90, 150}

// HTTPFigures are a request-mode row's figures beyond its rate, from the
// run with the median rate.
type HTTPFigures struct {
	// Asked is the asked rate in requests/s (open loop); 0 in closed loop.
	Asked float64 `json:"asked_per_second,omitempty"`
	// Complete and Failed count the run's requests.
	Complete uint64 `json:"complete"`
	Failed   uint64 `json:"failed"`
	// Server is nginx's own count of the requests it served during the
	// run (stub_status); absent against the XDP responder.
	Server uint64 `json:"server_requests,omitempty"`
	// TTFB and TTLB quantiles in seconds, timed from the request's send
	// (0 where the tool does not report them).
	TTFBp50 float64 `json:"ttfb_p50_seconds,omitempty"`
	TTFBp99 float64 `json:"ttfb_p99_seconds,omitempty"`
	TTLBp50 float64 `json:"ttlb_p50_seconds,omitempty"`
	TTLBp99 float64 `json:"ttlb_p99_seconds,omitempty"`
	// SchedP50 and SchedP99 are xdpconnect's latency to the last byte
	// timed from each attempt's intended start (open loop): a stall of
	// the generator shows here and hides in the TTLB.
	SchedP50 float64 `json:"ttlb_from_schedule_p50_seconds,omitempty"`
	SchedP99 float64 `json:"ttlb_from_schedule_p99_seconds,omitempty"`
	// Saturated is xdpconnect's verdict on itself; Exit its exit status
	// (3: the asked rate was not delivered).
	Saturated bool `json:"saturated,omitempty"`
	Exit      int  `json:"exit,omitempty"`
}

// httpRun is one tool run: its completion rate and figures.
type httpRun struct {
	rate float64
	fig  HTTPFigures
}

// httpTarget is where the tools send their requests.
type httpTarget struct {
	b    *bed
	ng   *lab.Nginx // nil: the XDP responder
	name string
	host string // the Host header and URL authority
}

func (o *Options) httpOpen() ([]Row, error) {
	rows, err := o.httpOpenNginx()
	if err != nil {
		return rows, err
	}
	r, err := o.httpOpenResponder()
	return append(rows, r...), err
}

// httpOpenNginx is every size against nginx.
func (o *Options) httpOpenNginx() ([]Row, error) {
	var rows []Row
	b, err := newBed(false, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	b.wire = true
	ng, stop, err := b.startNginx()
	if err != nil {
		return nil, err
	}
	defer stop()
	t := &httpTarget{b: b, ng: ng, name: "nginx, 1 worker on CPU 1", host: b.dst.Addr().String()}
	for _, size := range httpOpenSizes {
		r, err := o.httpOpenSize(t, size)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// httpOpenSize runs the closed loop of every tool, then the open loops at
// httpOpenLoads of xdpconnect's capacity, for /size.
func (o *Options) httpOpenSize(t *httpTarget, size string) ([]Row, error) {
	path := "/" + size
	closed := fmt.Sprintf("http-open %s closed", size)
	rows, err := o.httpClosed(t, closed, path)
	if err != nil {
		return rows, err
	}
	capacity := rows[0].Median
	for _, pct := range httpOpenLoads {
		sc := fmt.Sprintf("http-open %s open %d%%", size, pct)
		asked := math.Round(capacity*float64(pct)/100/100) * 100 // h2load asks in steps of 100/s
		x := Row{Scenario: sc, Tool: "xdpconnect", Target: t.name, Workers: 1, Unit: "requests/s",
			Note: fmt.Sprintf("--rate %.0f, %d%% of its closed-loop capacity", asked, pct)}
		h := Row{Scenario: sc, Tool: "h2load --h1 -r (Connection: close)", Target: t.name, Workers: 1, Unit: "requests/s"}
		var xr, hr []httpRun
		for i := 0; i < o.Runs; i++ {
			r, err := o.httpXDPConnect(t, path, "--rate", strconv.FormatFloat(asked, 'f', 0, 64))
			if err != nil {
				return rows, err
			}
			r.fig.Asked = asked
			xr = append(xr, r)
			o.logf("  xdpconnect %s at %.0f/s run %d: %.0f/s, ttlb p99 %.1f ms (schedule %.1f ms), saturated %v, exit %d", path, asked, i+1,
				r.rate, r.fig.TTLBp99*1e3, r.fig.SchedP99*1e3, r.fig.Saturated, r.fig.Exit)
			r, err = o.httpH2load(t, path, asked, 0)
			if err != nil {
				return rows, err
			}
			hr = append(hr, r)
			o.logf("  h2load %s at %.0f/s run %d: %.0f/s, ttlb p99 %.1f ms", path, asked, i+1, r.rate, r.fig.TTLBp99*1e3)
		}
		rows = append(rows, medianRow(x, xr), medianRow(h, hr))
	}
	return rows, nil
}

// httpClosed runs each tool with 256 requests in flight, a connection per
// request; xdpconnect's row comes first.
func (o *Options) httpClosed(t *httpTarget, sc, path string) ([]Row, error) {
	type tool struct {
		row Row
		run func() (httpRun, error)
	}
	// h2load's duration mode never ends with "Connection: close" (1.52):
	// it is given as many requests as xdpconnect completed in the same
	// run, and its rate is what it took for them.
	var xdpDone uint64
	tools := []tool{
		{Row{Tool: "xdpconnect", Note: fmt.Sprintf("--concurrency %d", httpConns)},
			func() (httpRun, error) {
				r, err := o.httpXDPConnect(t, path, "--concurrency", strconv.Itoa(httpConns))
				xdpDone = r.fig.Complete
				return r, err
			}},
		{Row{Tool: fmt.Sprintf("ab -c %d (no keep-alive)", httpConns)}, func() (httpRun, error) { return o.httpAB(t, path) }},
		{Row{Tool: fmt.Sprintf("wrk -t1 -c %d (Connection: close)", httpConns)}, func() (httpRun, error) { return o.httpWrk(t, path) }},
		{Row{Tool: fmt.Sprintf("h2load --h1 -c %d (Connection: close)", httpConns)}, func() (httpRun, error) { return o.httpH2load(t, path, 0, xdpDone) }},
	}
	runs := make([][]httpRun, len(tools))
	for i := 0; i < o.Runs; i++ {
		for j, tl := range tools {
			r, err := tl.run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tl.row.Tool, err)
			}
			runs[j] = append(runs[j], r)
			o.logf("  %s %s run %d: %.0f requests/s, ttlb p50/p99 %.2f/%.2f ms, server %d", tl.row.Tool, path, i+1, r.rate,
				r.fig.TTLBp50*1e3, r.fig.TTLBp99*1e3, r.fig.Server)
		}
	}
	rows := make([]Row, len(tools))
	for j, tl := range tools {
		r := tl.row
		r.Scenario, r.Target, r.Workers, r.Unit = sc, t.name, 1, "requests/s"
		rows[j] = medianRow(r, runs[j])
	}
	return rows, nil
}

// httpOpenResponder is every tool's closed loop against the XDP HTTP
// responder (SYN-ACKs and a canned response from XDP): no server in the
// way, so the client is the only limit.
func (o *Options) httpOpenResponder() ([]Row, error) {
	b, err := newBed(true, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.refl.SetMode(reflector.HTTP, b.dst.Port()); err != nil {
		return nil, err
	}
	t := &httpTarget{b: b, name: "xdp-responder", host: b.dst.String()}
	return o.httpClosed(t, "http-open responder", "/")
}

// medianRow fills r's rates and takes its figures from the run with the
// median rate.
func medianRow(r Row, runs []httpRun) Row {
	slices.SortFunc(runs, func(a, b httpRun) int { return cmp.Compare(a.rate, b.rate) })
	for _, x := range runs {
		r.Runs = append(r.Runs, x.rate)
	}
	summarize(&r)
	if len(runs) > 0 {
		f := runs[len(runs)/2].fig
		r.HTTP = &f
		r.RTTp50, r.RTTp99 = f.TTLBp50, f.TTLBp99
	}
	return r
}

// serverCount runs fn and returns how many requests nginx served meanwhile.
func (t *httpTarget) serverCount(fn func() error) (uint64, error) {
	if t.ng == nil {
		return 0, fn()
	}
	_, before, err := t.ng.Stats()
	if err != nil {
		return 0, err
	}
	if err := fn(); err != nil {
		return 0, err
	}
	_, after, err := t.ng.Stats()
	return after - before, err
}

func (t *httpTarget) url(path string) string {
	return "http://" + t.host + path
}

func (o *Options) httpXDPConnect(t *httpTarget, path string, args ...string) (httpRun, error) {
	var run httpRun
	a := append([]string{"--duration", o.Duration.String(), "--http", "GET " + path, "--host", t.host}, args...)
	var r *report.Report
	var code int
	n, err := t.serverCount(func() (err error) {
		r, code, err = o.runXDPConnectStatus(t.b, 1, a...)
		return err
	})
	if err != nil {
		return run, err
	}
	q := r.Requests
	if q == nil {
		return run, fmt.Errorf("xdpconnect: no request report")
	}
	run.rate = q.PerSecond
	run.fig = HTTPFigures{Complete: q.Completed, Failed: sumCounts(q.Failed), Server: n,
		TTFBp50: q.TTFB.P50, TTFBp99: q.TTFB.P99, TTLBp50: q.TTLB.P50, TTLBp99: q.TTLB.P99,
		SchedP50: q.TTLBSched.P50, SchedP99: q.TTLBSched.P99, Exit: code}
	if r.Saturation != nil {
		run.fig.Saturated = r.Saturation.Saturated
	}
	return run, nil
}

// peer runs a kernel client in the client namespace on CPU 0, bounded in
// time, and returns its standard output.
func (o *Options) peer(t *httpTarget, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*o.Duration+30*time.Second)
	defer cancel()
	var out []byte
	err := t.b.withPass(func() error {
		a := append([]string{"-c", "0", "ip", "netns", "exec", t.b.l.ClientNS}, args...)
		cmd := exec.CommandContext(ctx, "taskset", a...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		var err error
		out, err = cmd.Output()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", args[0], err, lastLines(stderr.String(), 3))
		}
		return nil
	})
	return out, err
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], " | ")
}

// The lines of ab's report a row takes.
var (
	abComplete = regexp.MustCompile(`(?m)^Complete requests:\s+(\d+)`)
	abFailed   = regexp.MustCompile(`(?m)^Failed requests:\s+(\d+)`)
	abNon2xx   = regexp.MustCompile(`(?m)^Non-2xx responses:\s+(\d+)`)
	abTime     = regexp.MustCompile(`(?m)^Time taken for tests:\s+([0-9.]+) seconds`)
	abPct      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+(\d+)`)
	abWaiting  = regexp.MustCompile(`(?m)^Waiting:\s+\d+\s+\d+\s+[0-9.]+\s+(\d+)`)
)

func (o *Options) httpAB(t *httpTarget, path string) (httpRun, error) {
	var out []byte
	secs := strconv.Itoa(int(math.Ceil(o.Duration.Seconds())))
	n, err := t.serverCount(func() (err error) {
		// -n after -t: ab's -t alone caps the run at 50,000 requests.
		out, err = o.peer(t, "ab", "-q", "-t", secs, "-n", "100000000", "-c", strconv.Itoa(httpConns), t.url(path))
		return err
	})
	if err != nil {
		return httpRun{}, err
	}
	run, err := parseAB(out)
	run.fig.Server = n
	return run, err
}

// parseAB reads ab's report: complete and failed requests (its non-2xx
// among the failed), the time it took, the 50th and 99th percentiles of
// the total time (whole milliseconds) and the median of "Waiting".
func parseAB(out []byte) (httpRun, error) {
	var run httpRun
	complete, err1 := matchUint(abComplete, out)
	failed, err2 := matchUint(abFailed, out)
	secsTaken, err3 := matchFloat(abTime, out)
	if err := errors.Join(err1, err2, err3); err != nil || secsTaken == 0 {
		return run, fmt.Errorf("ab output: %v: %q", err, lastLines(string(out), 20))
	}
	non2xx, _ := matchUint(abNon2xx, out)
	failed += non2xx
	run.fig = HTTPFigures{Complete: complete - min(complete, failed), Failed: failed}
	run.rate = float64(run.fig.Complete) / secsTaken
	for _, m := range abPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		if string(m[1]) == "50" {
			run.fig.TTLBp50 = v / 1e3
		} else {
			run.fig.TTLBp99 = v / 1e3
		}
	}
	if m := abWaiting.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		run.fig.TTFBp50 = v / 1e3 // the median of "Waiting"; ab gives no p99 of it
	}
	return run, nil
}

var (
	wrkRate    = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m),`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+(?:us|ms|s|m))`)
	wrkNon2xx  = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErr = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func (o *Options) httpWrk(t *httpTarget, path string) (httpRun, error) {
	var out []byte
	n, err := t.serverCount(func() (err error) {
		out, err = o.peer(t, "wrk", "-t1", "-c", strconv.Itoa(httpConns), "-d", o.Duration.String(), "--latency",
			"-H", "Connection: close", t.url(path))
		return err
	})
	if err != nil {
		return httpRun{}, err
	}
	run, err := parseWrk(out)
	run.fig.Server = n
	return run, err
}

// parseWrk reads wrk's report: the responses read and the time they took,
// non-2xx/3xx responses and socket errors (failed; wrk counts them among
// and beside its responses), and the latency distribution's 50th and 99th
// percentiles, each with its unit.
func parseWrk(out []byte) (httpRun, error) {
	var run httpRun
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return run, fmt.Errorf("wrk output: %q", lastLines(string(out), 20))
	}
	total, _ := strconv.ParseUint(string(m[1]), 10, 64)
	d, err := time.ParseDuration(string(m[2]) + string(m[3]))
	if err != nil || d <= 0 {
		return run, fmt.Errorf("wrk duration %q", m[2])
	}
	var failed uint64
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		failed, _ = strconv.ParseUint(string(m[1]), 10, 64)
	}
	if m := wrkSockErr.FindSubmatch(out); m != nil {
		for _, s := range m[1:] {
			v, _ := strconv.ParseUint(string(s), 10, 64)
			failed += v
		}
	}
	run.fig = HTTPFigures{Complete: total - min(total, failed), Failed: failed}
	run.rate = float64(run.fig.Complete) / d.Seconds()
	for _, m := range wrkPct.FindAllSubmatch(out, -1) {
		v, err := time.ParseDuration(string(m[2]))
		if err != nil {
			continue
		}
		if string(m[1]) == "50" {
			run.fig.TTLBp50 = v.Seconds()
		} else {
			run.fig.TTLBp99 = v.Seconds()
		}
	}
	return run, nil
}

var (
	h2Done     = regexp.MustCompile(`(?m)^finished in ([0-9.]+)(us|ms|s),`)
	h2Requests = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx`)
)

// httpH2load runs h2load --h1 with "Connection: close", so it opens a
// connection per request. rate 0 is its closed loop (256 connections, n
// requests); otherwise its rate mode: rate/100 new connections every
// 10 ms, each making one request, rate×o.Duration in all.
func (o *Options) httpH2load(t *httpTarget, path string, rate float64, n uint64) (httpRun, error) {
	logf, err := os.CreateTemp("", "xdpc-h2load-*.log")
	if err != nil {
		return httpRun{}, err
	}
	logf.Close()
	defer os.Remove(logf.Name())
	args := []string{"h2load", "--h1", "-H", "Connection: close", "--log-file", logf.Name()}
	if rate == 0 {
		args = append(args, "-c", strconv.Itoa(httpConns), "-n", strconv.FormatUint(max(n, 1000), 10))
	} else {
		n := strconv.Itoa(int(rate * o.Duration.Seconds()))
		args = append(args, "-n", n, "-c", n, "-r", strconv.Itoa(int(math.Round(rate/100))), "--rate-period", "10ms")
	}
	var out []byte
	srv, err := t.serverCount(func() (err error) {
		out, err = o.peer(t, append(args, t.url(path))...)
		return err
	})
	if err != nil {
		return httpRun{}, err
	}
	run, err := parseH2load(out)
	if err != nil {
		return run, err
	}
	run.fig.Server, run.fig.Asked = srv, rate
	run.fig.TTLBp50, run.fig.TTLBp99, err = h2loadQuantiles(logf.Name())
	return run, err
}

// parseH2load reads h2load's summary: the requests that got a 2xx
// (complete) and the time it took for all it was asked; the rest of those
// asked failed, the run's bound ending them included.
func parseH2load(out []byte) (httpRun, error) {
	var run httpRun
	m := h2Done.FindSubmatch(out)
	r := h2Requests.FindSubmatch(out)
	if m == nil || r == nil {
		return run, fmt.Errorf("h2load output: %q", lastLines(string(out), 20))
	}
	d, err := time.ParseDuration(string(m[1]) + string(m[2]))
	if err != nil || d <= 0 {
		return run, fmt.Errorf("h2load duration %q", m[1])
	}
	total, _ := strconv.ParseUint(string(r[1]), 10, 64)
	ok, _ := strconv.ParseUint(string(r[4]), 10, 64)
	if s := h2Status.FindSubmatch(out); s != nil {
		ok, _ = strconv.ParseUint(string(s[1]), 10, 64)
	}
	run.fig = HTTPFigures{Complete: ok, Failed: total - min(total, ok)}
	run.rate = float64(ok) / d.Seconds()
	return run, nil
}

// h2loadQuantiles reads h2load's per-request log (start µs, status, µs to
// the response's end) and returns the median and 99th percentile of the
// successful requests' times, in seconds.
func h2loadQuantiles(name string) (p50, p99 float64, err error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var h report.Histogram
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || !strings.HasPrefix(fs[1], "2") {
			continue
		}
		us, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			continue
		}
		h.Record(us * 1e3)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return float64(h.Quantile(0.5)) / 1e9, float64(h.Quantile(0.99)) / 1e9, nil
}

func sumCounts(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

func matchUint(re *regexp.Regexp, out []byte) (uint64, error) {
	m := re.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no %q", re)
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

func matchFloat(re *regexp.Regexp, out []byte) (float64, error) {
	m := re.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no %q", re)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// HTTPMarkdown renders the request-mode figures of the rows that have
// them: what was asked, what completed, what nginx served, and the
// latencies.
func HTTPMarkdown(rows []Row) string {
	var b strings.Builder
	ms := func(a, z float64) string {
		q := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", v*1e3)
		}
		if a == 0 && z == 0 {
			return "-"
		}
		return q(a) + "/" + q(z)
	}
	b.WriteString("| scenario | tool | asked/s | achieved/s | complete | failed | nginx served | TTFB p50/p99 ms | TTLB p50/p99 ms (from send) | TTLB p50/p99 ms (from schedule) | saturated | exit |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		f := r.HTTP
		if f == nil {
			continue
		}
		asked, srv := "closed loop", "-"
		if f.Asked > 0 {
			asked = fmt.Sprintf("%.0f", f.Asked)
		}
		if f.Server > 0 {
			srv = strconv.FormatUint(f.Server, 10)
		}
		sat := "-"
		if r.Tool == "xdpconnect" {
			sat = strconv.FormatBool(f.Saturated)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %d | %d | %s | %s | %s | %s | %s | %d |\n", r.Scenario, r.Tool, asked, r.Median,
			f.Complete, f.Failed, srv, ms(f.TTFBp50, f.TTFBp99), ms(f.TTLBp50, f.TTLBp99), ms(f.SchedP50, f.SchedP99), sat, f.Exit)
	}
	return b.String()
}
