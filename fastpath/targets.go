package fastpath

import (
	"sync/atomic"

	"github.com/xdpconnect/xdpconnect/report"
)

// Per-target statistics: users compare backends behind one load balancer,
// so attempts, handshakes, failures and the RTT are also kept per target.
// Bounded: the first Config.TargetStats targets get their own; the rest
// are summed under "other".

// DefaultTargetStats is how many targets get statistics of their own when
// Config.TargetStats is 0.
const DefaultTargetStats = 16

// OtherTargets names the sum of the targets past Config.TargetStats.
const OtherTargets = "other"

// targetStat is one target's counts in a worker; only the worker writes.
type targetStat struct {
	attempted, established, failed uint64
	h                              report.Histogram
	dirty                          bool // changed since the last publish
}

// publishedTarget is what a worker last published of one target.
type publishedTarget struct {
	attempted, established, failed atomic.Uint64
	h                              publishedHist
}

// TargetSnapshot is one target's statistics summed over the workers.
type TargetSnapshot struct {
	Target                         string // the target's address, or OtherTargets
	Attempted, Established, Failed uint64
	RTT                            report.Histogram
}

// statSlots says which statistics slot each target counts in.
func (e *Engine) statSlots() {
	k := e.cfg.TargetStats
	if k <= 0 {
		k = DefaultTargetStats
	}
	k = min(k, len(e.cfg.Targets))
	e.statOf = make([]int, len(e.cfg.Targets))
	for t := range e.statOf {
		e.statOf[t] = min(t, k)
	}
	e.statNames = make([]string, 0, k+1)
	for t := 0; t < k; t++ {
		e.statNames = append(e.statNames, e.cfg.Targets[t].Addr.String())
	}
	if len(e.cfg.Targets) > k {
		e.statNames = append(e.statNames, OtherTargets)
	}
}

// target is the statistics of the target of pair.
func (w *worker) target(pair int) *targetStat {
	ts := &w.ts[w.e.statOf[w.e.pairT[pair]]]
	ts.dirty = true
	return ts
}

func (w *worker) publishTargets() {
	for i := range w.ts {
		ts := &w.ts[i]
		if !ts.dirty {
			continue
		}
		ts.dirty = false
		p := &w.pt[i]
		p.attempted.Store(ts.attempted)
		p.established.Store(ts.established)
		p.failed.Store(ts.failed)
		p.h.store(&ts.h)
	}
}

// TargetStats sums the workers' published per-target statistics, in the
// order of Config.Targets ("other" last).
func (e *Engine) TargetStats() []TargetSnapshot {
	out := make([]TargetSnapshot, len(e.statNames))
	for i := range out {
		s := &out[i]
		s.Target = e.statNames[i]
		for _, w := range e.workers {
			p := &w.pt[i]
			s.Attempted += p.attempted.Load()
			s.Established += p.established.Load()
			s.Failed += p.failed.Load()
			p.h.addTo(&s.RTT)
		}
	}
	return out
}

// Per-source counts: with several source addresses, one that gets no
// answer while the others do points at its own path back (a missing or
// wrong return route, reverse-path filtering). Kept per worker, summed for
// the report once the workers are done; no live metric.

// sourceCount is one source address's counts in a worker.
type sourceCount struct{ attempted, established, failed uint64 }

// MaxSourceReports bounds the sources the report lists one by one.
const MaxSourceReports = 256

// sourceReports are the per-source counts summed over the workers, when
// the run has from 2 to MaxSourceReports sources (nil otherwise). Call it
// only after the workers stopped.
func (e *Engine) sourceReports() []report.SourceReport {
	n := len(e.cfg.Sources)
	if n < 2 || n > MaxSourceReports {
		return nil
	}
	out := make([]report.SourceReport, n)
	for i := range out {
		out[i].Source = e.cfg.Sources[i].Addr.String()
		for _, w := range e.workers {
			c := &w.src[i]
			out[i].Attempted += c.attempted
			out[i].Established += c.established
			out[i].Failed += c.failed
		}
	}
	return out
}
