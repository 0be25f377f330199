package fastpath

import (
	"bytes"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// engineOf is a runClocked hook that keeps the engine for checks after the
// run.
func engineOf(e **Engine) func(*Engine) { return func(x *Engine) { *e = x } }

// The counters behind the metrics, in a run whose every segment is known:
// FIN mode, 100 connections: SYN, ACK, FIN and the ACK of the server's FIN
// out (400 frames), SYN-ACK and FIN in (200 frames).
func TestEngineCounters(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Close, cfg.TimeWait = 100, CloseFIN, 10*time.Millisecond
	var e *Engine
	r := runClocked(t, cfg, clk, []Link{l}, engineOf(&e), l)
	clean(t, srv)
	s := e.Snapshot()
	want := map[Counter]uint64{CntAttempted: 100, CntEstablished: 100, CntSYNSent: 100, CntACKSent: 200, CntFINSent: 100,
		CntFINReceived: 100, CntRSTSent: 0, CntRSTReceived: 0, CntClosed: 100, CntTxFrames: 400, CntRxFrames: 200, CntNoConn: 0}
	for c, v := range want {
		if s.Get(c) != v {
			t.Errorf("counter %d = %d, want %d", c, s.Get(c), v)
		}
	}
	if s.Open() != 0 || len(r.Drops) != 0 || r.TableBytes != 10000*64 || r.MaxRSSBytes < 1<<20 {
		t.Fatalf("open %d, drops %v, table %d B, max RSS %d B", s.Open(), r.Drops, r.TableBytes, r.MaxRSSBytes)
	}
}

// A connection Dial opened and the peer then reset is reported reset, not
// open, and its Close returns at once.
func TestDialPeerReset(t *testing.T) {
	srv := linktest.NewServer()
	l := linktest.NewLink(func(f []byte) [][]byte {
		out := srv.Handle(f)
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagACK {
			out = append(out, replyTo(&pk, &tcp.Reply{Flags: tcp.FlagRST | tcp.FlagACK, Seq: pk.Seg.Ack, Ack: pk.Seg.Seq}))
		}
		return out
	})
	e, stop := dialOnly(t, testConfig(linktest.ListenPort), l)
	c, err := e.Dial(t.Context(), netip.MustParseAddrPort("198.18.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer's reset", func() bool { s := e.Snapshot(); return s.Get(CntReset) > 0 })
	e.mu.Lock()
	left := len(e.waiters)
	e.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d dialer(s) still waited for after the reset", left)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close after a peer reset: %v", err)
	}
	r := stop()
	if s := e.Snapshot(); r.Reset != 1 || r.Established != 1 || s.Open() != 0 {
		t.Fatalf("reset %d established %d open %d", r.Reset, r.Established, s.Open())
	}
}

// R5: an unacceptable ACK to our first SYN re-arms the SYN timer to 8 ms
// (TCP_TIMEOUT_MIN): the next SYN leaves 8 ms later, not a second later,
// also when the reply comes in on another worker's queue.
func TestEngineFastRetransmit(t *testing.T) {
	for _, workers := range []int{1, 2} {
		srv := linktest.NewServer()
		clk := &linktest.Clock{}
		srv.Clock = clk
		first := firstSYN()
		var l0 *linktest.Link
		peer := func(f []byte) [][]byte {
			var pk tcp.Packet
			if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN && first(&pk) {
				// A stale ACK from an old connection answers it.
				srv.Handle(f)
				l0.Inject(replyTo(&pk, &tcp.Reply{Flags: tcp.FlagACK, Seq: 1, Ack: pk.Seg.Seq + 1000}))
				return nil
			}
			if pk.Seg.Flags.Has(tcp.FlagRST) && !pk.Seg.Flags.Has(tcp.FlagACK) {
				return nil // our answer to the stale ACK: not for the server
			}
			out := srv.Handle(f)
			l0.Inject(out...)
			return nil
		}
		links, loops := peerLinks(peer, workers)
		l0 = loops[0]
		cfg := testConfig(linktest.ListenPort)
		cfg.Count = 40
		var e *Engine
		r := runClocked(t, cfg, clk, links, engineOf(&e), loops...)
		clean(t, srv)
		if s := e.Snapshot(); r.Established != 40 || r.Retransmits != 40 || s.Get(CntFastRetransmit) != 40 || s.Get(CntSYNSent) != 80 {
			t.Fatalf("%d worker(s): established %d retransmits %d fast %d SYNs sent %d", workers, r.Established, r.Retransmits, s.Get(CntFastRetransmit), s.Get(CntSYNSent))
		}
		for port, at := range srv.SYNs {
			if len(at) != 2 || at[1]-at[0] < 8*time.Millisecond || at[1]-at[0] > 10*time.Millisecond {
				t.Fatalf("%d worker(s), port %d: SYNs at %v, want 8 ms apart", workers, port, at)
			}
		}
	}
}

// C2 in SYN-RECEIVED: after a simultaneous open an ICMP error still fails
// the attempt at once.
func TestEngineICMPInSynRecv(t *testing.T) {
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) != tcp.KindTCP || pk.Seg.Flags != tcp.FlagSYN {
			return nil
		}
		return [][]byte{replyTo(&pk, &tcp.Reply{Flags: tcp.FlagSYN, Seq: 777}), linktest.ICMPError(f, tcp.ICMPDestUnreach, 1, 0)}
	})
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count = 20
	var e *Engine
	r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, engineOf(&e), l)
	if s := e.Snapshot(); r.Failed["EHOSTUNREACH"] != 20 || s.Get(CntICMP) != 20 {
		t.Fatalf("failed %v, ICMP counted %d", r.Failed, s.Get(CntICMP))
	}
}

// ICMP failures free their ports at once (60 attempts through 10 ports),
// are counted, and leave the SYN's MSS alone.
func TestEngineICMPFreesPorts(t *testing.T) {
	l, mss := icmpResponder(tcp.ICMPDestUnreach, 1, 0)
	cfg := testConfig(linktest.BlackholePort)
	cfg.PortLo, cfg.PortHi, cfg.Count = 10000, 10009, 60
	clk := &linktest.Clock{}
	var e *Engine
	r := runClocked(t, cfg, clk, []Link{l}, engineOf(&e), l)
	if s, seen := e.Snapshot(), mss(); r.Failed["EHOSTUNREACH"] != 60 || s.Get(CntICMP) != 60 || clk.Now() > 500*time.Millisecond || len(seen) != 1 || !seen[1460] {
		t.Fatalf("failed %v, ICMP %d, ended at %v, MSS seen %v", r.Failed, s.Get(CntICMP), clk.Now(), seen)
	}
}

// icmpResponder is a link whose peer answers every SYN with the ICMP
// error (typ, code, mtu) a router would send; mss reads the set of MSS
// values the SYNs announced.
func icmpResponder(typ, code uint8, mtu uint32) (l *linktest.Link, mss func() map[uint16]bool) {
	var mu sync.Mutex
	seen := map[uint16]bool{}
	l = linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN {
			mu.Lock()
			seen[pk.Seg.Opts.MSS] = true
			mu.Unlock()
			return [][]byte{linktest.ICMPError(f, typ, code, mtu)}
		}
		return nil
	})
	return l, func() map[uint16]bool {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
}

// Timers of different (target, source) pairs are kept apart: with three
// targets and two sources to a blackhole, every attempt times out.
func TestEngineTimersPerPair(t *testing.T) {
	links, loops := peerLinks(func([]byte) [][]byte { return nil }, 2)
	cfg := testConfig(linktest.BlackholePort)
	cfg.Targets = append(cfg.Targets, Target{Addr: netip.MustParseAddrPort("198.18.0.3:82")}, Target{Addr: netip.MustParseAddrPort("198.18.0.4:82")})
	cfg.Sources = append(cfg.Sources, Source{Addr: netip.MustParseAddr("198.18.0.5")})
	cfg.PortLo, cfg.PortHi = 10000, 10019
	cfg.Count, cfg.Params.SynRetries = 120, 0
	r := runClocked(t, cfg, &linktest.Clock{}, links, nil, loops...)
	if r.Failed["ETIMEDOUT"] != 120 || r.InFlight != 0 {
		t.Fatalf("failed %v, in flight %d", r.Failed, r.InFlight)
	}
}

// The cross-worker ring: FIFO, full at its size, wraps around.
func TestSPSC(t *testing.T) {
	q := newSPSC(8)
	for round := uint32(0); round < 5; round++ {
		for i := uint32(0); i < 8; i++ {
			if !q.push(round*8 + i) {
				t.Fatalf("round %d: push %d refused", round, i)
			}
		}
		if q.push(99) {
			t.Fatal("push into a full ring")
		}
		out := q.drain(make([]uint32, 0, 3))
		if len(out) != 3 || out[0] != round*8 || out[2] != round*8+2 {
			t.Fatalf("round %d: partial drain %v", round, out)
		}
		out = q.drain(make([]uint32, 0, 16))
		if len(out) != 5 || out[0] != round*8+3 || out[4] != round*8+7 {
			t.Fatalf("round %d: drain %v", round, out)
		}
	}
}

// countingRing refuses two thirds of each batch and counts what it refused.
type countingRing struct {
	*linktest.Link
	mu      sync.Mutex
	refused int
}

func (c *countingRing) Transmit(d []xsk.Desc) int {
	n := len(d) / 3
	c.Link.Transmit(d[:n])
	c.mu.Lock()
	c.refused += len(d) - n
	c.mu.Unlock()
	return n
}

// Frames the TX ring refused are counted exactly.
func TestEngineTXDroppedExact(t *testing.T) {
	srv := linktest.NewServer()
	l := linktest.NewLink(srv.Handle)
	ring := &countingRing{Link: l}
	cfg := testConfig(80)
	cfg.Count, cfg.Params.SynRetries = 300, 2
	r := runClocked(t, cfg, &linktest.Clock{}, []Link{ring}, nil, l)
	ring.mu.Lock()
	defer ring.mu.Unlock()
	if r.TxDropped == 0 || r.TxDropped != uint64(ring.refused) {
		t.Fatalf("TX dropped %d, the ring refused %d", r.TxDropped, ring.refused)
	}
}

// The text report's optional lines appear exactly when they have
// something to say.
func TestReportOptionalLines(t *testing.T) {
	r := &report.Report{Attempted: 1, Failed: map[string]uint64{"ECONNREFUSED": 1}, CloseMode: "rst"}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, no := range []string{"AF_XDP", "partial checksums", "dropped frames", "interface", "diagnosis", "per target", "arrival"} {
		if strings.Contains(b.String(), no) {
			t.Errorf("empty report has a %q line:\n%s", no, b.String())
		}
	}
	if !strings.Contains(b.String(), "p50 -  p90 -") {
		t.Errorf("RTT without samples not shown as -:\n%s", b.String())
	}
	r.XSK = &report.XSKStats{RxRingFull: 4}
	r.PartialChecksums = 7
	r.Drops = map[string]uint64{"short": 1}
	r.Path = &report.Path{Interface: "veth0", Kind: "veth", XDPMode: "native", SocketMode: "copy", ActiveRxQueues: 2, AllocatedRxQueues: 4}
	r.Workers = 2
	r.Diagnosis = []report.Finding{{Cause: "the server is silent", Fix: "look at it"}}
	r.RTT.P50 = 0.0025
	r.RxStamped = 9
	r.Targets = []report.TargetReport{{Target: "198.18.0.2:80", Attempted: 3, Established: 2, Failed: 1}}
	r.Families = []report.FamilyReport{{Family: "ipv4", Attempted: 3, Established: 2, Failed: 1}, {Family: "ipv6", Attempted: 5, Established: 5, Failed: 0}}
	r.TCP6 = &report.Settings{Timestamps: 1, MSS: 1440, Window: 64800, TTL: 64}
	b.Reset()
	r.WriteText(&b)
	for _, want := range []string{"4 received frames lost: 0 with the fill ring empty, 0 too large for a frame, 4 with the RX ring full", "partial checksums      7 segments", "tx 0, rx short=1",
		"(replies timed on arrival by XDP: 9 segments)", "per target\n  198.18.0.2:80         attempted 3, established 2, failed 1, RTT p50 - p99 -",
		"veth0 (veth), XDP native, AF_XDP copy, 2 of 2 active RX queue(s) (4 allocated)", "diagnosis\n  - the server is silent\n    fix: look at it", "p50 2.5ms",
		"per family\n  ipv4                  attempted 3, established 2, failed 1\n  ipv6                  attempted 5, established 5, failed 0",
		"tcp settings (IPv6)    timestamps 1, sack off, window scale off (window 64800), mss 1440"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// The progress line's rate is over the time since the previous line.
func TestProgressRate(t *testing.T) {
	var b bytes.Buffer
	p := ProgressLine(&b, 0)
	s := Snapshot{ElapsedSeconds: 1}
	s.Counters[CntAttempted] = 1000
	p(&s)
	s.ElapsedSeconds, s.Counters[CntAttempted] = 3, 5000
	b.Reset()
	p(&s)
	if !strings.Contains(b.String(), "rate 2000/s (asked max)") {
		t.Fatalf("progress %q", b.String())
	}
}

// The counters' layout: each group where its base says, of its size,
// none overlapping.
func TestCounterLayout(t *testing.T) {
	if dropBase != CntWindowUpdates+1 || failedBase-dropBase != Counter(tcp.NumDropReasons) || respFailedBase-failedBase != Counter(len(Errnos)) ||
		statusBase-respFailedBase != numResponseErrors || numCounters-statusBase != 500 {
		t.Fatalf("bases %d %d %d %d, %d counters", dropBase, failedBase, respFailedBase, statusBase, numCounters)
	}
	if StatusCounter(100) != statusBase || StatusCounter(599) != numCounters-1 || ResponseFailedCounter(numResponseErrors-1) != statusBase-1 {
		t.Fatal("status or response failure counters out of their ranges")
	}
}
