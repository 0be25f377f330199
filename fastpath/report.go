package fastpath

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/tcp"
)

// Quantiles are handshake RTT quantiles in seconds.
type Quantiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Report is the outcome of a run. Its JSON form is the `--json` output.
type Report struct {
	Attempted       uint64            `json:"attempted"`
	Established     uint64            `json:"established"`
	Failed          map[string]uint64 `json:"failed"`
	InFlight        uint64            `json:"in_flight"`
	Retransmits     uint64            `json:"retransmits"`
	DurationSeconds float64           `json:"duration_seconds"`
	CPS             float64           `json:"cps"`
	AttemptRate     float64           `json:"attempt_rate"`
	RTT             Quantiles         `json:"rtt_seconds"`
	AskedRate       float64           `json:"asked_rate"`
	RSTSent         uint64            `json:"rst_sent"`
	RSTReceived     uint64            `json:"rst_received"`
	Closed          uint64            `json:"closed"`
	Reset           uint64            `json:"reset"`
	Drops           map[string]uint64 `json:"dropped_frames"`
	TxDropped       uint64            `json:"tx_dropped"`
	// PartialChecksums counts segments taken with a partial checksum from
	// a local peer (see Config.AcceptPartialChecksum).
	PartialChecksums uint64 `json:"partial_checksums"`
	// RxStamped counts TCP segments timed by the XDP program's arrival
	// stamp (the others, by the loop that found them).
	RxStamped      uint64  `json:"rx_stamped"`
	Workers        int     `json:"workers"`
	CloseMode      string  `json:"close_mode"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// MaxRSSBytes is the process's peak resident memory (getrusage).
	MaxRSSBytes uint64 `json:"max_rss_bytes"`
	// TableBytes is the connection table's size (64 B an entry).
	TableBytes uint64 `json:"table_bytes"`
	// Series samples the cumulative counts every 100 ms of the run.
	Series []Point `json:"series,omitempty"`
	// RTTHist is the handshake RTT histogram: non-empty buckets only.
	RTTHist []Bucket `json:"rtt_histogram,omitempty"`
	// XSK are the AF_XDP sockets' statistics summed over queues (filled by
	// the caller that owns the sockets).
	XSK *XSKStats `json:"xsk,omitempty"`
	// XDP are the XDP program's counters by name (filled by the caller
	// that owns the program).
	XDP map[string]uint64 `json:"xdp,omitempty"`
	// Path says where the run went out (filled by the caller).
	Path *Path `json:"path,omitempty"`
	// RunID and Shard tie the reports of a sharded run together (set by
	// the caller; see xdpconnect.Merge).
	RunID string     `json:"run_id,omitempty"`
	Shard *ShardInfo `json:"shard,omitempty"`
	// Stopped is the error that stopped the run early (a socket that
	// failed for good), empty when it ran its course.
	Stopped string `json:"stopped,omitempty"`
	// Diagnosis names the causes of missing or dropped replies, the
	// dominant one first, each with its fix (filled by the caller).
	Diagnosis []Finding `json:"diagnosis,omitempty"`
	// TCP are the settings the run's segments were built with (IPv4);
	// TCP6 those of IPv6 connections, when the run has IPv6 targets.
	TCP  *Settings `json:"tcp,omitempty"`
	TCP6 *Settings `json:"tcp6,omitempty"`
	// KernelSYNs is set when the run's SYNs were made in the kernel (a
	// SYN-only run with --xdp-syn): one SYN per probe, answers counted by
	// the XDP program, no RTT.
	KernelSYNs *KernelSYNs `json:"kernel_syns,omitempty"`
	// Families split the totals by address family when the run has IPv6
	// targets.
	Families []FamilyReport `json:"families,omitempty"`
	// Targets split the totals by target when there are several.
	Targets []TargetReport `json:"targets,omitempty"`
	// Requests is request mode's part of the report.
	Requests *RequestReport `json:"requests,omitempty"`
}

// RequestReport is what request mode's requests came to. Requests =
// completed + failed + in flight; each established connection made one to
// PerConnection of them.
type RequestReport struct {
	// PerConnection is how many requests a connection makes (keep-alive
	// when above 1): Requests is at most that many per established one.
	PerConnection int    `json:"per_connection"`
	Requests      uint64 `json:"requests"`
	Completed     uint64 `json:"completed"`
	// Failed counts failed requests by ResponseErrors name.
	Failed   map[string]uint64 `json:"failed"`
	InFlight uint64            `json:"in_flight"`
	// Status counts complete responses by HTTP status code ("200"), and
	// Classes by class ("2xx"); a raw response has no status.
	Status  map[string]uint64 `json:"status,omitempty"`
	Classes map[string]uint64 `json:"classes,omitempty"`
	// Retransmits are request segments sent again after an RTO;
	// OutOfOrder response segments that were not at RCV.NXT (ACKed with
	// a SACK block, not kept: the server sends them again).
	Retransmits uint64 `json:"retransmits"`
	OutOfOrder  uint64 `json:"out_of_order"`
	// WindowProbes are probes of a server's zero window, which held the
	// request back.
	WindowProbes  uint64 `json:"window_probes"`
	ResponseBytes uint64 `json:"response_bytes"`
	// PerSecond and BytesPerSecond are complete responses and response
	// bytes per second over the measured window.
	PerSecond      float64   `json:"per_second"`
	BytesPerSecond float64   `json:"bytes_per_second"`
	TTFB           Quantiles `json:"ttfb_seconds"`
	TTLB           Quantiles `json:"ttlb_seconds"`
	TTFBHist       []Bucket  `json:"ttfb_histogram,omitempty"`
	TTLBHist       []Bucket  `json:"ttlb_histogram,omitempty"`
}

// requestReport is the request mode part of a report over win seconds.
func (e *Engine) requestReport(s *Snapshot, win float64) *RequestReport {
	q := &RequestReport{PerConnection: e.cfg.RequestsPerConn, Requests: s.Get(CntRequests), Completed: s.Get(CntResponses), Failed: map[string]uint64{},
		InFlight: s.RequestsInFlight(), Retransmits: s.Get(CntRequestRetrans), OutOfOrder: s.Get(CntOutOfOrder), WindowProbes: s.Get(CntWindowProbes),
		ResponseBytes: s.Get(CntResponseBytes), TTFB: quantiles(&s.TTFB), TTLB: quantiles(&s.TTLB),
		TTFBHist: s.TTFB.Buckets(), TTLBHist: s.TTLB.Buckets()}
	for i, name := range ResponseErrors {
		if v := s.Get(ResponseFailedCounter(i)); v != 0 {
			q.Failed[name] = v
		}
	}
	for code := 100; code <= 599; code++ {
		if v := s.Get(StatusCounter(code)); v != 0 {
			if q.Status == nil {
				q.Status, q.Classes = map[string]uint64{}, map[string]uint64{}
			}
			q.Status[strconv.Itoa(code)] = v
			q.Classes[strconv.Itoa(code/100)+"xx"] += v
		}
	}
	if win > 0 {
		q.PerSecond = float64(e.respEnd-e.respStart) / win
		q.BytesPerSecond = float64(e.bytesEnd-e.bytesStart) / win
	}
	return q
}

// KernelSYNs describes a run whose SYNs the XDP program made.
type KernelSYNs struct {
	// Duplicates are answers after a probe's first (a server's SYN-ACK
	// retransmission, a copy on the path): reset, not counted again.
	Duplicates uint64 `json:"duplicates"`
}

// FamilyReport is one address family's share of a run.
type FamilyReport struct {
	Family      string `json:"family"` // "ipv4" or "ipv6"
	Attempted   uint64 `json:"attempted"`
	Established uint64 `json:"established"`
	Failed      uint64 `json:"failed"`
}

// Settings are the effective TCP settings of a run: the network
// namespace's sysctls as Linux applies them to connect() (tcp.Sysctls),
// changed by the run's flags.
type Settings struct {
	Timestamps        int    `json:"tcp_timestamps"` // 0 off, 1 on, 2 on without a per-connection offset
	SACK              bool   `json:"tcp_sack"`
	WindowScaling     bool   `json:"tcp_window_scaling"`
	WindowScale       uint8  `json:"window_scale"`
	Window            uint32 `json:"window"` // initial receive window (the SYN shows at most 65535)
	MSS               uint16 `json:"mss"`
	ECN               bool   `json:"ecn"`
	TTL               uint8  `json:"ttl"`
	SynRetries        int    `json:"syn_retries"`
	SynLinearTimeouts int    `json:"syn_linear_timeouts"`
}

// SettingsOf is p as a report shows it.
func SettingsOf(p *tcp.Params) *Settings {
	ts := 0
	switch {
	case p.Timestamps && p.TSNoOffset:
		ts = 2
	case p.Timestamps:
		ts = 1
	}
	return &Settings{Timestamps: ts, SACK: p.SACK, WindowScaling: p.WindowScaling, WindowScale: p.WScale, Window: p.RcvWnd,
		MSS: p.MSS, ECN: p.ECN, TTL: p.TTL, SynRetries: p.SynRetries, SynLinearTimeouts: p.LinearTimeouts}
}

// ShardInfo says which part of a run a report is: shard Index of Count
// (Index -1 in a merged report), and the count of the whole plan.
type ShardInfo struct {
	Index     int    `json:"index"`
	Count     int    `json:"count"`
	PlanCount uint64 `json:"plan_count"`
}

// XSKStats are the AF_XDP statistics that explain lost frames, summed over
// the run's sockets.
type XSKStats struct {
	// RxDropped: frames the kernel dropped for the socket (no room).
	RxDropped uint64 `json:"rx_dropped"`
	// RxRingFull: frames dropped because the RX ring was full.
	RxRingFull uint64 `json:"rx_ring_full"`
	// RxFillRingEmpty: frames dropped because the fill ring was empty.
	RxFillRingEmpty uint64 `json:"rx_fill_ring_empty_descs"`
	// TxWakeups: sendto calls that kicked transmission.
	TxWakeups uint64 `json:"tx_wakeups"`
	// KickEAGAIN: kicks the kernel answered with EAGAIN (copy mode's
	// 32-frame budget), retried.
	KickEAGAIN uint64 `json:"kick_eagain"`
}

// RxLost is the frames lost before user space read them.
func (x *XSKStats) RxLost() uint64 {
	if x == nil {
		return 0
	}
	return x.RxDropped + x.RxRingFull + x.RxFillRingEmpty
}

// Path describes the interface a run used and how.
type Path struct {
	Interface string `json:"interface"`
	Kind      string `json:"kind"`
	Driver    string `json:"driver"`
	// XDPMode is how the program is attached: native or generic.
	XDPMode string `json:"xdp_mode"`
	// SocketMode is how the AF_XDP sockets are bound: copy or zerocopy.
	SocketMode        string `json:"socket_mode"`
	ActiveRxQueues    int    `json:"active_rx_queues"`
	AllocatedRxQueues int    `json:"allocated_rx_queues"`
	// AcceptPartialChecksum says partial checksums from a local peer were
	// taken (see Config.AcceptPartialChecksum).
	AcceptPartialChecksum bool `json:"accept_partial_checksum"`
	// Sources and PortLo..PortHi are the source addresses and ports used.
	Sources []string `json:"sources"`
	PortLo  uint16   `json:"port_lo"`
	PortHi  uint16   `json:"port_hi"`
}

// Finding is one diagnosed cause: what happened, how often, what to do.
type Finding struct {
	Cause string `json:"cause"`
	Fix   string `json:"fix"`
	Count uint64 `json:"count"`
}

func (e *Engine) report(s *Snapshot) *Report {
	win := (e.winEnd - e.winStart).Seconds()
	r := &Report{
		Attempted: s.Get(CntAttempted), Established: s.Get(CntEstablished), Failed: s.Failed,
		InFlight: s.InFlight(), Retransmits: s.Get(CntRetransmits), DurationSeconds: win,
		AskedRate: e.cfg.Rate, RSTSent: s.Get(CntRSTSent), RSTReceived: s.Get(CntRSTReceived),
		Closed: s.Get(CntClosed), Reset: s.Get(CntReset), Drops: s.Drops(), TxDropped: s.Get(CntTxDropped),
		PartialChecksums: s.Get(CntPartialChecksum), RxStamped: s.Get(CntRxStamped),
		Workers: len(e.workers), CloseMode: e.cfg.Close.String(), ElapsedSeconds: s.ElapsedSeconds,
		MaxRSSBytes: maxRSS(), TableBytes: uint64(len(e.table)) * connBytes,
	}
	if win > 0 {
		r.CPS = float64(e.estEnd-e.estStart) / win
		r.AttemptRate = float64(e.attEnd-e.attStart) / win
	}
	r.Series = e.series
	r.SetRTT(&s.RTT)
	if e.ex != nil {
		r.Requests = e.requestReport(s, win)
	}
	r.TCP = SettingsOf(&e.params[0])
	if slices.Contains(e.pairV6, true) {
		r.TCP6 = SettingsOf(&e.params[1])
		a6, e6, f6 := s.Get(CntAttempted6), s.Get(CntEstablished6), s.Get(CntFailed6)
		r.Families = []FamilyReport{{"ipv4", r.Attempted - a6, r.Established - e6, r.FailedTotal() - f6}, {"ipv6", a6, e6, f6}}
	}
	if len(e.cfg.Targets) > 1 {
		for _, ts := range e.TargetStats() {
			t := TargetReport{Target: ts.Target, Attempted: ts.Attempted, Established: ts.Established, Failed: ts.Failed}
			t.SetRTT(&ts.RTT)
			r.Targets = append(r.Targets, t)
		}
	}
	return r
}

// SetRTT sets the RTT histogram and the quantiles from h: the one place
// quantiles are computed, for a run's report and for merged ones.
func (r *Report) SetRTT(h *Histogram) { r.RTTHist, r.RTT = h.Buckets(), quantiles(h) }

func quantiles(h *Histogram) Quantiles {
	sec := func(ns int64) float64 { return float64(ns) / 1e9 }
	return Quantiles{P50: sec(h.Quantile(0.5)), P90: sec(h.Quantile(0.9)), P99: sec(h.Quantile(0.99)),
		P999: sec(h.Quantile(0.999)), Max: sec(h.Max)}
}

// Histogram rebuilds the RTT histogram from the report (its non-empty
// buckets and its maximum), losslessly: each bucket's bound maps back to
// its bucket.
func (r *Report) Histogram() Histogram { return histogramOf(r.RTTHist, r.RTT.Max) }

func histogramOf(buckets []Bucket, maxSec float64) Histogram {
	var h Histogram
	for _, b := range buckets {
		i := bucketOf(int64(math.Round(b.UpperSeconds * 1e9)))
		h.Counts[i] += b.Count
		h.N += b.Count
	}
	h.Max = int64(math.Round(maxSec * 1e9))
	return h
}

// TargetReport is one target's share of a run: the first
// Config.TargetStats targets get their own, the rest are summed as
// OtherTargets.
type TargetReport struct {
	Target      string    `json:"target"`
	Attempted   uint64    `json:"attempted"`
	Established uint64    `json:"established"`
	Failed      uint64    `json:"failed"`
	RTT         Quantiles `json:"rtt_seconds"`
	RTTHist     []Bucket  `json:"rtt_histogram,omitempty"`
}

// SetRTT sets the target's RTT quantiles and histogram from h.
func (t *TargetReport) SetRTT(h *Histogram) { t.RTTHist, t.RTT = h.Buckets(), quantiles(h) }

// Histogram rebuilds the target's RTT histogram (see Report.Histogram).
func (t *TargetReport) Histogram() Histogram { return histogramOf(t.RTTHist, t.RTT.Max) }

// Point is one sample of a run's progress.
type Point struct {
	Seconds     float64 `json:"t"`
	Attempted   uint64  `json:"attempted"`
	Established uint64  `json:"established"`
}

// Bucket is a histogram bucket: Count values <= UpperSeconds (and above
// the previous bucket's bound).
type Bucket struct {
	UpperSeconds float64 `json:"le"`
	Count        uint64  `json:"count"`
}

// Buckets lists h's non-empty buckets.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i, c := range h.Counts {
		if c != 0 {
			out = append(out, Bucket{UpperSeconds: float64(BucketHigh(i)) / 1e9, Count: c})
		}
	}
	return out
}

// FailedTotal is the number of failed attempts.
func (r *Report) FailedTotal() uint64 { return sum(r.Failed) }

// sum adds up counts by name.
func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

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
	clock := ""
	if r.RxStamped > 0 {
		clock = fmt.Sprintf(" (replies timed on arrival by XDP: %d segments)", r.RxStamped)
	}
	fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s%s\n", "handshake RTT", dur(r.RTT.P50), dur(r.RTT.P90), dur(r.RTT.P99), dur(r.RTT.P999), dur(r.RTT.Max), clock)
	fmt.Fprintf(&b, "%-22s %s: %d closed, %d reset by peer; RST sent %d, received %d\n", "close", r.CloseMode, r.Closed, r.Reset, r.RSTSent, r.RSTReceived)
	if q := r.Requests; q != nil {
		fmt.Fprintf(&b, "%-22s %d: %d complete, %d failed%s, %d in flight; %d retransmitted segments, %d window probes\n", "requests", q.Requests,
			q.Completed, q.FailedTotal(), bracket(q.Failed), q.InFlight, q.Retransmits, q.WindowProbes)
		fmt.Fprintf(&b, "%-22s %s\n", "status", kv(q.Status))
		fmt.Fprintf(&b, "%-22s %.0f responses/s, %s/s, %d bytes in all\n", "response rate", q.PerSecond, bytesHuman(q.BytesPerSecond), q.ResponseBytes)
		fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  max %s\n", "time to first byte", dur(q.TTFB.P50), dur(q.TTFB.P90), dur(q.TTFB.P99), dur(q.TTFB.Max))
		fmt.Fprintf(&b, "%-22s p50 %s  p90 %s  p99 %s  max %s\n", "time to last byte", dur(q.TTLB.P50), dur(q.TTLB.P90), dur(q.TTLB.P99), dur(q.TTLB.Max))
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
		fmt.Fprintf(&b, "%-22s rx ring full %d, fill ring empty %d, rx dropped %d\n", "AF_XDP", r.XSK.RxRingFull, r.XSK.RxFillRingEmpty, r.XSK.RxDropped)
	}
	if r.PartialChecksums > 0 {
		fmt.Fprintf(&b, "%-22s %d segments from a local peer with TX checksum offload, taken\n", "partial checksums", r.PartialChecksums)
	}
	if r.TxDropped > 0 || len(r.Drops) > 0 {
		fmt.Fprintf(&b, "%-22s tx %d, rx %s\n", "dropped frames", r.TxDropped, kv(r.Drops))
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

// ProgressLine returns a function that rewrites one terminal line with
// attempts, established, errors, in flight and the current against the
// asked rate (0: as fast as possible).
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
			s.ElapsedSeconds, att, s.Get(CntEstablished), s.FailedTotal(), kv(s.Failed), s.InFlight(), rate, a)
	}
}

// FailedTotal is the number of failed requests.
func (q *RequestReport) FailedTotal() uint64 { return sum(q.Failed) }

// bracket is kv in brackets, or nothing for no counts.
func bracket(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	return " [" + kv(m) + "]"
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

// kv formats counts by name as "a=1 b=2", names sorted.
func kv(m map[string]uint64) string {
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

func maxRSS() uint64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return uint64(ru.Maxrss) * 1024
}
