package xdpconnect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
)

// Shard is one node's part of a plan that N nodes run together (zmap's
// --shards/--shard, masscan's --shard i/N): Index in 0..Count-1. The zero
// value means the whole plan on one node.
type Shard struct {
	Index, Count int
}

// Sharded reports whether s is a part of a larger run.
func (s Shard) Sharded() bool { return s.Count > 1 }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// ParseShard parses "i/N" (0 <= i < N) or "auto/N", which takes i from
// JOB_COMPLETION_INDEX, the index a Kubernetes Indexed Job gives each pod.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(b)
	if !ok || err != nil || n < 1 {
		return Shard{}, fmt.Errorf("--shard %q: want i/N or auto/N", s)
	}
	if a == "auto" {
		a = os.Getenv("JOB_COMPLETION_INDEX")
		if a == "" {
			return Shard{}, fmt.Errorf("--shard %s: JOB_COMPLETION_INDEX is not set (it is in a Kubernetes Indexed Job)", s)
		}
	}
	i, err := strconv.Atoi(a)
	if err != nil || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("--shard %q: the index must be 0..%d", s, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// ShardBy says what shards partition besides the count and the rate.
type ShardBy int

// What shards partition.
const (
	// ShardAuto partitions the source addresses when they are given (every
	// node would otherwise use them all) and shares everything else: each
	// node then uses its own route source address.
	ShardAuto ShardBy = iota
	// ShardNone shares targets, sources and ports.
	ShardNone
	// ShardSources gives each shard every N-th source address.
	ShardSources
	// ShardPorts gives each shard a contiguous N-th of the port range.
	ShardPorts
	// ShardTargets gives each shard every N-th target.
	ShardTargets
)

var shardByNames = [...]string{"auto", "none", "sources", "ports", "targets"}

func (b ShardBy) String() string { return shardByNames[b] }

// ParseShardBy parses auto, none, sources, ports or targets.
func ParseShardBy(s string) (ShardBy, error) {
	for i, n := range shardByNames {
		if s == n {
			return ShardBy(i), nil
		}
	}
	return 0, fmt.Errorf("--shard-by %q: want auto, none, sources, ports or targets", s)
}

// share is shard i's part of n: the parts differ by at most one and add up
// to n exactly.
func share(n uint64, i, count int) uint64 {
	q := n / uint64(count)
	if uint64(i) < n%uint64(count) {
		q++
	}
	return q
}

// ForShard is shard s's part of plan p: the count and the concurrency are
// split exactly (parts differ by at most one, nothing lost), the rate is
// divided. Durations are the same for every shard.
func (p Plan) ForShard(s Shard) Plan {
	if !s.Sharded() {
		return p
	}
	p.Count = share(p.Count, s.Index, s.Count)
	p.Concurrency = int(share(uint64(p.Concurrency), s.Index, s.Count))
	p.Rate /= float64(s.Count)
	return p
}

// shardBy is what the shards of o partition.
func (o *Options) shardBy() ShardBy {
	if o.ShardBy == ShardAuto {
		if o.sourcesGiven {
			return ShardSources
		}
		return ShardNone
	}
	return o.ShardBy
}

// partition applies the shard's part of the targets and sources (before
// anything is resolved) or, with ports set, of the port range (once its
// default is known).
func (o *Options) partition(ports bool) error {
	s := o.Shard
	by := o.shardBy()
	if !s.Sharded() || ports != (by == ShardPorts) {
		return nil
	}
	switch by {
	case ShardSources:
		if len(o.Sources) < s.Count {
			return optionErr("--shard-by sources: %d source address(es) for %d shards: give at least one per shard", len(o.Sources), s.Count)
		}
		o.Sources = every(o.Sources, s)
	case ShardTargets:
		if len(o.Targets) < s.Count {
			return optionErr("--shard-by targets: %d target(s) for %d shards: give at least one per shard", len(o.Targets), s.Count)
		}
		o.Targets = every(o.Targets, s)
	case ShardPorts:
		n := int(o.PortHi-o.PortLo) + 1
		if n < 2*s.Count {
			return optionErr("--shard-by ports: %d ports for %d shards", n, s.Count)
		}
		lo := int(o.PortLo) + s.Index*n/s.Count
		hi := int(o.PortLo) + (s.Index+1)*n/s.Count - 1
		o.PortLo, o.PortHi = uint16(lo), uint16(hi)
	}
	return nil
}

// every is shard s's elements of xs: s.Index, s.Index+Count, ...
func every[T any](xs []T, s Shard) []T {
	var out []T
	for i := s.Index; i < len(xs); i += s.Count {
		out = append(out, xs[i])
	}
	return out
}

// RunID names a run across its shards: every shard started with the same
// targets and plan gets the same ID (a hash), unless one is given.
func RunID(targets []netip.AddrPort, p Plan, s Shard) string {
	h := sha256.New()
	ts := make([]string, len(targets))
	for i, t := range targets {
		ts[i] = t.String()
	}
	sort.Strings(ts)
	fmt.Fprintf(h, "%v|%d|%s|%g|%d|%s|%d", ts, p.Count, p.Duration, p.Rate, p.Concurrency, p.Close, s.Count)
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// ParseStartAt parses --start-at: RFC 3339 ("2026-11-25T18:00:00Z") or
// Unix seconds. Shards given the same time start together.
func ParseStartAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("--start-at %q: want RFC 3339 (2026-11-25T18:00:00Z) or Unix seconds", s)
}

// MergeFiles reads the JSON reports of a run's shards and merges them.
func MergeFiles(paths []string) (*fastpath.Report, error) {
	var rs []*fastpath.Report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r fastpath.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: not a report: %w", p, err)
		}
		rs = append(rs, &r)
	}
	return Merge(rs)
}

// Merge combines the reports of a run's shards into one: totals are exact
// sums, rates add up (the shards ran at once), and the RTT quantiles come
// from the merged histograms, not from averaged quantiles. It refuses
// reports of different runs or the same shard twice, and names the shards
// that are missing.
func Merge(rs []*fastpath.Report) (*fastpath.Report, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("merge: no report")
	}
	first := rs[0]
	if first.RunID == "" || first.Shard == nil {
		return nil, fmt.Errorf("merge: the first report has no run ID and shard (run with --shard i/N)")
	}
	n := first.Shard.Count
	seen := make([]bool, n)
	out := &fastpath.Report{Failed: map[string]uint64{}, Drops: map[string]uint64{}, RunID: first.RunID,
		Shard: &fastpath.ShardInfo{Index: -1, Count: n, PlanCount: first.Shard.PlanCount}, CloseMode: first.CloseMode, TCP: first.TCP}
	var h fastpath.Histogram
	targetHists := map[string]*fastpath.Histogram{}
	for i, r := range rs {
		switch {
		case r.RunID != first.RunID:
			return nil, fmt.Errorf("merge: report %d is of run %s, the first of run %s", i+1, r.RunID, first.RunID)
		case r.Shard == nil || r.Shard.Count != n:
			return nil, fmt.Errorf("merge: report %d is not a shard of %d", i+1, n)
		case seen[r.Shard.Index]:
			return nil, fmt.Errorf("merge: shard %d/%d is given twice", r.Shard.Index, n)
		}
		seen[r.Shard.Index] = true
		out.Attempted += r.Attempted
		out.Established += r.Established
		out.InFlight += r.InFlight
		out.Retransmits += r.Retransmits
		out.RSTSent += r.RSTSent
		out.RSTReceived += r.RSTReceived
		out.Closed += r.Closed
		out.Reset += r.Reset
		out.TxDropped += r.TxDropped
		out.PartialChecksums += r.PartialChecksums
		out.RxStamped += r.RxStamped
		out.CPS += r.CPS
		out.AttemptRate += r.AttemptRate
		out.AskedRate += r.AskedRate
		out.Workers += r.Workers
		out.DurationSeconds = max(out.DurationSeconds, r.DurationSeconds)
		out.ElapsedSeconds = max(out.ElapsedSeconds, r.ElapsedSeconds)
		for k, v := range r.Failed {
			out.Failed[k] += v
		}
		for k, v := range r.Drops {
			out.Drops[k] += v
		}
		rh := r.Histogram()
		h.Merge(&rh)
		mergeTargets(out, r, targetHists)
	}
	var missing []string
	for i, ok := range seen {
		if !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("merge: shard(s) %s of run %s missing", strings.Join(missing, ", "), first.RunID)
	}
	out.SetRTT(&h)
	for i := range out.Targets {
		out.Targets[i].SetRTT(targetHists[out.Targets[i].Target])
	}
	return out, nil
}

// mergeTargets adds r's per-target counts and RTT histograms to out's,
// target by target (the shards may split the targets or share them).
func mergeTargets(out, r *fastpath.Report, hists map[string]*fastpath.Histogram) {
	for _, t := range r.Targets {
		i := slices.IndexFunc(out.Targets, func(o fastpath.TargetReport) bool { return o.Target == t.Target })
		if i < 0 {
			out.Targets = append(out.Targets, fastpath.TargetReport{Target: t.Target})
			i = len(out.Targets) - 1
			hists[t.Target] = &fastpath.Histogram{}
		}
		o := &out.Targets[i]
		o.Attempted += t.Attempted
		o.Established += t.Established
		o.Failed += t.Failed
		th := t.Histogram()
		hists[t.Target].Merge(&th)
	}
}
