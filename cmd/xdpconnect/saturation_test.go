package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
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

// A staged run (--stages, k6's ramp) in the lab against the Linux
// listener: the timeline's seconds each hold the attempts their ramp asked
// for (its integral over the second), to 5 %, and every attempt is
// established; the text report's rate line gives the ramp's mean. The
// --html page, opened in a headless browser, draws those seconds and
// shows the totals.
func TestStagesTimeline(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	page := filepath.Join(t.TempDir(), "run.html")
	r, stderr, code := runBinary(t, l.ClientNS, "--dst", netip.AddrPortFrom(l.ServerAddr, 8080).String(), "--stages", "2s:2000,2s:10000,1s:0", "--html", page)
	if code != 0 || len(r.Timeline) < 5 {
		t.Fatalf("exit %d, %d seconds: %s", code, len(r.Timeline), stderr)
	}
	// The ramp: 0->2000 over [0,2), 2000->10000 over [2,4), 10000->0 over [4,5).
	want := []float64{500, 1500, 4000, 8000, 5000}
	for i, w := range want {
		s := r.Timeline[i]
		if float64(s.Attempted) < 0.95*w || float64(s.Attempted) > 1.05*w || s.Failed != nil {
			t.Errorf("second %d: attempted %d, failed %v, want about %.0f", i, s.Attempted, s.Failed, w)
		}
	}
	if r.Established != r.Attempted || r.AskedRate != 19000.0/5 {
		t.Fatalf("established %d of %d, asked %v/s", r.Established, r.Attempted, r.AskedRate)
	}
	shown := testutil.RenderHTML(t, page)
	ch := shown.Charts["run-0"]
	for _, series := range []string{"asked", "established"} {
		got := ch.Values(series)
		if len(got) != len(r.Timeline) {
			t.Fatalf("%s: %d seconds drawn, %d in the timeline", series, len(got), len(r.Timeline))
		}
		for i, s := range r.Timeline {
			want := map[string]float64{"asked": s.AskedRate, "established": float64(s.Established)}[series]
			if d := got[i] - want; d > 1e-4*ch.Top || d < -1e-4*ch.Top {
				t.Errorf("second %d: %s drawn as %.1f, the timeline has %.1f", s.T, series, got[i], want)
			}
		}
	}
	rows := map[string]string{}
	for _, row := range shown.Tables["run"] {
		if len(row) == 2 {
			rows[row[0]] = row[1]
		}
	}
	if rows["attempted"] != fmt.Sprint(r.Attempted) || rows["established"] != fmt.Sprint(r.Established) {
		t.Errorf("the page shows attempted %q, established %q; the report %d, %d", rows["attempted"], rows["established"], r.Attempted, r.Established)
	}
	if n := strings.Count(shown.DOM, "stage "); n < 3 {
		t.Errorf("%d stage labels on the page, want one per stage on each chart", n)
	}
}
