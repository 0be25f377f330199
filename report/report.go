package report

import (
	"math"
)

// Quantiles are handshake RTT quantiles in seconds.
type Quantiles struct {
	P50  float64 `json:"p50" merge:"derived"`
	P90  float64 `json:"p90" merge:"derived"`
	P99  float64 `json:"p99" merge:"derived"`
	P999 float64 `json:"p999" merge:"derived"`
	Max  float64 `json:"max" merge:"max"`
}

// Report is the outcome of a run. Its JSON form is the `--json` output.
type Report struct {
	// Format is the report's format version (FormatVersion); Merge reads
	// no other.
	Format          int               `json:"format" merge:"same"`
	Attempted       uint64            `json:"attempted" merge:"sum"`
	Established     uint64            `json:"established" merge:"sum"`
	Failed          map[string]uint64 `json:"failed" merge:"sum"`
	InFlight        uint64            `json:"in_flight" merge:"sum"`
	Retransmits     uint64            `json:"retransmits" merge:"sum"`
	DurationSeconds float64           `json:"duration_seconds" merge:"max"`
	CPS             float64           `json:"cps" merge:"sum"`
	AttemptRate     float64           `json:"attempt_rate" merge:"sum"`
	RTT             Quantiles         `json:"rtt_seconds" merge:"each"`
	AskedRate       float64           `json:"asked_rate" merge:"sum"`
	RSTSent         uint64            `json:"rst_sent" merge:"sum"`
	RSTReceived     uint64            `json:"rst_received" merge:"sum"`
	Closed          uint64            `json:"closed" merge:"sum"`
	Reset           uint64            `json:"reset" merge:"sum"`
	// TimeWait counts connections that ended in TIME-WAIT on our side (we
	// closed first): their ports wait out the quarantine.
	TimeWait  uint64            `json:"time_wait" merge:"sum"`
	Drops     map[string]uint64 `json:"dropped_frames" merge:"sum"`
	TxDropped uint64            `json:"tx_dropped" merge:"sum"`
	// PartialChecksums counts segments taken with a partial checksum from
	// a local peer (see Config.AcceptPartialChecksum).
	PartialChecksums uint64 `json:"partial_checksums" merge:"sum"`
	// RxStamped counts TCP segments timed by the XDP program's arrival
	// stamp (the others, by the loop that found them).
	RxStamped      uint64  `json:"rx_stamped" merge:"sum"`
	Workers        int     `json:"workers" merge:"sum"`
	CloseMode      string  `json:"close_mode" merge:"same"`
	ElapsedSeconds float64 `json:"elapsed_seconds" merge:"max"`
	// MaxRSSBytes is the process's peak resident memory (getrusage).
	MaxRSSBytes uint64 `json:"max_rss_bytes" merge:"max"`
	// TableBytes is the connection table's size (64 B an entry).
	TableBytes uint64 `json:"table_bytes" merge:"sum"`
	// Timeline is the run second by second (attempts, outcomes, in flight,
	// latency histograms of each second).
	Timeline []Second `json:"timeline,omitempty" merge:"keyed"`
	// Series samples the cumulative counts every 100 ms of the run.
	Series []Point `json:"series,omitempty" merge:"zip"`
	// RTTHist is the handshake RTT histogram: non-empty buckets only.
	RTTHist []Bucket `json:"rtt_histogram,omitempty" merge:"keyed"`
	// XSK are the AF_XDP sockets' statistics summed over queues (filled by
	// the caller that owns the sockets).
	XSK *XSKStats `json:"xsk,omitempty" merge:"each"`
	// Saturation says whether the generator, not the target, limited the
	// run (judged once the AF_XDP counters are in: Saturation.Judge).
	Saturation *Saturation `json:"saturation,omitempty" merge:"each"`
	// XDP are the XDP program's counters by name (filled by the caller
	// that owns the program).
	XDP map[string]uint64 `json:"xdp,omitempty" merge:"sum"`
	// Path says where the run went out (filled by the caller).
	Path *Path `json:"path,omitempty" merge:"omit=each node sends through its own interface, sources and ports: they stay in the shard reports"`
	// RunID and Shard tie the reports of a sharded run together (set by
	// the caller; see xdpconnect.Merge).
	RunID string     `json:"run_id,omitempty" merge:"same"`
	Shard *ShardInfo `json:"shard,omitempty" merge:"set"`
	// Outages are the times the interface was down during the run
	// (administratively or without carrier), seen in its link events.
	Outages []Outage `json:"outages,omitempty" merge:"concat"`
	// QueuedDown counts our frames queued while the interface was down, by
	// kind ("SYN", "ACK", "RST", "data"): they wait in the TX ring and
	// leave when the link is back, late (or are lost when the ring is
	// full: TxDropped). EstablishedDown counts the handshakes completed
	// then: established here (as Linux counts them), their ACK left late,
	// so the server accepted them late or, with the ring full, never.
	QueuedDown      map[string]uint64 `json:"queued_while_down,omitempty" merge:"sum"`
	EstablishedDown uint64            `json:"established_while_down,omitempty" merge:"sum"`
	// Notes are what the run decided that a user should know (fallbacks,
	// a reduced MSS, queues without a worker ...).
	Notes []string `json:"notes,omitempty" merge:"concat"`
	// Stopped is the error that stopped the run early (a socket that
	// failed for good), empty when it ran its course.
	Stopped string `json:"stopped,omitempty" merge:"join"`
	// Diagnosis names the causes of missing or dropped replies, the
	// dominant one first, each with its fix (filled by the caller).
	Diagnosis []Finding `json:"diagnosis,omitempty" merge:"concat"`
	// TCP are the settings the run's segments were built with (IPv4);
	// TCP6 those of IPv6 connections, when the run has IPv6 targets.
	TCP  *Settings `json:"tcp,omitempty" merge:"same"`
	TCP6 *Settings `json:"tcp6,omitempty" merge:"same"`
	// KernelSYNs is set when the run's SYNs were made in the kernel (a
	// SYN-only run with --xdp-syn): one SYN per probe, answers counted by
	// the XDP program, no RTT.
	KernelSYNs *KernelSYNs `json:"kernel_syns,omitempty" merge:"each"`
	// Families split the totals by address family when the run has IPv6
	// targets.
	Families []FamilyReport `json:"families,omitempty" merge:"keyed"`
	// Targets split the totals by target when there are several.
	Targets []TargetReport `json:"targets,omitempty" merge:"keyed"`
	// Sources split the attempts by source address when there are from 2
	// to 256 of them.
	Sources []SourceReport `json:"sources,omitempty" merge:"keyed"`
	// Requests is request mode's part of the report.
	Requests *RequestReport `json:"requests,omitempty" merge:"each"`
	// TLS is the TLS handshakes' part, when request mode ran over TLS.
	TLS *TLSReport `json:"tls,omitempty" merge:"each"`
}

// TLSReport is what the TLS handshakes of an HTTPS run came to:
// Handshakes + Failed = connections established (each tried one).
type TLSReport struct {
	// Handshakes completed, and how many of them resumed a session
	// (a ticket or PSK, or a TLS 1.2 session ID).
	Handshakes uint64 `json:"handshakes" merge:"sum"`
	Resumed    uint64 `json:"resumed" merge:"sum"`
	// Failed counts failed handshakes by cause: the peer's alert
	// ("alert: protocol_version"), our verification of its certificate
	// ("certificate: expired"), or the connection's end ("timeout",
	// "reset", "closed").
	Failed map[string]uint64 `json:"failed" merge:"sum"`
	// PerSecond is handshakes completed per second of the run.
	PerSecond float64 `json:"per_second" merge:"sum"`
	// HandshakeTime runs from the TCP handshake's end to the TLS
	// handshake's.
	HandshakeTime Quantiles `json:"handshake_seconds" merge:"each"`
	HandshakeHist []Bucket  `json:"handshake_histogram,omitempty" merge:"keyed"`
	// Versions, Ciphers and Groups count the completed handshakes by the
	// version, cipher suite and key exchange negotiated ("TLS 1.3",
	// "TLS_AES_128_GCM_SHA256", "X25519MLKEM768").
	Versions map[string]uint64 `json:"versions" merge:"sum"`
	Ciphers  map[string]uint64 `json:"ciphers" merge:"sum"`
	Groups   map[string]uint64 `json:"groups" merge:"sum"`
	// ServerName is the SNI sent (empty: none).
	ServerName string `json:"server_name,omitempty" merge:"same"`
}

// FailedTotal is the number of failed handshakes.
func (t *TLSReport) FailedTotal() uint64 {
	n, _ := total(t.Failed)
	return n
}

// RequestReport is what request mode's requests came to. Requests =
// completed + failed + in flight; each established connection made one to
// PerConnection of them.
type RequestReport struct {
	// PerConnection is how many requests a connection makes (keep-alive
	// when above 1): Requests is at most that many per established one.
	PerConnection int    `json:"per_connection" merge:"same"`
	Requests      uint64 `json:"requests" merge:"sum"`
	Completed     uint64 `json:"completed" merge:"sum"`
	// Failed counts failed requests by ResponseErrors name.
	Failed   map[string]uint64 `json:"failed" merge:"sum"`
	InFlight uint64            `json:"in_flight" merge:"sum"`
	// Status counts complete responses by HTTP status code ("200"), and
	// Classes by class ("2xx"); a raw response has no status.
	Status  map[string]uint64 `json:"status,omitempty" merge:"sum"`
	Classes map[string]uint64 `json:"classes,omitempty" merge:"sum"`
	// Retransmits are request segments sent again after an RTO;
	// OutOfOrder response segments that were not at RCV.NXT (ACKed with
	// a SACK block), Kept those of them kept until the hole before them
	// filled (the others the server sends again).
	Retransmits uint64 `json:"retransmits" merge:"sum"`
	OutOfOrder  uint64 `json:"out_of_order" merge:"sum"`
	Kept        uint64 `json:"out_of_order_kept" merge:"sum"`
	// ACKsMerged are ACKs of response data that replaced the connection's
	// ACK still waiting in the TX batch: one ACK per batch and connection.
	ACKsMerged uint64 `json:"acks_merged" merge:"sum"`
	// WindowProbes are probes of a server's zero window, which held the
	// request back.
	WindowProbes  uint64 `json:"window_probes" merge:"sum"`
	ResponseBytes uint64 `json:"response_bytes" merge:"sum"`
	// PerSecond and BytesPerSecond are complete responses and response
	// bytes per second over the measured window.
	PerSecond      float64   `json:"per_second" merge:"sum"`
	BytesPerSecond float64   `json:"bytes_per_second" merge:"sum"`
	TTFB           Quantiles `json:"ttfb_seconds" merge:"each"`
	TTLB           Quantiles `json:"ttlb_seconds" merge:"each"`
	TTFBHist       []Bucket  `json:"ttfb_histogram,omitempty" merge:"keyed"`
	TTLBHist       []Bucket  `json:"ttlb_histogram,omitempty" merge:"keyed"`
	// TTLBSched is the time to the last byte of each connection's first
	// response from its attempt's intended start (its place in the rate's
	// schedule): handshake, request and any lateness of the generator, so
	// a stall of ours shows instead of hiding (coordinated omission). In
	// open loop it is the headline latency.
	TTLBSched     Quantiles `json:"ttlb_from_schedule_seconds" merge:"each"`
	TTLBSchedHist []Bucket  `json:"ttlb_from_schedule_histogram,omitempty" merge:"keyed"`
}

// requestReport is the request mode part of a report over win seconds.
// KernelSYNs describes a run whose SYNs the XDP program made.
type KernelSYNs struct {
	// Duplicates are answers after a probe's first (a server's SYN-ACK
	// retransmission, a copy on the path): reset, not counted again.
	Duplicates uint64 `json:"duplicates" merge:"sum"`
}

// FamilyReport is one address family's share of a run.
type FamilyReport struct {
	Family      string `json:"family" merge:"key"` // "ipv4" or "ipv6"
	Attempted   uint64 `json:"attempted" merge:"sum"`
	Established uint64 `json:"established" merge:"sum"`
	Failed      uint64 `json:"failed" merge:"sum"`
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
	// RxDropped: frames the kernel dropped for the socket before its RX
	// ring: no free frame (the fill ring was empty) or a frame too large
	// for a UMEM frame.
	RxDropped uint64 `json:"rx_dropped" merge:"sum"`
	// RxRingFull: frames dropped because the RX ring was full (not in
	// RxDropped).
	RxRingFull uint64 `json:"rx_ring_full" merge:"sum"`
	// RxFillRingEmpty: of RxDropped, those dropped because the fill ring
	// was empty (the kernel counts such a drop in both).
	RxFillRingEmpty uint64 `json:"rx_fill_ring_empty_descs" merge:"sum"`
	// TxWakeups: sendto calls that kicked transmission.
	TxWakeups uint64 `json:"tx_wakeups" merge:"sum"`
	// KickEAGAIN: kicks the kernel answered with EAGAIN (copy mode's
	// 32-frame budget), retried.
	KickEAGAIN uint64 `json:"kick_eagain" merge:"sum"`
}

// RxLost is the frames lost before user space read them, each once: the
// kernel counts a drop for an empty fill ring in RxDropped and in
// RxFillRingEmpty, and one for a full RX ring in RxRingFull alone.
func (x *XSKStats) RxLost() uint64 {
	if x == nil {
		return 0
	}
	return x.RxDropped + x.RxRingFull
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

// SetRTT sets the RTT histogram and the quantiles from h: the one place
// quantiles are computed, for a run's report and for merged ones.
func (r *Report) SetRTT(h *Histogram) { r.RTTHist, r.RTT = h.Buckets(), QuantilesOf(h) }

// QuantilesOf is h's quantiles in seconds.
func QuantilesOf(h *Histogram) Quantiles {
	sec := func(ns int64) float64 { return float64(ns) / 1e9 }
	return Quantiles{P50: sec(h.Quantile(0.5)), P90: sec(h.Quantile(0.9)), P99: sec(h.Quantile(0.99)),
		P999: sec(h.Quantile(0.999)), Max: sec(h.Max)}
}

// Histogram rebuilds the RTT histogram from the report (its non-empty
// buckets and its maximum), losslessly: each bucket's bound maps back to
// its bucket.
func (r *Report) Histogram() Histogram { return HistogramOf(r.RTTHist, r.RTT.Max) }

// HistogramOf rebuilds a histogram from its non-empty buckets and its
// maximum in seconds (a report's or a timeline second's). Its Sum is not
// kept: only the quantiles and counts come back exactly.
func HistogramOf(buckets []Bucket, maxSec float64) Histogram {
	var h Histogram
	for _, b := range buckets {
		i := BucketOf(int64(math.Round(b.UpperSeconds * 1e9)))
		h.Counts[i] += b.Count
		h.N += b.Count
	}
	h.Max = int64(math.Round(maxSec * 1e9))
	return h
}

// SourceReport is one source address's share of a run's attempts.
type SourceReport struct {
	Source      string `json:"source" merge:"key"`
	Attempted   uint64 `json:"attempted" merge:"sum"`
	Established uint64 `json:"established" merge:"sum"`
	Failed      uint64 `json:"failed" merge:"sum"`
}

// TargetReport is one target's share of a run: the first
// Config.TargetStats targets get their own, the rest are summed as
// OtherTargets.
type TargetReport struct {
	Target      string    `json:"target" merge:"key"`
	Attempted   uint64    `json:"attempted" merge:"sum"`
	Established uint64    `json:"established" merge:"sum"`
	Failed      uint64    `json:"failed" merge:"sum"`
	RTT         Quantiles `json:"rtt_seconds" merge:"each"`
	RTTHist     []Bucket  `json:"rtt_histogram,omitempty" merge:"keyed"`
}

// SetRTT sets the target's RTT quantiles and histogram from h.
func (t *TargetReport) SetRTT(h *Histogram) { t.RTTHist, t.RTT = h.Buckets(), QuantilesOf(h) }

// Histogram rebuilds the target's RTT histogram (see Report.Histogram).
func (t *TargetReport) Histogram() Histogram { return HistogramOf(t.RTTHist, t.RTT.Max) }

// Point is one sample of a run's progress.
type Point struct {
	Seconds     float64 `json:"t" merge:"max"`
	Attempted   uint64  `json:"attempted" merge:"sum"`
	Established uint64  `json:"established" merge:"sum"`
}

// Bucket is a histogram bucket: Count values <= UpperSeconds (and above
// the previous bucket's bound).
type Bucket struct {
	UpperSeconds float64 `json:"le" merge:"key"`
	Count        uint64  `json:"count" merge:"sum"`
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

// FailedTotal is the number of failed requests.
func (q *RequestReport) FailedTotal() uint64 { return sum(q.Failed) }

// Outage is a time the run's interface was down, in seconds from the
// run's start.
type Outage struct {
	Interface    string  `json:"interface"`
	StartSeconds float64 `json:"start_seconds"`
	EndSeconds   float64 `json:"end_seconds"`
}
