package report

import "testing"

// The histogram keeps HdrHistogram's promise: every value is counted in a
// bucket whose bounds are within 6.25 % of it; quantiles, CountBelow and
// Merge agree with an exact computation over the same values.
func TestHistogram(t *testing.T) {
	var a, b, all Histogram
	for v := int64(1); v <= 20000; v++ {
		ns := v * 997 // 1 µs .. 20 ms
		if v%3 == 0 {
			a.Record(ns)
		} else {
			b.Record(ns)
		}
		all.Record(ns)
	}
	// In both orders: b holds the largest value.
	for _, hs := range [][2]*Histogram{{&a, &b}, {&b, &a}} {
		var m Histogram
		m.Merge(hs[0])
		m.Merge(hs[1])
		if m != all {
			t.Fatalf("merge: N %d sum %d max %d, want %d %d %d", m.N, m.Sum, m.Max, all.N, all.Sum, all.Max)
		}
	}
	if all.N != 20000 || all.Max != 20000*997 || all.Sum != 997*20000*20001/2 {
		t.Fatalf("N %d max %d sum %d", all.N, all.Max, all.Sum)
	}
	for _, q := range []float64{0.001, 0.5, 0.9, 0.99} {
		exact := float64(int64(q*20000+0.5) * 997)
		got := float64(all.Quantile(q))
		if got < exact || got > exact*1.0625 {
			t.Errorf("quantile %v: %v, exact %v", q, got, exact)
		}
	}
	if all.Quantile(1) != all.Max {
		t.Errorf("quantile 1: %d, max %d", all.Quantile(1), all.Max)
	}
	for _, ns := range []int64{997, 10 * 997, 5000 * 997, 20000 * 997} {
		n := all.CountBelow(BucketHigh(BucketOf(ns)))
		exact := uint64(BucketHigh(BucketOf(ns)) / 997)
		if n != min(exact, 20000) {
			t.Errorf("CountBelow(%d) = %d, want %d", BucketHigh(BucketOf(ns)), n, exact)
		}
	}
	for v := int64(0); v < 1<<20; v = v*5/4 + 1 {
		i := BucketOf(v)
		if BucketHigh(i) < v || (i > 0 && BucketHigh(i-1) >= v) {
			t.Fatalf("value %d in bucket %d of [%d, %d]", v, i, BucketHigh(i-1)+1, BucketHigh(i))
		}
		if v >= 16 && float64(BucketHigh(i)-BucketHigh(i-1)) > float64(v)*0.0625 {
			t.Fatalf("bucket %d of %d is wider than 6.25 %%", i, v)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.CountBelow(1e9) != 0 {
		t.Fatal("empty histogram")
	}
}

// Sub is the samples of a cumulative histogram since an earlier copy:
// counts, number and sum exact, the maximum the highest bucket's bound
// (capped at the later maximum).
func TestHistogramSub(t *testing.T) {
	var before, after Histogram
	for _, v := range []int64{100, 2000, 2000} {
		before.Record(v)
		after.Record(v)
	}
	for _, v := range []int64{50, 3000, 7_000_000} {
		after.Record(v)
	}
	var d Histogram
	d.Sub(&after, &before)
	var want Histogram
	for _, v := range []int64{50, 3000, 7_000_000} {
		want.Record(v)
	}
	if d.Counts != want.Counts || d.N != 3 || d.Sum != 50+3000+7_000_000 {
		t.Fatalf("difference: N %d sum %d", d.N, d.Sum)
	}
	if d.Max != min(BucketHigh(BucketOf(7_000_000)), after.Max) || d.Max != 7_000_000 {
		t.Fatalf("max %d, want the later maximum 7000000 (its bucket's bound is above it)", d.Max)
	}
	// Nothing new: empty, maximum 0.
	d.Sub(&after, &after)
	if d.N != 0 || d.Max != 0 || d.Sum != 0 {
		t.Fatalf("no samples since: %+v", d.N)
	}
}
