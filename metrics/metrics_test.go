package metrics_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/metrics"
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
