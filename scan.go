package xdpconnect

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/netns"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"golang.org/x/sys/unix"
)

// A SYN-only plan with KernelSYNs has its SYNs made by the XDP program in
// the kernel (BPF_PROG_RUN in live-frame mode: no socket buffer per SYN)
// and its answers counted there: a SYN-ACK is reset by the program itself,
// an RST or ICMP error ends the probe. Like the scanners' (masscan, zmap),
// a probe is one SYN: no retransmission, and a probe whose port comes round
// again before an answer counts as timed out (a later answer, with the
// same ISN, counts for the new probe: the books still balance). The worker
// only answers ARP, neighbour discovery and stray segments.

// scanPair is one (target, source) pair's probes.
type scanPair struct {
	target int
	tpl    bpf.ScanTemplate
}

// runKernelSYNs runs p (Close synonly) with the kernel making the SYNs.
func (s *Session) runKernelSYNs(ctx context.Context, p Plan, cfg fastpath.Config, h RunHooks) (*report.Report, error) {
	o := &s.opts
	if err := s.checkXDPSend("KernelSYNs"); err != nil {
		return nil, err
	}
	// The SYNs leave by the interface, named in its namespace.
	if err := netns.Do(o.Netns, func() error { return s.prog.SetTxDevice(s.dev.Index) }); err != nil {
		return nil, fmt.Errorf("--xdp-syn: %w", err)
	}
	nports := int(o.PortHi-o.PortLo) + 1
	pairs, err := s.scanPairs(&cfg, nports)
	if err != nil {
		return nil, err
	}
	// The engine serves ARP, neighbour discovery and strays meanwhile.
	dial := cfg
	dial.DialOnly, dial.Count, dial.Duration = true, 0, 0
	eng, err := s.newEngine(dial)
	if err != nil {
		return nil, err
	}
	if h.Started != nil {
		if err := h.Started(); err != nil {
			return nil, err
		}
	}
	engCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	type result struct {
		r   *report.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := eng.Run(engCtx, time.Hour, nil)
		done <- result{r, err}
	}()
	if err := s.prog.SetScan(true); err != nil {
		return nil, err
	}
	defer func() { _ = s.prog.SetScan(false) }()
	// A cancel while waiting ends in the (empty) report below.
	_ = waitStart(ctx, p.StartAt)
	start := time.Now()
	var genErr error
	// The generator runs on a thread of its own (netns.Do's), pinned to
	// the first CPU as a worker would be.
	err = netns.Do(o.Netns, func() error {
		// internal/cpu is the engine's (docs/architecture.md): the first
		// CPU directly.
		var set unix.CPUSet
		set.Set(0)
		_ = unix.SchedSetaffinity(0, &set)
		genErr = s.generate(ctx, p, pairs)
		return nil
	})
	if err == nil {
		err = genErr
	}
	genEnd := time.Since(start)
	// Answers get up to Drain (default 1 s) once the last SYN left, and
	// the wait ends early when every probe has one.
	drain := p.Drain
	if drain == 0 {
		drain = time.Second
	}
	var sc bpf.ScanCounts
	for deadline := time.Now().Add(drain); ; time.Sleep(10 * time.Millisecond) {
		var rerr error
		if sc, rerr = s.prog.ScanCounts(); rerr != nil {
			err = errors.Join(err, rerr)
			break
		}
		if answered(&sc) >= sc.Sent || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	stopEngine()
	res := <-done
	if res.r == nil {
		return nil, errors.Join(err, res.err)
	}
	r := res.r
	s.scanReport(r, &sc, genEnd)
	s.complete(r, &cfg)
	if sc.Sent > 0 && answered(&sc) == 0 && s.dev.Kind == "veth" {
		r.Diagnosis = append([]report.Finding{{Count: sc.Sent,
			Cause: "no SYN made by the XDP program was answered: a veth drops frames sent by XDP unless its peer has an XDP program or GRO on",
			Fix:   "turn GRO on at the peer veth ('ethtool -K PEER gro on' in its namespace), or leave --xdp-syn out"}}, r.Diagnosis...)
	}
	if err != nil {
		r.Stopped = err.Error()
	}
	return r, err
}

// answered is how many probes have had their first answer.
func answered(sc *bpf.ScanCounts) uint64 {
	n := sc.Established + sc.Refused
	for _, v := range sc.ICMP {
		n += v
	}
	return n
}

// scanPairs registers the pairs (each target with each source of its
// family) with the program and builds their templates.
func (s *Session) scanPairs(cfg *fastpath.Config, nports int) ([]scanPair, error) {
	var pairs []scanPair
	for ti, t := range cfg.Targets {
		for _, src := range cfg.Sources {
			if src.Addr.Is4() != t.Addr.Addr().Is4() {
				continue
			}
			path := tcp.Path{SrcMAC: cfg.SrcMAC, DstMAC: t.DstMAC, DstPort: t.Addr.Port()}
			params := &cfg.Params
			if src.Addr.Is6() {
				path.V6, path.Src6, path.Dst6 = true, src.Addr.As16(), t.Addr.Addr().As16()
				params = &cfg.Params6
			} else {
				path.Src, path.Dst = src.Addr.As4(), t.Addr.Addr().As4()
			}
			var rnd [12]byte
			_, _ = rand.Read(rnd[:])
			parts := tcp.NewSYNTemplate(params, &path).Parts()
			sp := scanPair{target: ti, tpl: bpf.ScanTemplate{Frame: parts.Frame, IPOff: parts.IPOff, TCPOff: parts.TCPOff, TSOff: parts.TSOff,
				IPSum: parts.IPSum, TCPSum: parts.TCPSum, FlagsWord: parts.FlagsWord, V6: parts.V6,
				Mix: binary.LittleEndian.Uint64(rnd[:8]), SlotBase: uint32(len(pairs) * nports)}}
			if !params.TSNoOffset {
				sp.tpl.TSAdd = binary.LittleEndian.Uint32(rnd[8:]) // I4: a random offset per pair
			}
			if uint64(len(pairs)+1)*uint64(nports) > bpf.ScanSlots {
				return nil, optionErr("KernelSYNs", nil, "%d pairs x %d ports exceed the %d probes the program tracks: narrow {Ports}", len(pairs)+1, nports, bpf.ScanSlots)
			}
			if err := s.prog.AddScanPair(src.Addr, t.Addr, sp.tpl.Mix, sp.tpl.SlotBase); err != nil {
				return nil, fmt.Errorf("bpf: %w", err)
			}
			pairs = append(pairs, sp)
		}
	}
	return pairs, nil
}

// generate makes p's SYNs, pairs in turn, in batches: as many as the rate
// allows since the last batch (as fast as possible without one), until
// the count or the duration (or ctx). Pairs are taken target by target
// (scanPairs' order), so each target gets its share.
func (s *Session) generate(ctx context.Context, p Plan, pairs []scanPair) error {
	// A call costs the kernel a page pool of its own (tens of µs): big
	// batches when unpaced, about 30 ms of SYNs at 2M/s.
	const batch = 1 << 16
	// Targets in turn, and each target's sources in turn.
	var byTarget [][]int
	for i, sp := range pairs {
		if sp.target == len(byTarget) {
			byTarget = append(byTarget, nil)
		}
		byTarget[sp.target] = append(byTarget[sp.target], i)
	}
	turn := make([]int, len(byTarget))
	// With a count, each target's share, and each of its pairs' share of
	// that, is fixed up front.
	left := make([]uint64, len(pairs))
	for t, ps := range byTarget {
		share := p.Count / uint64(len(byTarget))
		if uint64(t) < p.Count%uint64(len(byTarget)) {
			share++
		}
		for k, i := range ps {
			left[i] = share / uint64(len(ps))
			if uint64(k) < share%uint64(len(ps)) {
				left[i]++
			}
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
		next, err := s.prog.Generate(&sp.tpl, uint32(n))
		if err != nil {
			return err
		}
		made := uint64(next - sp.tpl.Next)
		sent += made
		if p.Count > 0 {
			left[pi] -= min(made, left[pi])
		}
		sp.tpl.Next = next
	}
}

// scanReport puts the program's counts in r, the report of the engine that
// served ARP meanwhile: every probe ends once, established (SYN-ACK),
// refused (RST), an ICMP error's errno, or timed out.
func (s *Session) scanReport(r *report.Report, sc *bpf.ScanCounts, gen time.Duration) {
	r.Attempted, r.Established, r.InFlight, r.Retransmits = sc.Sent, sc.Established, 0, 0
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
	add("ETIMEDOUT", sc.Sent-answered(sc))
	r.DurationSeconds = gen.Seconds()
	if gen > 0 {
		r.CPS = float64(sc.Established) / gen.Seconds()
		r.AttemptRate = float64(sc.Sent) / gen.Seconds()
	}
	r.RTT, r.RTTHist, r.Targets, r.Families, r.Series = report.Quantiles{}, nil, nil, nil, nil
	r.KernelSYNs = &report.KernelSYNs{Duplicates: sc.Duplicate}
}
