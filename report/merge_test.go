package report

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Merged quantiles equal those of one histogram of all the samples; the
// merge refuses other runs and repeated shards, and names missing ones.
func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// The request times have three distributions of their own, so that
	// one taken for another, or one not merged, shows.
	var all, allFB, allLB, allSched Histogram
	parts := make([]Histogram, 3)
	var fb, lb, sched [3]Histogram
	for i := 0; i < 30000; i++ {
		v := int64(rng.ExpFloat64()*50e3) + 2000 // ns, a long tail
		all.Record(v)
		parts[i%3].Record(v)
		allFB.Record(v * 2)
		fb[i%3].Record(v * 2)
		allLB.Record(v * 3)
		lb[i%3].Record(v * 3)
		// The schedule's tail on the last shard: its maximum is the
		// merged one whatever the order.
		allSched.Record(v*4 + int64(i%3)*1e6)
		sched[i%3].Record(v*4 + int64(i%3)*1e6)
	}
	var rs []*Report
	for i := range parts {
		r := &Report{Format: FormatVersion, Attempted: 10000, Established: 9990, Failed: map[string]uint64{"ETIMEDOUT": 10}, CPS: 1000, RunID: "abc",
			Shard: &ShardInfo{Index: i, Count: 3, PlanCount: 30000}}
		r.SetRTT(&parts[i])
		r.Requests = &RequestReport{Requests: 10000, Completed: 10000,
			TTFB: QuantilesOf(&fb[i]), TTFBHist: fb[i].Buckets(),
			TTLB: QuantilesOf(&lb[i]), TTLBHist: lb[i].Buckets(),
			TTLBSched: QuantilesOf(&sched[i]), TTLBSchedHist: sched[i].Buckets()}
		// Two targets: one on every shard (with all the handshakes),
		// one on the first shard only.
		a := TargetReport{Target: "198.18.0.2:80", Attempted: 9000, Established: 9990, Failed: 10}
		a.SetRTT(&parts[i])
		r.Targets = append(r.Targets, a)
		if i == 0 {
			r.Targets = append(r.Targets, TargetReport{Target: "198.18.0.3:80", Attempted: 1000})
		}
		rs = append(rs, r)
	}
	m, err := Merge(rs)
	if err != nil {
		t.Fatal(err)
	}
	var want Report
	want.SetRTT(&all)
	if m.RTT != want.RTT || m.Attempted != 30000 || m.Established != 29970 || m.Failed["ETIMEDOUT"] != 30 || m.CPS != 3000 {
		t.Fatalf("merged %+v RTT %+v, want RTT %+v", m, m.RTT, want.RTT)
	}
	if q := m.Requests; q == nil || q.Completed != 30000 || q.TTFB != QuantilesOf(&allFB) || q.TTLB != QuantilesOf(&allLB) || q.TTLBSched != QuantilesOf(&allSched) {
		t.Fatalf("merged requests %+v, want TTFB %+v TTLB %+v TTLBSched %+v", m.Requests, QuantilesOf(&allFB), QuantilesOf(&allLB), QuantilesOf(&allSched))
	}
	if len(m.Targets) != 2 || m.Targets[0].Attempted != 27000 || m.Targets[0].Established != 29970 || m.Targets[0].Failed != 30 ||
		m.Targets[0].RTT != want.RTT || m.Targets[1].Attempted != 1000 || m.Targets[1].RTT.P50 != 0 {
		t.Fatalf("merged targets %+v", m.Targets)
	}
	if _, err := Merge(rs[:2]); err == nil || !strings.Contains(err.Error(), "shard(s) 2/3 of run abc missing") {
		t.Fatalf("missing shard: %v", err)
	}
	if _, err := Merge([]*Report{rs[0], rs[0], rs[2]}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("repeated shard: %v", err)
	}
	other := *rs[1]
	other.RunID = "xyz"
	if _, err := Merge([]*Report{rs[0], &other, rs[2]}); err == nil || !strings.Contains(err.Error(), "of run xyz") {
		t.Fatalf("other run: %v", err)
	}
}

// Two shards of a report with every part merge into the golden report:
// sums, maxima whichever shard has them, keyed lists (the histograms'
// buckets in order of their bounds whichever shard brings them),
// quantiles recomputed, the shard set to the whole. The books balance at
// their edge (closed + reset = established).
func TestMergeGolden(t *testing.T) {
	shard := func(i int, rtt []int64, dur float64, rss uint64) *Report {
		r := fullReport()
		r.Format, r.RunID, r.Shard = FormatVersion, "golden", &ShardInfo{Index: i, Count: 2, PlanCount: 20014}
		r.DurationSeconds, r.MaxRSSBytes, r.ElapsedSeconds = dur, rss, dur+1
		var h Histogram
		for _, v := range rtt {
			h.Record(v)
		}
		r.RTTHist = h.Buckets()
		r.RTT = QuantilesOf(&h)
		r.Timeline = []Second{{T: i, Attempted: 10, Established: 9, InFlight: 1}, {T: 5, Attempted: uint64(i + 1)}}
		r.Sources = []SourceReport{{Source: "198.18.0.1", Attempted: 7, Established: 6, Failed: 1}, {Source: fmt.Sprintf("198.18.0.%d", 10+i), Attempted: 3}}
		r.Requests.Failed = nil // no failures on either: none merged
		// Response times in buckets of their own per shard: the merged
		// list is in order of the bounds.
		var fb Histogram
		for _, v := range rtt {
			fb.Record(2 * v)
		}
		r.Requests.TTFBHist, r.Requests.TTFB = fb.Buckets(), QuantilesOf(&fb)
		r.Requests.Completed += 90
		return r
	}
	a := shard(0, []int64{900_000, 1_000_000, 3_000_000}, 3.5, 9_000_000)
	b := shard(1, []int64{10_000, 20_000}, 2.5, 7_000_000)
	m, err := Merge([]*Report{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := m.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "merge.golden.json", buf.String())
}

// A merge refuses, naming the report by its place (from 1) and what is
// wrong: no run ID, another run, another shard count, bad shard numbers.
func TestMergeRefusals(t *testing.T) {
	ok := func(i, n int) *Report {
		return &Report{Format: FormatVersion, Attempted: 1, Established: 1, RunID: "abc", Shard: &ShardInfo{Index: i, Count: n}}
	}
	for _, c := range []struct {
		rs   []*Report
		want string
	}{
		{[]*Report{ok(0, 2), {Format: FormatVersion}}, "report 2 has no run ID and shard"},
		{[]*Report{ok(0, 2), func() *Report { r := ok(1, 2); r.RunID = "xyz"; return r }()}, "report 2 is of run xyz, the first of run abc"},
		{[]*Report{ok(0, 2), ok(1, 3)}, "report 2 is a shard of 3, the first of 2"},
		{[]*Report{ok(0, 2), ok(2, 2)}, "report 2: field shard.index: index 2 of 2 shards: want 0..1"},
		{[]*Report{ok(0, 2), ok(-1, 2)}, "report 2: field shard.index: index -1 of 2 shards"},
		{[]*Report{ok(0, 0)}, "report 1: field shard.count: 0 shards: want 1..4096"},
		{[]*Report{ok(0, 4097)}, "report 1: field shard.count: 4097 shards"},
		{[]*Report{func() *Report { r := ok(0, 1); r.Closed = 2; return r }()}, "report 1: field closed: closed 2 + reset 0 is more than established 1"},
	} {
		if _, err := Merge(c.rs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err %v, want %q", err, c.want)
		}
	}
	if m, err := Merge([]*Report{ok(0, 1)}); err != nil || *m.Shard != (ShardInfo{Index: -1, Count: 1}) {
		t.Errorf("one shard of one: %+v %v", m, err)
	}
}
