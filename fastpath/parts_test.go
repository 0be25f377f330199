package fastpath

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// Close modes print and parse as their flag values.
func TestCloseModeNames(t *testing.T) {
	for _, m := range []CloseMode{CloseRST, CloseFIN, CloseHold, CloseSYNOnly} {
		if p, err := ParseCloseMode(m.String()); err != nil || p != m {
			t.Errorf("%v -> %v, %v", m, p, err)
		}
	}
	if _, err := ParseCloseMode("linger"); err == nil {
		t.Error("unknown mode accepted")
	}
}

// Validate refuses what cannot run, with the reason, and fills defaults.
func TestValidate(t *testing.T) {
	bad := map[string]func(*Config){
		"no target":           func(c *Config) { c.Targets = nil },
		"no source":           func(c *Config) { c.Sources = nil },
		"only IPv4":           func(c *Config) { c.Targets[0].Addr = netip.MustParseAddrPort("[2001:2::1]:80") },
		"source %s: only":     func(c *Config) { c.Sources[0].Addr = netip.MustParseAddr("2001:2::2") },
		"bad source port":     func(c *Config) { c.PortLo, c.PortHi = 2000, 1999 },
		"port range 0":        func(c *Config) { c.PortLo = 0 },
		"too small for 2":     func(c *Config) { c.PortLo, c.PortHi = 1000, 1002 },
		"table entries":       func(c *Config) { c.Sources = make([]Source, 1100); fillSources(c) },
		"negative":            func(c *Config) { c.Rate = -1 },
		"negative conc":       func(c *Config) { c.Concurrency = -1 },
		"count or a duration": func(c *Config) { c.Count = 0 },
	}
	for name, mod := range bad {
		c := testConfig(80)
		mod(&c)
		if err := c.Validate(2); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The table's bound, 2^26 entries, is reachable and not one more.
	c := testConfig(80)
	c.Sources = make([]Source, 2048)
	fillSources(&c)
	c.PortLo, c.PortHi = 32768, 65535
	if err := c.Validate(1); err != nil {
		t.Errorf("2^26 entries refused: %v", err)
	}
	c.PortLo--
	if err := c.Validate(1); err == nil {
		t.Error("2^26+2048 entries accepted")
	}
	c = testConfig(80)
	c.PortLo, c.PortHi = 1000, 1003 // 2 ports for each of 2 workers: enough
	c.Params = tcp.Params{}
	if err := c.Validate(2); err != nil {
		t.Fatal(err)
	}
	if c.Params.MSS != 1460 || c.Batch != 64 || c.TimeWait != 60*time.Second || c.Drain != 5*time.Second {
		t.Fatalf("defaults: MSS %d batch %d TIME-WAIT %v drain %v", c.Params.MSS, c.Batch, c.TimeWait, c.Drain)
	}
	// Request mode's batch is larger (more of a response under one ACK);
	// a batch asked for stays.
	c.Batch, c.Request = 0, &l7.Spec{Request: []byte("GET / HTTP/1.1\r\n\r\n")}
	if err := c.Validate(2); err != nil || c.Batch != DefaultRequestBatch {
		t.Fatalf("request mode: batch %d (%v)", c.Batch, err)
	}
	c.Batch = 32
	if err := c.Validate(2); err != nil || c.Batch != 32 {
		t.Fatalf("batch asked 32: %d (%v)", c.Batch, err)
	}
}

func fillSources(c *Config) {
	for i := range c.Sources {
		c.Sources[i].Addr = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
	}
	c.PortLo, c.PortHi = 1, 65535
}

// The report as people and programs read it: the text has each count on
// its line, the JSON carries the same numbers, the progress line the
// snapshot's.
func TestReportOutputs(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(linktest.ListenPort, linktest.ClosedPort)
	cfg.Count = 40
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	r.Drops = map[string]uint64{"checksum": 2}
	r.TxDropped = 3
	var text bytes.Buffer
	r.WriteText(&text)
	for _, want := range []string{"attempted              40\n", "established            20\n", "failed                 20\n",
		"  ECONNREFUSED         20\n", "in flight              0\n", "rst: 20 closed, 0 reset by peer; RST sent 20",
		"asked max", "dropped frames         tx 3, rx checksum=2\n"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Attempted != 40 || back.Established != 20 || back.Failed["ECONNREFUSED"] != 20 || back.Closed != 20 || back.CloseMode != "rst" {
		t.Fatalf("JSON round trip: %+v", back)
	}
	var line bytes.Buffer
	progress := ProgressLine(&line, 5000)
	s := Snapshot{ElapsedSeconds: 2, Failed: map[string]uint64{"ETIMEDOUT": 3}}
	s.Counters[CntAttempted], s.Counters[CntEstablished] = 1000, 990
	s.Counters[FailedCounter(syscall.ETIMEDOUT)] = 3
	progress(&s)
	if got := line.String(); !strings.Contains(got, "attempted 1000 established 990 failed 3 [ETIMEDOUT=3] in flight 7 rate 500/s (asked 5000/s)") {
		t.Fatalf("progress line %q", got)
	}
}

// Frames the parser drops are counted by reason; ARP requests for a
// dedicated source address are answered (for a kernel-owned one left to
// the kernel, for an address not ours left alone).
func TestEngineDropsAndARP(t *testing.T) {
	var mu sync.Mutex
	var arps []tcp.Packet
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindARP {
			mu.Lock()
			arps = append(arps, pk)
			mu.Unlock()
		}
		return nil
	})
	cfg := testConfig(linktest.BlackholePort)
	// Dedicated sources first (indexes 0 and 1), then the kernel's.
	cfg.Sources = append([]Source{{Addr: netip.MustParseAddr("198.18.0.7"), Dedicated: true},
		{Addr: netip.MustParseAddr("198.18.0.8"), Dedicated: true}}, cfg.Sources...)
	cfg.Count, cfg.Params.SynRetries = 2, 0
	arpReq := func(target [4]byte) []byte {
		b := make([]byte, 60)
		n := tcp.BuildARPReply(b, [6]byte{2, 0, 0, 0, 0, 2}, [4]byte{198, 18, 0, 2}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, target)
		b[tcp.EthHdrLen+7] = byte(tcp.ARPRequest)
		return b[:n]
	}
	bad := make([]byte, tcp.MaxReplyLen)
	n := tcp.Build(bad, &tcp.Path{Src: [4]byte{198, 18, 0, 2}, Dst: [4]byte{198, 18, 0, 1}, SrcPort: 80, DstPort: 10001}, &tcp.Reply{Flags: tcp.FlagACK})
	bad[n-1] ^= 0xff
	l.Inject(arpReq([4]byte{198, 18, 0, 7}), arpReq([4]byte{198, 18, 0, 1}), arpReq([4]byte{198, 18, 0, 99}), bad[:n], bad[:20])
	var e *Engine
	r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, engineOf(&e), l)
	if s := e.Snapshot(); r.Drops["checksum"] != 1 || r.Drops["short"] != 1 || s.Get(CntARPReplies) != 1 {
		t.Fatalf("drops %v, ARP replies counted %d", r.Drops, s.Get(CntARPReplies))
	}
	if FailedCounter(syscall.EPERM) != FailedCounter(syscall.ECONNABORTED) {
		t.Fatal("an errno outside the set is not counted as ECONNABORTED")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arps) != 1 || arps[0].ARPOp != tcp.ARPReply || arps[0].Src != [4]byte{198, 18, 0, 7} || arps[0].Dst != [4]byte{198, 18, 0, 2} {
		t.Fatalf("ARP replies %+v", arps)
	}
}

// A zero key gets a random secret (ISNs and ports must not be guessable);
// a given key is kept (runs are reproducible).
func TestEngineKey(t *testing.T) {
	cfg := testConfig(80)
	cfg.Key = [16]byte{}
	a, err := New(cfg, []Link{linktest.NewLink(nil)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg, []Link{linktest.NewLink(nil)})
	if a.Config().Key == ([16]byte{}) || a.Config().Key == b.Config().Key {
		t.Fatal("zero key not replaced by a random one")
	}
	cfg.Key = [16]byte{9}
	if c, _ := New(cfg, []Link{linktest.NewLink(nil)}); c.Config().Key != cfg.Key {
		t.Fatal("given key replaced")
	}
}

// A dial-only engine starts nothing by itself; progress comes every
// interval of engine time (every second when the interval is 0).
func TestEngineDialOnlyAndProgress(t *testing.T) {
	cfg := testConfig(80)
	cfg.Count, cfg.DialOnly = 0, true
	clk := &linktest.Clock{}
	cfg.Clock = clk.Now
	for _, tc := range []struct {
		interval time.Duration
		want     int
	}{{0, 2}, {500 * time.Millisecond, 4}} {
		e, err := New(cfg, []Link{linktest.NewLink(linktest.NewServer().Handle)})
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan *report.Report, 1)
		go func() {
			r, _ := e.Run(ctx, tc.interval, func(*Snapshot) { calls++ })
			done <- r
		}()
		waitFor(t, "the engine to run", e.Running)
		// The engine's control loop looks at its clock every 5 ms of real
		// time: 100 ms of engine time per 6 ms lets it see every step.
		var r *report.Report
		deadline := time.Now().Add(runDeadline)
		for r == nil {
			if time.Now().After(deadline) {
				t.Fatalf("the dial-only run did not end in %v of real time (engine clock at %v)", runDeadline, clk.Now())
			}
			if clk.Now() == 2100*time.Millisecond {
				cancel() // the engine closes on its clock: keep it moving
			}
			clk.Advance(100 * time.Millisecond)
			select {
			case r = <-done:
			case <-time.After(6 * time.Millisecond):
			}
		}
		if r.Attempted != 0 {
			t.Fatalf("dial-only engine attempted %d", r.Attempted)
		}
		if calls < tc.want || calls > tc.want+1 {
			t.Errorf("interval %v: %d progress calls in about 2 s, want %d", tc.interval, calls, tc.want)
		}
		clk = &linktest.Clock{}
		cfg.Clock = clk.Now
	}
}

// Stop ends a run that would go on for an hour, with a balanced report.
func TestEngineStop(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Duration, cfg.Rate = 0, time.Hour, 1000
	e, err := New(cfg, []Link{linktest.NewLink(srv.Handle)})
	if err != nil {
		t.Fatal(err)
	}
	if e.Workers() != 1 || e.Config().Rate != 1000 {
		t.Fatalf("workers %d, rate %v", e.Workers(), e.Config().Rate)
	}
	done := make(chan *report.Report, 1)
	go func() { r, _ := e.Run(t.Context(), time.Second, nil); done <- r }()
	waitFor(t, "10 handshakes", func() bool { s := e.Snapshot(); return s.Get(CntEstablished) >= 10 })
	e.Stop()
	select {
	case r := <-done:
		checkBooks(t, e, r)
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the run")
	}
}
