package fastpath

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// The end of connections and of runs: FIN retransmission and the orphan
// timeouts (FIN mode), what hold mode aborts, and how a run stops.

// finPeer is srv behind a path that loses the first lose FINs of every
// connection (-1: all of them) and records, per client port, when each FIN
// left.
type finPeer struct {
	srv  *linktest.Server
	clk  *linktest.Clock
	lose int
	mu   sync.Mutex
	fins map[uint16][]time.Duration
}

func (p *finPeer) handle(f []byte) [][]byte {
	var pk tcp.Packet
	if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags.Has(tcp.FlagFIN) {
		p.mu.Lock()
		p.fins[pk.SrcPort] = append(p.fins[pk.SrcPort], p.clk.Now())
		n := len(p.fins[pk.SrcPort])
		p.mu.Unlock()
		if p.lose < 0 || n <= p.lose {
			return nil
		}
	}
	return p.srv.Handle(f)
}

// FIN mode, FIN-WAIT-1: a lost FIN is sent again after the RTO (200 ms,
// TCP_RTO_MIN, then doubling), and the close completes; when every FIN is
// lost the orphan gives up after 8 retransmissions (tcp_orphan_retries
// 0 means 8) and the connection counts as closed.
func TestEngineFINRetransmitted(t *testing.T) {
	t.Run("two lost", func(t *testing.T) {
		srv := linktest.NewServer()
		clk := &linktest.Clock{}
		p := &finPeer{srv: srv, clk: clk, lose: 2, fins: map[uint16][]time.Duration{}}
		l := linktest.NewLink(p.handle)
		cfg := testConfig(linktest.ListenPort)
		cfg.Count, cfg.Close, cfg.TimeWait = 10, CloseFIN, 10*time.Millisecond
		var e *Engine
		r := runClocked(t, cfg, clk, []Link{l}, engineOf(&e), l)
		clean(t, srv)
		s := e.Snapshot()
		if fins := s.Get(CntFINSent); r.Established != 10 || r.Closed != 10 || fins != 30 || srv.Open() != 0 {
			t.Fatalf("established %d closed %d FINs sent %d, server still holds %d", r.Established, r.Closed, fins, srv.Open())
		}
		for port, at := range p.fins {
			if len(at) != 3 || !near(at[1]-at[0], 200*time.Millisecond) || !near(at[2]-at[1], 400*time.Millisecond) {
				t.Fatalf("port %d: FINs at %v, want 200 ms then 400 ms apart", port, at)
			}
		}
	})
	t.Run("all lost", func(t *testing.T) {
		srv := linktest.NewServer()
		clk := &linktest.Clock{Step: 10 * time.Millisecond}
		p := &finPeer{srv: srv, clk: clk, lose: -1, fins: map[uint16][]time.Duration{}}
		l := linktest.NewLink(p.handle)
		cfg := testConfig(linktest.ListenPort)
		cfg.Count, cfg.Close, cfg.Drain = 10, CloseFIN, 5*time.Minute
		var closedAt time.Duration
		var e *Engine
		r := runClocked(t, cfg, clk, []Link{l}, closedBy(10, clk, &e, &closedAt), l)
		s := e.Snapshot()
		if fins := s.Get(CntFINSent); r.Established != 10 || r.Closed != 10 || fins != 90 {
			t.Fatalf("established %d closed %d FINs sent %d, want 10 closed after 9 FINs each", r.Established, r.Closed, fins)
		}
		// 200 ms << 0..8: the FINs leave over 51 s, the orphan dies 51.2 s
		// after the last one.
		if closedAt < 102*time.Second || closedAt > 103*time.Second {
			t.Fatalf("orphans closed at %v, want 102.2 s", closedAt)
		}
	})
}

// closedBy is a runClocked hook that keeps the engine in e and notes in
// at the clock's time when n connections have closed.
func closedBy(n uint64, clk *linktest.Clock, e **Engine, at *time.Duration) func(*Engine) {
	return func(x *Engine) {
		*e = x
		if s := x.Snapshot(); *at == 0 && s.Get(CntClosed) == n {
			*at = clk.Now()
		}
	}
}

// near reports whether d is within 3 ms (a few worker loops: a frame is
// stamped on the loop's time, seen by the peer on the clock) of want.
func near(d, want time.Duration) bool {
	return d >= want-3*time.Millisecond && d <= want+3*time.Millisecond
}

// FIN mode, FIN-WAIT-2: a server that acknowledges our FIN and never sends
// its own leaves the connection as an orphan that ends after the FIN
// timeout (here TimeWait, as tcp_fin_timeout equals TCP_TIMEWAIT_LEN).
func TestEngineFINWait2Timeout(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{Step: 5 * time.Millisecond}
	l := linktest.NewLink(func(f []byte) [][]byte {
		out := srv.Handle(f)
		var pk tcp.Packet
		if tcp.Parse(f, &pk) != tcp.KindTCP || !pk.Seg.Flags.Has(tcp.FlagFIN) {
			return out
		}
		// The server's FIN|ACK, without the FIN.
		var r tcp.Packet
		if len(out) != 1 || tcp.Parse(out[0], &r) != tcp.KindTCP {
			return nil
		}
		return [][]byte{replyTo(&pk, &tcp.Reply{Flags: tcp.FlagACK, Seq: r.Seg.Seq, Ack: r.Seg.Ack, Window: 502})}
	})
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Close, cfg.TimeWait, cfg.Drain = 10, CloseFIN, 3*time.Second, time.Minute
	var closedAt time.Duration
	var e *Engine
	r := runClocked(t, cfg, clk, []Link{l}, closedBy(10, clk, &e, &closedAt), l)
	s := e.Snapshot()
	if fins := s.Get(CntFINSent); r.Established != 10 || r.Closed != 10 || fins != 10 {
		t.Fatalf("established %d closed %d FINs sent %d", r.Established, r.Closed, fins)
	}
	if closedAt < 3*time.Second || closedAt > 3*time.Second+20*time.Millisecond {
		t.Fatalf("FIN-WAIT-2 orphans closed at %v, want 3 s after the FINs", closedAt)
	}
	for i := range e.table {
		if st := e.table[i].peek(); st != tcp.Free {
			t.Fatalf("entry %d left in %v", i, st)
		}
	}
}

// Hold mode, the server closes first: we close too (our FIN rides on the
// ACK of theirs, LAST-ACK), retransmit our FIN when it is lost 200 ms
// later (not at a SYN timer's second), and are closed on the server's
// ACK; what the server left open is aborted at the end.
func TestEngineHoldServerCloses(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	var mu sync.Mutex
	fins := map[uint16][]time.Duration{}
	handshakes := 0
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) != tcp.KindTCP {
			return nil
		}
		iss := srv.ISS(&pk)
		if pk.Seg.Flags == tcp.FlagFIN|tcp.FlagACK && pk.Seg.Ack == iss+2 {
			// Our FIN after theirs: the first is lost, the second acked.
			mu.Lock()
			defer mu.Unlock()
			fins[pk.SrcPort] = append(fins[pk.SrcPort], clk.Now())
			if len(fins[pk.SrcPort]) == 1 {
				return nil
			}
			return [][]byte{replyTo(&pk, &tcp.Reply{Flags: tcp.FlagACK, Seq: iss + 2, Ack: pk.Seg.Seq + 1, Window: 502})}
		}
		out := srv.Handle(f)
		if pk.Seg.Flags == tcp.FlagACK && pk.Seg.Ack == iss+1 {
			// The handshake's ACK: the server closes every other
			// connection at once.
			mu.Lock()
			handshakes++
			odd := handshakes%2 == 1
			mu.Unlock()
			if !odd {
				return out
			}
			out = append(out, replyTo(&pk, &tcp.Reply{Flags: tcp.FlagFIN | tcp.FlagACK, Seq: iss + 1, Ack: pk.Seg.Seq, Window: 502}))
		}
		return out
	})
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Close, cfg.HoldFor = 20, CloseHold, 500*time.Millisecond
	r := runClocked(t, cfg, clk, []Link{l}, paceAfterGeneration, l)
	clean(t, srv)
	if r.Established != 20 || r.Closed != 20 || r.RSTSent != 10 || srv.Resets() != 10 {
		t.Fatalf("established %d closed %d RSTs sent %d, the server took %d", r.Established, r.Closed, r.RSTSent, srv.Resets())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fins) != 10 {
		t.Fatalf("%d connections closed by the server, want 10", len(fins))
	}
	for port, at := range fins {
		if len(at) != 2 || !near(at[1]-at[0], 200*time.Millisecond) {
			t.Fatalf("port %d: our FINs at %v, want two 200 ms apart", port, at)
		}
	}
}

// A cancelled run (Ctrl-C) stops generating, gives what is in flight
// 100 ms, not the whole drain, then closes (50 ms).
func TestEngineCancelGrace(t *testing.T) {
	clk := &linktest.Clock{}
	l := linktest.NewLink(func([]byte) [][]byte { return nil })
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count, cfg.Rate, cfg.Duration, cfg.Drain = 0, 1000, time.Hour, 10*time.Second
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var cancelledAt time.Duration
	r := runClockedCtx(t, ctx, cfg, clk, []Link{l}, func(*Engine) {
		if clk.Now() == 50*time.Millisecond {
			cancel()
			cancelledAt = clk.Now()
		}
		if ctx.Err() != nil {
			// Keep pace with the control loop, which looks every 5 ms.
			time.Sleep(time.Millisecond)
		}
	}, l)
	end := clk.Now()
	if r.InFlight == 0 || r.Attempted < 50 || r.Attempted > 60 {
		t.Fatalf("attempted %d, in flight %d", r.Attempted, r.InFlight)
	}
	if end-cancelledAt < 150*time.Millisecond || end-cancelledAt > time.Second {
		t.Fatalf("the run ended %v after the cancel, want 100 ms of drain and 50 ms of close", end-cancelledAt)
	}
}

// While the run closes, it is no longer running: Dial refuses at once
// (ENETDOWN) rather than open a connection the close would miss.
func TestEngineClosingRefusesDial(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count = 5
	checked := false
	runClocked(t, cfg, clk, []Link{l}, func(e *Engine) {
		if checked || e.phase.Load() != phaseClose {
			return
		}
		checked = true
		if e.Running() {
			t.Error("Running while the run closes")
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := e.Dial(ctx, netip.MustParseAddrPort("198.18.0.2:80")); !errors.Is(err, syscall.ENETDOWN) {
			t.Errorf("Dial while closing: %v, want ENETDOWN", err)
		}
	}, l)
	if !checked {
		t.Fatal("the run never seen closing")
	}
}

// Dial returns once the handshake's ACK is out, as connect() does: a
// worker that completes a Dial'ed handshake tells the dialer after the
// flush that sends the ACK, not while the ACK still waits in its batch (a
// caller that looked at the server then found no connection).
func TestDialToldAfterACKLeaves(t *testing.T) {
	cfg := testConfig(80)
	cfg.PortLo, cfg.PortHi = 10000, 10001
	w, idx, c, srv := sinkAttempt(t, cfg)
	w.flush() // the SYN leaves
	e := w.e
	dc := &Conn{e: e, done: make(chan syscall.Errno, 1), closed: make(chan struct{})}
	e.waiters[idx] = dc
	e.table[idx].setDialed(true)
	w.frame(sinkSynAck(c, srv))
	if c.State != tcp.Established || w.txN != 1 || len(dc.done) != 0 {
		t.Fatalf("after the SYN-ACK: %v, %d frames waiting, dialer told %v", c.State, w.txN, len(dc.done) != 0)
	}
	w.flush()
	w.deliver()
	select {
	case err := <-dc.done:
		if err != 0 {
			t.Fatalf("dialer told %v", err)
		}
	default:
		t.Fatal("dialer not told after the ACK left")
	}
}

// Dial opens from the first source to the target asked for, also when
// there are several of each (pairs are target-major).
func TestDialTargetWithSources(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(linktest.ClosedPort, linktest.ListenPort)
	cfg.Sources = append(cfg.Sources, Source{Addr: netip.MustParseAddr("198.18.0.3")})
	e, stop := dialOnly(t, cfg, linktest.NewLink(srv.Handle))
	c, err := e.Dial(t.Context(), netip.MustParseAddrPort("198.18.0.2:80"))
	if err != nil {
		t.Fatalf("dial the second target: %v", err)
	}
	if c.Local.Addr() != netip.MustParseAddr("198.18.0.1") || srv.Open() != 1 {
		t.Fatalf("local %v, server holds %d", c.Local, srv.Open())
	}
	if _, err := e.Dial(t.Context(), netip.MustParseAddrPort("198.18.0.2:81")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial the first target (closed port): %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r := stop()
	clean(t, srv)
	if r.Established != 1 || r.Closed != 1 || len(e.waiters) != 0 {
		t.Fatalf("established %d closed %d, %d dialers left", r.Established, r.Closed, len(e.waiters))
	}
}
