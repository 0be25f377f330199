package report

import "math/bits"

// Histogram is a fixed-bucket log-linear histogram of durations in
// nanoseconds (HdrHistogram's layout with 16 sub-buckets per power of two:
// at most 6.25 % relative error), from 1 ns to 2^63 ns. Recording is an
// array increment; histograms merge by adding counts.
type Histogram struct {
	Counts [NumBuckets]uint64
	N      uint64
	Sum    uint64 // ns
	Max    int64
}

const (
	subBits    = 4
	subBuckets = 1 << subBits
	// NumBuckets is the number of a Histogram's buckets.
	NumBuckets = (64 - subBits + 1) * subBuckets
)

// BucketOf is the bucket a value (ns) falls in.
func BucketOf(v int64) int {
	if v < subBuckets {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits // >= 1
	return e*subBuckets + int(uint64(v)>>(e-1)) - subBuckets
}

// BucketHigh is the largest value (ns) that falls in histogram bucket i.
func BucketHigh(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	e := i / subBuckets
	m := int64(i%subBuckets + subBuckets)
	return (m+1)<<(e-1) - 1
}

// Record adds one value.
func (h *Histogram) Record(ns int64) {
	h.Counts[BucketOf(ns)]++
	h.N++
	h.Sum += uint64(max(ns, 0))
	if ns > h.Max {
		h.Max = ns
	}
}

// Merge adds o into h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.N += o.N
	h.Sum += o.Sum
	h.Max = max(h.Max, o.Max)
}

// Quantile returns the upper bound of the bucket holding quantile q (0..1),
// capped at Max; 0 when empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.N == 0 {
		return 0
	}
	rank := uint64(q*float64(h.N) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			return min(BucketHigh(i), h.Max)
		}
	}
	return h.Max
}

// CountBelow is the number of recorded values <= ns (exact at bucket
// boundaries, for Prometheus buckets).
func (h *Histogram) CountBelow(ns int64) uint64 {
	var n uint64
	for i, c := range h.Counts {
		if BucketHigh(i) > ns {
			break
		}
		n += c
	}
	return n
}
