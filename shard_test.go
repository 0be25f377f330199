package xdpconnect

import (
	"net/netip"
	"testing"
	"time"
)

// The count and the concurrency are split exactly: shares add up to the
// plan and differ by at most one; the rate is divided.
func TestPlanForShard(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64} {
		for _, count := range []uint64{0, 1, 2, 10, 1000, 1001, 999999} {
			p := Plan{Count: count, Concurrency: int(count / 3), Rate: 1000}
			var sum, conc uint64
			lo, hi := ^uint64(0), uint64(0)
			for i := 0; i < n; i++ {
				q := p.ForShard(Shard{Index: i, Count: n})
				sum += q.Count
				conc += uint64(q.Concurrency)
				lo, hi = min(lo, q.Count), max(hi, q.Count)
				if n > 1 && q.Rate != 1000/float64(n) {
					t.Fatalf("rate %v for %d shards", q.Rate, n)
				}
			}
			if sum != count || conc != count/3 || hi-lo > 1 {
				t.Fatalf("%d over %d shards: sum %d, concurrency %d, shares %d..%d", count, n, sum, conc, lo, hi)
			}
		}
	}
	// Both ramps are divided, leg by leg, durations kept; the plan's own
	// ramps are left as they were.
	p := Plan{Stages: []Stage{{Duration: time.Second, Rate: 900}}, ConcurrencyStages: []Stage{{Duration: 2 * time.Second, Rate: 3000}, {Duration: time.Second, Rate: 0}}}
	q := p.ForShard(Shard{Index: 1, Count: 3})
	if len(q.Stages) != 1 || q.Stages[0] != (Stage{Duration: time.Second, Rate: 300}) || len(q.ConcurrencyStages) != 2 ||
		q.ConcurrencyStages[0] != (Stage{Duration: 2 * time.Second, Rate: 1000}) || q.ConcurrencyStages[1] != (Stage{Duration: time.Second}) {
		t.Fatalf("shard 1/3 of %+v: %+v", p, q)
	}
	if p.ConcurrencyStages[0].Rate != 3000 || p.Stages[0].Rate != 900 {
		t.Fatalf("the plan's ramps changed: %+v", p)
	}
}

// Port, source and target partitions are disjoint and cover everything.
func TestPartition(t *testing.T) {
	var targets []netip.AddrPort
	var sources []netip.Addr
	for i := 0; i < 10; i++ {
		targets = append(targets, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 80))
		sources = append(sources, netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}))
	}
	const n = 3
	ports := map[uint16]int{}
	seenT := map[netip.AddrPort]int{}
	seenS := map[netip.Addr]int{}
	for i := 0; i < n; i++ {
		for _, by := range []ShardBy{ShardPorts, ShardTargets, ShardSources} {
			o := Options{Targets: targets, Sources: sources, PortLo: 61000, PortHi: 65535, Shard: Shard{i, n}, ShardBy: by, sourcesGiven: true}
			if err := o.partition(false); err != nil {
				t.Fatal(err)
			}
			if err := o.partition(true); err != nil {
				t.Fatal(err)
			}
			switch by {
			case ShardPorts:
				for p := int(o.PortLo); p <= int(o.PortHi); p++ {
					ports[uint16(p)]++
				}
			case ShardTargets:
				for _, x := range o.Targets {
					seenT[x]++
				}
			case ShardSources:
				for _, x := range o.Sources {
					seenS[x]++
				}
			}
		}
	}
	if len(ports) != 65535-61000+1 || len(seenT) != 10 || len(seenS) != 10 {
		t.Fatalf("covered %d ports, %d targets, %d sources", len(ports), len(seenT), len(seenS))
	}
	for p, c := range ports {
		if c != 1 {
			t.Fatalf("port %d in %d shards", p, c)
		}
	}
	for _, c := range seenT {
		if c != 1 {
			t.Fatal("a target in two shards")
		}
	}
	for _, c := range seenS {
		if c != 1 {
			t.Fatal("a source in two shards")
		}
	}
	// auto: given sources are partitioned, the route's are not.
	o := Options{Sources: sources, Shard: Shard{1, n}, sourcesGiven: true}
	if err := o.partition(false); err != nil || len(o.Sources) != 3 {
		t.Fatalf("auto with given sources: %v %v", o.Sources, err)
	}
}

// A run's ID is the same on every shard (the targets in any order, any
// shard index) and differs for every other plan: a ramp, a concurrency
// ramp, a request, keep-alive, the hold time, the count, the close mode
// or the shard count left out would let merge mix two runs.
func TestRunID(t *testing.T) {
	a, b := netip.MustParseAddrPort("198.18.0.2:80"), netip.MustParseAddrPort("198.18.0.3:80")
	base := Plan{Count: 1000, Rate: 500, Close: CloseRST}
	id := RunID([]netip.AddrPort{a, b}, base, Shard{Index: 0, Count: 3})
	if RunID([]netip.AddrPort{b, a}, base, Shard{Index: 2, Count: 3}) != id {
		t.Fatal("the targets' order or the shard index changed the ID")
	}
	req, err := HTTPRequest("GET", "/", "h", false)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Plan{
		"count":       {Count: 1001, Rate: 500, Close: CloseRST},
		"close":       {Count: 1000, Rate: 500, Close: CloseFIN},
		"stages":      {Count: 1000, Close: CloseRST, Stages: []Stage{{Duration: time.Second, Rate: 500}}},
		"conc stages": {Count: 1000, Rate: 500, Close: CloseRST, ConcurrencyStages: []Stage{{Duration: time.Second, Rate: 5}}},
		"request":     {Count: 1000, Rate: 500, Close: CloseRST, Request: req},
		"keep-alive":  {Count: 1000, Rate: 500, Close: CloseRST, Request: req, RequestsPerConn: 4},
		"hold":        {Count: 1000, Rate: 500, Close: CloseHold, HoldFor: time.Second},
	} {
		if RunID([]netip.AddrPort{a, b}, p, Shard{Count: 3}) == id {
			t.Errorf("%s: the same ID as the base plan", name)
		}
	}
	if RunID([]netip.AddrPort{a, b}, base, Shard{Count: 4}) == id {
		t.Error("another shard count, the same ID")
	}
}
