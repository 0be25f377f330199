package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func dur(s float64) string {
	if s == 0 {
		return "-"
	}
	return time.Duration(s * 1e9).Round(time.Microsecond).String()
}

// WriteText writes the report as a table for people.
func (r *Report) WriteText(w io.Writer) {
	var b strings.Builder
	asked := "max"
	if r.AskedRate > 0 {
		asked = fmt.Sprintf("%.0f/s", r.AskedRate)
	}
	sat := ""
	if s := r.Saturation; s != nil && s.Saturated {
		// First: the numbers below are partly the generator's.
		fmt.Fprintf(&b, "SATURATED: the generator, not the target, limited this run; its latencies include the generator's own delays\n")
		for _, l := range s.Limits {
			fmt.Fprintf(&b, "  - %s\n", l.Detail)
		}
		sat = " [saturated: not the target's alone]"
	}
	fmt.Fprintf(&b, "%-22s %d\n", "attempted", r.Attempted)
	fmt.Fprintf(&b, "%-22s %d\n", "established", r.Established)
	fmt.Fprintf(&b, "%-22s %d\n", "failed", r.FailedTotal())
	names := make([]string, 0, len(r.Failed))
	for k := range r.Failed {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "  %-20s %d\n", k, r.Failed[k])
	}
	fmt.Fprintf(&b, "%-22s %d\n", "in flight", r.InFlight)
	fmt.Fprintf(&b, "%-22s %d\n", "SYN retransmits", r.Retransmits)
	fmt.Fprintf(&b, "%-22s %.0f handshakes/s (attempts %.0f/s, asked %s) over %.2fs, %d worker(s)\n", "rate", r.CPS, r.AttemptRate, asked, r.DurationSeconds, r.Workers)
	if s := r.Saturation; s != nil && s.HeldBack > 0 {
		fmt.Fprintf(&b, "%-22s %d attempts of the schedule: the target answered slower than asked (what was in flight filled the concurrency bound, the responses the RX ring takes, or every source port); the rate above is the target's\n", "held back", s.HeldBack)
	}
	clock := ""
	if r.RxStamped > 0 {
		clock = fmt.Sprintf(" (replies timed on arrival by XDP: %d segments)", r.RxStamped)
	}
	fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s%s%s\n", "handshake RTT", dur(r.RTT.P50), dur(r.RTT.P90), dur(r.RTT.P99), dur(r.RTT.P999), dur(r.RTT.Max), clock, sat)
	fmt.Fprintf(&b, "%-22s %s: %d closed, %d reset by peer; RST sent %d, received %d", "close", r.CloseMode, r.Closed, r.Reset, r.RSTSent, r.RSTReceived)
	if r.TimeWait > 0 {
		fmt.Fprintf(&b, "; %d in TIME-WAIT (we closed first)", r.TimeWait)
	}
	b.WriteString("\n")
	if q := r.Requests; q != nil {
		fmt.Fprintf(&b, "%-22s %d: %d complete, %d failed%s, %d in flight; %d retransmitted segments, %d window probes\n", "requests", q.Requests,
			q.Completed, q.FailedTotal(), bracket(q.Failed), q.InFlight, q.Retransmits, q.WindowProbes)
		status := "-" // no complete response
		if len(q.Status) > 0 {
			status = FormatCounts(q.Status)
		}
		fmt.Fprintf(&b, "%-22s %s\n", "status", status)
		fmt.Fprintf(&b, "%-22s %.0f responses/s, %s/s, %d bytes in all\n", "response rate", q.PerSecond, bytesHuman(q.BytesPerSecond), q.ResponseBytes)
		fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  max %s%s\n", "time to first byte", dur(q.TTFB.P50), dur(q.TTFB.P90), dur(q.TTFB.P99), dur(q.TTFB.Max), sat)
		if r.AskedRate > 0 && q.TTLBSched.P50 > 0 {
			// Open loop: the headline counts from each attempt's intended
			// start, so a stall of the generator is not hidden.
			fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  max %s%s\n", "latency (schedule)", dur(q.TTLBSched.P50), dur(q.TTLBSched.P90), dur(q.TTLBSched.P99), dur(q.TTLBSched.Max), sat)
		}
		fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  max %s%s\n", "time to last byte", dur(q.TTLB.P50), dur(q.TTLB.P90), dur(q.TTLB.P99), dur(q.TTLB.Max), sat)
	}
	if t := r.TLS; t != nil {
		resumed := ""
		if t.Resumed > 0 {
			resumed = fmt.Sprintf(", %d resumed (%.1f %%)", t.Resumed, 100*float64(t.Resumed)/float64(max(t.Handshakes, 1)))
		}
		sni := "no SNI"
		if t.ServerName != "" {
			sni = "SNI " + t.ServerName
		}
		fmt.Fprintf(&b, "%-22s %d complete (%.0f/s)%s, %d failed%s; %s\n", "TLS handshakes", t.Handshakes, t.PerSecond, resumed, t.FailedTotal(), bracket(t.Failed), sni)
		fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  max %s%s\n", "TLS handshake time", dur(t.HandshakeTime.P50), dur(t.HandshakeTime.P90), dur(t.HandshakeTime.P99), dur(t.HandshakeTime.Max), sat)
		if len(t.Versions) > 0 {
			fmt.Fprintf(&b, "%-22s %s; %s; %s\n", "TLS negotiated", FormatCounts(t.Versions), FormatCounts(t.Ciphers), FormatCounts(t.Groups))
		}
	}
	if k := r.KernelSYNs; k != nil {
		fmt.Fprintf(&b, "%-22s made by the XDP program, one per probe (no retransmission); answers counted there, SYN-ACKs reset there; %d duplicate answers\n", "SYNs", k.Duplicates)
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(&b, "per target\n")
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "  %-21s attempted %d, established %d, failed %d, RTT p50 %s p99 %s\n", t.Target, t.Attempted, t.Established,
				t.Failed, dur(t.RTT.P50), dur(t.RTT.P99))
		}
	}
	if len(r.Families) > 0 {
		fmt.Fprintf(&b, "per family\n")
		for _, f := range r.Families {
			fmt.Fprintf(&b, "  %-21s attempted %d, established %d, failed %d\n", f.Family, f.Attempted, f.Established, f.Failed)
		}
	}
	for _, s := range []struct {
		name string
		t    *Settings
	}{{"tcp settings", r.TCP}, {"tcp settings (IPv6)", r.TCP6}} {
		t := s.t
		if t == nil {
			continue
		}
		onOff := func(b bool) string {
			if b {
				return "on"
			}
			return "off"
		}
		ws := "off"
		if t.WindowScaling {
			ws = strconv.Itoa(int(t.WindowScale))
		}
		fmt.Fprintf(&b, "%-22s timestamps %d, sack %s, window scale %s (window %d), mss %d, ecn %s, ttl %d, syn retries %d\n", s.name,
			t.Timestamps, onOff(t.SACK), ws, t.Window, t.MSS, onOff(t.ECN), t.TTL, t.SynRetries)
	}
	if r.XSK.RxLost() > 0 {
		fmt.Fprintf(&b, "%-22s %d received frames lost: %d with the fill ring empty, %d too large for a frame, %d with the RX ring full\n", "AF_XDP",
			r.XSK.RxLost(), r.XSK.RxFillRingEmpty, r.XSK.RxDropped-min(r.XSK.RxFillRingEmpty, r.XSK.RxDropped), r.XSK.RxRingFull)
	}
	if r.PartialChecksums > 0 {
		fmt.Fprintf(&b, "%-22s %d segments from a local peer with TX checksum offload, taken\n", "partial checksums", r.PartialChecksums)
	}
	if r.TxDropped > 0 || len(r.Drops) > 0 {
		fmt.Fprintf(&b, "%-22s tx %d, rx %s\n", "dropped frames", r.TxDropped, FormatCounts(r.Drops))
	}
	if len(r.QueuedDown) > 0 || r.EstablishedDown > 0 {
		fmt.Fprintf(&b, "%-22s %s while the interface was down (sent late, when it was back); %d handshakes established then, their ACK late\n", "queued while down", FormatCounts(r.QueuedDown), r.EstablishedDown)
	}
	if p := r.Path; p != nil {
		fmt.Fprintf(&b, "%-22s %s (%s), XDP %s, AF_XDP %s, %d of %d active RX queue(s) (%d allocated)\n", "interface",
			p.Interface, p.Kind, p.XDPMode, p.SocketMode, r.Workers, p.ActiveRxQueues, p.AllocatedRxQueues)
	}
	for i, f := range r.Diagnosis {
		if i == 0 {
			fmt.Fprintf(&b, "diagnosis\n")
		}
		fmt.Fprintf(&b, "  - %s\n    fix: %s\n", f.Cause, f.Fix)
	}
	_, _ = io.WriteString(w, b.String())
}

// bracket is FormatCounts in brackets, or nothing for no counts.
func bracket(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	return " [" + FormatCounts(m) + "]"
}

// bytesHuman is a byte rate in B, kB, MB or GB (powers of 1000).
func bytesHuman(v float64) string {
	for _, u := range []string{"B", "kB", "MB"} {
		if v < 1000 {
			return strconv.FormatFloat(v, 'f', 1, 64) + " " + u
		}
		v /= 1000
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " GB"
}

// FormatCounts formats counts by name as "a=1 b=2", names sorted.
func FormatCounts(m map[string]uint64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for i, k := range names {
		names[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(names, " ")
}
