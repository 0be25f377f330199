package fastpath

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/cpu"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// Run phases.
const (
	phaseGenerate int32 = iota
	phaseDrain
	phaseClose
	phaseStop
)

// Engine runs a load plan over a set of links, one worker per link.
type Engine struct {
	cfg     Config
	workers []*worker
	table   []entry
	// ex is request mode's state beside each entry (nil without).
	ex        []exState
	nPorts    int
	frameSize int
	// finWaitMs is how long a complete response waits for the server's FIN
	// before a graceful close (Q7): finWaitMs when the request asked the
	// server to close (HTTP without keep-alive, or a raw request), else 0.
	finWaitMs uint32
	isn       *tcp.ISNGen
	// The address bytes (4 or 16) of each source and target.
	srcB, dstB [][]byte
	// params are the TCP parameters of IPv4 and IPv6 connections.
	params [2]tcp.Params
	// A pair is a (target, source) combination of one family: pairT and
	// pairS name its members, pairAt[t*len(Sources)+s] is the pair or -1.
	pairT, pairS []int32
	pairAt       []int32
	pairV6       []bool
	// Target t's pairs are pairFirst[t] .. pairFirst[t]+pairCount[t]-1.
	pairFirst, pairCount []int32
	srcKeys              []uint32 // sorted IPv4 source addresses ...
	srcIdx               []int    // ... and their index in cfg.Sources
	dstKeys              []uint64 // sorted addr<<16|port of IPv4 targets ...
	dstIdx               []int
	src6Keys             []key6 // the same for IPv6 (port 0 for sources)
	src6Idx              []int
	dst6Keys             []key6
	dst6Idx              []int
	epoch                time.Time
	monoBase             int64 // CLOCK_MONOTONIC at epoch (meta.go); -1: stamps unusable
	// isnBase (wall-clock ns) and tsBase (monotonic ms) at epoch put the
	// ISN's and the TSval's clocks (I1, I3) on the host's time, not the
	// run's: a port reused in the next run then gets a later ISN and
	// TSval, which a server's TIME-WAIT takes as a new connection (with
	// the host's per-boot key). 0 with Config.Clock.
	isnBase int64
	tsBase  uint32
	// genWorkers is how many workers generate (splitPlan): all, or as many
	// as a smaller concurrency bound.
	genWorkers int
	// statOf maps a target to its statistics slot; statNames names the
	// slots (targets.go).
	statOf    []int
	statNames []string
	phase     atomic.Int32
	started   atomic.Bool
	// fatal is the first link error a worker hit; it stops the run.
	fatal atomic.Pointer[error]

	mu      sync.Mutex
	waiters map[slot]*Conn // Dial'ed entries
	// conns is len(waiters), read without the lock: the workers yield
	// their core each loop while the application has connections.
	conns atomic.Int64

	series []report.Point // sampled by Run every 100 ms
	tl     timeline       // the run second by second

	// window of the measured rate
	winStart, winEnd time.Duration
	estStart, estEnd uint64
	// request mode: responses and response bytes in the window
	respStart, respEnd   uint64
	bytesStart, bytesEnd uint64
	attStart, attEnd     uint64
}

// New prepares an engine: it validates cfg and preallocates the connection
// table, the timer wheels and the templates. Links are used by one worker
// each from Run on.
func New(cfg Config, links []Link) (*Engine, error) {
	if len(links) == 0 {
		return nil, errors.New("fastpath: no link")
	}
	if err := cfg.Validate(len(links)); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	if cfg.Key == ([16]byte{}) {
		_, _ = rand.Read(cfg.Key[:])
	}
	e := &Engine{cfg: cfg, nPorts: int(cfg.PortHi-cfg.PortLo) + 1, isn: tcp.NewISNGen(cfg.Key), waiters: map[slot]*Conn{}}
	e.frameSize = links[0].FrameSize()
	if r := cfg.Request; r != nil && r.Framing == l7.HTTP && cfg.RequestsPerConn <= 1 {
		e.finWaitMs = finWaitMs
	}
	e.params = [2]tcp.Params{cfg.Params, cfg.Params6}
	for _, s := range cfg.Sources {
		e.srcB = append(e.srcB, s.Addr.AsSlice())
	}
	for _, t := range cfg.Targets {
		e.dstB = append(e.dstB, t.Addr.Addr().AsSlice())
	}
	e.buildPairs()
	pairs := len(e.pairT)
	e.table = make([]entry, pairs*e.nPorts)
	if cfg.Request != nil {
		e.ex = make([]exState, len(e.table))
	}
	e.buildLookups()
	e.statSlots()
	nw := len(links)
	chunk := (e.nPorts + nw - 1) / nw
	for i, l := range links {
		w := &worker{id: i, e: e, link: l, umem: l.UMEM(), wOff: i * chunk, chunk: min(chunk, e.nPorts-i*chunk),
			rx: make([]xsk.Desc, cfg.Batch), tx: make([]xsk.Desc, cfg.Batch), frames: make([]uint64, cfg.Batch), spare: make([]uint64, cfg.Batch),
			expired: make([]uint32, 0, cfg.Batch), msgs: make([]uint32, 0, cfg.Batch*4), held: make([]tcp.Held, 0, cfg.Batch*4), pending: make([]uint32, 0, cfg.Batch*4), closing: make([]closeWait, 0, cfg.Batch*4),
			reqs: make(chan request, 64), rnd: binary.LittleEndian.Uint64(cfg.Key[:8]) ^ uint64(i+1)*0x9e3779b97f4a7c15}
		if w.chunk <= 0 {
			return nil, fmt.Errorf("fastpath: no ports left for worker %d", i)
		}
		w.waker, _ = l.(Waker)
		w.picker = tcp.NewPortPicker(cfg.Key, w.rnd)
		if cfg.AcceptPartialChecksum {
			w.parseFlags = tcp.AcceptPartialChecksum
		}
		lo := cfg.PortLo + uint16(w.wOff)
		for p := 0; p < pairs; p++ {
			w.sets = append(w.sets, tcp.NewPortSet(lo, lo+uint16(w.chunk-1)))
		}
		w.tpl = make([]tcp.SYNTemplate, pairs)
		w.rtpl = make([]tcp.ReplyTemplate, pairs)
		w.portHash = make([]portHash, pairs)
		w.srcNext = make([]int32, len(cfg.Targets))
		w.noDF = make([]bool, pairs)
		w.synQ = make([]synSent, 0, 4*cfg.Batch)
		w.ts = make([]targetStat, len(e.statNames))
		w.pt = make([]publishedTarget, len(e.statNames))
		w.src = make([]sourceCount, len(cfg.Sources))
		for p := 0; p < pairs; p++ {
			path := w.path(e.slotAt(p, 0))
			params := e.paramsOf(p)
			w.tpl[p].Reset(params, &path, params.MSS)
			w.rtpl[p].Reset(&path, params.TOS, params.TTL)
		}
		w.wheel = tcp.NewWheel(pairs*w.chunk, 4096, 1, 0)
		// Only fin mode ends in TIME-WAIT on our side; elsewhere a small
		// quarantine keeps memory per connection down.
		qcap := 1024
		if cfg.Close == CloseFIN {
			qcap = pairs * w.chunk
		}
		w.quar = tcp.NewQuarantine(qcap)
		w.inbox = make([]*spsc, nw)
		for p := range nw {
			if p != i {
				w.inbox[p] = newSPSC(1 << 16)
			}
		}
		e.workers = append(e.workers, w)
	}
	e.splitPlan()
	return e, nil
}

// buildPairs lists the (target, source) pairs of one family, target by
// target: a run with IPv4 and IPv6 targets keeps no table space for pairs
// no connection can use.
func (e *Engine) buildPairs() {
	ns := len(e.cfg.Sources)
	e.pairAt = make([]int32, len(e.cfg.Targets)*ns)
	for i := range e.pairAt {
		e.pairAt[i] = -1
	}
	e.pairFirst = make([]int32, len(e.cfg.Targets))
	e.pairCount = make([]int32, len(e.cfg.Targets))
	for i, p := range e.cfg.Pairs() {
		if e.pairCount[p.Target] == 0 {
			e.pairFirst[p.Target] = int32(i)
		}
		e.pairCount[p.Target]++
		e.pairAt[p.Target*ns+p.Source] = int32(i)
		e.pairT = append(e.pairT, int32(p.Target))
		e.pairS = append(e.pairS, int32(p.Source))
		e.pairV6 = append(e.pairV6, p.V6)
	}
}

// ts is pair's target and source index.
func (e *Engine) ts(pair int) (t, s int) { return int(e.pairT[pair]), int(e.pairS[pair]) }

// paramsOf is the TCP parameters of pair's family.
func (e *Engine) paramsOf(pair int) *tcp.Params {
	if e.pairV6[pair] {
		return &e.params[1]
	}
	return &e.params[0]
}

// key6 orders IPv6 addresses with a port.
type key6 struct {
	a    [16]byte
	port uint16
}

func cmp6(x, y key6) int {
	if c := bytes.Compare(x.a[:], y.a[:]); c != 0 {
		return c
	}
	return cmp.Compare(x.port, y.port)
}

func (e *Engine) buildLookups() {
	type kv struct {
		k uint64
		i int
	}
	type kv6 struct {
		k key6
		i int
	}
	var s, d []kv
	var s6, d6 []kv6
	for i, a := range e.srcB {
		if len(a) == 16 {
			s6 = append(s6, kv6{key6{a: [16]byte(a)}, i})
			continue
		}
		s = append(s, kv{uint64(binary.BigEndian.Uint32(a)), i})
	}
	for i, a := range e.dstB {
		port := e.cfg.Targets[i].Addr.Port()
		if len(a) == 16 {
			d6 = append(d6, kv6{key6{[16]byte(a), port}, i})
			continue
		}
		d = append(d, kv{uint64(binary.BigEndian.Uint32(a))<<16 | uint64(port), i})
	}
	byKey := func(a, b kv) int { return cmp.Compare(a.k, b.k) }
	byKey6 := func(a, b kv6) int { return cmp6(a.k, b.k) }
	slices.SortFunc(s, byKey)
	slices.SortFunc(d, byKey)
	slices.SortFunc(s6, byKey6)
	slices.SortFunc(d6, byKey6)
	for _, x := range s {
		e.srcKeys = append(e.srcKeys, uint32(x.k))
		e.srcIdx = append(e.srcIdx, x.i)
	}
	for _, x := range d {
		e.dstKeys = append(e.dstKeys, x.k)
		e.dstIdx = append(e.dstIdx, x.i)
	}
	for _, x := range s6 {
		e.src6Keys = append(e.src6Keys, x.k)
		e.src6Idx = append(e.src6Idx, x.i)
	}
	for _, x := range d6 {
		e.dst6Keys = append(e.dst6Keys, x.k)
		e.dst6Idx = append(e.dst6Idx, x.i)
	}
}

// srcIndex is the index of our source address a (4 or 16 bytes), or -1.
func (e *Engine) srcIndex(a []byte) int {
	if len(a) == 16 {
		if i, ok := slices.BinarySearchFunc(e.src6Keys, key6{a: [16]byte(a)}, cmp6); ok {
			return e.src6Idx[i]
		}
		return -1
	}
	if i, ok := slices.BinarySearch(e.srcKeys, binary.BigEndian.Uint32(a)); ok {
		return e.srcIdx[i]
	}
	return -1
}

// dstIndex is the index of target (a, port), or -1.
func (e *Engine) dstIndex(a []byte, port uint16) int {
	if len(a) == 16 {
		if i, ok := slices.BinarySearchFunc(e.dst6Keys, key6{[16]byte(a), port}, cmp6); ok {
			return e.dst6Idx[i]
		}
		return -1
	}
	k := uint64(binary.BigEndian.Uint32(a))<<16 | uint64(port)
	if i, ok := slices.BinarySearch(e.dstKeys, k); ok {
		return e.dstIdx[i]
	}
	return -1
}

// ownerOf is the worker whose share of the ports holds idx's port: shares
// are chunk ports long (the last one shorter), chunk = ceil(ports/workers).
func (e *Engine) ownerOf(idx slot) int { return e.offOf(idx) / e.workers[0].chunk }

// now is the engine clock in nanoseconds since Run started.
func (e *Engine) now() int64 { return int64(e.elapsed()) }

// elapsed is the engine clock: Config.Clock, or the monotonic time since Run
// started.
func (e *Engine) elapsed() time.Duration {
	if e.cfg.Clock != nil {
		return e.cfg.Clock()
	}
	return time.Since(e.epoch)
}

// splitPlan gives each worker its share of count, rate and concurrency.
// A concurrency bound smaller than the workers leaves the workers past it
// without a share: they generate nothing (each share of the bound is at
// least one connection, so the shares add up to the bound).
func (e *Engine) splitPlan() {
	nw := len(e.workers)
	if c := e.cfg.Concurrency; c > 0 && c < nw {
		nw = c
	}
	e.genWorkers = nw
	for i, w := range e.workers {
		w.budget = ^uint64(0)
		if e.cfg.DialOnly || i >= nw {
			w.budget = 0
		}
		if e.cfg.Count > 0 && i < nw {
			w.budget = Share(e.cfg.Count, i, nw)
		}
		w.rate = e.cfg.Rate / float64(nw)
		// The first attempt leaves at once, as a connect() loop's does,
		// and the workers take turns: rate × duration attempts in all,
		// evenly spaced (not every worker's first at 0).
		w.tokens = 1 - float64(i)/float64(nw)
		if e.cfg.Concurrency > 0 {
			w.conc = int(Share(uint64(e.cfg.Concurrency), min(i, nw-1), nw))
		} else if e.cfg.Close != CloseHold {
			// Open loop past the worker's own ceiling: every attempt it
			// cannot serve brings replies its RX ring cannot take, their
			// loss brings SYN retransmissions a second later, those hold
			// ports, and the rate collapses (asked twice its ceiling, a
			// worker made 33k handshakes/s instead of 200k). Generation
			// waits while replies wait in the RX ring (half the socket's
			// frames): what that holds back is late, the generator's; in
			// request mode the requests in flight are bounded by the
			// responses the ring can take, and what that holds back is
			// the target's (generate). As fast as possible (no Rate) is
			// no different: with a FIN or a response to answer besides
			// each SYN-ACK, replies come in faster than a batch a pass.
			// Over a reflector, at the worker's ceiling, generating
			// regardless took them in smaller batches (0.73x the
			// FIN-closed handshakes, 0.78x the requests), and with a
			// reflector that lost what its full ring could not take,
			// the retransmissions made 20k FIN-closed handshakes/s
			// instead of 1.2M.
			w.rxFrames = max(w.ringFrames(), 64)
		}
		w.generating = w.budget > 0
	}
}

// Run executes the plan: generation until Count or Duration (or ctx is
// cancelled), then drain (in-flight attempts get up to Drain to end), then
// close (hold mode aborts what is open), and returns the report. progress,
// if not nil, is called about every interval with a snapshot, which is
// reused once it returns (copy what you keep). When a link
// fails for good (its Err), the run stops at once and returns the report
// with that error.
func (e *Engine) Run(ctx context.Context, interval time.Duration, progress func(*Snapshot)) (*report.Report, error) {
	if !e.started.CompareAndSwap(false, true) {
		return nil, errors.New("fastpath: engine already ran")
	}
	e.epoch = time.Now()
	e.setMonoBase()
	var wg sync.WaitGroup
	for i, w := range e.workers {
		wg.Add(1)
		w.pub.generating.Store(w.generating)
		go func() {
			defer wg.Done()
			if e.cfg.Pin {
				_ = cpu.Pin(i)
			}
			w.run()
		}()
	}
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	nextProgress := interval
	nextSample := time.Duration(0)
	e.tl.next = time.Second
	warmupDone := e.cfg.Warmup == 0
	var drainStart, closeStart time.Duration
	var s Snapshot
	for {
		select {
		case <-ctx.Done():
			if e.phase.Load() == phaseGenerate {
				e.phase.Store(phaseDrain)
			}
		case <-tick.C:
		}
		el := e.elapsed()
		e.fill(&s)
		if !warmupDone && el >= e.cfg.Warmup {
			warmupDone = true
			e.winStart, e.estStart, e.attStart = el, s.Get(CntEstablished), s.Get(CntAttempted)
			e.respStart, e.bytesStart = s.Get(CntResponses), s.Get(CntResponseBytes)
		}
		switch e.phase.Load() {
		case phaseGenerate:
			if !s.Generating && !e.cfg.DialOnly {
				e.phase.Store(phaseDrain)
			}
		case phaseDrain:
			if drainStart == 0 {
				drainStart = el
				// The window ends when the last worker stopped generating,
				// which this loop sees up to a tick late; now when the run
				// was cut short.
				end := el
				if g, ok := e.generationEnd(); ok && !s.Generating {
					end = max(min(g, el), e.winStart)
				}
				e.winEnd, e.estEnd, e.attEnd = end, s.Get(CntEstablished), s.Get(CntAttempted)
				e.respEnd, e.bytesEnd = s.Get(CntResponses), s.Get(CntResponseBytes)
				if !warmupDone {
					e.winStart, e.estStart, e.attStart = 0, 0, 0
					e.respStart, e.bytesStart = 0, 0
				}
			}
			busy := s.InFlight() > 0 || s.RequestsInFlight() > 0 || (e.cfg.Close == CloseFIN && s.Open() > 0)
			holding := e.cfg.Close == CloseHold && el-drainStart < e.cfg.HoldFor && ctx.Err() == nil
			if (!busy || el-drainStart >= e.cfg.Drain) && !holding || ctx.Err() != nil && el-drainStart > 100*time.Millisecond {
				e.phase.Store(phaseClose)
			}
		case phaseClose:
			if closeStart == 0 {
				closeStart = el
			}
			// Give the workers a moment to send the RSTs and flush.
			if el-closeStart >= 50*time.Millisecond {
				e.phase.Store(phaseStop)
			}
		}
		if e.tl.due(el) {
			e.tl.cut(e, &s)
		}
		if el >= nextSample {
			nextSample += 100 * time.Millisecond
			e.series = append(e.series, report.Point{Seconds: el.Seconds(), Attempted: s.Get(CntAttempted), Established: s.Get(CntEstablished)})
		}
		if progress != nil && el >= nextProgress {
			nextProgress += interval
			progress(&s)
		}
		if e.phase.Load() == phaseStop {
			break
		}
	}
	wg.Wait()
	e.failDialers()
	s = e.Snapshot() // fresh: the report keeps its map
	e.tl.cut(e, &s)  // the last, partial second
	if p := e.fatal.Load(); p != nil {
		// The report still balances: what was in flight is reported so.
		return e.report(&s), *p
	}
	return e.report(&s), nil
}

// generationEnd is when the last worker that generated stopped; ok is
// false when none did.
func (e *Engine) generationEnd() (end time.Duration, ok bool) {
	for _, w := range e.workers {
		if at := w.pub.stopAt.Load(); at > 0 {
			end, ok = max(end, time.Duration(at-1)), true
		}
	}
	return end, ok
}

// fail records a worker's fatal link error and stops every worker at once:
// nothing more can be sent or received on that queue, so waiting for the
// drain would only hide the failure.
func (e *Engine) fail(worker int, err error) {
	err = fmt.Errorf("worker %d: %w", worker, err)
	if e.fatal.CompareAndSwap(nil, &err) {
		e.phase.Store(phaseStop)
	}
}

// Running reports whether Run has started and not yet begun to close:
// Dial works then.
func (e *Engine) Running() bool { return e.started.Load() && e.phase.Load() < phaseClose }

// Stop ends generation early; Run then drains and returns.
func (e *Engine) Stop() {
	e.phase.CompareAndSwap(phaseGenerate, phaseDrain)
}

// Snapshot sums the workers' published counters.
func (e *Engine) Snapshot() Snapshot {
	var s Snapshot
	e.fill(&s)
	return s
}

// fill writes a snapshot into s, reusing its slice and map: the run's
// control loop takes one every 5 ms, and a fresh one each time (8 KiB
// with the histogram) was garbage that grew the heap with the run's
// length.
func (e *Engine) fill(s *Snapshot) {
	per, failed := s.PerWorker, s.Failed
	if len(per) != len(e.workers) {
		per = make([][numCounters]uint64, len(e.workers))
	}
	if failed == nil {
		failed = map[string]uint64{}
	}
	clear(failed)
	*s = Snapshot{PerWorker: per, Failed: failed}
	for i, w := range e.workers {
		for c := range s.Counters {
			v := w.pub.c[c].Load()
			s.Counters[c] += v
			s.PerWorker[i][c] = v
		}
		w.pub.h.addTo(&s.RTT)
		w.pub.ttfb.addTo(&s.TTFB)
		w.pub.ttlb.addTo(&s.TTLB)
		w.pub.ttlbSched.addTo(&s.TTLBSched)
		if w.pub.generating.Load() {
			s.Generating = true
		}
	}
	errnoCounts(s.Failed, s.Get)
	if e.started.Load() {
		s.ElapsedSeconds = e.elapsed().Seconds()
	}
	s.AskedRate = e.cfg.Rate
	if len(e.cfg.Stages) > 0 && e.started.Load() {
		s.AskedRate = e.rateAt(e.elapsed())
	}
}

// Workers is the number of workers (one per link).
func (e *Engine) Workers() int { return len(e.workers) }

// Config returns the validated plan.
func (e *Engine) Config() Config { return e.cfg }

// --- Dial ---

// Conn is a connection opened by Engine.Dial: a net.Conn (conn.go) whose
// TCP runs on the engine (stream.go), held until Close or Abort.
type Conn struct {
	e      *Engine
	idx    slot
	Local  netip.AddrPort
	Remote netip.AddrPort
	done   chan syscall.Errno
	closed chan struct{} // the engine let the connection go
	s      stream
}

// request is what the application asks a worker: exactly one of its
// connections is set.
type request struct {
	dial   *Conn
	close  *Conn // Close (abort: Abort, or Close with unread data)
	write  *Conn // Write queued bytes, or CloseWrite wants our FIN
	update *Conn // Read freed receive buffer space
	abort  bool
	tgt    int
}

// Dial opens one connection to dst, which must be one of the engine's
// targets, while Run is running, and waits for the handshake. Errors are
// the kernel's (errors.Is(err, syscall.ECONNREFUSED) ...).
func (e *Engine) Dial(ctx context.Context, dst netip.AddrPort) (*Conn, error) {
	t := -1
	if a := dst.Addr(); a.IsValid() && !a.Is4In6() {
		t = e.dstIndex(a.AsSlice(), dst.Port())
	}
	if t < 0 {
		return nil, fmt.Errorf("fastpath: dial %s: not a target of this engine: %w", dst, syscall.EINVAL)
	}
	if e.phase.Load() >= phaseClose || !e.started.Load() {
		return nil, fmt.Errorf("fastpath: dial %s: engine not running: %w", dst, syscall.ENETDOWN)
	}
	c := &Conn{e: e, Remote: dst, done: make(chan syscall.Errno, 1), closed: make(chan struct{})}
	c.s.readable, c.s.writable = make(chan struct{}, 1), make(chan struct{}, 1)
	w := e.workers[int(uint64(time.Now().UnixNano())%uint64(len(e.workers)))]
	select {
	case w.reqs <- request{dial: c, tgt: t}:
		w.wake()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-c.done:
		if err != 0 {
			return nil, fmt.Errorf("fastpath: dial %s: %w", dst, err)
		}
		return c, nil
	case <-ctx.Done():
		// Like a connect() interrupted: the attempt goes on and ends by
		// itself; its outcome is counted as usual, and a connection it
		// makes, which nobody will use, is aborted (the socket closed).
		go func() {
			if err := <-c.done; err == 0 {
				c.Abort()
			}
		}()
		return nil, ctx.Err()
	}
}

func (w *worker) requests() {
	for len(w.reqs) > 0 {
		r := <-w.reqs
		switch {
		case r.dial != nil:
			w.dial(r.dial, r.tgt)
		case r.close != nil:
			w.closeConn(r.close, r.abort)
		case r.write != nil:
			w.streamWrite(r.write)
		case r.update != nil:
			w.streamUpdate(r.update)
		}
	}
}

func (w *worker) dial(c *Conn, t int) {
	e := w.e
	// The first source address of the target's family.
	pair := -1
	for s := range e.cfg.Sources {
		if p := e.pairAt[t*len(e.cfg.Sources)+s]; p >= 0 {
			pair = int(p)
			break
		}
	}
	_, s := e.ts(pair)
	port, errno := w.picker.Pick(w.sets[pair], e.srcB[s], e.dstB[t], c.Remote.Port(), int64(w.nowMs))
	if errno != 0 {
		c.done <- errno
		return
	}
	idx := e.slotOf(pair, port)
	c.idx = idx
	c.Local = netip.AddrPortFrom(e.cfg.Sources[s].Addr, port)
	e.mu.Lock()
	e.waiters[idx] = c
	e.conns.Store(int64(len(e.waiters)))
	e.mu.Unlock()
	if !w.open(idx, pair, port, true, w.nowNs) {
		e.mu.Lock()
		delete(e.waiters, idx)
		e.conns.Store(int64(len(e.waiters)))
		e.mu.Unlock()
		w.sets[pair].Set(port, false)
		c.done <- syscall.ENOBUFS
	}
}

// closeConn closes a Dial'ed connection: at once with RST|ACK (abort),
// else with our FIN once the peer has all our data (sendStream).
func (w *worker) closeConn(c *Conn, abort bool) {
	en := &w.e.table[c.idx]
	en.acquire()
	if w.e.dialedConn(c.idx) != c {
		w.release(en, false) // gone meanwhile: the entry may be another's
		return
	}
	if !abort {
		c.s.mu.Lock()
		c.s.shut = true
		c.s.mu.Unlock()
		w.sendStream(en, c.idx, c)
		w.release(en, false)
		return
	}
	if en.conn.State != tcp.TimeWait && en.conn.State != tcp.Closed {
		params := w.e.paramsOf(w.e.pairOf(c.idx))
		v := params.Close(&en.conn, true, w.nowMs)
		if v.Send {
			w.send(c.idx, &v.Reply)
		}
		en.conn.State = tcp.Closed
	}
	w.release(en, false)
	// Before examine frees the entry (and clears its flags).
	w.e.dialClosed(en, c.idx)
	w.examine(c.idx, false, false)
}

// dialFailed reports a Dial'ed attempt's failure (an established one is
// told after the flush that sends its ACK: worker.deliver).
func (e *Engine) dialFailed(idx slot, err syscall.Errno) {
	e.mu.Lock()
	c := e.waiters[idx]
	delete(e.waiters, idx)
	e.conns.Store(int64(len(e.waiters)))
	e.mu.Unlock()
	if c != nil {
		c.tell(err)
	}
}

// tell gives Dial its outcome (0: established), unless it has one
// already (the engine failed meanwhile: failDialers).
func (c *Conn) tell(err syscall.Errno) {
	select {
	case c.done <- err:
	default:
	}
}

func (e *Engine) dialClosed(en *entry, idx slot) {
	if !en.dialed() {
		return
	}
	e.mu.Lock()
	c := e.waiters[idx]
	delete(e.waiters, idx)
	e.conns.Store(int64(len(e.waiters)))
	e.mu.Unlock()
	if c != nil {
		select {
		case <-c.closed:
		default:
			close(c.closed)
		}
	}
}

func (e *Engine) failDialers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for idx, c := range e.waiters {
		c.tell(syscall.ECONNABORTED)
		select {
		case <-c.closed:
		default:
			close(c.closed)
		}
		delete(e.waiters, idx)
		e.conns.Store(int64(len(e.waiters)))
	}
}

// rateAt is the rate the plan asks for at el (Config.Stages' ramp, else
// Config.Rate; 0: as fast as possible, unless staged).
func (e *Engine) rateAt(el time.Duration) float64 {
	if len(e.cfg.Stages) > 0 {
		return rampAt(e.cfg.Stages, el)
	}
	return e.cfg.Rate
}

// rampAt is the ramp's value el into it: linear over each stage from the
// previous stage's value (0 before the first); the last value after.
func rampAt(stages []Stage, el time.Duration) float64 {
	from, at := 0.0, time.Duration(0)
	for _, s := range stages {
		if el < at+s.Duration {
			return from + (s.Rate-from)*float64(el-at)/float64(s.Duration)
		}
		from, at = s.Rate, at+s.Duration
	}
	return from
}

// concAt is the worker's share of the concurrency ramp el into the run.
func (e *Engine) concAt(el time.Duration, worker int) int {
	return int(Share(uint64(math.Round(rampAt(e.cfg.ConcurrencyStages, el))), worker, len(e.workers)))
}

// meanRate is the rate asked for over the whole generation: Config.Rate,
// or the stages' mean.
func (e *Engine) meanRate() float64 {
	if len(e.cfg.Stages) == 0 {
		return e.cfg.Rate
	}
	from, area, total := 0.0, 0.0, 0.0
	for _, s := range e.cfg.Stages {
		area += (from + s.Rate) / 2 * s.Duration.Seconds()
		total += s.Duration.Seconds()
		from = s.Rate
	}
	return area / total
}
