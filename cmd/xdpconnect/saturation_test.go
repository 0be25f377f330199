package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
)

// The generator knows its own limit. Asked far past what one worker makes
// here, the run says first that it saturated, with the late attempts as
// evidence, in the text, the JSON and the metric, and exits 3: the asked
// rate was not delivered. Asked within its means (10k/s), it delivers the
// rate to 1 % and says nothing of the kind, with the same flags otherwise.
func TestSaturationSaid(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	dst := netip.AddrPortFrom(l.ServerAddr, 8080).String()

	r, stderr, code := runBinary(t, l.ClientNS, "--dst", dst, "--duration", "1s", "--rate", "10000")
	if code != 0 || r.Saturation == nil || r.Saturation.Saturated || r.AttemptRate < 0.99*10000 {
		t.Fatalf("within its means: exit %d, %.0f/s, saturation %+v: %s", code, r.AttemptRate, r.Saturation, stderr)
	}

	r, stderr, code = runBinary(t, l.ClientNS, "--dst", dst, "--duration", "1s", "--rate", "20000000", "--workers", "1")
	s := r.Saturation
	if code != 3 || s == nil || !s.Saturated || s.Late == 0 || len(s.Limits) == 0 || s.Limits[0].Reason != "late" ||
		!strings.Contains(stderr, "the asked rate was not delivered") {
		t.Fatalf("past its means: exit %d, saturation %+v: %s", code, s, stderr)
	}
	// The text says it first, and marks the latency lines.
	var b strings.Builder
	r.WriteText(&b)
	if !strings.HasPrefix(b.String(), "SATURATED:") || !strings.Contains(b.String(), "[saturated: not the target's alone]") {
		t.Fatalf("text report:\n%s", b.String())
	}

	// The metric, scraped while the run is still served.
	var sat float64 = -1
	runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) {
		o.metricsAddr = "127.0.0.1:0"
		o.plan.Count, o.plan.Duration, o.plan.Rate = 0, time.Second, 20e6
		var addr string
		o.metricsBound = func(a string) { addr = a }
		o.afterRun = func(*report.Report) {
			_, m, err := scrape(addr)
			if err != nil {
				t.Error(err)
				return
			}
			sat = m["xdpconnect_saturated"]
		}
	})
	if sat != 1 {
		t.Fatalf("xdpconnect_saturated = %v after a saturated run", sat)
	}
}
