package fastpath

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// The tests in this file check what the wire, the report and the server
// see, on the manual clock: each pins a behaviour that a realistic bug in
// the engine would break (see `make mutate`).

// peerLinks are n links to the same peer.
func peerLinks(peer func([]byte) [][]byte, n int) ([]Link, []*linktest.Link) {
	var links []Link
	var loops []*linktest.Link
	for i := 0; i < n; i++ {
		l := linktest.NewLink(peer)
		links = append(links, l)
		loops = append(loops, l)
	}
	return links, loops
}

// firstSYN reports, safely from any worker's link, whether a SYN is the
// first one seen from its source port.
func firstSYN() func(pk *tcp.Packet) bool {
	var mu sync.Mutex
	seen := map[uint16]bool{}
	return func(pk *tcp.Packet) bool {
		mu.Lock()
		defer mu.Unlock()
		first := !seen[pk.SrcPort]
		seen[pk.SrcPort] = true
		return first
	}
}

// replyTo is a frame answering pk with r, from pk's destination.
func replyTo(pk *tcp.Packet, r *tcp.Reply) []byte {
	b := make([]byte, tcp.MaxReplyLen)
	return b[:tcp.Build(b, &tcp.Path{Src: pk.Dst, Dst: pk.Src, SrcPort: pk.DstPort, DstPort: pk.SrcPort}, r)]
}

// Every attempt is counted once and ends once: the server saw exactly the
// attempts the report counts, accepted the established ones, refused the
// refused ones, and took one RST per established connection at the exact
// sequence number (rst mode closes each one).
func TestEngineServerAgrees(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	links, loops := peerLinks(srv.Handle, 3)
	cfg := testConfig(linktest.ListenPort, linktest.ClosedPort)
	cfg.Count = 1001 // not a multiple of the worker count
	r := runClocked(t, cfg, clk, links, nil, loops...)
	clean(t, srv)
	if r.Attempted != 1001 || srv.Attempts() != 1001 {
		t.Fatalf("attempted %d, the server saw %d attempts, asked 1001", r.Attempted, srv.Attempts())
	}
	if r.Established != srv.Accepted() || r.Failed["ECONNREFUSED"] != srv.Refused() || r.Established+srv.Refused() != 1001 {
		t.Fatalf("established %d accepted %d, refused %d by the server %d", r.Established, srv.Accepted(), r.Failed["ECONNREFUSED"], srv.Refused())
	}
	if r.RSTReceived != srv.Refused() || len(r.Drops) != 0 {
		t.Fatalf("RSTs received %d for %d refusals, drops %v", r.RSTReceived, srv.Refused(), r.Drops)
	}
	if r.Closed != r.Established || srv.Resets() != r.Established || r.RSTSent != r.Established || srv.Open() != 0 || srv.HalfOpen() != 0 {
		t.Fatalf("rst mode: closed %d, RSTs sent %d, taken by the server %d, still open %d, half-open %d", r.Closed, r.RSTSent, srv.Resets(), srv.Open(), srv.HalfOpen())
	}
	// Half the attempts are refused: the handshake rate is half the
	// attempt rate, both measured over the same window.
	if ratio := r.CPS / r.AttemptRate; ratio < 0.45 || ratio > 0.55 {
		t.Fatalf("handshakes/s %.0f against attempts/s %.0f: ratio %.2f, want 0.5", r.CPS, r.AttemptRate, ratio)
	}
}

// The asked rate is the total over the workers: two workers asked for
// 2,000/s make 2,000/s together, on the engine clock: 4,000 in 2 s, the
// first at once. (The second worker's turns, half a millisecond after the
// first's, fall between the clock's steps: its last one, at 1,999.5 ms,
// may be cut off.)
func TestEngineRateSplit(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	links, loops := peerLinks(srv.Handle, 2)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Rate, cfg.Duration = 0, 2000, 2*time.Second
	r := runClocked(t, cfg, clk, links, nil, loops...)
	clean(t, srv)
	// Evenly spaced: one SYN at 0 (not one per worker), then two per
	// millisecond of the clock.
	at := map[time.Duration]int{}
	for _, syns := range srv.SYNs {
		for _, ts := range syns {
			at[ts]++
		}
	}
	if at[0] != 1 {
		t.Fatalf("%d SYNs at 0, want 1: the workers start together", at[0])
	}
	if r.Attempted < 3999 || r.Attempted > 4000 {
		t.Fatalf("attempted %d in 2 s of engine time at 2,000/s, want 4,000", r.Attempted)
	}
	// Over the window that ends when generation did (2 s), not when the
	// control loop noticed.
	if r.AttemptRate < 1999 || r.AttemptRate > 2001 || r.AskedRate != 2000 {
		t.Fatalf("attempt rate %.0f (asked %.0f), want 2,000", r.AttemptRate, r.AskedRate)
	}
	// The series samples the run every 100 ms of its clock (at most: the
	// control loop ticks in real time), counts never going back.
	if n := len(r.Series); n < 5 || n > int(r.ElapsedSeconds*10)+1 {
		t.Fatalf("%d samples in %.2fs", n, r.ElapsedSeconds)
	}
	for i := 1; i < len(r.Series); i++ {
		a, b := r.Series[i-1], r.Series[i]
		if b.Seconds < a.Seconds || b.Attempted < a.Attempted || b.Established < a.Established {
			t.Fatalf("samples %d and %d: %+v %+v", i-1, i, a, b)
		}
	}
}

// The concurrency bound is the total over the workers: held connections
// never exceed it, and reach it, also when it is smaller than the number
// of workers (a worker whose share is 0 makes no attempt).
func TestEngineConcurrencyBound(t *testing.T) {
	for _, c := range []struct{ conc, workers int }{{41, 2}, {1, 2}, {2, 3}} {
		srv := linktest.NewServer()
		clk := &linktest.Clock{}
		links, loops := peerLinks(srv.Handle, c.workers)
		cfg := testConfig(linktest.ListenPort)
		cfg.Count, cfg.Duration, cfg.Concurrency = 0, 500*time.Millisecond, c.conc
		cfg.Close = CloseHold
		r := runClocked(t, cfg, clk, links, nil, loops...)
		clean(t, srv)
		if want := uint64(c.conc); srv.MaxOpen() != c.conc || r.Established != want || r.Closed != want || srv.Open() != 0 {
			t.Fatalf("concurrency %d over %d workers: the server held at most %d, established %d, closed %d, open at the end %d",
				c.conc, c.workers, srv.MaxOpen(), r.Established, r.Closed, srv.Open())
		}
	}
}

// A count bounded by a concurrency smaller than the workers: the workers
// with a share of the bound make every attempt between them, and the run
// ends (a worker without one holds no part of the count it cannot make).
func TestEngineConcurrencyBelowWorkersCount(t *testing.T) {
	srv := linktest.NewServer()
	links, loops := peerLinks(srv.Handle, 3)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Concurrency = 30, 2
	r := runClocked(t, cfg, &linktest.Clock{}, links, nil, loops...)
	clean(t, srv)
	if r.Attempted != 30 || r.Established != 30 || srv.MaxOpen() > 2 {
		t.Fatalf("attempted %d, established %d of 30, the server held at most %d (bound 2)", r.Attempted, r.Established, srv.MaxOpen())
	}
}

// SYN-only: each SYN-ACK is answered by an RST the server takes (seq =
// the SYN-ACK's ACK), counted once even when the server sends it twice,
// and nothing stays half-open on the server.
func TestEngineSYNOnlyDuplicateSynAck(t *testing.T) {
	srv := linktest.NewServer()
	twice := func(f []byte) [][]byte {
		out := srv.Handle(f)
		for _, r := range out {
			var pk tcp.Packet
			if tcp.Parse(r, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN|tcp.FlagACK {
				out = append(out, r)
				break
			}
		}
		return out
	}
	cfg := testConfig(linktest.ListenPort)
	cfg.Count = 250
	cfg.Close = CloseSYNOnly
	r := runEngine(t, cfg, linktest.NewLink(twice))
	clean(t, srv)
	if r.Attempted != 250 || r.Established != 250 || r.Closed != 250 || srv.Resets() != 250 || srv.HalfOpen() != 0 || srv.Accepted() != 0 {
		t.Fatalf("attempted %d answered %d closed %d; the server took %d RSTs, %d half-open, accepted %d",
			r.Attempted, r.Established, r.Closed, srv.Resets(), srv.HalfOpen(), srv.Accepted())
	}
}

// R7: the handshake RTT is timed exactly on the engine clock, in
// nanoseconds: a round trip of 2.5 ms is recorded as 2.5 ms for every
// handshake (not 2 or 3: the timestamp echo's milliseconds are only for
// SYN-ACKs to an earlier SYN).
func TestEngineRTT(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{Step: 250 * time.Microsecond}
	l := linktest.NewLink(srv.Handle)
	l.Clock, l.Delay = clk, 2500*time.Microsecond
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Rate = 200, 20000 // SYNs leave over 10 ms
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	clean(t, srv)
	h := r.Histogram()
	if r.Established != 200 || h.N != 200 {
		t.Fatalf("established %d, RTT samples %d", r.Established, h.N)
	}
	// Replies are taken at the worker's next loop: 2.5 to 3 ms. Samples
	// strictly between whole milliseconds come only from exact timing.
	between := h.CountBelow(2_900_000) - h.CountBelow(2_200_000)
	if h.CountBelow(2_490_000) != 0 || r.RTT.Max > 0.00305 || between < 100 {
		t.Fatalf("RTT p50 %.6fs max %.6fs, %d of 200 between 2.2 and 2.9 ms; want 2.5 ms, exact", r.RTT.P50, r.RTT.Max, between)
	}
}

// A retransmitted SYN carries the TSval of the moment it leaves (the
// server checks it against the first SYN's), and the handshake it
// completes is timed from the latest SYN.
func TestEngineRetransmittedSYN(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	first := firstSYN()
	// The first SYN of every port is lost.
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN && first(&pk) {
			return nil
		}
		return srv.Handle(f)
	})
	l.Clock, l.Delay = clk, 2*time.Millisecond
	cfg := testConfig(linktest.ListenPort)
	cfg.Count = 50
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	clean(t, srv)
	if r.Established != 50 || r.Retransmits != 50 || srv.Accepted() != 50 {
		t.Fatalf("established %d retransmits %d accepted %d", r.Established, r.Retransmits, srv.Accepted())
	}
	for port, at := range srv.SYNs {
		if len(at) != 1 || at[0] < time.Second || at[0] > time.Second+5*time.Millisecond {
			t.Fatalf("port %d: the server saw SYNs at %v, want one at 1 s", port, at)
		}
	}
	if r.RTT.Max > 0.0032 || r.RTT.P50 < 0.002 {
		t.Fatalf("RTT p50 %.4fs max %.4fs: not timed from the retransmitted SYN", r.RTT.P50, r.RTT.Max)
	}
}

// C2: a host-unreachable error about our SYN fails the attempt at once
// with EHOSTUNREACH (matched against our own flow, not the reversed one),
// without waiting for the SYN timer.
func TestEngineICMPUnreachable(t *testing.T) {
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN {
			return [][]byte{linktest.ICMPError(f, tcp.ICMPDestUnreach, 1, 0)}
		}
		return nil
	})
	clk := &linktest.Clock{}
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count = 60
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	if r.Failed["EHOSTUNREACH"] != 60 || r.Retransmits != 0 || clk.Now() > 500*time.Millisecond {
		t.Fatalf("failed %v, retransmits %d, ended at %v of engine time", r.Failed, r.Retransmits, clk.Now())
	}
}

// C5: after fragmentation-needed with MTU 1400, the SYNs advertise MSS
// 1360 and the handshakes complete; C4: the error itself triggers no SYN.
// An MTU below 552 locks the path at 552: MSS 512, and every segment
// after it leaves without DF.
func TestEngineFragNeeded(t *testing.T) {
	for _, tc := range []struct {
		mtu, mss uint16
		df       bool
	}{{1400, 1360, true}, {500, 512, false}} {
		srv := linktest.NewServer()
		srv.NoDF = !tc.df
		clk := &linktest.Clock{}
		var mu sync.Mutex
		icmps, dfAfter := 0, 0
		l := linktest.NewLink(func(f []byte) [][]byte {
			var pk tcp.Packet
			if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN && pk.Seg.Opts.MSS > tc.mss {
				mu.Lock()
				icmps++
				mu.Unlock()
				return [][]byte{linktest.ICMPError(f, tcp.ICMPDestUnreach, tcp.ICMPFragNeeded, uint32(tc.mtu))}
			}
			if df := tcp.IPv4(f[tcp.EthHdrLen:]).FlagsFrag() == 0x4000; df != tc.df {
				mu.Lock()
				dfAfter++
				mu.Unlock()
			}
			return srv.Handle(f)
		})
		cfg := testConfig(linktest.ListenPort)
		cfg.Count = 40
		var e *Engine
		r := runClocked(t, cfg, clk, []Link{l}, engineOf(&e), l)
		mu.Lock()
		if s := e.Snapshot(); s.Get(CntICMP) != uint64(icmps) || icmps == 0 || dfAfter != 0 {
			t.Fatalf("MTU %d: %d ICMP errors counted, %d sent; %d frames after them with DF %v", tc.mtu, s.Get(CntICMP), icmps, dfAfter, !tc.df)
		}
		mu.Unlock()
		clean(t, srv)
		if r.Established != 40 || srv.Accepted() != 40 {
			t.Fatalf("MTU %d: established %d accepted %d: %v", tc.mtu, r.Established, srv.Accepted(), r.Failed)
		}
		for port, mss := range srv.MSS {
			if mss != tc.mss {
				t.Fatalf("MTU %d, port %d: last SYN advertised MSS %d, want %d", tc.mtu, port, mss, tc.mss)
			}
		}
	}
}

// FIN mode: a port that went through TIME-WAIT is not used again before
// the TIME-WAIT time has passed (a new SYN on a 4-tuple the server may
// still hold would be ignored or reset).
func TestEngineTimeWaitQuarantine(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	// More ports in TIME-WAIT at once than the quarantine of other modes
	// holds (1024).
	cfg.PortLo, cfg.PortHi = 10000, 11099
	cfg.Count, cfg.Close, cfg.TimeWait = 2200, CloseFIN, 2*time.Second
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	clean(t, srv)
	if r.Established != 2200 || r.Closed != 2200 || srv.Open() != 0 {
		t.Fatalf("established %d closed %d open %d", r.Established, r.Closed, srv.Open())
	}
	if len(srv.SYNs) != 1100 {
		t.Fatalf("%d ports used, want 1100", len(srv.SYNs))
	}
	for port, at := range srv.SYNs {
		if len(at) != 2 || at[1]-at[0] < 2*time.Second || at[1]-at[0] > 2100*time.Millisecond {
			t.Fatalf("port %d: SYNs at %v, want two, 2 s apart", port, at)
		}
	}
}

// timeWaitEngine is an engine of one worker with two ports, closing with
// FIN into a TIME-WAIT of 1 s.
func timeWaitEngine(t *testing.T) (*Engine, Config) {
	t.Helper()
	cfg := testConfig(80)
	cfg.PortLo, cfg.PortHi = 10000, 10001
	cfg.Close, cfg.TimeWait = CloseFIN, time.Second
	e, err := New(cfg, []Link{linktest.NewReflector()})
	if err != nil {
		t.Fatal(err)
	}
	return e, cfg
}

// P5: an entry in TIME-WAIT that is examined again (a second worker's
// notice, a retransmitted FIN, its timer) waits in the quarantine once.
// Doubles filled it and it freed ports at once: two workers over a
// two-queue veth made 6,000 FIN-closed connections on 4,536 ports in 1 s,
// where Linux, and one worker, wait 60 s for the ports past 4,536.
func TestTimeWaitQueuedOnce(t *testing.T) {
	e, cfg := timeWaitEngine(t)
	w := e.workers[0]
	for round, now := range []uint32{1000, 3000} { // the port queued again after its first wait
		idx := e.slotOf(0, cfg.PortLo)
		en := &e.table[idx]
		w.sets[0].Set(cfg.PortLo, true)
		en.conn.State = tcp.TimeWait
		en.release(0)
		w.nowMs = now
		for range 3 {
			w.examine(idx, false, false)
		}
		if n := w.quar.Len(); n != 1 || !w.sets[0].Busy(cfg.PortLo) {
			t.Fatalf("round %d: %d in the quarantine, port busy %v; want it once, busy", round, n, w.sets[0].Busy(cfg.PortLo))
		}
		w.nowMs = now + 999
		w.timers()
		if !w.sets[0].Busy(cfg.PortLo) {
			t.Fatalf("round %d: port free before its TIME-WAIT ended", round)
		}
		w.nowMs = now + 1000
		w.timers()
		if w.quar.Len() != 0 || w.sets[0].Busy(cfg.PortLo) || en.conn.State != tcp.Free {
			t.Fatalf("round %d: after its TIME-WAIT: %d queued, busy %v, %v", round, w.quar.Len(), w.sets[0].Busy(cfg.PortLo), en.conn.State)
		}
	}
}

// E9, P5: an RST that ends a TIME-WAIT frees the port at once, but its
// quarantine entry stays queued. When the port's next connection reaches
// TIME-WAIT before that entry's time comes, the old entry must not free
// it: the port waits out its own TIME-WAIT.
func TestTimeWaitResetLeavesNoStaleEntry(t *testing.T) {
	e, cfg := timeWaitEngine(t)
	w := e.workers[0]
	idx := e.slotOf(0, cfg.PortLo)
	en := &e.table[idx]
	busy := func() bool { return w.sets[0].Busy(cfg.PortLo) }
	enter := func(iss tcp.Seq, now uint32) { // a connection reaches TIME-WAIT
		w.sets[0].Set(cfg.PortLo, true)
		en.conn.ISS, en.conn.State = iss, tcp.TimeWait
		en.release(0)
		w.nowMs = now
		w.examine(idx, false, false)
	}
	enter(0x1111, 1000) // queued until 2000
	w.nowMs = 1200
	en.acquire()
	en.conn.State = tcp.Closed // the RST's verdict (E9)
	en.release(0)
	w.examine(idx, false, false)
	if busy() || en.conn.State != tcp.Free {
		t.Fatalf("after an RST in TIME-WAIT: busy %v, %v", busy(), en.conn.State)
	}
	enter(0x2222, 1500) // the port's next connection: queued until 2500
	for _, c := range []struct {
		now  uint32
		busy bool
	}{{2000, true}, {2499, true}, {2500, false}} {
		w.nowMs = c.now
		w.timers()
		if busy() != c.busy {
			t.Fatalf("at %d ms (TIME-WAITs from 1000 ms, reset at 1200 ms, and from 1500 ms): busy %v", c.now, busy())
		}
	}
	if w.quar.Len() != 0 || en.conn.State != tcp.Free {
		t.Fatalf("after the second TIME-WAIT: %d queued, %v", w.quar.Len(), en.conn.State)
	}
}

// Each worker gets its own share of the source ports, together all of
// them and none outside the range.
func TestEnginePortsSplit(t *testing.T) {
	srv := linktest.NewServer()
	srv.Clock = &linktest.Clock{}
	links, loops := peerLinks(srv.Handle, 2)
	cfg := testConfig(linktest.BlackholePort)
	// 11 ports: shares of 6 and 5; 6 attempts each, so the second worker
	// runs out of ports once.
	cfg.PortLo, cfg.PortHi = 10000, 10010
	cfg.Count, cfg.Rate, cfg.Params.SynRetries = 12, 100000, 0
	r := runClocked(t, cfg, srv.Clock, links, nil, loops...)
	if r.Failed["ETIMEDOUT"] != 11 || r.Failed["EADDRNOTAVAIL"] != 1 || len(srv.SYNs) != 11 {
		t.Fatalf("failed %v, ports used %d", r.Failed, len(srv.SYNs))
	}
	for p := range srv.SYNs {
		if p < 10000 || p > 10010 {
			t.Fatalf("port %d outside the range", p)
		}
	}
}

// Warmup: the measured window leaves out the first part of the run (on
// the real clock: the window's ends are taken by the engine's control
// loop, which ticks in real time).
func TestEngineWarmup(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Rate, cfg.Duration, cfg.Warmup = 0, 1000, 600*time.Millisecond, 300*time.Millisecond
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	if r.DurationSeconds < 0.25 || r.DurationSeconds > 0.4 || r.AttemptRate < 800 || r.AttemptRate > 1200 {
		t.Fatalf("measured %.0f/s over %.3fs of a 0.6 s run at 1,000/s with 0.3 s of warmup", r.AttemptRate, r.DurationSeconds)
	}
}

// P4: when every port is held, connect() fails at once with
// EADDRNOTAVAIL; in rate mode each such failure is an attempt (the books
// balance against the table).
func TestEngineAddrNotAvail(t *testing.T) {
	clk := &linktest.Clock{}
	l := linktest.NewLink(func([]byte) [][]byte { return nil })
	cfg := testConfig(linktest.BlackholePort, linktest.BlackholePort+1)
	cfg.PortLo, cfg.PortHi = 10000, 10001
	cfg.Count, cfg.Rate, cfg.Duration = 0, 1000, 100*time.Millisecond
	cfg.Params.SynRetries = 1
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	// 1,000/s for 100 ms: attempts at 0, 1 ... 99 ms, failures included;
	// two ports to each of two targets.
	if r.Attempted != 100 || r.Failed["ETIMEDOUT"] != 4 || r.Attempted != r.Failed["EADDRNOTAVAIL"]+4 {
		t.Fatalf("attempted %d, failed %v", r.Attempted, r.Failed)
	}
	for _, tg := range r.Targets {
		if tg.Attempted != 50 || tg.Failed != 50 {
			t.Fatalf("target %+v: want 50 attempted, 50 failed", tg)
		}
	}
}

// A hostile or stale segment for a port we never used, or for a target
// we do not have, is answered as the kernel answers it (X2): an RST at
// its ACK number, from the address it was sent to.
func TestEngineNoConnection(t *testing.T) {
	var mu sync.Mutex
	var rsts []tcp.Packet
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags.Has(tcp.FlagRST) {
			mu.Lock()
			rsts = append(rsts, pk)
			mu.Unlock()
		}
		return nil
	})
	stray := func(src netip.Addr, sport, dport uint16) []byte {
		b := make([]byte, tcp.MaxReplyLen)
		n := tcp.Build(b, &tcp.Path{SrcMAC: [6]byte{2, 0, 0, 0, 0, 2}, DstMAC: [6]byte{2, 0, 0, 0, 0, 1}, Src: src.As4(),
			Dst: [4]byte{198, 18, 0, 1}, SrcPort: sport, DstPort: dport}, &tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 77, Ack: 4242})
		return b[:n]
	}
	l.Inject(stray(netip.MustParseAddr("198.18.0.2"), 80, 10005), stray(netip.MustParseAddr("198.18.0.9"), 80, 10006),
		stray(netip.MustParseAddr("198.18.0.2"), 80, 30000))
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count, cfg.Params.SynRetries = 1, 0
	var e *Engine
	runClocked(t, cfg, &linktest.Clock{}, []Link{l}, engineOf(&e), l)
	if s := e.Snapshot(); s.Get(CntNoConn) != 3 {
		t.Fatalf("%d segments counted as for no connection, want 3", s.Get(CntNoConn))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rsts) != 3 {
		t.Fatalf("%d RSTs for 3 stray SYN-ACKs", len(rsts))
	}
	for _, pk := range rsts {
		if pk.Seg.Flags != tcp.FlagRST || pk.Seg.Seq != 4242 || pk.Src != [4]byte{198, 18, 0, 1} {
			t.Fatalf("X2 reply %v seq %d from %v", pk.Seg.Flags, pk.Seg.Seq, pk.Src)
		}
	}
}

// Targets and sources given in any order are all found (the lookups are
// sorted tables): three targets, two sources, every pair gets its share
// of the attempts and every handshake completes.
func TestEngineManyTargetsAndSources(t *testing.T) {
	srv := linktest.NewServer()
	var mu sync.Mutex
	perPair := map[[2]byte]int{}
	links, loops := peerLinks(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN {
			mu.Lock()
			perPair[[2]byte{pk.Src[3], pk.Dst[3]}]++
			mu.Unlock()
		}
		return srv.Handle(f)
	}, 2)
	cfg := testConfig()
	for _, a := range []string{"198.18.0.9:80", "198.18.0.2:80", "198.18.0.5:80"} {
		cfg.Targets = append(cfg.Targets, Target{Addr: netip.MustParseAddrPort(a), DstMAC: [6]byte{2, 0, 0, 0, 0, 2}})
	}
	cfg.Sources = []Source{{Addr: netip.MustParseAddr("198.18.0.8")}, {Addr: netip.MustParseAddr("198.18.0.3")}}
	cfg.Count = 600
	r := runClocked(t, cfg, &linktest.Clock{}, links, nil, loops...)
	clean(t, srv)
	if r.Established != 600 || srv.Accepted() != 600 || len(perPair) != 6 {
		t.Fatalf("established %d, accepted %d, pairs used %v", r.Established, srv.Accepted(), perPair)
	}
	for pair, n := range perPair {
		if n != 100 {
			t.Fatalf("pair %v got %d SYNs, want 100 each: %v", pair, n, perPair)
		}
	}
}

// Drain: attempts still in flight get Drain after generation (which ends
// at 200 ms), then the run closes (50 ms) and reports them in flight.
func TestEngineDrainBound(t *testing.T) {
	clk := &linktest.Clock{}
	l := linktest.NewLink(func([]byte) [][]byte { return nil })
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count, cfg.Rate, cfg.Duration, cfg.Drain = 0, 100, 200*time.Millisecond, 150*time.Millisecond
	r := runClocked(t, cfg, clk, []Link{l}, paceAfterGeneration, l)
	if r.InFlight != r.Attempted || r.Attempted < 19 {
		t.Fatalf("in flight %d of %d", r.InFlight, r.Attempted)
	}
	if end := clk.Now(); end < 400*time.Millisecond || end > 480*time.Millisecond {
		t.Fatalf("the run ended at %v of engine time, want 200 ms of generation, 150 ms of drain, 50 ms of close", end)
	}
}

// paceAfterGeneration is a runClocked hook: once generation is over, the
// clock keeps pace with the engine's control loop, which decides the end
// of the drain and of the hold in real time.
func paceAfterGeneration(e *Engine) {
	if s := e.Snapshot(); !s.Generating {
		time.Sleep(time.Millisecond)
	}
}

// Hold: connections are held HoldFor after generation (which ends at
// 200 ms), then aborted.
func TestEngineHoldFor(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Rate, cfg.Duration, cfg.Close, cfg.HoldFor = 0, 50, 200*time.Millisecond, CloseHold, 150*time.Millisecond
	var openAt330 int
	r := runClocked(t, cfg, clk, []Link{l}, func(e *Engine) {
		if clk.Now() == 330*time.Millisecond {
			openAt330 = srv.Open()
		}
		paceAfterGeneration(e)
	}, l)
	clean(t, srv)
	if openAt330 != int(r.Established) || r.Established < 9 || r.Closed != r.Established || srv.Open() != 0 {
		t.Fatalf("held at 330 ms: %d of %d, closed %d, open at the end %d", openAt330, r.Established, r.Closed, srv.Open())
	}
	if end := clk.Now(); end < 400*time.Millisecond || end > 480*time.Millisecond {
		t.Fatalf("the run ended at %v of engine time, want 200 ms of generation, 150 ms of hold, 50 ms of close", end)
	}
}

// FIN mode: the run waits for the graceful closes to finish (the server's
// FIN comes 300 ms later) before it ends.
func TestEngineFINWaitsForCloses(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	l := linktest.NewLink(srv.Handle)
	l.Clock, l.Delay = clk, 300*time.Millisecond
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Close, cfg.TimeWait = 20, CloseFIN, 100*time.Millisecond
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	clean(t, srv)
	if r.Established != 20 || r.Closed != 20 {
		t.Fatalf("established %d, closed %d", r.Established, r.Closed)
	}
	// Then it ends: the server's FINs came at 600 ms, the drain (5 s)
	// is not waited out.
	if end := clk.Now(); end > 2*time.Second {
		t.Fatalf("the run ended at %v, want soon after 600 ms", end)
	}
}

// Y8 on the engine: a peer that answers our SYN with a SYN of its own
// (a simultaneous open) gets a SYN-ACK carrying our SYN's options (MSS),
// which the pair's reply template leaves to the full builder; it arrives
// whole and valid, acknowledges the peer's SYN, and the peer's ACK
// establishes the connection.
func TestEngineSimultaneousOpenSYNACK(t *testing.T) {
	var synAcks atomic.Int32
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) != tcp.KindTCP {
			return nil
		}
		switch pk.Seg.Flags {
		case tcp.FlagSYN:
			return [][]byte{replyTo(&pk, &tcp.Reply{Flags: tcp.FlagSYN, Seq: 777, Window: 64240})}
		case tcp.FlagSYN | tcp.FlagACK:
			if pk.Seg.Ack != 778 || pk.Seg.Opts.MSS != 1460 {
				return nil
			}
			synAcks.Add(1)
			return [][]byte{replyTo(&pk, &tcp.Reply{Flags: tcp.FlagACK, Seq: 778, Ack: pk.Seg.Seq + 1, Window: 64240})}
		}
		return nil
	})
	cfg := testConfig(linktest.ListenPort)
	cfg.Count = 20
	r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
	if r.Established != 20 || synAcks.Load() != 20 {
		t.Fatalf("established %d, valid SYN-ACKs seen %d, want 20 each (failed %v)", r.Established, synAcks.Load(), r.Failed)
	}
}
