// Package rfc9411 is the procedure of RFC 9411 ("Benchmarking Methodology
// for Network Security Device Performance", 2023) over xdpconnect's runs:
// the phases of a run (section 4.3.4), the test results validation
// criteria (each test's section 7.x.3.4, the same four for every HTTP
// test) judged on the sustain phase's seconds only, and the three steps of
// each test procedure (sections 7.2.4, 7.3.4, 7.4.4, 7.5.4): the initial
// objective, the target objective, and a search for the highest objective
// that meets every criterion. It does no I/O: it turns a run's per-second
// timeline into a verdict, and says which objective to run next.
//
// Where the RFC leaves a choice, docs/rfc9411.md says which one this
// package makes and which flag changes it.
package rfc9411

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect/report"
)

// Test is one of the RFC's HTTP benchmarks.
type Test string

// The tests: TCP/HTTP connections per second (7.2), HTTP transactions per
// second (the transaction rate of 7.3's throughput test), HTTP transaction
// latency (7.4) and concurrent TCP/HTTP connection capacity (7.5).
const (
	CPS        Test = "cps"
	TPS        Test = "tps"
	Latency    Test = "latency"
	Concurrent Test = "concurrent"
)

// The HTTPS tests (7.6 to 7.9): the same procedures over TLS. Their
// connections count once their TLS handshake is complete, and a failed
// handshake is a failed transaction.
const (
	HTTPSCPS        Test = "https-cps"
	HTTPSTPS        Test = "https-tps"
	HTTPSLatency    Test = "https-latency"
	HTTPSConcurrent Test = "https-concurrent"
)

// Tests lists the tests in the RFC's order.
var Tests = []Test{CPS, TPS, Latency, Concurrent, HTTPSCPS, HTTPSTPS, HTTPSLatency, HTTPSConcurrent}

// HTTPS says the test runs over TLS.
func (t Test) HTTPS() bool { return strings.HasPrefix(string(t), "https-") }

// Base is the HTTP test whose procedure t follows (t itself for one).
func (t Test) Base() Test { return Test(strings.TrimPrefix(string(t), "https-")) }

// Unit is the unit of the test's objective and key performance indicator.
func (t Test) Unit() string {
	switch t.Base() {
	case TPS:
		return "transactions/s"
	case Concurrent:
		return "connections"
	}
	return "connections/s"
}

// Section is the RFC section of the test's procedure.
func (t Test) Section() string {
	n := 2
	switch t.Base() {
	case TPS:
		n = 3
	case Latency:
		n = 4
	case Concurrent:
		n = 5
	}
	if t.HTTPS() {
		n += 4
	}
	return "7." + strconv.Itoa(n)
}

// Settings are the procedure's phases and validation criteria.
type Settings struct {
	// RampUp, Sustain and RampDown are the phases of a run (4.3.4): the
	// objective grows linearly, holds, then falls. Only the sustain
	// phase's whole seconds are measured.
	RampUp, Sustain, RampDown time.Duration
	// MaxFailed is the largest share of failed transactions (7.x.3.4: fewer
	// than 0.001 %, one in 100,000): handshakes that failed, requests that
	// failed, and responses other than 2xx, over all transactions begun.
	MaxFailed float64
	// MaxReset is the largest share of connections ended by an RST from
	// the device (7.x.3.4: fewer than 0.001 %): resets of established
	// connections and refused handshakes, over the connections begun.
	MaxReset float64
	// MaxRateDeviation bounds the sustain phase's per-second rate: no
	// second further than this share from the phase's mean (5 %), and
	// the mean no further below the objective.
	MaxRateDeviation float64
	// MaxConcurrentDeviation bounds the open connections' per-second
	// count in the concurrent test's sustain phase (10 %).
	MaxConcurrentDeviation float64
	// InitialShare is step 1's objective as a share of the target (10 %).
	InitialShare float64
	// Resolution ends step 3's search when the passing and failing
	// objectives are this share of the target apart (5 %).
	Resolution float64
	// MaxSearch bounds step 3's runs (8).
	MaxSearch int
}

// DefaultSettings are the RFC's criteria with phases of 10 s, 60 s and
// 10 s. The RFC asks for a sustain phase long enough to show a steady
// state; a device with a connection table to fill (concurrent) or timers
// to run out wants minutes (--sustain).
func DefaultSettings() Settings {
	return Settings{RampUp: 10 * time.Second, Sustain: 60 * time.Second, RampDown: 10 * time.Second,
		MaxFailed: 1e-5, MaxReset: 1e-5, MaxRateDeviation: 0.05, MaxConcurrentDeviation: 0.10,
		InitialShare: 0.10, Resolution: 0.05, MaxSearch: 8}
}

// Check says what is wrong with s, in words.
func (s Settings) Check() error {
	switch {
	case s.RampUp < 0 || s.RampDown < 0:
		return fmt.Errorf("ramp-up and ramp-down must not be negative")
	case s.Sustain < 2*time.Second:
		return fmt.Errorf("the sustain phase must last at least 2 s (its whole seconds are what is measured)")
	case s.MaxFailed < 0 || s.MaxReset < 0 || s.MaxRateDeviation <= 0 || s.MaxConcurrentDeviation <= 0:
		return fmt.Errorf("the criteria's bounds must be positive")
	case s.InitialShare <= 0 || s.InitialShare >= 1:
		return fmt.Errorf("the initial objective's share must be between 0 and 1")
	case s.Resolution <= 0 || s.Resolution >= 1:
		return fmt.Errorf("the search's resolution must be between 0 and 1")
	case s.MaxSearch < 0:
		return fmt.Errorf("the search's run count must not be negative")
	}
	return nil
}

// Window is the sustain phase's seconds, [From, To) of a run's timeline.
type Window struct{ From, To int }

// Window is the whole seconds of the sustain phase: a second that holds a
// piece of a ramp is not measured.
func (s Settings) Window() Window {
	from := int(math.Ceil(s.RampUp.Seconds()))
	to := int(math.Floor((s.RampUp + s.Sustain).Seconds()))
	return Window{From: from, To: max(to, from)}
}

// Criterion is one validation criterion, with its measured value.
type Criterion struct {
	Name    string  `json:"name"`
	Section string  `json:"section"`
	Value   float64 `json:"value"`
	Limit   float64 `json:"limit"`
	// AtMost: Value must not exceed Limit; else it must reach it.
	AtMost bool   `json:"at_most"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Measured are a run's sustain-phase figures. The concurrent test counts
// its connections, transactions, failures, resets and response times from
// the run's start (its connections are begun in the ramp-up); its
// per-second figures are the sustain phase's all the same.
type Measured struct {
	Seconds      int     `json:"seconds"`
	KPI          float64 `json:"kpi"` // the test's indicator, in its Unit
	Connections  uint64  `json:"connections"`
	Transactions uint64  `json:"transactions"`
	Failed       uint64  `json:"failed_transactions"`
	// Local are attempts that failed on the test equipment's side (no
	// free source port): never sent, so not counted against the device.
	Local uint64 `json:"local_failures"`
	Reset uint64 `json:"reset_connections"`
	// MinPerSecond and MaxPerSecond bound the per-second rate (or open
	// connections, concurrent test).
	MinPerSecond float64 `json:"min_per_second"`
	MaxPerSecond float64 `json:"max_per_second"`
	// TTFB and TTLB are the sustain phase's response times (latency
	// test, and the others for information); Mean from bucket bounds.
	TTFB report.Quantiles `json:"ttfb_seconds"`
	TTLB report.Quantiles `json:"ttlb_seconds"`
	// TTFBMean and TTLBMean are from the histograms' bucket bounds (at
	// most 6.25 % high), TTFBMin and TTLBMin their lowest buckets' bounds.
	TTFBMean float64 `json:"ttfb_mean_seconds"`
	TTLBMean float64 `json:"ttlb_mean_seconds"`
	TTFBMin  float64 `json:"ttfb_min_seconds"`
	TTLBMin  float64 `json:"ttlb_min_seconds"`
}

// Judge measures a run's sustain phase and checks it against every
// criterion for the objective asked (a rate, or for the concurrent test a
// connection count). A run whose timeline does not cover the sustain
// phase fails.
func Judge(t Test, objective float64, secs []report.Second, s Settings) (Measured, []Criterion) {
	w := s.Window()
	var m Measured
	var ttfb, ttlb report.Histogram
	var per []float64
	begun := uint64(0)
	// The concurrent test's connections are begun in the ramp-up and held
	// through the sustain phase: their failures and resets count from the
	// run's start; a rate test's from the sustain phase's.
	from := w.From
	if t.Base() == Concurrent {
		from = 0
	}
	for _, sec := range secs {
		if sec.T < from || sec.T >= w.To {
			continue
		}
		m.Connections += sec.Attempted
		var hsFailed, ok, notOK, reqFailed uint64
		for _, n := range sec.TLSFailed {
			hsFailed += n // the connection never carried a transaction
		}
		for name, n := range sec.Failed {
			switch name {
			case "EADDRNOTAVAIL":
				// No source port was free: nothing was sent, and the run's
				// saturation says so.
				m.Local += n
				continue
			case "ECONNREFUSED":
				m.Reset += n
			}
			hsFailed += n
		}
		for class, n := range sec.Responses {
			if class == "2xx" {
				ok += n
			} else {
				notOK += n
			}
		}
		for _, n := range sec.RequestsFailed {
			reqFailed += n
		}
		m.Reset += sec.Reset
		m.Failed += hsFailed + notOK + reqFailed
		tx := ok + notOK + reqFailed
		m.Transactions += tx
		begun += tx + hsFailed
		a, b := report.HistogramOf(sec.TTFBHist, sec.TTFB.Max), report.HistogramOf(sec.TTLBHist, sec.TTLB.Max)
		ttfb.Merge(&a)
		ttlb.Merge(&b)
		if sec.T < w.From {
			continue
		}
		m.Seconds++
		switch t.Base() {
		case CPS, Latency:
			if t.HTTPS() {
				per = append(per, float64(sec.TLSHandshakes))
				break
			}
			per = append(per, float64(sec.Established))
		case TPS:
			per = append(per, float64(ok))
		case Concurrent:
			per = append(per, float64(sec.Open))
		}
	}
	m.TTFB, m.TTLB = report.QuantilesOf(&ttfb), report.QuantilesOf(&ttlb)
	m.TTFBMean, m.TTLBMean = bucketMean(&ttfb), bucketMean(&ttlb)
	m.TTFBMin, m.TTLBMin = bucketMin(&ttfb), bucketMin(&ttlb)
	want := w.To - w.From
	var cs []Criterion
	cover := Criterion{Name: "sustain phase measured", Section: "4.3.4", Value: float64(m.Seconds), Limit: float64(want),
		Pass: m.Seconds == want && want > 0, Detail: fmt.Sprintf("%d of the sustain phase's %d whole seconds in the run's timeline", m.Seconds, want)}
	cs = append(cs, cover)
	if len(per) == 0 {
		return m, cs
	}
	mean := 0.0
	m.MinPerSecond, m.MaxPerSecond = per[0], per[0]
	for _, v := range per {
		mean += v
		m.MinPerSecond, m.MaxPerSecond = min(m.MinPerSecond, v), max(m.MaxPerSecond, v)
	}
	mean /= float64(len(per))
	m.KPI = mean
	crit := t.Section() + ".3.4"
	cs = append(cs, ratio("failed transactions", crit, m.Failed, begun, s.MaxFailed),
		ratio("connections ended by an RST from the device", crit, m.Reset, m.Connections, s.MaxReset))
	dev := 0.0
	if mean > 0 {
		dev = max(mean-m.MinPerSecond, m.MaxPerSecond-mean) / mean
	}
	limit, what := s.MaxRateDeviation, "rate"
	if t.Base() == Concurrent {
		limit, what = s.MaxConcurrentDeviation, "open connections"
	}
	cs = append(cs, Criterion{Name: what + " deviation in sustain", Section: crit, Value: dev, Limit: limit, AtMost: true,
		Pass:   mean > 0 && dev <= limit,
		Detail: fmt.Sprintf("per second %.0f to %.0f around a mean of %.1f %s", m.MinPerSecond, m.MaxPerSecond, mean, t.Unit())})
	reach := objective * (1 - limit)
	cs = append(cs, Criterion{Name: "objective reached", Section: t.Section() + ".4", Value: mean, Limit: reach,
		Pass: mean >= reach, Detail: fmt.Sprintf("sustain mean %.1f of the objective %.0f %s (at least %.0f %% of it)", mean, objective, t.Unit(), 100*(1-limit))})
	return m, cs
}

// ratio is a criterion on a share: n of total at most limit. Nothing begun
// fails it (a run that measured nothing validates nothing).
func ratio(name, section string, n, total uint64, limit float64) Criterion {
	c := Criterion{Name: name, Section: section, Limit: limit, AtMost: true}
	if total == 0 {
		c.Detail = "nothing begun in the sustain phase"
		return c
	}
	c.Value = float64(n) / float64(total)
	c.Pass = c.Value < limit || n == 0
	c.Detail = fmt.Sprintf("%d of %d (%.4f %%, the RFC allows under %.4f %%)", n, total, 100*c.Value, 100*limit)
	return c
}

func bucketMean(h *report.Histogram) float64 {
	if h.N == 0 {
		return 0
	}
	var s float64
	for i, c := range h.Counts {
		if c != 0 {
			s += float64(c) * float64(report.BucketHigh(i))
		}
	}
	return s / float64(h.N) / 1e9
}

func bucketMin(h *report.Histogram) float64 {
	for i, c := range h.Counts {
		if c != 0 {
			return float64(report.BucketHigh(i)) / 1e9
		}
	}
	return 0
}

// Passed says every criterion passed.
func Passed(cs []Criterion) bool {
	for _, c := range cs {
		if !c.Pass {
			return false
		}
	}
	return len(cs) > 0
}

// Search is step 3: the highest objective that meets every criterion,
// between one that passed (Lo) and one that failed (Hi), by halving.
type Search struct {
	Lo, Hi float64
	// Step is the resolution in the objective's unit: the search ends
	// when Hi - Lo is at most Step, or after Max runs.
	Step  float64
	Max   int
	runs  int
	share float64 // Settings.Resolution
}

// NewSearch starts step 3 between the initial objective, which passed,
// and the target, which failed.
func NewSearch(initial, target float64, s Settings) *Search {
	return &Search{Lo: initial, Hi: target, Step: max(target*s.Resolution, 1), Max: s.MaxSearch, share: s.Resolution}
}

// Next is the objective to run next; ok is false when the search is over
// (Lo is then the result).
func (s *Search) Next() (objective float64, ok bool) {
	if s.runs >= s.Max || s.Hi-s.Lo <= s.Step {
		return 0, false
	}
	return math.Round((s.Lo + s.Hi) / 2), true
}

// Bound lowers Hi to hi, when a run showed that nothing above hi can
// pass: the test equipment saturated, delivering its ceiling, so no
// objective the equipment cannot deliver will reach its criterion.
func (s *Search) Bound(hi float64) {
	if hi > s.Lo && hi < s.Hi {
		// The resolution is then a share of the bound, not of a target
		// far above it.
		s.Hi, s.Step = hi, max(min(s.Step, hi*s.share), 1)
	}
}

// EquipmentCeiling is the highest objective a run that saturated the test
// equipment leaves possible: its measured indicator is the equipment's
// ceiling (or under), and an objective passes only when the indicator
// reaches (1 - MaxRateDeviation) of it; 10 % more for a ceiling measured
// under overload.
func (s Settings) EquipmentCeiling(measured float64) float64 {
	return 1.1 * measured / (1 - s.MaxRateDeviation)
}

// Record takes the outcome of the run of objective.
func (s *Search) Record(objective float64, passed bool) {
	s.runs++
	if passed {
		s.Lo = max(s.Lo, objective)
	} else {
		s.Hi = min(s.Hi, objective)
	}
}
