package fastpath

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

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

func runEngine(t *testing.T, cfg Config, links ...Link) *Report {
	t.Helper()
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
	if r.Attempted != r.Established+r.FailedTotal()+r.InFlight {
		t.Fatalf("books do not balance: %+v", r)
	}
	return r
}

// Every attempt ends once, with the outcome of its port, and the server
// accepted exactly the established ones (fake link, no loss).
func TestEngineOutcomes(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(80, 81)
	cfg.Count = 2000
	r := runEngine(t, cfg, newMemLink(srv.handle))
	if r.Attempted != 2000 || r.Established != 1000 || r.Failed["ECONNREFUSED"] != 1000 || r.InFlight != 0 {
		t.Fatalf("report %+v", r)
	}
	if srv.accepted.Load() != 1000 || srv.open() != 0 {
		t.Fatalf("server accepted %d, still open %d", srv.accepted.Load(), srv.open())
	}
}

// Blackholed SYNs end in ETIMEDOUT after the schedule (R4, TCP_SYNCNT=1:
// 3 SYNs, 3 s).
func TestEngineTimeout(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(82)
	cfg.Count = 50
	cfg.Params.SynRetries = 1
	cfg.Drain = 10 * time.Second
	start := time.Now()
	r := runEngine(t, cfg, newMemLink(srv.handle))
	took := time.Since(start)
	if r.Failed["ETIMEDOUT"] != 50 || r.Retransmits != 100 {
		t.Fatalf("report %+v", r)
	}
	if took < 3*time.Second || took > 4*time.Second {
		t.Fatalf("ETIMEDOUT after %v, want about 3 s", took)
	}
}

// With 20% loss both ways every attempt still ends exactly once and the
// server accepts exactly what we established (the server's ACK is lost at
// most ... the books must balance either way).
func TestEngineLossyBooks(t *testing.T) {
	srv := newFakeServer()
	l := newMemLink(srv.handle)
	l.loss = 0.2
	cfg := testConfig(80)
	cfg.Count = 3000
	cfg.Params.SynRetries = 2
	cfg.Drain = 20 * time.Second
	r := runEngine(t, cfg, l)
	if r.InFlight != 0 || r.Established+r.Failed["ETIMEDOUT"] != 3000 {
		t.Fatalf("report %+v", r)
	}
	if r.Retransmits == 0 {
		t.Fatal("no retransmissions under 20% loss")
	}
	t.Logf("established %d, timed out %d, retransmits %d, server accepted %d", r.Established, r.Failed["ETIMEDOUT"], r.Retransmits, srv.accepted.Load())
}

// Two workers on two links: a SYN-ACK for worker 1's port arriving on worker
// 0's link is completed by worker 0, and the port goes back to worker 1.
func TestEngineCrossQueue(t *testing.T) {
	srv := newFakeServer()
	var l0, l1 *memLink
	// Replies to anything go to link 0, as if RSS put them all on queue 0.
	l0 = newMemLink(srv.handle)
	l1 = newMemLink(func(f []byte) [][]byte {
		rs := srv.handle(f)
		l0.mu.Lock()
		l0.rxq = append(l0.rxq, rs...)
		l0.mu.Unlock()
		return nil
	})
	cfg := testConfig(80)
	cfg.Count = 4000
	cfg.Concurrency = 100 // forces port reuse: needs the hand-back to work
	cfg.PortLo, cfg.PortHi = 10000, 10199
	r := runEngine(t, cfg, l0, l1)
	if r.Established != 4000 || srv.accepted.Load() != 4000 {
		t.Fatalf("established %d, accepted %d: %+v", r.Established, srv.accepted.Load(), r)
	}
}

// FIN mode: every connection closes gracefully, nothing stays open.
func TestEngineFIN(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(80)
	cfg.Count = 500
	cfg.Close = CloseFIN
	cfg.TimeWait = 100 * time.Millisecond
	r := runEngine(t, cfg, newMemLink(srv.handle))
	if r.Established != 500 || r.Closed != 500 || srv.open() != 0 {
		t.Fatalf("report %+v, server open %d", r, srv.open())
	}
}

// Hold mode with a concurrency bound keeps C connections, closes all at the
// end.
func TestEngineHold(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(80)
	cfg.Count = 300
	cfg.Close = CloseHold
	r := runEngine(t, cfg, newMemLink(srv.handle))
	if r.Established != 300 || r.Closed != 300 || srv.open() != 0 {
		t.Fatalf("report %+v, server open %d", r, srv.open())
	}
}

// Asked rate is met within 2 %.
func TestEngineRate(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(80)
	cfg.Count = 0
	cfg.Duration = 2 * time.Second
	cfg.Rate = 5000
	r := runEngine(t, cfg, newMemLink(srv.handle))
	if r.AttemptRate < 4900 || r.AttemptRate > 5100 {
		t.Fatalf("attempt rate %.0f, asked 5000", r.AttemptRate)
	}
}

func TestDial(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(80, 81)
	cfg.Count = 0
	cfg.Duration = time.Hour
	cfg.Rate = 0.000001 // no load: Dial only
	e, err := New(cfg, []Link{newMemLink(srv.handle)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Report)
	go func() { r, _ := e.Run(ctx, time.Second, nil); done <- r }()
	time.Sleep(20 * time.Millisecond)
	c, err := e.Dial(context.Background(), netip.MustParseAddrPort("198.18.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	if srv.open() != 1 {
		t.Fatal("server has no connection")
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
	cancel()
	r := <-done
	if r.Established != 1 || r.Failed["ECONNREFUSED"] != 1 || srv.open() != 0 {
		t.Fatalf("report %+v open %d", r, srv.open())
	}
}

// fullRing is a memLink whose TX ring takes only part of each batch.
type fullRing struct{ *memLink }

func (f fullRing) Transmit(d []xsk.Desc) int {
	n := len(d) / 3
	f.memLink.Transmit(d[:n])
	return n
}

// A TX ring that refuses two thirds of every batch: the refused frames are
// counted as dropped and their buffers return to the link (no overflow of
// the worker's cache), timers resend what mattered, and every attempt ends
// once, established or ETIMEDOUT.
func TestEngineTXRingFull(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(80)
	cfg.Count = 500
	cfg.Params.SynRetries = 2
	cfg.Drain = 10 * time.Second
	r := runEngine(t, cfg, fullRing{newMemLink(srv.handle)})
	if r.TxDropped == 0 || r.InFlight != 0 || r.Established+r.Failed["ETIMEDOUT"] != 500 || r.Established < 400 {
		t.Fatalf("dropped %d, in flight %d, established %d, failed %v", r.TxDropped, r.InFlight, r.Established, r.Failed)
	}
}

// SYN-only mode: every SYN-ACK is counted and reset, the server accepts
// nothing.
func TestEngineSYNOnly(t *testing.T) {
	srv := newFakeServer()
	cfg := testConfig(80)
	cfg.Count = 300
	cfg.Close = CloseSYNOnly
	r := runEngine(t, cfg, newMemLink(srv.handle))
	if r.Established != 300 || r.RSTSent != 300 || srv.accepted.Load() != 0 || r.InFlight != 0 {
		t.Fatalf("report %+v, accepted %d", r, srv.accepted.Load())
	}
}
