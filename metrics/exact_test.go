package metrics_test

import (
	"math"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/metrics"
	"github.com/xdpconnect/xdpconnect/tcp"

	dto "github.com/prometheus/client_model/go"
)

// A run of IPv4 and IPv6 attempts (in each family one target that answers
// and others that refuse, 300 attempts each, so that no two of the counts
// below are equal): every series read back exactly.
// The ipv6_* series count the IPv6 attempts alone (a family left out, or
// both counted, differs), and the RTT histogram's sum is the engine's
// samples in seconds (milliseconds or nanoseconds differ), its count and
// its last classic bucket and native buckets hold every sample.
func TestSeriesExactBothFamilies(t *testing.T) {
	srv := linktest.NewServer()
	cfg := fastpath.Config{
		Targets: targets("198.18.0.2:80", "198.18.0.2:81", "198.18.0.3:81", "[2001:2::2]:80", "[2001:2::2]:81", "[2001:2::3]:81", "[2001:2::4]:81"),
		Sources: []fastpath.Source{{Addr: netip.MustParseAddr("198.18.0.1")}, {Addr: netip.MustParseAddr("2001:2::1")}},
		PortLo:  10000, PortHi: 19999, Count: 2100, Key: [16]byte{1},
		Params: tcp.DefaultParams(1500, false), Params6: tcp.DefaultParams(1500, true), Idle: time.Millisecond,
	}
	e, r, reg := runOver(t, cfg, srv)
	if r.Established != 600 || r.Failed["ECONNREFUSED"] != 1500 {
		t.Fatalf("run: established %d, failed %v", r.Established, r.Failed)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	counter := func(name string) float64 {
		mf := byName[name]
		if mf == nil || len(mf.Metric) != 1 {
			t.Fatalf("series %s missing", name)
		}
		return mf.Metric[0].GetCounter().GetValue()
	}
	for name, want := range map[string]float64{
		"xdpconnect_attempts_total": 2100, "xdpconnect_established_total": 600,
		"xdpconnect_ipv6_attempts_total": 1200, "xdpconnect_ipv6_established_total": 300, "xdpconnect_ipv6_failed_total": 900,
	} {
		if got := counter(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// One series per drop reason (none for reason 0, which is no drop).
	if mf := byName["xdpconnect_rx_parse_dropped_total"]; mf == nil || len(mf.Metric) != int(tcp.NumDropReasons)-1 {
		t.Fatalf("rx_parse_dropped_total: %v, want %d reasons", mf, tcp.NumDropReasons-1)
	} else {
		for i, m := range mf.Metric {
			// Sorted by label; each a reason from 1 up.
			if v := m.Label[0].GetValue(); v == tcp.DropNone.String() || v == tcp.NumDropReasons.String() || i > 0 && v <= mf.Metric[i-1].Label[0].GetValue() {
				t.Fatalf("rx_parse_dropped_total: reason %q (none, unknown or repeated)", v)
			}
		}
	}
	// The per-worker series, each from its own counter and in its unit.
	snap := e.Snapshot()
	for name, get := range map[string]func(w []uint64) float64{
		"xdpconnect_rx_frames_total":           func(w []uint64) float64 { return float64(w[fastpath.CntRxFrames]) },
		"xdpconnect_tx_frames_total":           func(w []uint64) float64 { return float64(w[fastpath.CntTxFrames]) },
		"xdpconnect_tx_dropped_total":          func(w []uint64) float64 { return float64(w[fastpath.CntTxDropped]) },
		"xdpconnect_worker_idle_seconds_total": func(w []uint64) float64 { return float64(w[fastpath.CntIdleNs]) / 1e9 },
	} {
		mf := byName[name]
		if mf == nil || len(mf.Metric) != len(snap.PerWorker) {
			t.Fatalf("series %s: %v, want one per worker (%d)", name, mf, len(snap.PerWorker))
		}
		for _, m := range mf.Metric {
			q, _ := strconv.Atoi(m.Label[0].GetValue())
			if got, want := m.GetCounter().GetValue(), get(snap.PerWorker[q][:]); got != want {
				t.Errorf("%s{queue=%d} = %v, want %v", name, q, got, want)
			}
		}
	}
	if snap.PerWorker[0][fastpath.CntIdleNs] == 0 || snap.PerWorker[0][fastpath.CntTxFrames] == 0 {
		t.Fatalf("worker 0 idle %d ns, sent %d frames: nothing to tell units or counters apart", snap.PerWorker[0][fastpath.CntIdleNs], snap.PerWorker[0][fastpath.CntTxFrames])
	}
	h := byName["xdpconnect_handshake_rtt_seconds"].Metric[0].GetHistogram()
	eng := e.Snapshot().RTT
	wantSum := float64(eng.Sum) / 1e9
	if h.GetSampleCount() != 600 || eng.N != 600 || math.Abs(h.GetSampleSum()-wantSum) > 1e-12*wantSum || wantSum <= 0 {
		t.Fatalf("RTT histogram: %d samples, sum %v s; the engine's %d samples, %v s", h.GetSampleCount(), h.GetSampleSum(), eng.N, wantSum)
	}
	if b := h.Bucket[len(h.Bucket)-1]; b.GetCumulativeCount() != 600 || b.GetUpperBound() != metrics.RTTBuckets[len(metrics.RTTBuckets)-1] {
		t.Fatalf("last classic bucket le=%v holds %d of 600", b.GetUpperBound(), b.GetCumulativeCount())
	}
	var native int64
	var cur int64
	for _, d := range h.PositiveDelta {
		cur += d
		native += cur
	}
	if uint64(native)+h.GetZeroCount() != 600 {
		t.Fatalf("native buckets hold %d (+%d zero) of 600 samples", native, h.GetZeroCount())
	}
}

func targets(addrs ...string) []fastpath.Target {
	out := make([]fastpath.Target, len(addrs))
	for i, a := range addrs {
		out[i].Addr = netip.MustParseAddrPort(a)
	}
	return out
}
