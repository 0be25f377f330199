package metrics_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/metrics"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// engine has 40 targets: more than get statistics of their own.
func engine(t *testing.T) *fastpath.Engine {
	var targets []fastpath.Target
	for p := uint16(80); p < 120; p++ {
		targets = append(targets, fastpath.Target{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), p)})
	}
	e, err := fastpath.New(fastpath.Config{
		Targets: targets,
		Sources: []fastpath.Source{{Addr: netip.MustParseAddr("198.18.0.1")}},
		PortLo:  10000, PortHi: 10100, Count: 1,
	}, []fastpath.Link{linktest.NewLink(func([]byte) [][]byte { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Naming and help follow Prometheus conventions (promlint).
func TestGatherAndLint(t *testing.T) {
	reg, err := metrics.NewRegistry(metrics.Sources{Engine: engine(t), XDP: func() ([]metrics.XDPCounter, error) {
		return []metrics.XDPCounter{{Action: "redirect", Reason: "redirect_tcp", Value: 3}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(reg, "xdpconnect_failed_total", "xdpconnect_handshake_rtt_seconds", "xdpconnect_xdp_packets_total")
	if err != nil || n != len(fastpath.Errnos)+1+1 {
		t.Fatalf("series %d, err %v", n, err)
	}
}

// Label values come from fixed sets only: no address, port or connection.
func TestBoundedLabels(t *testing.T) {
	reg, err := metrics.NewRegistry(metrics.Sources{Engine: engine(t)})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"errno": true, "queue": true, "reason": true, "action": true, "ring": true, "version": true, "target": true}
	targets := map[string]bool{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "xdpconnect_") {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if !allowed[lp.GetName()] {
					t.Errorf("%s has label %s", mf.GetName(), lp.GetName())
				}
				if lp.GetName() == "target" {
					targets[lp.GetValue()] = true
				}
			}
		}
	}
	// 40 targets: the first 16 by name, the rest as one.
	if len(targets) != fastpath.DefaultTargetStats+1 || !targets[fastpath.OtherTargets] {
		t.Errorf("%d target label values: %v", len(targets), targets)
	}
}

// After a run on a fake link, the scraped values are the run's: every
// counter equals the report's, the RTT histogram holds one sample per
// handshake, and nothing is left in flight.
func TestValuesAfterRun(t *testing.T) {
	srv := linktest.NewServer()
	cfg := fastpath.Config{
		Targets: []fastpath.Target{{Addr: netip.MustParseAddrPort("198.18.0.2:80")}, {Addr: netip.MustParseAddrPort("198.18.0.2:81")}},
		Sources: []fastpath.Source{{Addr: netip.MustParseAddr("198.18.0.1")}},
		PortLo:  10000, PortHi: 19999, Count: 600, Key: [16]byte{1},
		Params: tcp.DefaultParams(1500, false),
	}
	_, r, reg := runOver(t, cfg, srv)
	want := fmt.Sprintf(`
# HELP xdpconnect_attempts_total Connection attempts started (first SYN sent).
# TYPE xdpconnect_attempts_total counter
xdpconnect_attempts_total 600
# HELP xdpconnect_established_total Handshakes completed.
# TYPE xdpconnect_established_total counter
xdpconnect_established_total 300
# HELP xdpconnect_rst_sent_total RST segments sent.
# TYPE xdpconnect_rst_sent_total counter
xdpconnect_rst_sent_total 300
# HELP xdpconnect_closed_total Established connections closed by us.
# TYPE xdpconnect_closed_total counter
xdpconnect_closed_total 300
# HELP xdpconnect_in_flight Attempts started and not yet ended.
# TYPE xdpconnect_in_flight gauge
xdpconnect_in_flight 0
# HELP xdpconnect_rst_received_total RST segments received.
# TYPE xdpconnect_rst_received_total counter
xdpconnect_rst_received_total %d
# HELP xdpconnect_target_attempts_total Attempts by target (the first --target-stats targets; the rest as "other").
# TYPE xdpconnect_target_attempts_total counter
xdpconnect_target_attempts_total{target="198.18.0.2:80"} 300
xdpconnect_target_attempts_total{target="198.18.0.2:81"} 300
# HELP xdpconnect_target_established_total Handshakes completed, by target.
# TYPE xdpconnect_target_established_total counter
xdpconnect_target_established_total{target="198.18.0.2:80"} 300
xdpconnect_target_established_total{target="198.18.0.2:81"} 0
# HELP xdpconnect_target_failed_total Attempts that failed, by target.
# TYPE xdpconnect_target_failed_total counter
xdpconnect_target_failed_total{target="198.18.0.2:80"} 0
xdpconnect_target_failed_total{target="198.18.0.2:81"} 300
`, r.RSTReceived)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "xdpconnect_attempts_total", "xdpconnect_established_total",
		"xdpconnect_rst_sent_total", "xdpconnect_closed_total", "xdpconnect_in_flight", "xdpconnect_rst_received_total",
		"xdpconnect_target_attempts_total", "xdpconnect_target_established_total", "xdpconnect_target_failed_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "xdpconnect_target_handshake_rtt_seconds":
			if len(mf.Metric) != 2 {
				t.Errorf("target RTT for %d targets, want 2", len(mf.Metric))
			}
			for _, m := range mf.Metric {
				want := uint64(0)
				if m.Label[0].GetValue() == "198.18.0.2:80" {
					want = 300
				}
				if m.GetHistogram().GetSampleCount() != want || m.Label[0].GetName() != "target" {
					t.Errorf("target RTT %v: %d samples, want %d", m.Label, m.GetHistogram().GetSampleCount(), want)
				}
			}
		case "xdpconnect_failed_total":
			for _, m := range mf.Metric {
				want := 0.0
				if m.Label[0].GetValue() == "ECONNREFUSED" {
					want = 300
				}
				if m.GetCounter().GetValue() != want {
					t.Errorf("failed_total{errno=%s} = %v, want %v", m.Label[0].GetValue(), m.GetCounter().GetValue(), want)
				}
			}
		case "xdpconnect_handshake_rtt_seconds":
			h := mf.Metric[0].GetHistogram()
			if h.GetSampleCount() != 300 || h.GetSampleSum() <= 0 || h.GetSampleSum() > 300*0.1 {
				t.Errorf("RTT histogram: %d samples, sum %vs", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	if r.RSTReceived != 300 || srv.Accepted() != 300 {
		t.Fatalf("report: RSTs received %d, server accepted %d", r.RSTReceived, srv.Accepted())
	}
}

// Request mode's series: requests, responses by class (a fixed set, zeros
// included), failures by outcome, bytes, and the response time histograms
// with one sample per response.
func TestRequestSeries(t *testing.T) {
	srv := linktest.NewServer()
	// 599, the last status of the 5xx class (a loop over the codes that
	// stops one short counts it as raw).
	resp := []byte("HTTP/1.1 599 Busy\r\nContent-Length: 0\r\n\r\n")
	srv.Respond = func(req []byte) []byte {
		if strings.HasSuffix(string(req), "\r\n\r\n") {
			return resp
		}
		return nil
	}
	req, _ := l7.HTTPRequest("GET", "/", "lab", false)
	cfg := fastpath.Config{
		Targets: []fastpath.Target{{Addr: netip.MustParseAddrPort("198.18.0.2:80")}},
		Sources: []fastpath.Source{{Addr: netip.MustParseAddr("198.18.0.1")}},
		PortLo:  10000, PortHi: 19999, Count: 200, Key: [16]byte{1},
		Params: tcp.DefaultParams(1500, false), Request: &l7.Spec{Request: req},
	}
	_, _, reg := runOver(t, cfg, srv)
	want := fmt.Sprintf(`
# HELP xdpconnect_requests_total Request mode: requests started (one per established connection).
# TYPE xdpconnect_requests_total counter
xdpconnect_requests_total 200
# HELP xdpconnect_responses_total Request mode: responses read to their end, by HTTP status class ("raw" without HTTP).
# TYPE xdpconnect_responses_total counter
xdpconnect_responses_total{class="1xx"} 0
xdpconnect_responses_total{class="2xx"} 0
xdpconnect_responses_total{class="3xx"} 0
xdpconnect_responses_total{class="4xx"} 0
xdpconnect_responses_total{class="5xx"} 200
xdpconnect_responses_total{class="raw"} 0
# HELP xdpconnect_request_failures_total Request mode: requests that failed after the handshake, by outcome.
# TYPE xdpconnect_request_failures_total counter
xdpconnect_request_failures_total{errno="EBADMSG"} 0
xdpconnect_request_failures_total{errno="ECONNRESET"} 0
xdpconnect_request_failures_total{errno="EMSGSIZE"} 0
xdpconnect_request_failures_total{errno="EOF"} 0
xdpconnect_request_failures_total{errno="ETIMEDOUT"} 0
# HELP xdpconnect_requests_in_flight Request mode: requests whose response has not ended.
# TYPE xdpconnect_requests_in_flight gauge
xdpconnect_requests_in_flight 0
# HELP xdpconnect_response_bytes_total Request mode: response bytes taken in order.
# TYPE xdpconnect_response_bytes_total counter
xdpconnect_response_bytes_total %d
`, 200*len(resp))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "xdpconnect_requests_total", "xdpconnect_responses_total",
		"xdpconnect_request_failures_total", "xdpconnect_requests_in_flight", "xdpconnect_response_bytes_total"); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg, "xdpconnect_response_last_byte_seconds")
	if err != nil || n != 1 {
		t.Fatalf("ttlb histogram: %d series (%v)", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "xdpconnect_target_") {
			t.Fatalf("one target, yet per-target series %s (they repeat the totals)", mf.GetName())
		}
		if mf.GetName() == "xdpconnect_response_last_byte_seconds" {
			if c := mf.GetMetric()[0].GetHistogram().GetSampleCount(); c != 200 {
				t.Fatalf("ttlb histogram holds %d samples, want 200", c)
			}
		}
	}
}

// runOver runs cfg on an engine over srv and returns the engine, its
// report and a registry over it.
func runOver(t *testing.T, cfg fastpath.Config, srv *linktest.Server) (*fastpath.Engine, *report.Report, *prometheus.Registry) {
	t.Helper()
	e, err := fastpath.New(cfg, []fastpath.Link{linktest.NewLink(srv.Handle)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Run(context.Background(), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := metrics.NewRegistry(metrics.Sources{Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	return e, r, reg
}
