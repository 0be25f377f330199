package metrics

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// The judgement's socket losses are the sum over the queues whose
// statistics were read (not the last one's, not the largest).
func TestXSKTotals(t *testing.T) {
	stats := []xsk.Stats{
		{RxDropped: 3, RxRingFull: 5, RxFillRingEmptyDescs: 7},
		{RxDropped: 1000, RxRingFull: 1000, RxFillRingEmptyDescs: 1000}, // unreadable: left out
		{RxDropped: 11, RxRingFull: 13, RxFillRingEmptyDescs: 17},
	}
	got := xskTotals(stats, []error{nil, errors.New("gone"), nil})
	if *got != (report.XSKStats{RxDropped: 14, RxRingFull: 18, RxFillRingEmpty: 24}) {
		t.Fatalf("totals %+v", *got)
	}
}

// Each engine bucket's count is in the native bucket that holds the
// engine bucket's upper bound v: base^(k-1) < v <= base^k, base =
// 2^(2^-3), found here by counting powers (not by the logarithm the code
// uses). The values span nine decades, so the spans have gaps.
func TestNativeBuckets(t *testing.T) {
	var h report.Histogram
	for _, ns := range []int64{1, 3, 900, 5_000, 5_001, 20_000, 1_000_000, 1_700_000, 30_000_000, 2_000_000_000, 2_000_000_000} {
		h.Record(ns)
	}
	// A run of neighbouring native buckets (about 9 % apart): one span.
	for ns := int64(100_000); ns < 200_000; ns += 5_000 {
		h.Record(ns)
	}
	var m dto.Metric
	if err := newRTTMetric(prometheus.NewDesc("x_seconds", "x", nil, nil), &h).Write(&m); err != nil {
		t.Fatal(err)
	}
	dh := m.GetHistogram()
	got := map[int]int64{}
	k, cur, d := 0, int64(0), 0
	for _, sp := range dh.PositiveSpan {
		k += int(sp.GetOffset())
		for range sp.GetLength() {
			cur += dh.PositiveDelta[d]
			d++
			got[k] = cur
			k++
		}
	}
	want := map[int]int64{}
	var zero uint64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		v := float64(report.BucketHigh(i)) / 1e9
		if v <= dh.GetZeroThreshold() {
			zero += c
			continue
		}
		k := -300
		for math.Pow(2, float64(k)/8) < v {
			k++
		}
		want[k] += int64(c)
	}
	if len(got) != len(want) || dh.GetZeroCount() != zero || len(dh.PositiveSpan) < 2 {
		t.Fatalf("native buckets %v (zero %d, %d spans), want %v (zero %d)", got, dh.GetZeroCount(), len(dh.PositiveSpan), want, zero)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("native bucket %d holds %d, want %d (all: %v, want %v)", k, got[k], n, got, want)
		}
	}
	// Canonical spans: a gap starts a new span, and only a gap (a span
	// after the first with offset 0 would be a split run).
	for i, sp := range dh.PositiveSpan {
		if i > 0 && sp.GetOffset() == 0 || sp.GetLength() == 0 {
			t.Fatalf("span %d of %v: offset %d length %d", i, dh.PositiveSpan, sp.GetOffset(), sp.GetLength())
		}
	}
	if dh.GetSampleCount() != h.N || dh.GetSampleSum() != float64(h.Sum)/1e9 {
		t.Fatalf("count %d sum %v, want %d and %v", dh.GetSampleCount(), dh.GetSampleSum(), h.N, float64(h.Sum)/1e9)
	}
	long := 0
	for _, sp := range dh.PositiveSpan {
		long = max(long, int(sp.GetLength()))
	}
	if long < 5 {
		t.Fatalf("spans %v: the neighbouring buckets from 100 µs to 200 µs are not one span", dh.PositiveSpan)
	}
}

// An empty histogram stays native (a schema and one empty span), so that
// Prometheus does not take it for a classic one before the first sample.
func TestNativeEmpty(t *testing.T) {
	var m dto.Metric
	if err := newRTTMetric(prometheus.NewDesc("x_seconds", "x", nil, nil), &report.Histogram{}).Write(&m); err != nil {
		t.Fatal(err)
	}
	dh := m.GetHistogram()
	if dh.Schema == nil || len(dh.PositiveSpan) != 1 || dh.PositiveSpan[0].GetLength() != 0 || len(dh.PositiveDelta) != 0 || dh.GetSampleCount() != 0 {
		t.Fatalf("empty histogram: schema %v spans %v deltas %v", dh.Schema, dh.PositiveSpan, dh.PositiveDelta)
	}
}

// The achieved rate is the attempts between two scrapes over the time
// between them; a scrape within 50 ms of the last repeats its rate.
func TestAchievedRate(t *testing.T) {
	var c Collector
	if r := c.achieved(100); r != 0 {
		t.Fatalf("first scrape: %v", r)
	}
	start := time.Now()
	if r := c.achieved(130); r != 0 {
		t.Fatalf("a scrape right after the first: %v, want the last rate (0)", r)
	}
	time.Sleep(60 * time.Millisecond)
	r := c.achieved(160)
	el := time.Since(start).Seconds()
	// 60 attempts since the first scrape, over at least 60 ms and at most
	// the time this test took.
	if r > 60/0.06 || r < 60/(el+0.001) {
		t.Fatalf("rate %v, want 60 attempts over 60 ms to %.0f ms", r, el*1000)
	}
	if r2 := c.achieved(1000); r2 != r {
		t.Fatalf("a scrape right after: %v, want the last rate %v", r2, r)
	}
}

// Serve refuses an address it cannot listen on, saying which.
func TestServeBadAddress(t *testing.T) {
	if _, _, err := Serve("198.18.0.1:99999", Sources{}); err == nil || !strings.Contains(err.Error(), "198.18.0.1:99999") {
		t.Fatalf("err %v", err)
	}
}
