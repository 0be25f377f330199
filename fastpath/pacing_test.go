package fastpath

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// How attempts are paced and bounded (rate, concurrency, ports, frames),
// how an idle worker waits, and the report's arithmetic.

// The rate is kept after a stall: a worker that could not run for 500 ms
// does not make up for it with a burst of 500 SYNs; at most a batch
// leaves at one instant.
func TestEngineRateNoBurstAfterStall(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Rate, cfg.Duration = 0, 1000, time.Second
	r := runClocked(t, cfg, clk, []Link{l}, func(*Engine) {
		if clk.Now() == 200*time.Millisecond {
			clk.Advance(500 * time.Millisecond) // the worker was descheduled
		}
	}, l)
	clean(t, srv)
	at := map[time.Duration]int{}
	most := 0
	for _, syns := range srv.SYNs {
		for _, ts := range syns {
			at[ts]++
			most = max(most, at[ts])
		}
	}
	// The server stamps a SYN when the link hands it over, which can be
	// after the clock moved on a millisecond: the batch and that next
	// millisecond's one token (at 1000/s) then share a stamp. Without the
	// bucket's cap the stall would release 500 at once.
	if most > 64+1 || r.Attempted > 600 {
		t.Fatalf("%d SYNs at one instant, %d attempts in 1 s with a 500 ms stall; want at most a batch (64) and the next millisecond's token, about 564 in all", most, r.Attempted)
	}
}

// The concurrency bound counts connections, not attempts ever made: as
// connections end, new ones start (rst mode), 200 through a bound of 10.
func TestEngineConcurrencyReused(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Duration, cfg.Concurrency = 200, 2*time.Second, 10
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	clean(t, srv)
	if r.Attempted != 200 || r.Established != 200 || srv.MaxOpen() > 10 {
		t.Fatalf("attempted %d established %d, the server held at most %d (bound 10)", r.Attempted, r.Established, srv.MaxOpen())
	}
}

// Without a rate, generation pauses while every port is held, and says so.
func TestEnginePortsBusy(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	cfg.PortLo, cfg.PortHi = 10000, 10003
	cfg.Count, cfg.Duration, cfg.Close, cfg.HoldFor = 10, 50*time.Millisecond, CloseHold, 0
	var e *Engine
	r := runClocked(t, cfg, clk, []Link{l}, engineOf(&e), l)
	clean(t, srv)
	// Pauses are counted once per look at the ports, a few per loop.
	if s := e.Snapshot(); r.Attempted != 4 || r.Established != 4 || s.Get(CntPortsBusy) == 0 || s.Get(CntPortsBusy) > 1e6 {
		t.Fatalf("attempted %d established %d, pauses for busy ports %d", r.Attempted, r.Established, s.Get(CntPortsBusy))
	}
}

// An idle worker sleeps in poll for Idle, in milliseconds.
func TestEngineIdlePoll(t *testing.T) {
	l := linktest.NewLink(func([]byte) [][]byte { return nil })
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count, cfg.Params.SynRetries, cfg.Idle = 1, 0, 3*time.Millisecond
	runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
	if got := l.PollTimeout(); got != 3 {
		t.Fatalf("idle poll of %d ms, want 3", got)
	}
}

// frameStarved is a link that has only n TX frames ever: once they are
// gone, SYNs cannot be built.
type frameStarved struct {
	*linktest.Link
	n int
}

func (f *frameStarved) Alloc(addrs []uint64) int {
	k := f.Link.Alloc(addrs[:min(len(addrs), f.n)])
	f.n -= k
	return k
}

// With no TX frame to build a SYN in, no attempt is made or counted; the
// frames that could not be had are counted as TX drops.
func TestEngineTXFramesExhausted(t *testing.T) {
	l := &frameStarved{Link: linktest.NewLink(func([]byte) [][]byte { return nil }), n: 10}
	cfg := testConfig(linktest.BlackholePort)
	cfg.Count, cfg.Duration, cfg.Params.SynRetries = 50, 20*time.Millisecond, 0
	r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l.Link)
	if r.Attempted != 10 || r.TxDropped == 0 || r.TxDropped > 1e6 {
		t.Fatalf("attempted %d with 10 frames, TX drops %d", r.Attempted, r.TxDropped)
	}
}

// With AcceptPartialChecksum, a SYN-ACK whose checksum field holds only the
// pseudo-header sum (a local peer with TX checksum offload) completes the
// handshake and is counted; without it, the same frame is dropped.
func TestEnginePartialChecksum(t *testing.T) {
	for _, accept := range []bool{true, false} {
		srv := linktest.NewServer()
		l := linktest.NewLink(func(f []byte) [][]byte {
			out := srv.Handle(f)
			for _, r := range out {
				partial(r)
			}
			return out
		})
		cfg := testConfig(linktest.ListenPort)
		cfg.Count, cfg.Params.SynRetries, cfg.AcceptPartialChecksum = 5, 0, accept
		r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
		if accept && (r.Established != 5 || r.PartialChecksums != 5) {
			t.Fatalf("accepting: established %d, partial checksums %d", r.Established, r.PartialChecksums)
		}
		if !accept && (r.Established != 0 || r.PartialChecksums != 0 || r.Drops["checksum"] != 5) {
			t.Fatalf("not accepting: established %d, partial %d, drops %v", r.Established, r.PartialChecksums, r.Drops)
		}
	}
}

// partial replaces an IPv4 TCP frame's checksum with the folded
// pseudo-header sum, as the kernel leaves it for the NIC to finish.
func partial(f []byte) {
	ip := f[tcp.EthHdrLen:]
	l4 := ip[tcp.IPv4HdrLen:]
	var s uint32
	for i := 12; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	s += tcp.ProtoTCP + uint32(len(l4))
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(l4[16:], uint16(s))
}

// R7: a SYN-ACK that answers an earlier SYN (it was slow, not lost) is
// timed by its timestamp echo from that SYN: 1.5 s, not the 0.5 s since
// the retransmission.
func TestEngineRTTFromEcho(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	l := linktest.NewLink(srv.Handle)
	l.Clock, l.Delay = clk, 1500*time.Millisecond
	cfg := testConfig(linktest.ListenPort)
	cfg.Count = 20
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	clean(t, srv)
	if r.Established != 20 || r.Retransmits != 20 {
		t.Fatalf("established %d retransmits %d", r.Established, r.Retransmits)
	}
	if h := r.Histogram(); h.N != 20 || r.RTT.P50 < 1.5 || r.RTT.Max > 1.503 {
		t.Fatalf("RTT p50 %.4fs max %.4fs over %d samples, want 1.5 s", r.RTT.P50, r.RTT.Max, h.N)
	}
}

// The report's rates are over the measurement window (after the warmup):
// handshakes and attempts counted in it, divided by its length; an empty
// window gives no rate, and the report still encodes.
func TestReportWindow(t *testing.T) {
	e := &Engine{winStart: time.Second, winEnd: 3 * time.Second, estStart: 1000, estEnd: 5000, attStart: 2000, attEnd: 8000}
	var s Snapshot
	r := e.report(&s)
	if r.CPS != 2000 || r.AttemptRate != 3000 || r.DurationSeconds != 2 {
		t.Fatalf("CPS %v attempts/s %v over %vs, want 2000 and 3000 over 2 s", r.CPS, r.AttemptRate, r.DurationSeconds)
	}
	e = &Engine{winStart: time.Second, winEnd: time.Second, estEnd: 10, attEnd: 10}
	r = e.report(&s)
	if _, err := json.Marshal(r); err != nil || r.CPS != 0 || r.AttemptRate != 0 {
		t.Fatalf("empty window: CPS %v attempts/s %v, JSON: %v", r.CPS, r.AttemptRate, err)
	}
}

// A report's histogram comes back whole from its JSON form, maximum too;
// AF_XDP losses are the sum of their three causes.
func TestReportHistogramAndLosses(t *testing.T) {
	var h report.Histogram
	for _, ns := range []int64{1500, 2_000_000, 2_500_000, 987_654_321} {
		h.Record(ns)
	}
	var r report.Report
	r.SetRTT(&h)
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Histogram(); got.N != h.N || got.Max != h.Max || got.Counts != h.Counts {
		t.Fatalf("histogram back from JSON: N %d max %d, want %d %d", got.N, got.Max, h.N, h.Max)
	}
	// A fill-ring-empty drop is in RxDropped and RxFillRingEmpty both: it
	// is lost once.
	x := &report.XSKStats{RxDropped: 301, RxRingFull: 20, RxFillRingEmpty: 300}
	if x.RxLost() != 321 || (*report.XSKStats)(nil).RxLost() != 0 {
		t.Fatalf("RX lost %d, want 321", x.RxLost())
	}
}

// Two progress lines at the same instant show no rate, not an infinite
// one.
func TestProgressSameInstant(t *testing.T) {
	var b bytes.Buffer
	p := ProgressLine(&b, 100)
	s := Snapshot{ElapsedSeconds: 1}
	s.Counters[CntAttempted] = 100
	p(&s)
	s.Counters[CntAttempted] = 150
	b.Reset()
	p(&s)
	if out := b.String(); strings.Contains(out, "Inf") || strings.Contains(out, "NaN") || !strings.Contains(out, "rate 0/s (asked 100/s)") {
		t.Fatalf("progress %q", out)
	}
}

// Per target: attempts, handshakes, failures and RTT samples are counted
// against the target they went to (here one listening, one refusing, one
// silent), the first TargetStats targets alone and the rest as "other";
// they add up to the totals.
func TestEngineTargetStats(t *testing.T) {
	for _, k := range []int{0, 2} {
		srv := linktest.NewServer()
		l := linktest.NewLink(srv.Handle)
		cfg := testConfig(linktest.ListenPort, linktest.ClosedPort, linktest.BlackholePort)
		cfg.Count, cfg.Params.SynRetries, cfg.TargetStats = 300, 1, k
		r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
		clean(t, srv)
		last := "198.18.0.2:82"
		if k == 2 {
			last = OtherTargets
		}
		want := []report.TargetReport{
			{Target: "198.18.0.2:80", Attempted: 100, Established: 100},
			{Target: "198.18.0.2:81", Attempted: 100, Failed: 100},
			{Target: last, Attempted: 100, Failed: 100},
		}
		if len(r.Targets) != 3 {
			t.Fatalf("TargetStats %d: targets %+v", k, r.Targets)
		}
		for i, w := range want {
			g := r.Targets[i]
			if g.Target != w.Target || g.Attempted != w.Attempted || g.Established != w.Established || g.Failed != w.Failed {
				t.Errorf("TargetStats %d: %+v, want %+v", k, g, w)
			}
		}
		if h := r.Targets[0].Histogram(); h.N != 100 || r.Targets[0].RTT != r.RTT || len(r.Targets[1].RTTHist) != 0 {
			t.Errorf("TargetStats %d: RTT samples %d, quantiles %+v against the run's %+v", k, h.N, r.Targets[0].RTT, r.RTT)
		}
	}
	// One target: the totals say it all.
	srv := linktest.NewServer()
	l := linktest.NewLink(srv.Handle)
	cfg := testConfig(linktest.ListenPort)
	cfg.Count = 10
	if r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l); len(r.Targets) != 0 {
		t.Fatalf("one target split: %+v", r.Targets)
	}
}

// Stages ramp the rate linearly, k6's way (0 -> 1000/s over the first
// second, up to 3000/s over the next, down to 0 over the last), and the
// timeline gives each second what its ramp asked for: its integral (500,
// 2000, 1500 attempts), to 5 %; the run's asked rate is the ramp's mean.
func TestEngineStagesTimeline(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(80)
	cfg.Count = 0
	cfg.Stages = []Stage{{Duration: time.Second, Rate: 1000}, {Duration: time.Second, Rate: 3000}, {Duration: time.Second, Rate: 0}}
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	want := []float64{500, 2000, 1500}
	if len(r.Timeline) < 3 || r.AskedRate != 4000.0/3 || r.Attempted < 3960 || r.Attempted > 4040 {
		t.Fatalf("%d seconds, asked %v/s, attempted %d", len(r.Timeline), r.AskedRate, r.Attempted)
	}
	var sum, inFlight uint64
	for i, s := range r.Timeline {
		sum += s.Attempted
		// A second's cut can come between a SYN and its SYN-ACK (the
		// workers publish every 5 ms): its handshakes are its attempts
		// less those in flight at its end, plus those in flight at its
		// start, and no more than a few are ever in flight.
		if i < 3 && (float64(s.Attempted) < 0.95*want[i] || float64(s.Attempted) > 1.05*want[i] || s.T != i ||
			s.Established+s.InFlight != s.Attempted+inFlight || s.InFlight > 16 || len(s.Failed) != 0) {
			t.Fatalf("second %d: attempted %d, established %d, in flight %d then %d, failed %v; want about %v attempted, all established",
				i, s.Attempted, s.Established, inFlight, s.InFlight, s.Failed, want[i])
		}
		inFlight = s.InFlight
		if i < 3 && (s.RTT.P50 <= 0 || len(s.RTTHist) == 0) {
			t.Fatalf("second %d without its RTT: %+v", i, s.RTT)
		}
	}
	if sum != r.Attempted {
		t.Fatalf("the seconds add up to %d attempts, the run made %d", sum, r.Attempted)
	}
	if mid := r.Timeline[1].AskedRate; mid != 2000 {
		t.Fatalf("asked rate in the middle of second 1: %v, want 2000", mid)
	}
}

// The asked rate of a ramped run is the ramps' mean: each stage a
// trapezoid from the rate before it, the first from 0.
func TestMeanRate(t *testing.T) {
	for _, c := range []struct {
		rate   float64
		stages []Stage
		want   float64
	}{
		{2500, nil, 2500},
		{0, []Stage{{Duration: 2 * time.Second, Rate: 3000}}, 1500},
		{0, []Stage{{Duration: time.Second, Rate: 1000}, {Duration: time.Second, Rate: 1000}}, 750},
		{0, []Stage{{Duration: time.Second, Rate: 1000}, {Duration: 3 * time.Second, Rate: 0}}, 500},
	} {
		e := &Engine{cfg: Config{Rate: c.rate, Stages: c.stages}}
		if got := e.meanRate(); got != c.want {
			t.Errorf("rate %v stages %v: mean %v, want %v", c.rate, c.stages, got, c.want)
		}
	}
}

// Open loop against a target that answers nothing (a firewall dropping
// every SYN): the asked rate leaves, none of it late or held back, far
// more attempts in flight than the RX ring has frames. SYNs that bring no
// answer bring no frames; counting them against the ring, a device
// dropping SYNs over a limit stopped the generation and the run called
// itself the limit.
func TestEngineOpenLoopSilentTarget(t *testing.T) {
	links, _ := peerLinks(func([]byte) [][]byte { return nil }, 1) // nothing answers
	cfg := testConfig(80)
	cfg.Count, cfg.Rate, cfg.Duration, cfg.Drain = 0, 30000, 300*time.Millisecond, 10*time.Millisecond
	r := runEngine(t, cfg, links...)
	s := r.Saturation
	if s == nil || r.Attempted < 9000*97/100 || r.Attempted <= uint64(linktest.Frames) || s.Late > 90 || s.HeldBack != 0 || s.Saturated {
		t.Fatalf("attempted %d of 9000 (ring %d frames), saturation %+v", r.Attempted, linktest.Frames, s)
	}
}

// Open loop while replies wait in the RX ring (every SYN brings a flood
// of frames, so each receive takes a full batch): the worker makes no new
// attempt until it has taken them, and counts the schedule it missed as
// its own lateness. Without the wait, asked twice its ceiling against the
// XDP responder, a worker lost replies, retransmitted SYNs a second
// later, ran out of ports and made 33k handshakes/s instead of 200k. The
// schedule it missed is most of what it counts (ten times what it made):
// it is counted as the loop goes round, so how much of the 9,000 a loop
// busy with the flood sees before the run's end depends on the host (from
// 1,763 to 8,000 in 60 runs on a slow day here).
func TestEngineOpenLoopWaitsForRX(t *testing.T) {
	links, _ := peerLinks(func(f []byte) [][]byte {
		out := make([][]byte, 300) // not ours: the worker reads and drops them
		for i := range out {
			out[i] = f
		}
		return out
	}, 1)
	cfg := testConfig(80)
	cfg.Count, cfg.Rate, cfg.Duration, cfg.Drain = 0, 30000, 300*time.Millisecond, 10*time.Millisecond
	r := runEngine(t, cfg, links...)
	s := r.Saturation
	if s == nil || r.Attempted > 9000/2 || s.Late < 10*r.Attempted || s.HeldBack != 0 || !s.Saturated {
		t.Fatalf("attempted %d of 9000 with the RX ring full, saturation %+v", r.Attempted, s)
	}
}

// The open-loop bound counts connections that still bring frames:
// thousands in TIME-WAIT (we closed first, their ports quarantined) hold
// nothing back. Counting them, a FIN-closing run stopped at the ring's
// size of connections and called the rest late.
func TestEngineOpenLoopBoundSkipsTimeWait(t *testing.T) {
	srv := linktest.NewServer()
	links, _ := peerLinks(srv.Handle, 1)
	cfg := testConfig(linktest.ListenPort)
	// 10,000 attempts, more than twice the frames: in the time asked, or
	// in four times as long at a quarter of the rate under -race.
	rate, d := 20000, 500*time.Millisecond
	if raceDetector {
		rate, d = 5000, 2*time.Second
	}
	cfg.Count, cfg.Rate, cfg.Duration, cfg.Close = 0, float64(rate), d, CloseFIN
	r := runEngine(t, cfg, links...)
	clean(t, srv)
	want := uint64(10000)
	if r.Attempted < want*95/100 || r.TimeWait < uint64(linktest.Frames)+1000 || r.Saturation.Late > want/100 {
		t.Fatalf("attempted %d of %d, %d in TIME-WAIT, late %d", r.Attempted, want, r.TimeWait, r.Saturation.Late)
	}
}

// A concurrency ramp in hold mode (0 -> 1000 connections over the first
// second, held over the next, down to 0 over the last): at each second's
// end the connections open are the ramp's bound then, to a rounding; as it
// falls, held ones are aborted with RST and counted closed, not reset;
// the timeline gives the bound asked at each second's middle.
func TestEngineConcurrencyStages(t *testing.T) {
	srv := linktest.NewServer()
	cfg := testConfig(linktest.ListenPort)
	cfg.Count, cfg.Close = 0, CloseHold
	cfg.ConcurrencyStages = []Stage{{Duration: time.Second, Rate: 1000}, {Duration: time.Second, Rate: 1000}, {Duration: time.Second, Rate: 0}}
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	if len(r.Timeline) < 3 {
		t.Fatalf("%d seconds", len(r.Timeline))
	}
	openAtEnd := []uint64{1000, 1000, 0}
	asked := []float64{500, 1000, 500}
	for i, s := range r.Timeline[:3] {
		// Ends of seconds are cut up to a tick late or early: the ramp
		// moves 1 connection a millisecond.
		if d := int64(s.Open) - int64(openAtEnd[i]); d < -60 || d > 60 || s.AskedOpen != asked[i] {
			t.Errorf("second %d: %d open (asked %v at its middle), want about %d (asked %v)", i, s.Open, s.AskedOpen, openAtEnd[i], asked[i])
		}
	}
	if r.Timeline[1].Attempted > 60 {
		t.Errorf("second 1 (the bound held) made %d attempts: open connections were replaced", r.Timeline[1].Attempted)
	}
	if c := r.Timeline[2].Closed; c < 900 {
		t.Errorf("second 2 closed %d connections as the bound fell to 0", c)
	}
	if r.Established < 1000 || r.Established > 1060 || r.Closed != r.Established || r.Reset != 0 || r.RSTSent != r.Established {
		t.Fatalf("established %d, closed %d, reset %d, RST sent %d", r.Established, r.Closed, r.Reset, r.RSTSent)
	}
}

// A concurrency ramp is hold mode's alone, and the bound itself: no rate
// ramp or fixed bound beside it.
func TestConcurrencyStagesChecks(t *testing.T) {
	st := []Stage{{Duration: time.Second, Rate: 10}}
	for _, c := range []struct {
		close       CloseMode
		conc        int
		rateStages  bool
		stages      []Stage
		d           time.Duration
		errContains string
	}{
		{CloseRST, 0, false, st, 0, "needs {Close} hold"},
		{CloseHold, 5, false, st, 0, "no {Concurrency}"},
		{CloseHold, 0, true, st, 0, "no {Concurrency} or {Stages}"},
		{CloseHold, 0, false, []Stage{{Duration: time.Second, Rate: -1}}, 0, "finite count >= 0"},
		{CloseHold, 0, false, st, 2 * time.Second, "the stages last 1s"},
	} {
		_, err := CheckConcurrencyStages(c.stages, c.close, c.conc, c.rateStages, false, c.d)
		ce, ok := errors.AsType[*ConfigError](err)
		if !ok || ce.Field != "ConcurrencyStages" || !strings.Contains(ce.Reason, c.errContains) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if d, err := CheckConcurrencyStages(st, CloseHold, 0, false, false, 0); err != nil || d != time.Second {
		t.Fatalf("a valid ramp: %v %v", d, err)
	}
}
