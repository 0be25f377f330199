package fastpath

import (
	"context"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
)

// The engine's own ceiling: one worker over a link whose peer costs no
// more than moving descriptors (linktest.Reflector), so what is measured
// is generation, the table, timers, parsing, building, rate control and
// statistics, plus the reflector's parse of each SYN and build of its
// SYN-ACK on the same core. Reported as handshakes/s per core and ns per
// handshake, with allocations per handshake.
func BenchmarkEngineCeiling(b *testing.B) {
	for _, c := range []struct {
		name string
		mode CloseMode
	}{{"rst", CloseRST}, {"synonly", CloseSYNOnly}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig(80)
			cfg.Count, cfg.Close, cfg.Idle = uint64(max(b.N, 1000)), c.mode, 0
			refl := linktest.NewReflector()
			e, err := New(cfg, []Link{refl})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			r, err := e.Run(context.Background(), time.Hour, nil)
			el := time.Since(start)
			b.StopTimer()
			if err != nil || r.Established != cfg.Count {
				b.Fatalf("established %d of %d: %v", r.Established, cfg.Count, err)
			}
			b.ReportMetric(float64(cfg.Count)/el.Seconds(), "handshakes/s")
			b.ReportMetric(float64(el.Nanoseconds())/float64(cfg.Count), "ns/handshake")
		})
	}
}

// The reflector answers every SYN and the engine completes every
// handshake over it, without a frame lost: the benchmark measures
// handshakes, not losses.
func TestReflectorLink(t *testing.T) {
	cfg := testConfig(80)
	cfg.Count = 5000
	refl := linktest.NewReflector()
	r := runEngine(t, cfg, refl)
	if r.Established != 5000 || refl.Answered != 5000 || refl.Taken != 2*5000 || r.Closed != 5000 { // an ACK and an RST each
		t.Fatalf("established %d, closed %d; reflector answered %d, took %d", r.Established, r.Closed, refl.Answered, refl.Taken)
	}
}
