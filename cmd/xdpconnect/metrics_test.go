package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
)

// scrape returns the text exposition and its samples by series.
func scrape(addr string) (string, map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndex(line, " ")
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return "", nil, fmt.Errorf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return string(b), out, nil
}

// scrapeEvery scrapes addr every 50 ms until stop closes, and fails when a
// counter (a _total series) goes down; seen gets every scrape. The
// channel gives the outcome (nil once stopped).
func scrapeEvery(addr string, stop <-chan struct{}, seen func(text string, m map[string]float64)) <-chan error {
	done := make(chan error, 1)
	go func() {
		prev := map[string]float64{}
		for {
			select {
			case <-stop:
				done <- nil
				return
			case <-time.After(50 * time.Millisecond):
			}
			text, m, err := scrape(addr)
			if err != nil {
				done <- err
				return
			}
			for k, v := range m {
				if strings.Contains(k, "_total") && v < prev[k] {
					done <- fmt.Errorf("counter %s went down: %v -> %v", k, prev[k], v)
					return
				}
			}
			prev = m
			seen(text, m)
		}
	}()
	return done
}

// metricsWatch is a run's metrics watched from the side: scraped while
// it runs (scrapeEvery) and once more after it.
type metricsWatch struct {
	done  <-chan error
	final map[string]float64 // the scrape after the run
}

// watchMetrics serves o's run's metrics on a free port and watches them:
// seen gets every scrape during the run, final the one after it. Call
// wait once the run is over.
func watchMetrics(t *testing.T, o *runOpts, seen func(text string, m map[string]float64)) *metricsWatch {
	w := &metricsWatch{}
	stop := make(chan struct{})
	var addr string
	o.metricsAddr = "127.0.0.1:0"
	o.metricsBound = func(a string) {
		addr = a
		w.done = scrapeEvery(addr, stop, seen)
	}
	o.afterRun = func(*report.Report) {
		close(stop)
		var err error
		if _, w.final, err = scrape(addr); err != nil {
			t.Error(err)
		}
	}
	return w
}

// wait fails the test if a scrape during the run failed or saw a counter
// go down.
func (w *metricsWatch) wait(t *testing.T) {
	t.Helper()
	if err := <-w.done; err != nil {
		t.Fatal(err)
	}
}

// sameAsReport checks that each series of the final scrape is present and
// equals its count in the report.
func (w *metricsWatch) sameAsReport(t *testing.T, want map[string]uint64) {
	t.Helper()
	for k, n := range want {
		if got, ok := w.final[k]; !ok || uint64(got) != n {
			t.Errorf("%s = %v (present %v), report says %d", k, got, ok, n)
		}
	}
}

// Scrapes during a lab run see monotonic counters; the scrape after the run
// equals the JSON report exactly; promtool accepts the exposition.
func TestMetricsDuringAndAfterRun(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	var mu sync.Mutex
	var during string
	var scrapes int
	var w *metricsWatch
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) {
		o.plan.Count = 0
		o.plan.Duration = 1500 * time.Millisecond
		o.plan.Rate = 20000
		w = watchMetrics(t, o, func(text string, m map[string]float64) {
			mu.Lock()
			scrapes++
			if m["xdpconnect_attempts_total"] > 0 && during == "" {
				during = text
			}
			mu.Unlock()
		})
	})
	w.wait(t)
	if scrapes < 10 || during == "" {
		t.Fatalf("%d scrapes, none during the load", scrapes)
	}
	w.sameAsReport(t, map[string]uint64{
		"xdpconnect_attempts_total": r.Attempted, "xdpconnect_established_total": r.Established,
		"xdpconnect_syn_retransmits_total": r.Retransmits, "xdpconnect_rst_sent_total": r.RSTSent,
		"xdpconnect_in_flight": r.InFlight, `xdpconnect_failed_total{errno="ECONNREFUSED"}`: r.Failed["ECONNREFUSED"],
		"xdpconnect_handshake_rtt_seconds_count": r.Established,
	})
	if r.Established == 0 {
		t.Fatal("nothing established")
	}
	promtoolCheck(t, during)
}

func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	lookTool(t, "promtool", "prometheus")
	p := filepath.Join(t.TempDir(), "m.txt")
	if err := os.WriteFile(p, []byte(exposition), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
