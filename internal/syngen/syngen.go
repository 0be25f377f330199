// Package syngen makes SYN-only probes in the kernel: the XDP program
// stamps each probe from the pair's SYN template (BPF_PROG_RUN in
// live-frame mode, no socket buffer per SYN) and counts the answers, a
// SYN-ACK reset by the program itself, an RST or ICMP error ending the
// probe. Like the scanners' (masscan, zmap), a probe is one SYN: no
// retransmission, and a probe whose port comes round again before an
// answer counts as timed out (a later answer, with the same ISN, counts
// for the new probe: the books still balance).
//
// Pairs, their SYNs and the plan's shares are the engine's
// (fastpath.Config.Pairs, SYNPath, fastpath.Share), so a probe is the
// SYN the engine would send. The caller wires the program, the interface
// and an engine that answers ARP and neighbour discovery meanwhile.
package syngen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"golang.org/x/sys/unix"
)

// Pair is one (target, source) pair's probes.
type Pair struct {
	Target int
	Tpl    bpf.ScanTemplate
}

// LimitError says a plan has more probes in flight than the program
// tracks: pairs × ports over its slots.
type LimitError struct {
	Pairs, Ports int
	Slots        uint64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%d pairs x %d ports exceed the %d probes the program tracks", e.Pairs, e.Ports, e.Slots)
}

// Pairs registers cfg's pairs with the program and builds their
// templates, nports source ports each.
func Pairs(prog *bpf.Program, cfg *fastpath.Config, nports int) ([]Pair, error) {
	ps := cfg.Pairs()
	if n := uint64(len(ps)) * uint64(nports); n > bpf.ScanSlots {
		return nil, &LimitError{Pairs: len(ps), Ports: nports, Slots: bpf.ScanSlots}
	}
	out := make([]Pair, 0, len(ps))
	for i, p := range ps {
		path, params := cfg.SYNPath(p)
		var rnd [12]byte
		_, _ = rand.Read(rnd[:])
		sp := Pair{Target: p.Target, Tpl: bpf.ScanTemplate{SYNParts: tcp.NewSYNTemplate(params, &path).Parts(),
			Mix: binary.LittleEndian.Uint64(rnd[:8]), SlotBase: uint32(i * nports)}}
		if !params.TSNoOffset {
			sp.Tpl.TSAdd = binary.LittleEndian.Uint32(rnd[8:]) // I4: a random offset per pair
		}
		src, dst := cfg.Sources[p.Source].Addr, cfg.Targets[p.Target].Addr
		if err := prog.AddScanPair(src, dst, sp.Tpl.Mix, sp.Tpl.SlotBase); err != nil {
			return nil, fmt.Errorf("bpf: %w", err)
		}
		out = append(out, sp)
	}
	return out, nil
}

// Plan is what to generate: a count or a duration (or both), at a rate
// (0: as fast as possible).
type Plan struct {
	Count    uint64
	Duration time.Duration
	Rate     float64
}

// Generate makes p's SYNs, pairs in turn, in batches: as many as the rate
// allows since the last batch (as fast as possible without one), until
// the count or the duration (or ctx). Pairs are taken target by target,
// so each target gets its share, and each of its pairs a share of that.
func Generate(ctx context.Context, prog *bpf.Program, p Plan, pairs []Pair) error {
	// A call costs the kernel a page pool of its own (tens of µs): big
	// batches when unpaced, about 30 ms of SYNs at 2M/s.
	const batch = 1 << 16
	var byTarget [][]int
	for i, sp := range pairs {
		if sp.Target == len(byTarget) {
			byTarget = append(byTarget, nil)
		}
		byTarget[sp.Target] = append(byTarget[sp.Target], i)
	}
	turn := make([]int, len(byTarget))
	left := make([]uint64, len(pairs))
	for t, ps := range byTarget {
		share := fastpath.Share(p.Count, t, len(byTarget))
		for k, i := range ps {
			left[i] = fastpath.Share(share, k, len(ps))
		}
	}
	start := time.Now()
	var sent uint64
	tokens := 0.0
	last := start
	for i := 0; ; i++ {
		if ctx.Err() != nil || p.Count > 0 && sent >= p.Count || p.Duration > 0 && time.Since(start) >= p.Duration {
			return nil
		}
		t := i % len(byTarget)
		pi := byTarget[t][turn[t]%len(byTarget[t])]
		turn[t]++
		n := uint64(batch)
		if p.Count > 0 {
			if left[pi] == 0 {
				continue
			}
			n = min(n, left[pi])
		}
		if p.Rate > 0 {
			// A call has a fixed cost (the kernel sets up its frames), so
			// SYNs go in chunks of a millisecond's worth.
			want := min(max(p.Rate/1000, 1), batch)
			now := time.Now()
			tokens = min(tokens+p.Rate*now.Sub(last).Seconds(), batch)
			last = now
			if tokens < want {
				time.Sleep(time.Duration(float64(time.Second) * (want - tokens) / p.Rate))
				now = time.Now()
				tokens = min(tokens+p.Rate*now.Sub(last).Seconds(), batch)
				last = now
			}
			n = min(n, uint64(tokens))
			tokens -= float64(n)
		}
		sp := &pairs[pi]
		next, err := prog.Generate(&sp.Tpl, uint32(n))
		if err != nil {
			return err
		}
		made := uint64(next - sp.Tpl.Next)
		sent += made
		if p.Count > 0 {
			left[pi] -= min(made, left[pi])
		}
		sp.Tpl.Next = next
	}
}

// Answered is how many probes have had their first answer.
func Answered(sc *bpf.ScanCounts) uint64 {
	n := sc.Established + sc.Refused
	for _, v := range sc.ICMP {
		n += v
	}
	return n
}

// Report puts the program's counts in r, the report of the engine that
// served ARP meanwhile: every probe ends once, established (SYN-ACK),
// refused (RST), an ICMP error's errno, or timed out; gen is how long
// generation took.
func Report(r *report.Report, sc *bpf.ScanCounts, gen time.Duration) {
	r.Attempted, r.Established, r.InFlight, r.Retransmits = sc.Sent, sc.Established, 0, 0
	// Each probe that got an answer ended at once: established and closed
	// at the same time, as the engine counts an answered probe.
	r.Closed, r.Reset = sc.Established, 0
	r.Failed = map[string]uint64{}
	add := func(e string, n uint64) {
		if n > 0 {
			r.Failed[e] += n
		}
	}
	add("ECONNREFUSED", sc.Refused)
	for k, n := range sc.ICMP {
		e := tcp.ICMPErrno(k.Type, k.Code)
		if k.V6 {
			e = tcp.ICMPv6Errno(k.Type, k.Code)
		}
		if e == 0 {
			e = unix.EPROTO
		}
		add(fastpath.ErrnoName(e), n)
	}
	add("ETIMEDOUT", sc.Sent-Answered(sc))
	r.DurationSeconds = gen.Seconds()
	if gen > 0 {
		r.CPS = float64(sc.Established) / gen.Seconds()
		r.AttemptRate = float64(sc.Sent) / gen.Seconds()
	}
	r.RTT, r.RTTHist, r.Targets, r.Families, r.Series = report.Quantiles{}, nil, nil, nil, nil
	r.KernelSYNs = &report.KernelSYNs{Duplicates: sc.Duplicate}
}
