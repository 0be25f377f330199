package fastpath

import (
	"fmt"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
)

// Every established connection ends once: "closed" plus "reset" equals
// established in every close mode, with and without request mode, with
// the server closing first and replies crossing to the other worker's
// queue; 20 times each, since a double count (a FIN-WAIT connection counted
// at its FIN and again at its timeout) shows only in some interleavings.
// Without loss nothing is reset, so closed equals established exactly.
func TestEngineClosedOnce(t *testing.T) {
	type tc struct {
		mode        CloseMode
		request     bool
		serverFirst bool
		loss        float64
	}
	var cases []tc
	for _, m := range []CloseMode{CloseRST, CloseFIN, CloseHold, CloseSYNOnly} {
		cases = append(cases, tc{mode: m}, tc{mode: m, loss: 0.05})
		if m != CloseSYNOnly {
			cases = append(cases, tc{mode: m, request: true, serverFirst: true}, tc{mode: m, request: true})
		}
	}
	reps := 20
	if testing.Short() {
		reps = 2
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/request=%v/serverFirst=%v/loss=%v", c.mode, c.request, c.serverFirst, c.loss)
		t.Run(name, func(t *testing.T) {
			n := reps
			if c.loss > 0 {
				n = max(reps/5, 2) // a lost FIN's orphan ends in real time after the drain starts
			}
			for rep := range n {
				srv := linktest.NewServer()
				clk := &linktest.Clock{}
				srv.Clock = clk
				cfg := testConfig(linktest.ListenPort)
				if c.request {
					cfg = requestConfig(t, false)
					httpServer(srv, 200, 3000)
					srv.CloseAfter = c.serverFirst
				}
				cfg.Count, cfg.Close, cfg.TimeWait, cfg.Drain = 200, c.mode, 50*time.Millisecond, 2*time.Minute
				if c.mode != CloseHold {
					// Ports are reused: entries are freed and taken again.
					cfg.PortLo, cfg.PortHi, cfg.Concurrency = 10000, 10099, 64
				}
				var l0, l1 *linktest.Link
				l0 = linktest.NewLink(srv.Handle)
				l1 = linktest.NewLink(func(f []byte) [][]byte {
					l0.Inject(srv.Handle(f)...) // every reply arrives on queue 0
					return nil
				})
				l0.Loss, l1.Loss = c.loss, c.loss
				r := runClocked(t, cfg, clk, []Link{l0, l1}, nil, l0, l1)
				if r.Established == 0 || r.Closed+r.Reset != r.Established || c.loss == 0 && r.Closed != r.Established {
					t.Fatalf("run %d: established %d, closed %d, reset %d", rep, r.Established, r.Closed, r.Reset)
				}
			}
		})
	}
}

// Q7: a complete response is closed after the rest of its RX batch is
// read, so a server FIN that follows the response in a segment of its own
// (nginx's way) makes the close passive: no connection of ours ends in
// TIME-WAIT. When the server does not close, we close first and every
// connection ends in TIME-WAIT, as a Linux client's would.
func TestRequestCloseAfterServerFIN(t *testing.T) {
	for _, c := range []struct {
		name                string
		serverCloses, apart bool
		wantTimeWait        uint64
	}{
		{"FIN apart", true, true, 0},
		{"FIN with the data", true, false, 0},
		{"server keeps it open", false, false, 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := linktest.NewServer()
			clk := &linktest.Clock{}
			srv.Clock = clk
			httpServer(srv, 200, 3000)
			srv.CloseAfter, srv.FINApart = c.serverCloses, c.apart
			cfg := requestConfig(t, false)
			cfg.Count, cfg.Close, cfg.TimeWait = 300, CloseFIN, 50*time.Millisecond
			l := linktest.NewLink(srv.Handle)
			r := runClocked(t, cfg, clk, []Link{l}, nil, l)
			clean(t, srv)
			if r.Established != 300 || r.Closed != 300 || r.Requests.Completed != 300 || r.TimeWait != c.wantTimeWait || srv.Open() != 0 {
				t.Fatalf("established %d, closed %d, complete %d, TIME-WAIT %d (want %d), server still holds %d",
					r.Established, r.Closed, r.Requests.Completed, r.TimeWait, c.wantTimeWait, srv.Open())
			}
		})
	}
}

// Coordinated omission: in open loop, a stall of the generator (here the
// worker's clock jumps 30 ms at once, as when it is descheduled) delays the
// attempts the schedule wanted meanwhile. Timed from the request they look
// as fast as the rest; timed from their intended start (TTLBSched) they
// show the stall. Without a stall both agree to the handshake's time.
func TestRequestLatencyFromSchedule(t *testing.T) {
	for _, stall := range []bool{false, true} {
		srv := linktest.NewServer()
		clk := &linktest.Clock{}
		srv.Clock = clk
		httpServer(srv, 200, 100)
		cfg := requestConfig(t, false)
		cfg.Count, cfg.Rate = 2000, 20000
		l := linktest.NewLink(srv.Handle)
		jumped := false
		r := runClocked(t, cfg, clk, []Link{l}, func(e *Engine) {
			if stall && !jumped && clk.Now() >= 50*time.Millisecond {
				jumped = true
				clk.Advance(30 * time.Millisecond)
			}
		}, l)
		q := r.Requests
		if q.Completed == 0 {
			t.Fatalf("stall %v: complete %d", stall, q.Completed)
		}
		switch {
		case !stall && (q.TTLBSched.P99 > 0.004 || r.Saturation.Late != 0):
			t.Fatalf("no stall: TTLB from the schedule p99 %v, late %d", q.TTLBSched.P99, r.Saturation.Late)
		case stall && (q.TTLBSched.P99 < 0.008 || q.TTLB.P99 > 0.004 || r.Saturation.Late == 0):
			t.Fatalf("a 30 ms stall: TTLB from the schedule p99 %v, from the request p99 %v, late %d", q.TTLBSched.P99, q.TTLB.P99, r.Saturation.Late)
		}
		t.Logf("stall %v: TTLB p99 %v, from the schedule p99 %v max %v, late %d", stall, q.TTLB.P99, q.TTLBSched.P99, q.TTLBSched.Max, r.Saturation.Late)
	}
}
