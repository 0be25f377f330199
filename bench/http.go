package bench

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"

	"github.com/xdpconnect/xdpconnect/bench/reflector"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/report"
)

// httpConns is how many requests every tool keeps in flight: xdpconnect
// unbounded overruns its own RX ring against the XDP responder (drops and
// RTOs, not a rate worth showing).
const httpConns = 256

// httpScenario is request mode against kernel clients that open a
// connection per request: the same nginx (one worker on the other core),
// and the XDP responder (SYN-ACKs and a canned response from XDP, no
// server in the way: the tools' own ceiling).
func (o *Options) httpScenario() ([]Row, error) {
	var rows []Row
	for _, responder := range []bool{false, true} {
		r, err := o.httpCompare(responder)
		if err != nil {
			return rows, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func (o *Options) httpCompare(responder bool) ([]Row, error) {
	b, err := newBed(responder, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	sc, target := "http (nginx)", "nginx, 1 worker on CPU 1"
	if responder {
		sc, target = "http (xdp responder)", "xdp-responder"
		if err := b.refl.SetMode(reflector.HTTP, b.dst.Port()); err != nil {
			return nil, err
		}
	} else {
		_, stop, err := b.startNginx()
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	host := b.dst.Addr().String()
	if b.dst.Port() != 80 {
		host = b.dst.String()
	}
	req, err := l7.HTTPRequest("GET", "/", host, false)
	if err != nil {
		return nil, err
	}
	xargs := []string{"--concurrency", strconv.Itoa(httpConns), "--duration", o.Duration.String(), "--http", "GET /", "--host", host}
	x := Row{Scenario: sc, Tool: "xdpconnect", Target: target, Workers: 1, Unit: "requests/s", Note: fmt.Sprintf("--concurrency %d", httpConns)}
	g := Row{Scenario: sc, Tool: fmt.Sprintf("go net/http (%d goroutines, keep-alive off)", httpConns), Target: target, Workers: 1, Unit: "requests/s"}
	c := Row{Scenario: sc, Tool: fmt.Sprintf("c-epoll (%d in flight, a request each)", httpConns), Target: target, Workers: 1, Unit: "requests/s"}
	// The responder's veth takes frames sent by XDP (it runs XDP itself):
	// --xdp-tx too.
	xl := Row{Scenario: sc, Tool: "xdpconnect --xdp-tx", Target: target, Workers: 1, Unit: "requests/s", Note: fmt.Sprintf("--concurrency %d, every frame from XDP", httpConns)}
	rows := []*Row{&x, &g, &c}
	withLive := responder && liveFrames(o)
	if withLive {
		rows = []*Row{&x, &xl, &g, &c}
	}
	// Each run's p50 and p99, by row.
	p50, p99 := map[*Row][]float64{}, map[*Row][]float64{}
	for i := 0; i < o.Runs; i++ {
		for _, t := range []*Row{&x, &xl} {
			if t == &xl && !withLive {
				continue
			}
			args := xargs
			if t == &xl {
				args = append(slices.Clone(xargs), "--xdp-tx")
			}
			r, err := o.runXDPConnect(b, 1, args...)
			if err != nil {
				return nil, err
			}
			q := r.Requests
			if q == nil || q.Completed == 0 {
				return nil, fmt.Errorf("xdpconnect: no complete response (report %+v)", r)
			}
			t.Runs = append(t.Runs, q.PerSecond)
			p50[t], p99[t] = append(p50[t], q.TTLB.P50), append(p99[t], q.TTLB.P99)
			o.logf("  %s run %d: %.0f requests/s (failed %v, ttlb p50 %.0fus)", t.Tool, i+1, q.PerSecond, q.Failed, q.TTLB.P50*1e6)
		}
		for _, t := range []*Row{&g, &c} {
			tool := "go-dialer"
			if t == &c {
				tool = "c-epoll"
			}
			res, err := o.runBaseline(b, tool, httpConns, string(req))
			if err != nil {
				return nil, err
			}
			v := float64(res.Handshakes) / res.Seconds
			t.Runs = append(t.Runs, v)
			h := res.histogram()
			p50[t], p99[t] = append(p50[t], float64(h.Quantile(0.5))/1e9), append(p99[t], float64(h.Quantile(0.99))/1e9)
			o.logf("  %s run %d: %.0f requests/s (%d errors)", tool, i+1, v, res.Errors)
		}
	}
	out := make([]Row, len(rows))
	for i, r := range rows {
		r.RTTp50, r.RTTp99 = median(p50[r]), median(p99[r])
		summarize(r)
		out[i] = *r
	}
	return out, nil
}

// startNginx runs nginx (one worker, on CPU 1) on the server's port 80,
// which becomes the bed's target; stop ends it and removes its files.
func (b *bed) startNginx() (ng *lab.Nginx, stop func(), err error) {
	dir, err := os.MkdirTemp("", "xdpc-nginx")
	if err != nil {
		return nil, nil, err
	}
	b.dst = netip.AddrPortFrom(b.l.ServerAddr, 80)
	ng, err = lab.StartNginx(b.l.ServerNS, b.dst, dir, "1")
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return ng, func() { ng.Stop(); os.RemoveAll(dir) }, nil
}

// histogram is the baseline's time histogram (its maximum the top
// bucket's bound).
func (r *BaselineResult) histogram() *report.Histogram {
	var h report.Histogram
	for _, bc := range r.RTT {
		h.Counts[bc[0]] += bc[1]
		h.N += bc[1]
		h.Max = max(h.Max, report.BucketHigh(int(bc[0])))
	}
	return &h
}
