package metrics

import (
	"errors"
	"math"
	"testing"

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
	if dh.GetSampleCount() != 11 || dh.GetSampleSum() != float64(h.Sum)/1e9 {
		t.Fatalf("count %d sum %v, want 11 and %v", dh.GetSampleCount(), dh.GetSampleSum(), float64(h.Sum)/1e9)
	}
}
