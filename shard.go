package xdpconnect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"

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
	return 0, fmt.Errorf("shard partition %q: want auto, none, sources, ports or targets", s)
}

// ForShard is shard s's part of plan p: the count and the concurrency are
// split exactly (parts differ by at most one, nothing lost), the rate is
// divided. Durations are the same for every shard.
func (p Plan) ForShard(s Shard) Plan {
	if !s.Sharded() {
		return p
	}
	p.Count = fastpath.Share(p.Count, s.Index, s.Count)
	p.Concurrency = int(fastpath.Share(uint64(p.Concurrency), s.Index, s.Count))
	p.Rate /= float64(s.Count)
	p.Stages = shareStages(p.Stages, s)
	p.ConcurrencyStages = shareStages(p.ConcurrencyStages, s)
	return p
}

// shareStages is shard s's part of a ramp: each value divided, the
// durations the same.
func shareStages(stages []Stage, s Shard) []Stage {
	if len(stages) == 0 {
		return nil
	}
	out := make([]Stage, len(stages))
	for i, st := range stages {
		out[i] = Stage{Duration: st.Duration, Rate: st.Rate / float64(s.Count)}
	}
	return out
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
			return optionErr("ShardBy", "sources", "%d source address(es) for %d shards: give at least one per shard", len(o.Sources), s.Count)
		}
		o.Sources = every(o.Sources, s)
	case ShardTargets:
		if len(o.Targets) < s.Count {
			return optionErr("ShardBy", "targets", "%d target(s) for %d shards: give at least one per shard", len(o.Targets), s.Count)
		}
		o.Targets = every(o.Targets, s)
	case ShardPorts:
		n := int(o.PortHi-o.PortLo) + 1
		if n < 2*s.Count {
			return optionErr("ShardBy", "ports", "%d ports for %d shards: give at least two per shard", n, s.Count)
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
// targets and plan gets the same ID (a hash), unless one is given; any
// other plan (its ramp, its request, how long it holds) gets another, so
// merge refuses to mix two runs.
func RunID(targets []netip.AddrPort, p Plan, s Shard) string {
	h := sha256.New()
	ts := make([]string, len(targets))
	for i, t := range targets {
		ts[i] = t.String()
	}
	sort.Strings(ts)
	fmt.Fprintf(h, "%v|%d|%s|%g|%d|%s|%d|%v|%v|%d|%s", ts, p.Count, p.Duration, p.Rate, p.Concurrency, p.Close, s.Count,
		p.Stages, p.ConcurrencyStages, p.RequestsPerConn, p.HoldFor)
	if p.Request != nil {
		h.Write(p.Request.Request)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}
