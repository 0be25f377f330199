package report_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
)

// sampleTimeline is a run with requests: seconds of different rates,
// a failure of each kind, and response classes besides 2xx.
func sampleTimeline() []report.Second {
	var secs []report.Second
	for i := range 12 {
		s := report.Second{T: i, AskedRate: float64(1000 * min(i+1, 6)), Established: uint64(997 * min(i+1, 6)),
			InFlight: uint64(40 + i), Open: uint64(100 * i), Reset: uint64(i % 3),
			Failed:         map[string]uint64{"ETIMEDOUT": uint64(i % 2), "ECONNREFUSED": uint64(i % 4)},
			Responses:      map[string]uint64{"2xx": uint64(990 * min(i+1, 6)), "5xx": uint64(i)},
			RequestsFailed: map[string]uint64{"ECONNRESET": uint64(i % 5)},
			RTT:            report.Quantiles{P50: 40e-6 + float64(i)*1e-6, P99: 300e-6},
			TTLB:           report.Quantiles{P50: 0.0012, P99: 0.004 + float64(i)*1e-4}}
		secs = append(secs, s)
	}
	return secs
}

// The charts' series are the timeline's fields, each summed over its
// kinds: a failure of one kind left out, 2xx counted as failed, or the
// quantiles left in seconds would each differ.
func TestTimelineCharts(t *testing.T) {
	secs := sampleTimeline()
	cs := report.TimelineCharts(secs)
	get := func(chart, series string) []float64 {
		for _, c := range cs {
			if c.Title != chart {
				continue
			}
			if len(c.T) != len(secs) {
				t.Fatalf("%s: %d seconds, want %d", chart, len(c.T), len(secs))
			}
			for _, s := range c.Series {
				if s.Name == series {
					return s.Values
				}
			}
		}
		t.Fatalf("no series %s in chart %s", series, chart)
		return nil
	}
	for i, s := range secs {
		checks := []struct {
			chart, series string
			want          float64
		}{
			{"rate", "asked", s.AskedRate},
			{"rate", "established", float64(s.Established)},
			{"rate", "responses 2xx", float64(s.Responses["2xx"])},
			{"connections", "in flight", float64(s.InFlight)},
			{"connections", "open", float64(s.Open)},
			{"latency", "handshake RTT p50", 1e3 * s.RTT.P50},
			{"latency", "handshake RTT p99", 1e3 * s.RTT.P99},
			{"latency", "time to last byte p50", 1e3 * s.TTLB.P50},
			{"latency", "time to last byte p99", 1e3 * s.TTLB.P99},
			{"failures", "handshakes failed", float64(s.Failed["ETIMEDOUT"] + s.Failed["ECONNREFUSED"])},
			{"failures", "reset by the peer", float64(s.Reset)},
			{"failures", "requests failed", float64(s.RequestsFailed["ECONNRESET"])},
			{"failures", "responses not 2xx", float64(s.Responses["5xx"])},
		}
		for _, c := range checks {
			if got := get(c.chart, c.series)[i]; math.Abs(got-c.want) > 1e-9 {
				t.Errorf("second %d: %s %s = %g, want %g", s.T, c.chart, c.series, got, c.want)
			}
		}
	}
	// The asked concurrency is drawn when a ramp asked for one, only.
	for _, c := range []struct {
		asked float64
		want  bool
	}{{0, false}, {5, true}} {
		found := false
		for _, s := range report.TimelineCharts([]report.Second{{T: 0, Open: 3}, {T: 1, Open: 4, AskedOpen: c.asked}})[1].Series {
			if s.Name == "open asked" {
				found = s.Values[1] == c.asked
			}
		}
		if found != c.want {
			t.Errorf("asked open %v: series drawn %v, want %v", c.asked, found, c.want)
		}
	}
	// A handshake-only run has no request series to draw empty.
	for _, c := range report.TimelineCharts([]report.Second{{T: 0, Established: 5}}) {
		for _, s := range c.Series {
			if strings.Contains(s.Name, "2xx") || strings.Contains(s.Name, "byte") || strings.Contains(s.Name, "request") {
				t.Errorf("handshake-only run has series %q", s.Name)
			}
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ v, want float64 }{{0, 1}, {-3, 1}, {0.7, 1}, {1, 1}, {1.01, 2}, {2.2, 2.5}, {3, 5},
		{5, 5}, {5.5, 10}, {9999, 10000}, {10001, 20000}, {0.0031, 0.005}, {math.NaN(), 1}} {
		if got := report.NiceCeil(c.v); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("NiceCeil(%g) = %g, want %g", c.v, got, c.want)
		}
	}
}

// The page in a real headless browser: it renders offline (no external
// reference), each chart's lines read back through the axis give the
// series' values, the tables show the cells given, and the first series'
// colour is on the screenshot.
func TestHTMLRendersInBrowser(t *testing.T) {
	pass, fail := true, false
	secs := sampleTimeline()
	p := &report.Page{Title: "A <run> & its steps", Facts: [][2]string{{"kernel", "6.x"}, {"device", `nginx "1.22" <lab>`}},
		Sections: []report.PageSection{
			{Title: "step 1", Verdict: "every criterion met", Pass: &pass,
				Table:  &report.Table{Header: []string{"criterion", "value"}, Rows: []report.TableRow{{Cells: []string{"rate", "4,321.5"}, Class: "pass"}, {Cells: []string{"resets", "0.0012 %"}, Class: "fail"}}},
				Phases: []report.Phase{{Name: "ramp up", From: 0, To: 2}, {Name: "sustain", From: 2, To: 10}},
				Charts: report.TimelineCharts(secs)},
			{Title: "step 2", Verdict: "failed", Pass: &fail, Charts: report.TimelineCharts(secs[:3])},
		}}
	var b bytes.Buffer
	if err := report.WriteHTML(&b, p); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	// Offline: nothing fetched. The SVG namespace is a name, not a fetch.
	if m := regexp.MustCompile(`(?i)(src=|href=|@import|url\(|https?://)`).FindAllString(strings.ReplaceAll(page, "http://www.w3.org/2000/svg", ""), -1); len(m) != 0 {
		t.Fatalf("the page refers outside itself: %v", m)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := testutil.RenderHTML(t, path)
	if r.SeriesPixels < 100 {
		t.Errorf("the screenshot has %d pixels of the first series' colour: no line drawn", r.SeriesPixels)
	}
	for i, sec := range p.Sections {
		for j, c := range sec.Charts {
			id := strings.Join([]string{string(rune('0' + i)), string(rune('0' + j))}, "-")
			rc, ok := r.Charts[id]
			if !ok {
				t.Fatalf("chart %s (%s) not drawn", id, c.Title)
			}
			for _, s := range c.Series {
				got := rc.Values(s.Name)
				if len(got) != len(s.Values) {
					t.Fatalf("chart %s series %s: %d points, want %d", c.Title, s.Name, len(got), len(s.Values))
				}
				for k := range got {
					// Points are drawn to 1/100 pixel of a 148-pixel axis.
					if math.Abs(got[k]-s.Values[k]) > 0.0001*rc.Top+1e-9 {
						t.Errorf("chart %s series %s second %d: drawn %g, value %g (axis top %g)", c.Title, s.Name, c.T[k], got[k], s.Values[k], rc.Top)
					}
				}
			}
		}
	}
	want := [][]string{{"criterion", "value"}, {"rate", "4,321.5"}, {"resets", "0.0012 %"}}
	if got := r.Tables["0"]; !equalRows(got, want) {
		t.Errorf("table 0 shows %q, want %q", got, want)
	}
	if got := r.RowClasses("0"); strings.Join(got, ",") != "pass,fail" {
		t.Errorf("row classes %v, want pass,fail", got)
	}
	if got := r.Tables["facts"]; !equalRows(got, [][]string{{"kernel", "6.x"}, {"device", `nginx "1.22" <lab>`}}) {
		t.Errorf("facts shown as %q", got)
	}
	if !strings.Contains(r.DOM, "A &lt;run&gt; &amp; its steps") {
		t.Error("the title is not shown escaped")
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}
