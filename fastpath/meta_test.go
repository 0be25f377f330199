package fastpath

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/tcp"
	"golang.org/x/sys/unix"
)

// The stamp's format is the XDP program's (bpf/xdp.h) and linktest's.
func TestMetaFormat(t *testing.T) {
	h, err := os.ReadFile("../bpf/xdp.h")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("#define XDPC_META_MAGIC %#xULL", uint64(metaMagic)); !strings.Contains(string(h), want) {
		t.Fatalf("bpf/xdp.h lacks %q", want)
	}
	if linktest.MetaMagic != metaMagic {
		t.Fatal("linktest writes another magic")
	}
}

// A stamp is taken only with its check word, and cleared once read: the
// headroom's next frame may come without one.
func TestArrival(t *testing.T) {
	umem := make([]byte, 4096)
	addr := uint64(256)
	if _, ok := arrival(umem, addr); ok {
		t.Fatal("zeroed headroom taken for a stamp")
	}
	binary.NativeEndian.PutUint64(umem[addr-16:], 123456789)
	binary.NativeEndian.PutUint64(umem[addr-8:], 123456789^metaMagic)
	if ns, ok := arrival(umem, addr); !ok || ns != 123456789 {
		t.Fatalf("stamp read as %d, %v", ns, ok)
	}
	if _, ok := arrival(umem, addr); ok {
		t.Fatal("a stamp read twice")
	}
	binary.NativeEndian.PutUint64(umem[addr-16:], 5)
	binary.NativeEndian.PutUint64(umem[addr-8:], 6)
	if _, ok := arrival(umem, addr); ok {
		t.Fatal("a wrong check word taken")
	}
	for _, a := range []uint64{0, 15, uint64(len(umem)) + 1} {
		if _, ok := arrival(umem, a); ok {
			t.Fatalf("stamp at %d", a)
		}
	}
	// The first and the last place a stamp fits.
	for _, a := range []uint64{16, uint64(len(umem))} {
		binary.NativeEndian.PutUint64(umem[a-16:], 7)
		binary.NativeEndian.PutUint64(umem[a-8:], 7^metaMagic)
		if ns, ok := arrival(umem, a); !ok || ns != 7 {
			t.Fatalf("stamp in front of %d: %d, %v", a, ns, ok)
		}
	}
}

// Without Config.Clock the stamps' clock is CLOCK_MONOTONIC: the base is
// that clock at the engine's epoch.
func TestMonoBase(t *testing.T) {
	e := &Engine{epoch: time.Now().Add(-time.Second)}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	e.setMonoBase()
	if d := time.Duration(ts.Nano() - time.Second.Nanoseconds() - e.monoBase); d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("mono base %d, %v off CLOCK_MONOTONIC a second ago", e.monoBase, d)
	}
	e.cfg.Clock = func() time.Duration { return 0 }
	e.setMonoBase()
	if e.monoBase != 0 {
		t.Fatalf("with a manual clock the base is %d, want 0", e.monoBase)
	}
}

// R7 with arrival stamps: a round trip of 2.5 ms on a clock that moves
// 1 ms at a time is recorded as 2.5 ms (the stamp), not the 3 ms of the
// loop that finds the reply; every reply is counted as stamped.
func TestEngineRTTArrivalStamps(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	l := linktest.NewLink(srv.Handle)
	l.Clock, l.Delay, l.Stamp = clk, 2500*time.Microsecond, true
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Rate = 200, 20000
	var e *Engine
	r := runClocked(t, cfg, clk, []Link{l}, engineOf(&e), l)
	clean(t, srv)
	h := r.Histogram()
	if s := e.Snapshot(); r.Established != 200 || h.N != 200 || s.Get(CntRxStamped) != 200 || r.RxStamped != 200 {
		t.Fatalf("established %d, RTT samples %d, stamped %d (report %d)", r.Established, h.N, s.Get(CntRxStamped), r.RxStamped)
	}
	if h.CountBelow(2_400_000) != 0 || h.CountBelow(2_650_000) < 190 {
		t.Fatalf("RTT p50 %.6fs max %.6fs; want 2.5 ms from the stamps", r.RTT.P50, r.RTT.Max)
	}
}

// A SYN's send time is its place in the sendto that sent its batch: the
// batch left between t0 and t1, in order; what the ring refused keeps the
// loop's time; an attempt that moved on (a newer SYN) is left alone.
func TestSYNSendTimes(t *testing.T) {
	cfg := testConfig(linktest.BlackholePort)
	e, err := New(cfg, []Link{linktest.NewLink(func([]byte) [][]byte { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	for i := 0; i < 5; i++ {
		en := &e.table[i]
		en.conn.State, en.syn = tcp.SynSent, synTimeOf(100)
		w.synQ = append(w.synQ, synSent{idx: slot(i), pos: i, orig: 100})
	}
	e.table[4].syn = synTimeOf(300) // retransmitted since
	w.synQ[4].pos = 1
	e.table[5].conn.State, e.table[5].syn = tcp.Established, synTimeOf(100) // answered already
	w.synQ = append(w.synQ, synSent{idx: 5, pos: 2, orig: 100})
	e.table[6].conn.State, e.table[6].syn = tcp.SynRecv, synTimeOf(100) // simultaneous open
	w.synQ = append(w.synQ, synSent{idx: 6, pos: 2, orig: 100})
	w.timeSYNs(1000, 2000, 4, 3)
	w.timeSYNs(5000, 6000, 4, 4) // a later flush leaves them alone
	w.applySYNTimes()
	for i, want := range []int64{1000, 1250, 1500, 100, 300, 100, 1500} {
		if got := e.table[i].syn; got != synTimeOf(want) {
			t.Errorf("SYN %d: sent at %d, want %d", i, got.ns(2000), want)
		}
	}
	if len(w.synQ) != 0 {
		t.Fatalf("%d SYNs left to time", len(w.synQ))
	}
	w.synQ = append(w.synQ, synSent{idx: 0, pos: 0, orig: 1000})
	w.applySYNTimes()
	if len(w.synQ) != 1 || e.table[0].syn != synTimeOf(1000) {
		t.Fatal("a SYN not yet flushed was timed")
	}
}

// A stamp becomes engine time by the monotonic base; one from before the
// epoch or more than a second past the loop's time is not taken, nor any
// when the base is unknown.
func TestArrivalTime(t *testing.T) {
	e := &Engine{monoBase: 5_000}
	for _, tc := range []struct {
		ns, now, want int64
		ok            bool
	}{
		{5_500, 10_000, 500, true},
		{5_000, 10_000, 0, true},
		{4_999, 10_000, -1, false},
		{5_000 + 10_000 + 1e9, 10_000, 10_000 + 1e9, true},
		{5_001 + 10_000 + 1e9, 10_000, 10_001 + 1e9, false},
	} {
		if got, ok := e.arrivalTime(tc.ns, tc.now); got != tc.want || ok != tc.ok {
			t.Errorf("stamp %d at %d: %d %v, want %d %v", tc.ns, tc.now, got, ok, tc.want, tc.ok)
		}
	}
	e.monoBase = noStamps
	if _, ok := e.arrivalTime(5_500, 10_000); ok {
		t.Error("a stamp taken without a base")
	}
}

// A flush times the SYNs in its batch from the clock around the sendto,
// not from the loop's start.
func TestFlushTimesSYNs(t *testing.T) {
	clk := &linktest.Clock{}
	cfg := testConfig(linktest.BlackholePort)
	cfg.Clock = clk.Now
	e, err := New(cfg, []Link{linktest.NewLink(func([]byte) [][]byte { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	w := e.workers[0]
	addr, _, ok := w.txBuf()
	if !ok {
		t.Fatal("no TX frame")
	}
	e.table[0].conn.State, e.table[0].syn = tcp.SynSent, synTimeOf(0)
	w.synQ = append(w.synQ, synSent{idx: 0, pos: w.txN, orig: 0})
	w.queue(addr, 60)
	clk.Advance(5 * time.Millisecond) // the loop ran on before the flush
	w.flush()
	w.applySYNTimes()
	if got := e.table[0].syn.ns(int64(6 * time.Millisecond)); got != int64(5*time.Millisecond) {
		t.Fatalf("SYN sent at %d, want the flush's 5 ms", got)
	}
}

// A SYN's send time in 4 bytes reads back to 32 ns from any time up to
// 136 s later, across the wrap of its 32 bits, and from up to 1 s before
// it (an arrival stamp later than the loop's clock: a request's start).
func TestSynTime(t *testing.T) {
	for _, at := range []int64{int64(2 * time.Second), 12345 + 1<<32, 1<<37 - 40, 1 << 37, 5<<37 + 999, int64(10 * time.Hour)} {
		st := synTimeOf(at)
		for _, later := range []time.Duration{-time.Second + 32, -5 * time.Microsecond, -32, 0, time.Microsecond, time.Second, 120 * time.Second, 136 * time.Second} {
			if got := st.ns(at + int64(later)); got != at&^31 {
				t.Fatalf("sent at %d, read %v later: %d, want %d", at, later, got, at&^31)
			}
		}
	}
}
