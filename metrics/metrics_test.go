package metrics_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/metrics"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// nullLink is a Link that never receives and accepts everything: enough to
// build an engine whose snapshot the collector reads.
type nullLink struct{ umem []byte }

func (l *nullLink) UMEM() []byte              { return l.umem }
func (l *nullLink) FrameSize() int            { return 2048 }
func (l *nullLink) Receive([]xsk.Desc) int    { return 0 }
func (l *nullLink) Recycle([]xsk.Desc)        {}
func (l *nullLink) Alloc(a []uint64) int      { return 0 }
func (l *nullLink) Free([]uint64)             {}
func (l *nullLink) Transmit(d []xsk.Desc) int { return len(d) }
func (l *nullLink) Kick() error               { return nil }
func (l *nullLink) Complete() int             { return 0 }
func (l *nullLink) Poll(int) bool             { return false }
func (l *nullLink) Err() error                { return nil }

func engine(t *testing.T) *fastpath.Engine {
	e, err := fastpath.New(fastpath.Config{
		Targets: []fastpath.Target{{Addr: netip.MustParseAddrPort("198.18.0.2:80")}},
		Sources: []fastpath.Source{{Addr: netip.MustParseAddr("198.18.0.1")}},
		PortLo:  10000, PortHi: 10100, Count: 1,
	}, []fastpath.Link{&nullLink{umem: make([]byte, 1<<16)}})
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
