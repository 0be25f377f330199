package xdpconnect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/netns"
	"github.com/xdpconnect/xdpconnect/internal/syngen"
	"github.com/xdpconnect/xdpconnect/report"
	"golang.org/x/sys/unix"
)

// A SYN-only plan with KernelSYNs has its SYNs made by the XDP program in
// the kernel (internal/syngen); the session wires it: the program, the
// interface it sends through, and an engine that only answers ARP,
// neighbour discovery and stray segments meanwhile.

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
	pairs, err := syngen.Pairs(s.prog, &cfg, nports)
	if le, ok := errors.AsType[*syngen.LimitError](err); ok {
		return nil, optionErr("KernelSYNs", nil, "%v: narrow {Ports}", le)
	} else if err != nil {
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
		genErr = syngen.Generate(ctx, s.prog, syngen.Plan{Count: p.Count, Duration: p.Duration, Rate: p.Rate}, pairs)
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
		if syngen.Answered(&sc) >= sc.Sent || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	stopEngine()
	res := <-done
	if res.r == nil {
		return nil, errors.Join(err, res.err)
	}
	r := res.r
	syngen.Report(r, &sc, genEnd)
	s.complete(r, &cfg)
	if sc.Sent > 0 && syngen.Answered(&sc) == 0 && s.dev.Kind == "veth" {
		r.Diagnosis = append([]report.Finding{{Count: sc.Sent,
			Cause: "no SYN made by the XDP program was answered: a veth drops frames sent by XDP unless its peer has an XDP program or GRO on",
			Fix:   "turn GRO on at the peer veth ('ethtool -K PEER gro on' in its namespace), or leave --xdp-syn out"}}, r.Diagnosis...)
	}
	if err != nil {
		r.Stopped = err.Error()
	}
	return r, err
}
