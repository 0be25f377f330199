package fastpath

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

func testConfig(ports ...uint16) Config {
	var tg []Target
	for _, p := range ports {
		tg = append(tg, Target{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), p), DstMAC: [6]byte{2, 0, 0, 0, 0, 2}})
	}
	return Config{
		Targets: tg, Sources: []Source{{Addr: netip.MustParseAddr("198.18.0.1")}},
		SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, PortLo: 10000, PortHi: 19999,
		Params: tcp.DefaultParams(1500, false), Count: 1000, Key: [16]byte{1}, Idle: 0,
	}
}

func runEngine(t *testing.T, cfg Config, links ...Link) *report.Report {
	t.Helper()
	if cfg.Idle == 0 {
		cfg.Idle = time.Millisecond // idle workers yield (linktest's Poll)
	}
	e, err := New(cfg, links)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := e.Run(ctx, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkBooks(t, e, r)
	return r
}

// checkBooks is the independent account of a finished run: what is in
// flight is counted in the connection table (entries still in SYN-SENT or
// SYN-RECEIVED), not derived from the counters, and every attempt has
// exactly one outcome: established, failed, or still in flight.
func checkBooks(t *testing.T, e *Engine, r *report.Report) {
	t.Helper()
	var inTable uint64
	for i := range e.table {
		switch e.table[i].peek() {
		case tcp.SynSent, tcp.SynRecv:
			inTable++
		}
	}
	if r.InFlight != inTable || r.Attempted != r.Established+r.FailedTotal()+inTable {
		t.Fatalf("books: attempted %d, established %d, failed %d, in flight %d by the counters and %d in the table",
			r.Attempted, r.Established, r.FailedTotal(), r.InFlight, inTable)
	}
}

// clean fails the test if srv saw a frame that no Linux client sends.
func clean(t *testing.T, srv *linktest.Server) {
	t.Helper()
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("the server saw %d frame(s) a Linux client would not send, first: %v", len(v), v)
	}
}

// Every attempt ends once, with the outcome of its port, and the server
// accepted exactly the established ones (fake link, no loss).
func TestEngineOutcomes(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(80, 81)
	cfg.Count = 2000
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	if r.Attempted != 2000 || r.Established != 1000 || r.Failed["ECONNREFUSED"] != 1000 || r.InFlight != 0 {
		t.Fatalf("report %+v", r)
	}
	if srv.Accepted() != 1000 || srv.Open() != 0 {
		t.Fatalf("server accepted %d, still open %d", srv.Accepted(), srv.Open())
	}
	clean(t, srv)
}

// runClocked runs the engine on a manual clock in lock step with its
// workers: the clock moves a step (clk.Step, 1 ms by default) once every
// worker has gone round its loop
// (two receive calls on each link in loops), so timers fire in engine
// time, and seconds of retransmissions take milliseconds. Once generation
// has ended and nothing is in flight or closing, only the engine's control
// loop (which ticks in real time) has work left, and the clock is paced to
// real time.
// hook, if set, is called at every instant once the workers are done with it,
// before the clock moves on.
func runClocked(t *testing.T, cfg Config, clk *linktest.Clock, links []Link, hook func(*Engine), loops ...*linktest.Link) *report.Report {
	t.Helper()
	return runClockedCtx(t, context.Background(), cfg, clk, links, hook, loops...)
}

// runClockedCtx is runClocked with a context for Run.
func runClockedCtx(t *testing.T, ctx context.Context, cfg Config, clk *linktest.Clock, links []Link, hook func(*Engine), loops ...*linktest.Link) *report.Report {
	t.Helper()
	cfg.Clock = clk.Now
	if cfg.Idle == 0 {
		cfg.Idle = time.Millisecond // idle workers yield (linktest's Poll)
	}
	e, err := New(cfg, links)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   *report.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := e.Run(ctx, time.Second, nil)
		done <- result{r, err}
	}()
	// The clock stands still until Run has started (the loop below then
	// waits for the workers' polls): the first SYN leaves at 0. Not
	// Running: a run that fails everything at once may be closing by the
	// time this goroutine looks, and closes only as its clock moves.
	waitFor(t, "the engine's Run to start", func() bool { return e.started.Load() })
	step := clk.Step
	if step == 0 {
		step = time.Millisecond
	}
	// A run that never ends (its clock moves on forever) fails here with
	// what it was doing, not at the package's timeout.
	deadline := time.Now().Add(runDeadline)
	for {
		if time.Now().After(deadline) {
			s := e.Snapshot()
			t.Fatalf("the run did not end in %v of real time: engine clock at %v, generating %v, attempted %d, in flight %d, open %d",
				runDeadline, clk.Now(), s.Generating, s.Get(CntAttempted), s.InFlight(), s.Open())
		}
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatal(res.err)
			}
			checkBooks(t, e, res.r)
			return res.r
		default:
		}
		// The workers have timers to run while attempts are in flight
		// and while FIN closes are under way.
		s := e.Snapshot()
		if busy := s.InFlight() > 0 || cfg.Close == CloseFIN && s.Open() > 0; !s.Generating && !busy && s.Get(CntAttempted) > 0 {
			time.Sleep(step)
		} else {
			for _, l := range loops {
				p := l.Polls()
				waitFor(t, "the workers to go round their loop twice", func() bool { return l.Polls() >= p+2 || !e.Running() })
			}
		}
		// The hook runs here, once the workers are done with this instant:
		// a clock jump of its own then finds them idle, not halfway through
		// a batch whose SYNs the server would stamp with the later time.
		if hook != nil {
			hook(e)
		}
		clk.Advance(step)
		if clk.Now() > 10*time.Minute {
			t.Fatal("the run did not end within 10 minutes of engine time")
		}
	}
}

// Blackholed SYNs end in ETIMEDOUT after the schedule (R4, TCP_SYNCNT=1:
// SYNs at 0, 1, 2 s, failure at 3 s), on a clock the test moves in lock
// step with the worker: exact times, milliseconds of real time.
func TestEngineTimeout(t *testing.T) {
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count = 50
	cfg.Params.SynRetries = 1
	cfg.Drain = 10 * time.Second
	clk := &linktest.Clock{}
	var mu sync.Mutex
	var synAt []time.Duration // engine time of each SYN of the first port seen
	first := -1
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN {
			mu.Lock()
			if first < 0 {
				first = int(pk.SrcPort)
			}
			if int(pk.SrcPort) == first {
				synAt = append(synAt, clk.Now())
			}
			mu.Unlock()
		}
		return nil
	})
	start := time.Now()
	var failedAt time.Duration
	r := runClocked(t, cfg, clk, []Link{l}, func(e *Engine) {
		if failedAt == 0 && e.Snapshot().Failed["ETIMEDOUT"] == 50 {
			failedAt = clk.Now()
		}
	}, l)
	if r.Failed["ETIMEDOUT"] != 50 || r.Retransmits != 100 || r.Attempted != 50 {
		t.Fatalf("report %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{0, time.Second, 2 * time.Second}
	if len(synAt) != 3 {
		t.Fatalf("SYNs at %v, want %v", synAt, want)
	}
	for i, w := range want {
		if synAt[i] < w || synAt[i] > w+2*time.Millisecond {
			t.Fatalf("SYNs at %v, want %v", synAt, want)
		}
	}
	// Counters are published every 5 ms of engine time.
	if failedAt < 3*time.Second || failedAt > 3*time.Second+10*time.Millisecond {
		t.Fatalf("ETIMEDOUT at %v on the engine clock, want 3 s", failedAt)
	}
	t.Logf("3 s of engine time in %v of real time", time.Since(start))
}

// A link that fails for good (its interface gone) stops the run at once,
// with the error and a balanced report.
func TestEngineLinkBreaks(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Rate = 0, 20000
	cfg.Duration = time.Minute
	gone := errors.New("interface gone")
	var l *linktest.Link
	l = linktest.NewLink(func(f []byte) [][]byte {
		out := srv.Handle(f)
		// The interface goes away after the 100th handshake's ACK.
		if srv.Accepted() >= 100 {
			l.Break(gone)
		}
		return out
	})
	e, err := New(cfg, []Link{l})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := e.Run(context.Background(), time.Second, nil)
	if !errors.Is(err, gone) || r == nil {
		t.Fatalf("Run: %v, report %v", err, r)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the run went on for %v after the link broke", took)
	}
	checkBooks(t, e, r)
	if r.Established < 100 || r.Stopped != "" && !strings.Contains(r.Stopped, "gone") {
		t.Fatalf("report %+v", r)
	}
}

// With 20% loss both ways every attempt still ends exactly once (the books
// balance against the table), retransmitted SYNs carry the TSval of their
// own departure, and the server never accepts more than we established
// (less when our ACK is lost and the RST behind it removes the half-open
// connection, as on a real network).
func TestEngineLossyBooks(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	l := linktest.NewLink(srv.Handle)
	l.Loss = 0.2
	cfg := testConfig(80)
	cfg.Count = 3000
	cfg.Params.SynRetries = 2
	cfg.Drain = 20 * time.Second
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	clean(t, srv)
	if r.InFlight != 0 || r.Established+r.Failed["ETIMEDOUT"] != 3000 || srv.Accepted() > r.Established {
		t.Fatalf("report %+v, server accepted %d", r, srv.Accepted())
	}
	if r.Retransmits == 0 {
		t.Fatal("no retransmissions under 20% loss")
	}
	t.Logf("established %d, timed out %d, retransmits %d, server accepted %d", r.Established, r.Failed["ETIMEDOUT"], r.Retransmits, srv.Accepted())
}

// Two workers on two links: a SYN-ACK for worker 1's port arriving on worker
// 0's link is completed by worker 0, and the port goes back to worker 1.
func TestEngineCrossQueue(t *testing.T) {
	srv := linktest.NewServer()
	var l0, l1 *linktest.Link
	// Replies to anything go to link 0, as if RSS put them all on queue 0.
	l0 = linktest.NewLink(srv.Handle)
	l1 = linktest.NewLink(func(f []byte) [][]byte {
		l0.Inject(srv.Handle(f)...)
		return nil
	})
	cfg := testConfig(80)
	cfg.Count = 4000
	cfg.Concurrency = 100 // forces port reuse: needs the hand-back to work
	cfg.PortLo, cfg.PortHi = 10000, 10199
	r := runEngine(t, cfg, l0, l1)
	if r.Established != 4000 || srv.Accepted() != 4000 {
		t.Fatalf("established %d, accepted %d: %+v", r.Established, srv.Accepted(), r)
	}
	clean(t, srv)
}

// FIN mode: every connection closes gracefully (the server sees FIN, then
// the ACK of its own FIN), nothing stays open.
func TestEngineFIN(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(80)
	cfg.Count = 500
	cfg.Close = CloseFIN
	cfg.TimeWait = 100 * time.Millisecond
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	if r.Established != 500 || r.Closed != 500 || srv.Open() != 0 || srv.Accepted() != 500 {
		t.Fatalf("report %+v, server open %d", r, srv.Open())
	}
	clean(t, srv)
}

// Hold mode keeps every connection until the end, then aborts them all
// with RSTs the server takes (TestEngineConcurrencyBound bounds them).
func TestEngineHold(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(80)
	cfg.Count = 300
	cfg.Close = CloseHold
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	if r.Established != 300 || r.Closed != 300 || srv.Open() != 0 || srv.Resets() != 300 || srv.MaxOpen() != 300 {
		t.Fatalf("report %+v, server open %d, resets %d, held at most %d", r, srv.Open(), srv.Resets(), srv.MaxOpen())
	}
	clean(t, srv)
}

// dialOnly starts a dial-only engine on links (in real time) and returns
// once it runs; stop ends the run and returns its report.
func dialOnly(t *testing.T, cfg Config, links ...Link) (e *Engine, stop func() *report.Report) {
	t.Helper()
	cfg.Count, cfg.DialOnly = 0, true
	if cfg.Idle == 0 {
		cfg.Idle = time.Millisecond
	}
	e, err := New(cfg, links)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan *report.Report, 1)
	go func() { r, _ := e.Run(ctx, time.Second, nil); done <- r }()
	waitFor(t, "the dial-only engine to run", e.Running)
	return e, func() *report.Report {
		cancel()
		return <-done
	}
}

func TestDial(t *testing.T) {
	srv := linktest.NewServer()
	e, stop := dialOnly(t, testConfig(80, 81), linktest.NewLink(srv.Handle))
	c, err := e.Dial(context.Background(), netip.MustParseAddrPort("198.18.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	if srv.Open() != 1 {
		t.Fatal("server has no connection")
	}
	select {
	case <-c.closed:
		t.Fatal("an open connection reported closed")
	default:
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Dial(context.Background(), netip.MustParseAddrPort("198.18.0.2:81")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial closed port: %v", err)
	}
	if _, err := e.Dial(context.Background(), netip.MustParseAddrPort("198.18.0.9:80")); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("dial non-target: %v", err)
	}
	r := stop()
	if r.Established != 1 || r.Closed != 1 || r.Failed["ECONNREFUSED"] != 1 || srv.Open() != 0 {
		t.Fatalf("report %+v open %d", r, srv.Open())
	}
	clean(t, srv)
}

// fullRing is a linktest.Link whose TX ring takes only part of each batch.
type fullRing struct{ *linktest.Link }

func (f fullRing) Transmit(d []xsk.Desc) int {
	n := len(d) / 3
	f.Link.Transmit(d[:n])
	return n
}

// A TX ring that refuses two thirds of every batch: the refused frames are
// counted as dropped and their buffers return to the link (no overflow of
// the worker's cache), timers resend what mattered, and every attempt ends
// once, established or ETIMEDOUT.
func TestEngineTXRingFull(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(80)
	cfg.Count = 500
	cfg.Params.SynRetries = 2
	cfg.Drain = 10 * time.Second
	l := linktest.NewLink(srv.Handle)
	r := runClocked(t, cfg, &linktest.Clock{}, []Link{fullRing{l}}, nil, l)
	if r.TxDropped == 0 || r.InFlight != 0 || r.Established+r.Failed["ETIMEDOUT"] != 500 || r.Established < 400 {
		t.Fatalf("dropped %d, in flight %d, established %d, failed %v", r.TxDropped, r.InFlight, r.Established, r.Failed)
	}
	clean(t, srv)
}

// SYN-only mode: every SYN-ACK is counted and reset, the server accepts
// nothing.
func TestEngineSYNOnly(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(80)
	cfg.Count = 300
	cfg.Close = CloseSYNOnly
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	if r.Established != 300 || r.RSTSent != 300 || srv.Accepted() != 0 || r.InFlight != 0 || srv.Resets() != 300 {
		t.Fatalf("report %+v, accepted %d, resets %d", r, srv.Accepted(), srv.Resets())
	}
	clean(t, srv)
}

// runDeadline bounds a clocked run in real time: the longest takes about
// 5 s on a busy 2-core machine, and 44 to 55 s under the race detector
// (TestEngineClosedOnce's FIN-closed runs with loss, whose orphans need
// 103 s of engine time), which gets three times the bound.
const runDeadline = 60 * time.Second * raceSlowdown

// waitFor yields until cond holds, and fails the test saying what it
// waited for if that takes more than 10 s of real time: a regression that
// stops the engine fails with a message instead of hanging the package.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !cond(); i++ {
		if i%1024 == 0 && time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		runtime.Gosched()
	}
}
