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
	var all Histogram
	parts := make([]Histogram, 3)
	for i := 0; i < 30000; i++ {
		v := int64(rng.ExpFloat64()*50e3) + 2000 // ns, a long tail
		all.Record(v)
		parts[i%3].Record(v)
	}
	var rs []*Report
	for i := range parts {
		r := &Report{Format: FormatVersion, Attempted: 10000, Established: 9990, Failed: map[string]uint64{"ETIMEDOUT": 10}, CPS: 1000, RunID: "abc",
			Shard: &ShardInfo{Index: i, Count: 3, PlanCount: 30000}}
		r.SetRTT(&parts[i])
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
