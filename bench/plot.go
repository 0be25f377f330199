package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xdpconnect/xdpconnect/report"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// traces are what one scenario's plots show, per tool.
type traces struct {
	names []string
	rate  []plotter.XYs // handshakes/s against seconds
	rtt   []plotter.XYs // cumulative fraction against RTT seconds
}

var palette = []color.Color{color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 255}, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 255},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 255}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 255}}

func (t *traces) addXDPConnect(name string, r *report.Report) {
	var rate plotter.XYs
	for i := 1; i < len(r.Series); i++ {
		a, b := r.Series[i-1], r.Series[i]
		if dt := b.Seconds - a.Seconds; dt > 0 {
			rate = append(rate, plotter.XY{X: b.Seconds, Y: float64(b.Established-a.Established) / dt})
		}
	}
	var h report.Histogram
	for _, bk := range r.RTTHist {
		h.Counts[bucketIndex(bk.UpperSeconds)] += bk.Count
	}
	t.add(name, rate, cdf(&h))
}

func (t *traces) addBaseline(name string, r *BaselineResult) {
	var rate plotter.XYs
	for i, n := range r.Series {
		rate = append(rate, plotter.XY{X: float64(i+1) / 10, Y: float64(n) * 10})
	}
	var h report.Histogram
	for _, bc := range r.RTT {
		if bc[0] < uint64(len(h.Counts)) {
			h.Counts[bc[0]] += bc[1]
		}
	}
	t.add(name, rate, cdf(&h))
}

// bucketIndex is the histogram bucket whose upper bound is sec seconds.
func bucketIndex(sec float64) int {
	ns := int64(math.Round(sec * 1e9))
	for i := range len(report.Histogram{}.Counts) {
		if report.BucketHigh(i) >= ns {
			return i
		}
	}
	return len(report.Histogram{}.Counts) - 1
}

// cdf is the cumulative distribution of h's buckets, at their upper
// bounds in seconds: every tool at the same resolution.
func cdf(h *report.Histogram) plotter.XYs {
	var total, cum uint64
	for _, n := range h.Counts {
		total += n
	}
	var out plotter.XYs
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		cum += n
		// A log axis has no 0: a sample of 0 ns (a reply stamped in the
		// same nanosecond) is drawn at 1 ns.
		out = append(out, plotter.XY{X: float64(max(report.BucketHigh(i), 1)) / 1e9, Y: float64(cum) / float64(max(total, 1))})
	}
	return out
}

func (t *traces) add(name string, rate, cdf plotter.XYs) {
	t.names = append(t.names, name)
	t.rate = append(t.rate, rate)
	t.rtt = append(t.rtt, cdf)
}

// rateTicks label a rate axis in k/s (or M/s).
type rateTicks struct{}

func (rateTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = rateLabel(ticks[i].Value)
		}
	}
	return ticks
}

func rateLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M/s"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k/s"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "/s"
}

// latencyTicks label a log axis of seconds in µs, ms and s.
type latencyTicks struct{}

func (latencyTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.LogTicks{Prec: -1}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = latencyLabel(ticks[i].Value)
		}
	}
	return ticks
}

func latencyLabel(sec float64) string {
	f := func(v float64, unit string) string { return strconv.FormatFloat(v, 'f', -1, 64) + unit }
	switch {
	case sec >= 1:
		return f(sec, "s")
	case sec >= 1e-3:
		return f(math.Round(sec*1e6)/1e3, "ms")
	case sec >= 1e-6:
		return f(math.Round(sec*1e9)/1e3, "µs")
	}
	return f(math.Round(sec*1e9), "ns")
}

// write saves <scenario>-rate.png and <scenario>-rtt.png in dir.
func (t *traces) write(dir, scenario, target string) error {
	rp := plot.New()
	rp.Title.Text = fmt.Sprintf("%s: handshakes/s over time (%s)", scenario, target)
	rp.X.Label.Text = "seconds"
	rp.Y.Label.Text = "handshakes/s"
	rp.Y.Tick.Marker = rateTicks{}
	cp := plot.New()
	cp.Title.Text = fmt.Sprintf("%s: handshake RTT distribution (%s)", scenario, target)
	cp.X.Label.Text = "handshake RTT (log scale)"
	cp.Y.Label.Text = "cumulative fraction"
	cp.X.Scale = plot.LogScale{}
	cp.X.Tick.Marker = latencyTicks{}
	top := 0.0
	for i, name := range t.names {
		c := palette[i%len(palette)]
		if len(t.rate[i]) > 0 {
			l, err := plotter.NewLine(t.rate[i])
			if err != nil {
				return err
			}
			l.Color = c
			rp.Add(l)
			rp.Legend.Add(name, l)
			for _, p := range t.rate[i] {
				top = max(top, p.Y)
			}
		}
		if len(t.rtt[i]) > 0 {
			l, err := plotter.NewLine(t.rtt[i])
			if err != nil {
				return err
			}
			l.Color = c
			cp.Add(l)
			cp.Legend.Add(name, l)
		}
	}
	// Room above the curves for the legend, which is drawn inside.
	rp.Y.Min, rp.Y.Max = 0, top*1.35
	rp.Legend.Top = true
	// A CDF's lower right is empty: every curve has reached 1 there.
	cp.Legend.Top, cp.Legend.Left = false, false
	cp.Legend.YOffs = vg.Points(30)
	cp.Y.Min, cp.Y.Max = 0, 1.02
	if err := rp.Save(9*vg.Inch, 4*vg.Inch, filepath.Join(dir, scenario+"-rate.png")); err != nil {
		return err
	}
	return cp.Save(9*vg.Inch, 4*vg.Inch, filepath.Join(dir, scenario+"-rtt.png"))
}

// ratios are xdpconnect's medians over each peer's, same scenario and
// unit (a peer is paired with the xdpconnect row whose tool name ends the
// same way when there are several: "xsk/ TX" with "asavie/xdp TX"; else
// with xdpconnect's best row, as --xdp-syn in synonly).
func ratios(rows []Row) (labels []string, values []float64) {
	for _, r := range rows {
		if strings.HasPrefix(r.Tool, "xdpconnect") || r.Median <= 0 {
			continue
		}
		var x *Row
		named := false
		for i := range rows {
			c := &rows[i]
			if c.Scenario != r.Scenario || c.Unit != r.Unit || !strings.HasPrefix(c.Tool, "xdpconnect") || c.Median <= 0 || named {
				continue
			}
			if named = lastWord(c.Tool) == lastWord(r.Tool); named || x == nil || c.Median > x.Median {
				x = c
			}
		}
		if x == nil {
			continue
		}
		labels = append(labels, fmt.Sprintf("%s: vs %s", r.Scenario, r.Tool))
		values = append(values, x.Median/r.Median)
	}
	return labels, values
}

func lastWord(s string) string { return s[strings.LastIndex(s, " ")+1:] }

// writeSummary saves summary.png: xdpconnect's ratio to each peer, one bar
// each, with parity marked.
func writeSummary(dir string, rows []Row) error {
	labels, values := ratios(rows)
	if len(values) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = "xdpconnect against each peer (ratio of medians, same run; > 1: xdpconnect faster)"
	p.Y.Label.Text = "ratio"
	bars, err := plotter.NewBarChart(plotter.Values(values), vg.Points(28))
	if err != nil {
		return err
	}
	bars.Color = palette[1]
	p.Add(bars)
	one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(values)) - 0.5, Y: 1}})
	if err != nil {
		return err
	}
	one.Color, one.Dashes = palette[0], []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(one)
	labelsP, err := plotter.NewLabels(plotter.XYLabels{XYs: barTops(values), Labels: ratioLabels(values)})
	if err != nil {
		return err
	}
	p.Add(labelsP)
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = -1, -1
	p.Y.Min = 0
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	p.Y.Max = top * 1.15
	return p.Save(10*vg.Inch, 6*vg.Inch, filepath.Join(dir, "summary.png"))
}

func barTops(values []float64) plotter.XYs {
	out := make(plotter.XYs, len(values))
	for i, v := range values {
		out[i] = plotter.XY{X: float64(i) - 0.2, Y: v}
	}
	return out
}

func ratioLabels(values []float64) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strconv.FormatFloat(v, 'f', 2, 64) + "x"
	}
	return out
}
