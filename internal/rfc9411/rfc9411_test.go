package rfc9411

import (
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/report"
)

// run is a timeline of a CPS run: a ramp of 2 s, a sustain of 4 s at
// rate, a ramp-down of 2 s; every connection makes one transaction.
func run(rate uint64) []report.Second {
	var secs []report.Second
	for t := range 8 {
		n := rate
		if t < 2 || t >= 6 {
			n = rate / 3
		}
		secs = append(secs, report.Second{T: t, Attempted: n, Established: n, Closed: n, Open: n / 10,
			Responses: map[string]uint64{"2xx": n}})
	}
	return secs
}

func settings() Settings {
	s := DefaultSettings()
	s.RampUp, s.Sustain, s.RampDown = 2*time.Second, 4*time.Second, 2*time.Second
	return s
}

func failed(cs []Criterion) []string {
	var out []string
	for _, c := range cs {
		if !c.Pass {
			out = append(out, c.Name)
		}
	}
	return out
}

// The sustain phase alone is judged: the ramps' seconds, whatever their
// rate, failures or resets, count for nothing (4.3.4).
func TestJudgeSustainOnly(t *testing.T) {
	secs := run(1000)
	secs[0].Failed = map[string]uint64{"ETIMEDOUT": 50}
	secs[1].Reset = 40
	secs[7].RequestsFailed = map[string]uint64{"ECONNRESET": 9}
	// The generator's own: no port was free, nothing reached the device.
	secs[3].Failed = map[string]uint64{"EADDRNOTAVAIL": 7}
	m, cs := Judge(CPS, 1000, secs, settings())
	if !Passed(cs) || m.KPI != 1000 || m.Seconds != 4 || m.Failed != 0 || m.Reset != 0 || m.Connections != 4000 || m.Local != 7 {
		t.Fatalf("measured %+v, failed %v", m, failed(cs))
	}
}

// 7.2.3.4: one failed transaction in 100,000 is too many, whatever its kind:
// a failed handshake, a failed request, a response other than 2xx; one
// reset connection likewise.
func TestJudgeCriteria(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(s *report.Second)
		want string
	}{
		{"handshake timed out", func(s *report.Second) { s.Failed = map[string]uint64{"ETIMEDOUT": 1} }, "failed transactions"},
		{"request timed out", func(s *report.Second) { s.RequestsFailed = map[string]uint64{"ETIMEDOUT": 1} }, "failed transactions"},
		{"a 503", func(s *report.Second) { s.Responses["5xx"] = 1 }, "failed transactions"},
		{"reset after the handshake", func(s *report.Second) { s.Reset = 1 }, "connections ended by an RST from the device"},
		{"handshake refused", func(s *report.Second) { s.Failed = map[string]uint64{"ECONNREFUSED": 1} }, "connections ended by an RST from the device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			secs := run(1000)
			c.mod(&secs[3])
			_, cs := Judge(CPS, 1000, secs, settings())
			if f := failed(cs); !strings.Contains(strings.Join(f, ","), c.want) {
				t.Fatalf("failed criteria %v, want %q among them", f, c.want)
			}
		})
	}
}

// The rate deviation is per second against the sustain phase's mean, and
// the mean must reach the objective within the same bound.
func TestJudgeDeviation(t *testing.T) {
	s := settings()
	for _, c := range []struct {
		second, objective uint64
		pass              bool
	}{
		{980, 1000, true},   // 2 % under in one second
		{920, 1000, false},  // 8 % under the mean
		{1000, 1060, false}, // steady, but 6 % short of the objective
		{1000, 1040, true},  // steady, 4 % short
	} {
		secs := run(1000)
		secs[4].Established = c.second
		m, cs := Judge(CPS, float64(c.objective), secs, s)
		if Passed(cs) != c.pass {
			t.Errorf("a second at %d, objective %d: pass %v, want %v (mean %.1f, failed %v)", c.second, c.objective, Passed(cs), c.pass, m.KPI, failed(cs))
		}
	}
}

// Each test measures its own indicator: TPS the 2xx responses per second,
// the concurrent test the open connections, with its own 10 % bound.
func TestJudgeIndicators(t *testing.T) {
	secs := run(1000)
	for i := range secs {
		secs[i].Responses["2xx"] = 10 * secs[i].Established
		secs[i].Open = 5000
	}
	secs[3].Open = 4600 // 8 %: within the concurrent test's 10 %
	if m, cs := Judge(TPS, 10000, secs, settings()); m.KPI != 10000 || !Passed(cs) {
		t.Fatalf("tps %+v, failed %v", m, failed(cs))
	}
	m, cs := Judge(Concurrent, 5000, secs, settings())
	if m.KPI != 4900 || m.MinPerSecond != 4600 || !Passed(cs) {
		t.Fatalf("concurrent %+v, failed %v", m, failed(cs))
	}
}

// The concurrent test's connections are opened in the ramp-up: a
// connection refused there counts against it, and a test that ignored the
// ramp's seconds would pass it.
func TestJudgeConcurrentCountsRamp(t *testing.T) {
	secs := run(1000)
	for i := range secs {
		secs[i].Open = 5000
	}
	secs[0].Failed = map[string]uint64{"ECONNREFUSED": 1}
	m, cs := Judge(Concurrent, 5000, secs, settings())
	if m.Reset != 1 || m.Connections != 4000+2*333 || Passed(cs) {
		t.Fatalf("measured %+v, failed %v", m, failed(cs))
	}
	if _, cs := Judge(CPS, 1000, secs, settings()); !Passed(cs) {
		t.Fatalf("a rate test judges the sustain phase only: failed %v", failed(cs))
	}
}

// A run that stopped early (or a timeline without the sustain phase)
// validates nothing.
func TestJudgeShortRun(t *testing.T) {
	secs := run(1000)[:4]
	_, cs := Judge(CPS, 1000, secs, settings())
	if Passed(cs) || failed(cs)[0] != "sustain phase measured" {
		t.Fatalf("failed %v", failed(cs))
	}
	if _, cs := Judge(CPS, 1000, nil, settings()); Passed(cs) {
		t.Fatal("an empty timeline passed")
	}
}

// Only whole seconds of the sustain phase are measured.
func TestWindow(t *testing.T) {
	s := settings()
	s.RampUp, s.Sustain = 1500*time.Millisecond, 3*time.Second
	if w := s.Window(); w != (Window{From: 2, To: 4}) {
		t.Fatalf("window %+v", w)
	}
}

// Step 3 ends within the resolution of the device's true limit, from
// below, in at most MaxSearch runs.
func TestSearch(t *testing.T) {
	s := DefaultSettings()
	for _, limit := range []float64{1100, 4321, 6300, 9950} {
		sr := NewSearch(1000, 10000, s)
		runs := searchTo(sr, limit)
		if sr.Lo > limit || limit-sr.Lo > 10000*s.Resolution || runs > s.MaxSearch {
			t.Errorf("limit %.0f: result %.0f after %d runs", limit, sr.Lo, runs)
		}
	}
}

// searchTo runs sr against a device whose limit is limit (every objective
// up to it passes) and returns how many runs it took.
func searchTo(sr *Search, limit float64) (runs int) {
	for {
		obj, ok := sr.Next()
		if !ok {
			return runs
		}
		runs++
		sr.Record(obj, obj <= limit)
	}
}

// A run that saturated the test equipment bounds the search: a target ten
// times the equipment's ceiling no longer spends the search's runs there.
func TestSearchBound(t *testing.T) {
	s := DefaultSettings()
	s.MaxSearch = 3
	const ceiling = 240000.0
	sr := NewSearch(200000, 2000000, s)
	sr.Bound(s.EquipmentCeiling(ceiling))
	runs := searchTo(sr, ceiling)
	if sr.Lo <= 200000 || sr.Lo > ceiling || runs != 3 {
		t.Fatalf("result %.0f after %d runs", sr.Lo, runs)
	}
	sr.Bound(100) // below what passed: no effect
	if sr.Lo <= 200000 {
		t.Fatal("a bound under Lo moved the search")
	}
}

func TestSettingsCheck(t *testing.T) {
	s := DefaultSettings()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Sustain = time.Second
	if s.Check() == nil {
		t.Fatal("a 1 s sustain phase has no whole second to measure past its edges")
	}
}

// The HTTPS tests follow their HTTP procedure in sections 7.6 to 7.9; a
// connection counts once its TLS handshake is complete (the KPI of
// https-cps is handshakes, not TCP connections), and a failed handshake
// is a failed transaction.
func TestJudgeHTTPS(t *testing.T) {
	for test, want := range map[Test]string{HTTPSCPS: "7.6", HTTPSTPS: "7.7", HTTPSLatency: "7.8", HTTPSConcurrent: "7.9", CPS: "7.2", Concurrent: "7.5"} {
		if test.Section() != want || test.Unit() != test.Base().Unit() {
			t.Errorf("%s: section %s unit %q, want %s", test, test.Section(), test.Unit(), want)
		}
	}
	if !HTTPSTPS.HTTPS() || TPS.HTTPS() || HTTPSTPS.Base() != TPS {
		t.Fatal("HTTPS or Base wrong")
	}
	secs := run(1000)
	for i := range secs {
		secs[i].TLSHandshakes = secs[i].Established - 10 // 10 a second failed their handshake
		secs[i].TLSFailed = map[string]uint64{"alert: handshake_failure": 10}
		secs[i].Responses = map[string]uint64{"2xx": secs[i].TLSHandshakes}
	}
	m, cs := Judge(HTTPSCPS, 990, secs, settings())
	if m.KPI != 990 || m.Failed != 40 || Passed(cs) {
		t.Fatalf("https-cps: KPI %v failed %d, criteria failed %v", m.KPI, m.Failed, failed(cs))
	}
	if names := failed(cs); len(names) != 1 || names[0] != "failed transactions" {
		t.Fatalf("failed criteria %v, want the failed transactions alone", names)
	}
	// The same timeline judged as plain HTTP counts TCP connections.
	if m, _ := Judge(CPS, 1000, secs, settings()); m.KPI != 1000 {
		t.Fatalf("cps KPI %v", m.KPI)
	}
}
