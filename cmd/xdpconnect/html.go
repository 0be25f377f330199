package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/internal/rfc9411"
	"github.com/xdpconnect/xdpconnect/report"
)

// writeHTML writes page to path (--html).
func writeHTML(path string, page *report.Page) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := report.WriteHTML(f, page); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runPage is a run's report as a page: its totals and its timeline, the
// stages shaded.
func runPage(r *report.Report, stages []xdpconnect.Stage) *report.Page {
	p := &report.Page{Title: "xdpconnect run"}
	if r.RunID != "" {
		p.Title += " " + r.RunID
	}
	p.Facts = append(p.Facts, [2]string{"xdpconnect", version + " " + strings.Join(os.Args[1:], " ")})
	if pa := r.Path; pa != nil {
		p.Facts = append(p.Facts, [2]string{"interface", fmt.Sprintf("%s (%s), XDP %s, AF_XDP %s", pa.Interface, pa.Driver, pa.XDPMode, pa.SocketMode)})
	}
	p.Facts = append(p.Facts, [2]string{"workers", fmt.Sprint(r.Workers)}, [2]string{"close", r.CloseMode})
	rows := []report.TableRow{
		{Cells: []string{"attempted", fmt.Sprint(r.Attempted)}},
		{Cells: []string{"established", fmt.Sprint(r.Established)}},
		{Cells: []string{"connections/s", fmt.Sprintf("%.1f", r.CPS)}},
		{Cells: []string{"handshake RTT p50", dur(r.RTT.P50)}},
		{Cells: []string{"handshake RTT p99", dur(r.RTT.P99)}},
	}
	for _, k := range slices.Sorted(maps.Keys(r.Failed)) {
		rows = append(rows, report.TableRow{Cells: []string{"failed " + k, fmt.Sprint(r.Failed[k])}, Class: "fail"})
	}
	if q := r.Requests; q != nil {
		rows = append(rows, report.TableRow{Cells: []string{"requests complete", fmt.Sprint(q.Completed)}},
			report.TableRow{Cells: []string{"requests/s", fmt.Sprintf("%.1f", q.PerSecond)}},
			report.TableRow{Cells: []string{"time to first byte p99", dur(q.TTFB.P99)}},
			report.TableRow{Cells: []string{"time to last byte p99", dur(q.TTLB.P99)}})
		for _, k := range slices.Sorted(maps.Keys(q.Failed)) {
			rows = append(rows, report.TableRow{Cells: []string{"request failed " + k, fmt.Sprint(q.Failed[k])}, Class: "fail"})
		}
	}
	sec := report.PageSection{ID: "run", Title: "totals and timeline", Table: &report.Table{Header: []string{"", "value"}, Rows: rows},
		Charts: report.TimelineCharts(r.Timeline), Notes: r.Notes}
	if s := r.Saturation; s != nil && s.Saturated {
		f := false
		sec.Pass = &f
		sec.Verdict = "the generator was the limit of this run: its figures are xdpconnect's, not the target's"
	}
	at := 0.0
	prev := 0.0
	for i, st := range stages {
		d := st.Duration.Seconds()
		sec.Phases = append(sec.Phases, report.Phase{Name: fmt.Sprintf("stage %d: %g→%g/s", i+1, prev, st.Rate), From: at, To: at + d})
		at, prev = at+d, st.Rate
	}
	for _, d := range r.Diagnosis {
		sec.Notes = append(sec.Notes, fmt.Sprintf("diagnosis: %s (%d); fix: %s", d.Cause, d.Count, d.Fix))
	}
	p.Sections = []report.PageSection{sec}
	return p
}

// rfcPage is the procedure's result as a page: the testbed, then per pass
// a table of its steps and per step its criteria and its charts with the
// RFC's phases shaded.
func rfcPage(res *rfcResult) *report.Page {
	p := &report.Page{Title: fmt.Sprintf("RFC 9411 %s (section %s): target %.0f %s", res.Test, res.Section, res.Target, res.Unit)}
	tb := &res.Testbed
	if tb.Device != "" {
		p.Facts = append(p.Facts, [2]string{"device under test", tb.Device})
	}
	s := res.Settings
	p.Facts = append(p.Facts,
		[2]string{"test equipment", fmt.Sprintf("xdpconnect %s, Linux %s, %s (%d CPUs)", tb.Version, tb.Kernel, tb.CPU, tb.CPUs)},
		[2]string{"interface", fmt.Sprintf("%s (%s), XDP %s, AF_XDP %s, %d worker(s)", tb.Interface, tb.Driver, tb.XDPMode, tb.AFXDPMode, tb.Workers)},
		[2]string{"arguments", strings.Join(tb.Args, " ")},
		[2]string{"phases (4.3.4)", fmt.Sprintf("ramp up %v, sustain %v (its whole seconds measured), ramp down %v", s.RampUp, s.Sustain, s.RampDown)})
	if t := res.TCP; t != nil {
		p.Facts = append(p.Facts, [2]string{"test equipment TCP (4.3.1.1)", fmt.Sprintf("MSS %d, receive window %d (scale %d), initial window 10 segments, SYN retries %d, SACK %v, FIN close",
			t.MSS, t.Window, t.WindowScale, t.SynRetries, t.SACK)})
	}
	phases := []report.Phase{{Name: "ramp up", From: 0, To: s.RampUp.Seconds()},
		{Name: "sustain", From: s.RampUp.Seconds(), To: (s.RampUp + s.Sustain).Seconds()},
		{Name: "ramp down", From: (s.RampUp + s.Sustain).Seconds(), To: (s.RampUp + s.Sustain + s.RampDown).Seconds()},
		{Name: "collection", From: (s.RampUp + s.Sustain + s.RampDown).Seconds(), To: 1e9}}
	for i, pass := range res.Passes {
		ok := pass.Result >= res.Target
		rows := make([]report.TableRow, 0, len(pass.Steps))
		for _, st := range pass.Steps {
			sat := ""
			if st.Saturated {
				sat = "test equipment saturated"
			}
			rows = append(rows, report.TableRow{Class: passClass(st.Pass),
				Cells: []string{st.Step, fmt.Sprintf("%.0f", st.Objective), fmt.Sprintf("%.1f", st.Measured.KPI), verdictWord(st.Pass), sat, strings.TrimPrefix(failedNames(st.Criteria), "failed: ")}})
		}
		p.Sections = append(p.Sections, report.PageSection{ID: fmt.Sprintf("p%d", i),
			Title:   fmt.Sprintf("%s (GET %s) over %s: result %.0f %s", pass.Size, pass.Path, familyName(pass.Family), pass.Result, res.Unit),
			Verdict: pass.Verdict, Pass: &ok,
			Table: &report.Table{Header: []string{"step", "objective (" + res.Unit + ")", "measured in sustain", "verdict", "limit", "criteria"}, Rows: rows}})
		for j, st := range pass.Steps {
			crit := make([]report.TableRow, 0, len(st.Criteria))
			for _, c := range st.Criteria {
				crit = append(crit, report.TableRow{Class: passClass(c.Pass),
					Cells: []string{c.Name, c.Section, criterionValue(c, c.Value), bound(c), verdictWord(c.Pass), c.Detail}})
			}
			sec := report.PageSection{ID: fmt.Sprintf("p%ds%d", i, j),
				Title:   fmt.Sprintf("%s over %s, %s at %.0f %s", pass.Size, familyName(pass.Family), st.Step, st.Objective, res.Unit),
				Verdict: verdictWord(st.Pass) + ": " + failedNames(st.Criteria), Pass: &st.Pass,
				Table:  &report.Table{Header: []string{"criterion", "RFC 9411", "measured", "threshold", "verdict", "detail"}, Rows: crit},
				Phases: phases, Charts: report.TimelineCharts(st.Timeline)}
			if st.Saturated {
				sec.Notes = append(sec.Notes, "test equipment saturated: "+strings.Join(st.Limits, "; "))
			}
			if m := st.Measured; m.TTLB.P50 > 0 {
				sec.Notes = append(sec.Notes,
					fmt.Sprintf("time to first byte: min %s, mean %s, p50 %s, p99 %s, max %s", dur(m.TTFBMin), dur(m.TTFBMean), dur(m.TTFB.P50), dur(m.TTFB.P99), dur(m.TTFB.Max)),
					fmt.Sprintf("time to last byte: min %s, mean %s, p50 %s, p99 %s, max %s", dur(m.TTLBMin), dur(m.TTLBMean), dur(m.TTLB.P50), dur(m.TTLB.P99), dur(m.TTLB.Max)))
			}
			p.Sections = append(p.Sections, sec)
		}
	}
	return p
}

func passClass(ok bool) string { return map[bool]string{true: "pass", false: "fail"}[ok] }

func verdictWord(ok bool) string { return map[bool]string{true: "pass", false: "FAIL"}[ok] }

// criterionValue prints a criterion's value or bound in its unit: shares
// and deviations as percent, seconds and rates as numbers.
func criterionValue(c rfc9411.Criterion, v float64) string {
	switch {
	case c.Section == "4.3.4":
		return fmt.Sprintf("%.0f s", v)
	case c.AtMost:
		return fmt.Sprintf("%.4f %%", 100*v)
	}
	return fmt.Sprintf("%.1f", v)
}

func bound(c rfc9411.Criterion) string {
	op := "at least "
	if c.AtMost {
		op = "at most "
	}
	return op + criterionValue(c, c.Limit)
}

// stepTimeline is a run's timeline as a step keeps it: per-second counts
// and quantiles; the histograms stay in the run's own report.
func stepTimeline(secs []report.Second) []report.Second {
	out := make([]report.Second, len(secs))
	for i, s := range secs {
		s.RTTHist, s.TTFBHist, s.TTLBHist = nil, nil, nil
		out[i] = s
	}
	return out
}
