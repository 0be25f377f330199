package testutil

import (
	"context"
	"fmt"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/report"
)

// Rendered is an HTML report as a real browser drew it: the DOM after the
// page's script ran, read back into its charts and tables.
type Rendered struct {
	// DOM is the serialised document.
	DOM string
	// Charts by their data-chart id; Tables by their data-table id, each a
	// list of rows of cell texts (header cells included).
	Charts map[string]RenderedChart
	Tables map[string][][]string
	// SeriesPixels counts the screenshot's pixels in the first series'
	// colour: lines really drawn, not only present in the DOM.
	SeriesPixels int
}

// RenderedChart is one chart: its axis top and each series' points.
type RenderedChart struct {
	Top    float64
	Series map[string][][2]float64
}

// Values reads the series' values back from its points through the chart
// geometry (report.Chart*): what a reader sees on the axis.
func (c RenderedChart) Values(series string) []float64 {
	var out []float64
	for _, p := range c.Series[series] {
		out = append(out, (report.ChartBottom-p[1])/(report.ChartBottom-report.ChartTop)*c.Top)
	}
	return out
}

// Browser is a headless browser's command: Debian's chromium-headless-shell
// or chromium. Without one the test is skipped with the package to install
// (make deps installs it); under CI it fails.
func Browser(tb testing.TB) []string {
	tb.Helper()
	if p, err := exec.LookPath("chromium-headless-shell"); err == nil {
		return []string{p}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return []string{p, "--headless"}
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("no headless browser: make deps installs chromium-headless-shell")
	}
	tb.Skip("needs a headless browser (apt-get install chromium-headless-shell, or make deps)")
	return nil
}

// RenderHTML opens the page at path in a headless browser, as a user's
// browser would open the file (offline: no network is reachable from the
// page), and reads back what it drew.
func RenderHTML(tb testing.TB, path string) *Rendered {
	tb.Helper()
	b := Browser(tb)
	abs, err := filepath.Abs(path)
	if err != nil {
		tb.Fatal(err)
	}
	url := "file://" + abs
	dir := tb.TempDir()
	// Root needs --no-sandbox; the profile lives in the test's directory.
	common := []string{"--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(dir, "profile"),
		"--window-size=1400,2400", "--virtual-time-budget=3000"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) []byte {
		cmd := exec.CommandContext(ctx, b[0], append(append(append([]string{}, b[1:]...), common...), args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			tb.Fatalf("%s %v: %v\n%s", b[0], args, err, stderr.String())
		}
		return out
	}
	r := &Rendered{DOM: string(run("--dump-dom", url)), Charts: map[string]RenderedChart{}, Tables: map[string][][]string{}}
	if !strings.Contains(r.DOM, `data-rendered="yes"`) {
		tb.Fatalf("the page's script did not finish in the browser:\n%.2000s", r.DOM)
	}
	shot := filepath.Join(dir, "page.png")
	run("--screenshot="+shot, url)
	n, err := colourPixels(shot, 0x1f, 0x5f, 0xbf)
	if err != nil {
		tb.Fatal(err)
	}
	r.SeriesPixels = n
	if err := r.parse(); err != nil {
		tb.Fatal(err)
	}
	return r
}

var (
	svgRE      = regexp.MustCompile(`(?s)<svg [^>]*data-chart="([^"]+)"[^>]*data-top="([^"]+)"[^>]*>(.*?)</svg>`)
	polyRE     = regexp.MustCompile(`<polyline points="([^"]*)"[^>]*data-series="([^"]+)"`)
	tableRE    = regexp.MustCompile(`(?s)<table data-table="([^"]+)">(.*?)</table>`)
	rowRE      = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	cellRE     = regexp.MustCompile(`(?s)<t[dh][^>]*>(.*?)</t[dh]>`)
	rowClassRE = regexp.MustCompile(`<tr class="([^"]+)"`)
)

func (r *Rendered) parse() error {
	for _, m := range svgRE.FindAllStringSubmatch(r.DOM, -1) {
		top, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return fmt.Errorf("chart %s: axis top %q: %v", m[1], m[2], err)
		}
		c := RenderedChart{Top: top, Series: map[string][][2]float64{}}
		for _, p := range polyRE.FindAllStringSubmatch(m[3], -1) {
			var pts [][2]float64
			for _, xy := range strings.Fields(p[1]) {
				xs, ys, _ := strings.Cut(xy, ",")
				x, err1 := strconv.ParseFloat(xs, 64)
				y, err2 := strconv.ParseFloat(ys, 64)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("chart %s series %s: point %q", m[1], p[2], xy)
				}
				pts = append(pts, [2]float64{x, y})
			}
			c.Series[html.UnescapeString(p[2])] = pts
		}
		r.Charts[m[1]] = c
	}
	for _, m := range tableRE.FindAllStringSubmatch(r.DOM, -1) {
		var rows [][]string
		for _, row := range rowRE.FindAllStringSubmatch(m[2], -1) {
			var cells []string
			for _, c := range cellRE.FindAllStringSubmatch(row[1], -1) {
				cells = append(cells, html.UnescapeString(c[1]))
			}
			rows = append(rows, cells)
		}
		r.Tables[m[1]] = rows
	}
	return nil
}

// RowClasses are the classes of a table's rows ("pass", "fail"), in order;
// rows without one are left out.
func (r *Rendered) RowClasses(table string) []string {
	m := tableRE.FindAllStringSubmatch(r.DOM, -1)
	for _, t := range m {
		if t[1] == table {
			var out []string
			for _, c := range rowClassRE.FindAllStringSubmatch(t[2], -1) {
				out = append(out, c[1])
			}
			return out
		}
	}
	return nil
}

// colourPixels counts the PNG's pixels within a small distance of r, g, b.
func colourPixels(path string, r, g, b uint8) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return 0, fmt.Errorf("screenshot %s: %v", path, err)
	}
	near := func(a uint32, want uint8) bool { d := int(a>>8) - int(want); return d > -24 && d < 24 }
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr, r) && near(pg, g) && near(pb, b) {
				n++
			}
		}
	}
	return n, nil
}
