package fastpath

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"syscall"

	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

func (e *Engine) requestReport(s *Snapshot, win float64) *report.RequestReport {
	q := &report.RequestReport{PerConnection: e.cfg.RequestsPerConn, Requests: s.Get(CntRequests), Completed: s.Get(CntResponses), Failed: map[string]uint64{},
		InFlight: s.RequestsInFlight(), Retransmits: s.Get(CntRequestRetrans), OutOfOrder: s.Get(CntOutOfOrder), ACKsMerged: s.Get(CntACKMerged), Kept: s.Get(CntKept), WindowProbes: s.Get(CntWindowProbes),
		ResponseBytes: s.Get(CntResponseBytes), TTFB: report.QuantilesOf(&s.TTFB), TTLB: report.QuantilesOf(&s.TTLB),
		TTFBHist: s.TTFB.Buckets(), TTLBHist: s.TTLB.Buckets(),
		TTLBSched: report.QuantilesOf(&s.TTLBSched), TTLBSchedHist: s.TTLBSched.Buckets()}
	responseFailures(q.Failed, s.Get)
	q.Status, q.Classes = statusCounts(s.Get)
	if win > 0 {
		q.PerSecond = float64(e.respEnd-e.respStart) / win
		q.BytesPerSecond = float64(e.bytesEnd-e.bytesStart) / win
	}
	return q
}

func SettingsOf(p *tcp.Params) *report.Settings {
	ts := 0
	switch {
	case p.Timestamps && p.TSNoOffset:
		ts = 2
	case p.Timestamps:
		ts = 1
	}
	return &report.Settings{Timestamps: ts, SACK: p.SACK, WindowScaling: p.WindowScaling, WindowScale: p.WScale, Window: p.RcvWnd,
		MSS: p.MSS, ECN: p.ECN, TTL: p.TTL, SynRetries: p.SynRetries, SynLinearTimeouts: p.LinearTimeouts}
}

func (e *Engine) report(s *Snapshot) *report.Report {
	win := (e.winEnd - e.winStart).Seconds()
	r := &report.Report{
		Format: report.FormatVersion, Attempted: s.Get(CntAttempted), Established: s.Get(CntEstablished), Failed: s.Failed,
		InFlight: s.InFlight(), Retransmits: s.Get(CntRetransmits), DurationSeconds: win,
		AskedRate: e.meanRate(), RSTSent: s.Get(CntRSTSent), RSTReceived: s.Get(CntRSTReceived),
		Closed: s.Get(CntClosed), Reset: s.Get(CntReset), TimeWait: s.Get(CntTimeWait), Drops: s.Drops(), TxDropped: s.Get(CntTxDropped),
		PartialChecksums: s.Get(CntPartialChecksum), RxStamped: s.Get(CntRxStamped),
		Workers: len(e.workers), CloseMode: e.cfg.Close.String(), ElapsedSeconds: s.ElapsedSeconds,
		MaxRSSBytes: maxRSS(), TableBytes: uint64(len(e.table)) * connBytes,
	}
	if win > 0 {
		r.CPS = float64(e.estEnd-e.estStart) / win
		r.AttemptRate = float64(e.attEnd-e.attStart) / win
	}
	for _, k := range []struct {
		name string
		c    Counter
	}{{"SYN", CntDownSYN}, {"ACK", CntDownACK}, {"RST", CntDownRST}, {"data", CntDownData}} {
		if n := s.Get(k.c); n > 0 {
			if r.QueuedDown == nil {
				r.QueuedDown = map[string]uint64{}
			}
			r.QueuedDown[k.name] = n
		}
	}
	r.EstablishedDown = s.Get(CntEstablishedDown)
	r.Sources = e.sourceReports()
	r.Series = e.series
	r.Timeline = e.tl.seconds
	r.Saturation = &report.Saturation{Late: s.Get(CntLate), HeldBack: s.Get(CntHeldBack), Concurrency: uint64(e.cfg.Concurrency)}
	if el := s.ElapsedSeconds; el > 0 {
		for _, pw := range s.PerWorker {
			r.Saturation.Busy = max(r.Saturation.Busy, min(1, max(0, 1-float64(pw[CntIdleNs])/1e9/el)))
		}
	}
	for i, pw := range s.PerWorker {
		if est := pw[CntEstablished]; est > 0 && pw[CntRxFrames] > 0 && i < len(e.workers) {
			r.Saturation.RingConnections += ringConnections(e.workers[i].ringFrames(), est, pw[CntRxFrames])
		}
	}
	r.Saturation.Judge(r)
	r.SetRTT(&s.RTT)
	if e.ex != nil {
		r.Requests = e.requestReport(s, win)
	}
	r.TCP = SettingsOf(&e.params[0])
	if slices.Contains(e.pairV6, true) {
		r.TCP6 = SettingsOf(&e.params[1])
		a6, e6, f6 := s.Get(CntAttempted6), s.Get(CntEstablished6), s.Get(CntFailed6)
		r.Families = []report.FamilyReport{{Family: "ipv4", Attempted: r.Attempted - a6, Established: r.Established - e6, Failed: r.FailedTotal() - f6}, {Family: "ipv6", Attempted: a6, Established: e6, Failed: f6}}
	}
	if len(e.cfg.Targets) > 1 {
		for _, ts := range e.TargetStats() {
			t := report.TargetReport{Target: ts.Target, Attempted: ts.Attempted, Established: ts.Established, Failed: ts.Failed}
			t.SetRTT(&ts.RTT)
			r.Targets = append(r.Targets, t)
		}
	}
	return r
}

func ProgressLine(w io.Writer, asked float64) func(*Snapshot) {
	var lastAtt uint64
	var lastT float64
	a := "max"
	if asked > 0 {
		a = strconv.FormatFloat(asked, 'f', 0, 64) + "/s"
	}
	return func(s *Snapshot) {
		att := s.Get(CntAttempted)
		rate := 0.0
		if dt := s.ElapsedSeconds - lastT; dt > 0 {
			rate = float64(att-lastAtt) / dt
		}
		lastAtt, lastT = att, s.ElapsedSeconds
		fmt.Fprintf(w, "\r%6.1fs attempted %d established %d failed %d [%s] in flight %d rate %.0f/s (asked %s)\x1b[K",
			s.ElapsedSeconds, att, s.Get(CntEstablished), s.FailedTotal(), report.FormatCounts(s.Failed), s.InFlight(), rate, a)
	}
}

func maxRSS() uint64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return uint64(ru.Maxrss) * 1024
}
