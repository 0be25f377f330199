package report

import (
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
