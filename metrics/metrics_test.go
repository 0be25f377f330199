package metrics_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/metrics"
	"github.com/xdpconnect/xdpconnect/tcp"
)

func engine(t *testing.T) *fastpath.Engine {
	e, err := fastpath.New(fastpath.Config{
		Targets: []fastpath.Target{{Addr: netip.MustParseAddrPort("198.18.0.2:80")}},
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
	allowed := map[string]bool{"errno": true, "queue": true, "reason": true, "action": true, "ring": true, "version": true}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "xdpconnect_") {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if !allowed[lp.GetName()] {
					t.Errorf("%s has label %s", mf.GetName(), lp.GetName())
				}
			}
		}
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
`, r.RSTReceived)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "xdpconnect_attempts_total", "xdpconnect_established_total",
		"xdpconnect_rst_sent_total", "xdpconnect_closed_total", "xdpconnect_in_flight", "xdpconnect_rst_received_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
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
