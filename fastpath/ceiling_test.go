package fastpath

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// ceilingResponse is the request rows' response: 1 KiB of body behind
// HTTP/1.1 headers, closed by the server (the reflector sends FIN with it).
var ceilingResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n" + strings.Repeat("x", 1024))

// ceilingRun is one row of the engine's ceiling: one worker over a
// reflector, count attempts as fast as it makes them, from source ports
// lo-hi.
type ceilingRun struct {
	name    string
	close   CloseMode
	request bool
	lo, hi  uint16
}

// defaultLo and defaultHi are the source ports a run gets by default on a
// host with Linux's default ip_local_port_range (32768-60999): those above
// it (internal/portres).
const defaultLo, defaultHi = 61000, 65535

var ceilingRuns = []ceilingRun{
	{"rst", CloseRST, false, defaultLo, defaultHi},
	// All the ports there are: a table 14 times the size, which no longer
	// fits in the core's cache.
	{"rst-64k-ports", CloseRST, false, 1024, 65535},
	{"fin", CloseFIN, false, defaultLo, defaultHi},
	{"hold", CloseHold, false, defaultLo, defaultHi},
	{"synonly", CloseSYNOnly, false, defaultLo, defaultHi},
	{"request", CloseRST, true, defaultLo, defaultHi},
}

// ceilingConfig is the plan of a ceiling row of count attempts: as many
// sources as hold mode needs to keep count connections open with half of
// each one's ports (a fuller range makes the port search, not the engine,
// the cost), and a TIME-WAIT of 1 ms so that fin mode's ports come back
// (the quarantine's cost stays, its wait does not).
func ceilingConfig(c ceilingRun, count uint64) Config {
	cfg := testConfig(80)
	cfg.PortLo, cfg.PortHi = c.lo, c.hi
	cfg.Sources = nil
	for i := range int(2*count/uint64(c.hi-c.lo+1)) + 1 {
		cfg.Sources = append(cfg.Sources, Source{Addr: netip.AddrFrom4([4]byte{198, 18, 1 + byte(i>>8), byte(i)})})
		if c.close != CloseHold {
			break
		}
	}
	cfg.Count, cfg.Close, cfg.Idle, cfg.TimeWait = count, c.close, 0, time.Millisecond
	if c.request {
		cfg.Request = &l7.Spec{Request: []byte("GET / HTTP/1.1\r\nHost: 198.18.0.2\r\n\r\n")}
	}
	return cfg
}

// peers are where a ceiling row's reflector runs: in the worker's
// Transmit, on its core, or in a goroutine of its own, on the other core,
// as a peer across a link would.
var peers = []struct {
	name string
	own  bool
}{{"peer-on-worker-core", false}, {"peer-on-own-core", true}}

// newCeilingPeer is a row's reflector, started on its own goroutine when
// own says so (and stopped when the test ends).
func newCeilingPeer(tb testing.TB, c ceilingRun, own bool) *linktest.Reflector {
	refl := linktest.NewReflector()
	if c.request {
		refl.SetResponse(ceilingResponse)
	}
	if own {
		refl.Start()
		tb.Cleanup(refl.Stop)
	}
	return refl
}

// runCeiling runs a ceiling row and returns its report; it fails unless
// every attempt ended as the row's mode says.
func runCeiling(tb testing.TB, c ceilingRun, cfg Config, refl *linktest.Reflector, timeout time.Duration) *report.Report {
	e, err := New(cfg, []Link{refl})
	if err != nil {
		tb.Fatal(err)
	}
	// A lost answer costs a retransmission a second later: a run that
	// loses them ends at its timeout instead of taking minutes.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := e.Run(ctx, time.Hour, nil)
	if err != nil || r.Established != cfg.Count || r.Attempted != cfg.Count {
		tb.Fatalf("%s: established %d of %d: %v", c.name, r.Established, cfg.Count, err)
	}
	if c.request && (r.Requests == nil || r.Requests.Completed != cfg.Count) {
		tb.Fatalf("%s: requests %+v of %d", c.name, r.Requests, cfg.Count)
	}
	return r
}

// The engine's own ceiling: one worker over a link whose peer costs no
// more than moving descriptors (linktest.Reflector), so what is measured
// is generation, the table, timers, parsing, building, rate control and
// statistics, plus, in the peer-on-worker-core rows, the peer's answers
// (one goroutine does both). handshakes/s is the engine's own measure
// over its generation window (the run's start and end phases left out);
// in the request row it is also responses/s.
func BenchmarkEngineCeiling(b *testing.B) {
	for _, c := range ceilingRuns {
		for _, p := range peers {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				cfg := ceilingConfig(c, uint64(max(b.N, 1000)))
				refl := newCeilingPeer(b, c, p.own)
				b.ReportAllocs()
				b.ResetTimer()
				r := runCeiling(b, c, cfg, refl, time.Hour)
				b.StopTimer()
				b.ReportMetric(r.CPS, "handshakes/s")
				b.ReportMetric(1e9/r.CPS, "ns/handshake")
				if c.request {
					b.ReportMetric(r.Requests.PerSecond, "responses/s")
				}
			})
		}
	}
}

// Over the reflector, wherever it runs, every row completes all its
// attempts, each ending as its mode says, without a frame lost: the
// benchmark measures handshakes, not losses or retransmissions.
func TestReflectorLink(t *testing.T) {
	for _, c := range ceilingRuns {
		for _, p := range peers {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				const n = 5000
				cfg := ceilingConfig(c, n)
				refl := newCeilingPeer(t, c, p.own)
				r := runCeiling(t, c, cfg, refl, 10*time.Second)
				if p.own {
					refl.Stop()
				}
				if r.Retransmits != 0 || refl.Answered != n {
					t.Fatalf("retransmits %d; reflector answered %d SYNs", r.Retransmits, refl.Answered)
				}
				// What the reflector and the engine must show: every row's
				// connections end as closed, each the way its mode says.
				var fins, responded, timeWait uint64
				switch {
				case c.request: // a response each, then an RST
					responded = n
				case c.close == CloseFIN: // FIN|ACK answers each FIN; the port waits in TIME-WAIT
					fins, timeWait = n, n
				}
				if refl.Finished != fins || refl.Responded != responded {
					t.Fatalf("reflector answered %d FINs and %d requests; want %d and %d", refl.Finished, refl.Responded, fins, responded)
				}
				if r.TimeWait != timeWait || r.Closed != n || r.Reset != 0 {
					t.Fatalf("closed %d, reset %d, time-wait %d", r.Closed, r.Reset, r.TimeWait)
				}
			})
		}
	}
}

// P1: a worker keeps a pair's port hash for its 10 s period, and only
// that long: across period boundaries it picks the ports PortPicker.Pick
// picks, hashing anew each time.
func TestPickKeepsHashForItsPeriod(t *testing.T) {
	cfg := testConfig(80)
	e, err := New(cfg, []Link{linktest.NewReflector()})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	ref := *w.picker
	set := tcp.NewPortSet(w.sets[0].Lo, w.sets[0].Hi)
	// From the start, and from a first pick in a later period (a pair
	// whose first attempt comes after 10 s).
	for _, times := range [][]uint32{{0, 5000, 9999, 10000, 10001, 19999, 20000, 20000, 25000, 40001, 40002}, {15000, 15001, 20000}} {
		w.portHash[0] = portHash{}
		for _, now := range times {
			w.nowMs = now
			got, _ := w.pick(0, 0, 0, 80)
			want, _ := ref.Pick(set, e.srcB[0], e.dstB[0], 80, int64(now))
			if got != want {
				t.Fatalf("at %d ms (first pick at %d ms): port %d; Pick's %d", now, times[0], got, want)
			}
		}
	}
}

// As fast as possible (no rate), generation waits while replies wait in
// the RX ring (the last receive took a full batch), as it does under a
// rate: a worker that made attempts regardless took its replies in
// smaller batches and made 0.73x the FIN-closed handshakes (0.78x the
// requests), and a ring that overflows loses replies. Hold mode, which
// must open all it can, does not wait.
func TestAsFastAsPossibleWaitsForTheRXRing(t *testing.T) {
	for _, c := range []struct {
		close CloseMode
		waits bool
	}{{CloseRST, true}, {CloseFIN, true}, {CloseHold, false}} {
		cfg := testConfig(80)
		cfg.Close = c.close
		e, err := New(cfg, []Link{linktest.NewReflector()})
		if err != nil {
			t.Fatal(err)
		}
		w := e.workers[0]
		w.rxBehind = true
		if n := w.generate(); (n == 0) != c.waits {
			t.Fatalf("%v: %d attempts made with a full batch waiting", c.close, n)
		}
		w.rxBehind = false
		if n := w.generate(); n == 0 {
			t.Fatalf("%v: no attempt made with the RX ring empty", c.close)
		}
	}
}
