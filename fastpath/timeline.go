package fastpath

import (
	"time"

	"github.com/xdpconnect/xdpconnect/report"
)

// timeline cuts a run into seconds: at each second's end the control loop
// hands it the engine's cumulative snapshot, and it keeps the difference
// from the previous second's.
type timeline struct {
	prev    Snapshot // at the previous cut (its PerWorker and Failed unused)
	next    time.Duration
	seconds []report.Second
}

// due says the second that ends at t.next is over at el.
func (tl *timeline) due(el time.Duration) bool { return el >= tl.next }

// cut records the second ending now, from snapshot s.
func (tl *timeline) cut(e *Engine, s *Snapshot) {
	p := &tl.prev
	d := func(c Counter) uint64 { return s.Counters[c] - p.Counters[c] }
	sec := report.Second{T: len(tl.seconds), Attempted: d(CntAttempted), Established: d(CntEstablished),
		InFlight: s.InFlight(), Open: s.Open(), AskedRate: e.rateAt(time.Duration(len(tl.seconds))*time.Second + time.Second/2)}
	if cs := e.cfg.ConcurrencyStages; len(cs) > 0 {
		sec.AskedOpen = rampAt(cs, time.Duration(len(tl.seconds))*time.Second+time.Second/2)
	}
	sec.Failed = errnoCounts(nil, d)
	sec.Reset, sec.Closed = d(CntReset), d(CntClosed)
	sec.RequestsFailed = responseFailures(nil, d)
	_, sec.Responses = statusCounts(d)
	var rtt, ttfb, ttlb report.Histogram
	rtt.Sub(&s.RTT, &p.RTT)
	ttfb.Sub(&s.TTFB, &p.TTFB)
	ttlb.Sub(&s.TTLB, &p.TTLB)
	sec.SetHistograms(&rtt, &ttfb, &ttlb)
	tl.seconds = append(tl.seconds, sec)
	p.Counters, p.RTT, p.TTFB, p.TTLB = s.Counters, s.RTT, s.TTFB, s.TTLB
	tl.next += time.Second
}
