package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"github.com/xdpconnect/xdpconnect/fastpath"
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

func (t *traces) addXDPConnect(name string, r *fastpath.Report) {
	var rate plotter.XYs
	for i := 1; i < len(r.Series); i++ {
		a, b := r.Series[i-1], r.Series[i]
		if dt := b.Seconds - a.Seconds; dt > 0 {
			rate = append(rate, plotter.XY{X: b.Seconds, Y: float64(b.Established-a.Established) / dt})
		}
	}
	var total uint64
	for _, bk := range r.RTTHist {
		total += bk.Count
	}
	var cdf plotter.XYs
	var cum uint64
	for _, bk := range r.RTTHist {
		cum += bk.Count
		cdf = append(cdf, plotter.XY{X: bk.UpperSeconds, Y: float64(cum) / float64(max(total, 1))})
	}
	t.add(name, rate, cdf)
}

func (t *traces) addBaseline(name string, r *BaselineResult) {
	var rate plotter.XYs
	for i, n := range r.Series {
		rate = append(rate, plotter.XY{X: float64(i+1) / 10, Y: float64(n) * 10})
	}
	var total uint64
	for _, n := range r.RTT {
		total += n
	}
	var cdf plotter.XYs
	var cum uint64
	for i, n := range r.RTT {
		if n == 0 {
			continue
		}
		cum += n
		cdf = append(cdf, plotter.XY{X: math.Ldexp(1, i) / 1e6, Y: float64(cum) / float64(max(total, 1))})
	}
	t.add(name, rate, cdf)
}

func (t *traces) add(name string, rate, cdf plotter.XYs) {
	t.names = append(t.names, name)
	t.rate = append(t.rate, rate)
	t.rtt = append(t.rtt, cdf)
}

// write saves <scenario>-rate.png and <scenario>-rtt.png in dir.
func (t *traces) write(dir, scenario, target string) error {
	rp := plot.New()
	rp.Title.Text = fmt.Sprintf("%s: handshakes/s over time (%s)", scenario, target)
	rp.X.Label.Text = "seconds"
	rp.Y.Label.Text = "handshakes/s"
	cp := plot.New()
	cp.Title.Text = fmt.Sprintf("%s: handshake RTT distribution (%s)", scenario, target)
	cp.X.Label.Text = "RTT (s, log scale)"
	cp.Y.Label.Text = "cumulative fraction"
	cp.X.Scale = plot.LogScale{}
	cp.X.Tick.Marker = plot.LogTicks{Prec: -1}
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
	rp.Legend.Top = true
	cp.Legend.Left, cp.Legend.Top = true, true
	if err := rp.Save(9*vg.Inch, 4*vg.Inch, filepath.Join(dir, scenario+"-rate.png")); err != nil {
		return err
	}
	return cp.Save(9*vg.Inch, 4*vg.Inch, filepath.Join(dir, scenario+"-rtt.png"))
}
