package metrics

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// XDPCounter is one counter of the XDP program, summed over CPUs.
type XDPCounter struct {
	Action, Reason string
	Value          uint64
}

// Sources are what the collector reads at scrape time.
type Sources struct {
	Engine *fastpath.Engine
	// Sockets are the AF_XDP sockets, index = queue.
	Sockets []*xsk.Socket
	// XDP reads the XDP program's counters (nil: none).
	XDP func() ([]XDPCounter, error)
	// TLS reads an HTTPS run's counts (nil, or ok false: not one).
	TLS func() (t TLSCounts, ok bool)
}

// TLSCounts are an HTTPS run's counts so far: its TLS handshakes and the
// requests made inside them (the engine counts the TCP side).
type TLSCounts struct {
	Handshakes, Resumed uint64
	// Failed counts failed handshakes by cause (report.TLSReport.Failed).
	Failed map[string]uint64
	// Requests, Responses by status class ("2xx"), and RequestsFailed by
	// outcome (fastpath.ResponseErrors).
	Requests       uint64
	Responses      map[string]uint64
	RequestsFailed map[string]uint64
	// HandshakeTime is the TLS handshake's time, from the TCP handshake's
	// end.
	HandshakeTime report.Histogram
}

// RTTBuckets are the classic histogram buckets of the handshake RTT, in
// seconds: 10 us to 10 s, about three per decade.
var RTTBuckets = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
	100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10}

// nativeSchema is the native histogram's resolution: 2^(2^-3) growth, ~9 %
// per bucket, coarser than the engine's own 6 % so merging is faithful.
const nativeSchema = 3

// Collector is a prometheus.Collector over Sources.
type Collector struct {
	src Sources

	mu       sync.Mutex
	lastAtt  uint64
	lastTime time.Time
	rate     float64

	descs map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	labels     []string
}

var defs = []metricDef{
	{"attempts_total", "Connection attempts started (first SYN sent).", nil},
	{"established_total", "Handshakes completed.", nil},
	{"failed_total", "Attempts that failed, by the errno connect() would return.", []string{"errno"}},
	{"syn_retransmits_total", "SYN retransmissions.", nil},
	{"fast_retransmits_total", "SYNs resent early after an unacceptable ACK (R5).", nil},
	{"rst_sent_total", "RST segments sent.", nil},
	{"rst_received_total", "RST segments received.", nil},
	{"fin_sent_total", "FIN segments sent.", nil},
	{"fin_received_total", "FIN segments received.", nil},
	{"closed_total", "Established connections closed by us.", nil},
	{"reset_total", "Established connections reset by the peer.", nil},
	{"no_connection_total", "Segments for no connection, answered as Linux does.", nil},
	{"icmp_errors_total", "ICMP errors matched to an attempt.", nil},
	{"arp_replies_total", "ARP replies and IPv6 neighbour advertisements sent for dedicated source addresses.", nil},
	{"ports_busy_total", "Generation pauses because every port of a target was held.", nil},
	{"partial_checksum_total", "TCP segments taken with a partial checksum from a peer on this host (TX checksum offload of a veth peer).", nil},
	{"rx_stamped_total", "TCP segments timed by the XDP program's arrival stamp (the handshake RTT of the others is timed by the worker's loop).", nil},
	{"ipv6_attempts_total", "The attempts over IPv6 (included in attempts_total).", nil},
	{"ipv6_established_total", "The handshakes completed over IPv6 (included in established_total).", nil},
	{"ipv6_failed_total", "The attempts over IPv6 that failed, any errno (included in failed_total).", nil},
	{"in_flight", "Attempts started and not yet ended.", nil},
	{"open_connections", "Established connections not yet closed.", nil},
	{"asked_rate", "Asked attempts per second (0: as fast as possible).", nil},
	{"achieved_rate", "Attempts per second since the previous scrape.", nil},
	{"generating", "1 while the engine still starts new attempts.", nil},
	{"late_attempts_total", "Attempts the asked rate called for that a worker did not start in time: the generator's own lag.", nil},
	{"held_back_attempts_total", "Attempts the asked rate called for that the concurrency bound or busy ports held back.", nil},
	{"worker_idle_seconds_total", "Time a worker waited in poll with nothing to do (busy share: 1 - rate of this).", []string{"queue"}},
	{"saturated", "1 when the generator, not the target, limits the run: late attempts over 1 % of the schedule, or frames lost on our side.", nil},
	{"rx_frames_total", "Frames received by a worker.", []string{"queue"}},
	{"tx_frames_total", "Frames queued for transmission by a worker.", []string{"queue"}},
	{"tx_dropped_total", "Frames not sent for lack of TX frames or ring space.", []string{"queue"}},
	{"rx_parse_dropped_total", "Received frames dropped by the parser, by reason.", []string{"reason"}},
	{"handshake_rtt_seconds", "Handshake round-trip time, SYN to SYN-ACK.", nil},
	{"target_attempts_total", "Attempts by target (the first --target-stats targets; the rest as \"other\").", []string{"target"}},
	{"target_established_total", "Handshakes completed, by target.", []string{"target"}},
	{"target_failed_total", "Attempts that failed, by target.", []string{"target"}},
	{"target_handshake_rtt_seconds", "Handshake round-trip time by target.", []string{"target"}},
	{"requests_total", "Request mode: requests started (one per established connection).", nil},
	{"responses_total", "Request mode: responses read to their end, by HTTP status class (\"raw\" without HTTP).", []string{"class"}},
	{"request_failures_total", "Request mode: requests that failed after the handshake, by outcome.", []string{"errno"}},
	{"requests_in_flight", "Request mode: requests whose response has not ended.", nil},
	{"response_bytes_total", "Request mode: response bytes taken in order.", nil},
	{"request_retransmits_total", "Request mode: request segments sent again after an RTO.", nil},
	{"request_window_probes_total", "Request mode: probes of a server's zero window, which held a request back.", nil},
	{"response_first_byte_seconds", "Request mode: time from the request to the response's first byte.", nil},
	{"response_last_byte_seconds", "Request mode: time from the request to the response's last byte.", nil},
	{"response_last_byte_from_schedule_seconds", "Request mode: time from each attempt's intended start (its place in the rate's schedule) to its first response's last byte: the handshake, the request and any lateness of the generator.", nil},
	{"tls_handshakes_total", "HTTPS: TLS handshakes completed.", nil},
	{"tls_resumed_total", "HTTPS: TLS handshakes that resumed a session (included in tls_handshakes_total).", nil},
	{"tls_failures_total", "HTTPS: TLS handshakes that failed, by cause (the peer's alert, our verdict on its certificate, the connection's end).", []string{"reason"}},
	{"tls_handshake_seconds", "HTTPS: time from the TCP handshake's end to the TLS handshake's end.", nil},
	{"tls_requests_total", "HTTPS: requests made inside TLS.", nil},
	{"tls_responses_total", "HTTPS: responses read to their end, by HTTP status class.", []string{"class"}},
	{"tls_request_failures_total", "HTTPS: requests that failed after the TLS handshake, by outcome.", []string{"errno"}},
	{"xsk_rx_dropped_total", "XDP_STATISTICS rx_dropped.", []string{"queue"}},
	{"xsk_rx_invalid_descs_total", "XDP_STATISTICS rx_invalid_descs.", []string{"queue"}},
	{"xsk_tx_invalid_descs_total", "XDP_STATISTICS tx_invalid_descs.", []string{"queue"}},
	{"xsk_rx_ring_full_total", "XDP_STATISTICS rx_ring_full.", []string{"queue"}},
	{"xsk_rx_fill_ring_empty_descs_total", "XDP_STATISTICS rx_fill_ring_empty_descs.", []string{"queue"}},
	{"xsk_tx_ring_empty_descs_total", "XDP_STATISTICS tx_ring_empty_descs.", []string{"queue"}},
	{"xsk_wakeups_total", "Syscalls made because the kernel asked for a wakeup.", []string{"queue", "ring"}},
	{"xsk_empty_polls_total", "Receive calls that found the RX ring empty.", []string{"queue"}},
	{"xsk_kick_errors_total", "Transient sendto errors of TX kicks (counted, not failures).", []string{"queue", "errno"}},
	{"xdp_packets_total", "XDP program decisions, by action and reason (summed over CPUs).", []string{"action", "reason"}},
}

// NewCollector returns a collector over src.
func NewCollector(src Sources) *Collector {
	c := &Collector{src: src, descs: map[string]*prometheus.Desc{}}
	for _, d := range defs {
		c.descs[d.name] = prometheus.NewDesc("xdpconnect_"+d.name, d.help, d.labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *Collector) counter(ch chan<- prometheus.Metric, name string, v uint64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), lv...)
}

func (c *Collector) gauge(ch chan<- prometheus.Metric, name string, v float64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, lv...)
}

// Collect implements prometheus.Collector: one snapshot per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Engine.Snapshot()
	simple := []struct {
		name string
		cnt  fastpath.Counter
	}{
		{"attempts_total", fastpath.CntAttempted}, {"established_total", fastpath.CntEstablished},
		{"syn_retransmits_total", fastpath.CntRetransmits}, {"fast_retransmits_total", fastpath.CntFastRetransmit},
		{"rst_sent_total", fastpath.CntRSTSent}, {"rst_received_total", fastpath.CntRSTReceived},
		{"fin_sent_total", fastpath.CntFINSent}, {"fin_received_total", fastpath.CntFINReceived},
		{"closed_total", fastpath.CntClosed}, {"reset_total", fastpath.CntReset},
		{"no_connection_total", fastpath.CntNoConn}, {"icmp_errors_total", fastpath.CntICMP},
		{"arp_replies_total", fastpath.CntARPReplies}, {"ports_busy_total", fastpath.CntPortsBusy},
		{"rx_stamped_total", fastpath.CntRxStamped},
		{"ipv6_attempts_total", fastpath.CntAttempted6}, {"ipv6_established_total", fastpath.CntEstablished6},
		{"ipv6_failed_total", fastpath.CntFailed6},
		{"partial_checksum_total", fastpath.CntPartialChecksum},
	}
	for _, m := range simple {
		c.counter(ch, m.name, s.Get(m.cnt))
	}
	// Every errno of the fixed set is exported, zeros included, so rates
	// work from the first scrape.
	for _, e := range fastpath.Errnos {
		c.counter(ch, "failed_total", s.FailedWith(e), fastpath.ErrnoName(e))
	}
	c.gauge(ch, "in_flight", float64(s.InFlight()))
	c.gauge(ch, "open_connections", float64(s.Open()))
	c.gauge(ch, "asked_rate", s.AskedRate)
	c.gauge(ch, "achieved_rate", c.achieved(s.Get(fastpath.CntAttempted)))
	gen := 0.0
	if s.Generating {
		gen = 1
	}
	c.gauge(ch, "generating", gen)
	c.counter(ch, "late_attempts_total", s.Get(fastpath.CntLate))
	c.counter(ch, "held_back_attempts_total", s.Get(fastpath.CntHeldBack))
	// The report's own judgement, on the counts so far (the rate limit
	// needs a finished run's window and is left to the report).
	// Each socket's statistics are read once a scrape, for the judgement
	// and for the per-queue series below.
	stats := make([]xsk.Stats, len(c.src.Sockets))
	errs := make([]error, len(c.src.Sockets))
	for q, x := range c.src.Sockets {
		stats[q], errs[q] = x.Stats()
	}
	r := report.Report{Attempted: s.Get(fastpath.CntAttempted), TxDropped: s.Get(fastpath.CntTxDropped), XSK: xskTotals(stats, errs)}
	sat := report.Saturation{Late: s.Get(fastpath.CntLate)}
	sat.Judge(&r)
	c.gauge(ch, "saturated", map[bool]float64{false: 0, true: 1}[sat.Saturated])
	for q, w := range s.PerWorker {
		ql := strconv.Itoa(q)
		c.counter(ch, "rx_frames_total", w[fastpath.CntRxFrames], ql)
		c.counter(ch, "tx_frames_total", w[fastpath.CntTxFrames], ql)
		c.counter(ch, "tx_dropped_total", w[fastpath.CntTxDropped], ql)
		ch <- prometheus.MustNewConstMetric(c.descs["worker_idle_seconds_total"], prometheus.CounterValue, float64(w[fastpath.CntIdleNs])/1e9, ql)
	}
	for r := tcp.DropReason(1); r < tcp.NumDropReasons; r++ {
		c.counter(ch, "rx_parse_dropped_total", s.Dropped(r), r.String())
	}
	ch <- newRTTMetric(c.descs["handshake_rtt_seconds"], &s.RTT)
	if ts := c.src.Engine.TargetStats(); len(ts) > 1 {
		for i := range ts {
			t := &ts[i]
			c.counter(ch, "target_attempts_total", t.Attempted, t.Target)
			c.counter(ch, "target_established_total", t.Established, t.Target)
			c.counter(ch, "target_failed_total", t.Failed, t.Target)
			ch <- newRTTMetric(c.descs["target_handshake_rtt_seconds"], &t.RTT, "target", t.Target)
		}
	}
	if c.src.Engine.Config().Request != nil {
		c.requests(ch, &s)
	}
	if c.src.TLS != nil {
		if t, ok := c.src.TLS(); ok {
			c.tls(ch, &t)
		}
	}
	for q, st := range stats {
		if errs[q] != nil {
			ch <- prometheus.NewInvalidMetric(c.descs["xsk_rx_dropped_total"], errs[q])
			continue
		}
		ql := strconv.Itoa(q)
		c.counter(ch, "xsk_rx_dropped_total", st.RxDropped, ql)
		c.counter(ch, "xsk_rx_invalid_descs_total", st.RxInvalidDescs, ql)
		c.counter(ch, "xsk_tx_invalid_descs_total", st.TxInvalidDescs, ql)
		c.counter(ch, "xsk_rx_ring_full_total", st.RxRingFull, ql)
		c.counter(ch, "xsk_rx_fill_ring_empty_descs_total", st.RxFillRingEmptyDescs, ql)
		c.counter(ch, "xsk_tx_ring_empty_descs_total", st.TxRingEmptyDescs, ql)
		c.counter(ch, "xsk_wakeups_total", st.TxWakeups, ql, "tx")
		c.counter(ch, "xsk_wakeups_total", st.RxWakeups, ql, "fill")
		c.counter(ch, "xsk_empty_polls_total", st.EmptyPolls, ql)
		c.counter(ch, "xsk_kick_errors_total", st.KickEAGAIN, ql, "EAGAIN")
		c.counter(ch, "xsk_kick_errors_total", st.KickEBUSY, ql, "EBUSY")
		c.counter(ch, "xsk_kick_errors_total", st.KickENOBUFS, ql, "ENOBUFS")
		c.counter(ch, "xsk_kick_errors_total", st.KickENETDOWN, ql, "ENETDOWN")
	}
	if c.src.XDP != nil {
		xs, err := c.src.XDP()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.descs["xdp_packets_total"], err)
		}
		for _, x := range xs {
			c.counter(ch, "xdp_packets_total", x.Value, x.Action, x.Reason)
		}
	}
}

// xskTotals is the sockets' losses summed over the queues whose
// statistics could be read, as the report's judgement takes them.
func xskTotals(stats []xsk.Stats, errs []error) *report.XSKStats {
	t := &report.XSKStats{}
	for q, st := range stats {
		if errs[q] != nil {
			continue
		}
		t.RxDropped += st.RxDropped
		t.RxRingFull += st.RxRingFull
		t.RxFillRingEmpty += st.RxFillRingEmptyDescs
	}
	return t
}

// requests exports request mode's series: classes and outcomes are fixed
// sets, exported with zeros so that rates work from the first scrape.
func (c *Collector) requests(ch chan<- prometheus.Metric, s *fastpath.Snapshot) {
	c.counter(ch, "requests_total", s.Get(fastpath.CntRequests))
	var classes [6]uint64 // 1xx .. 5xx, and raw (no status)
	http := uint64(0)
	for code := 100; code <= 599; code++ {
		v := s.Get(fastpath.StatusCounter(code))
		classes[code/100-1] += v
		http += v
	}
	classes[5] = s.Get(fastpath.CntResponses) - http
	for i, name := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "raw"} {
		c.counter(ch, "responses_total", classes[i], name)
	}
	for i, name := range fastpath.ResponseErrors {
		c.counter(ch, "request_failures_total", s.Get(fastpath.ResponseFailedCounter(i)), name)
	}
	c.gauge(ch, "requests_in_flight", float64(s.RequestsInFlight()))
	c.counter(ch, "response_bytes_total", s.Get(fastpath.CntResponseBytes))
	c.counter(ch, "request_retransmits_total", s.Get(fastpath.CntRequestRetrans))
	c.counter(ch, "request_window_probes_total", s.Get(fastpath.CntWindowProbes))
	ch <- newRTTMetric(c.descs["response_first_byte_seconds"], &s.TTFB)
	ch <- newRTTMetric(c.descs["response_last_byte_seconds"], &s.TTLB)
	ch <- newRTTMetric(c.descs["response_last_byte_from_schedule_seconds"], &s.TTLBSched)
}

// tls exports an HTTPS run's series; the status classes and request
// outcomes are fixed sets, exported with zeros, the failure causes as
// they come.
func (c *Collector) tls(ch chan<- prometheus.Metric, t *TLSCounts) {
	c.counter(ch, "tls_handshakes_total", t.Handshakes)
	c.counter(ch, "tls_resumed_total", t.Resumed)
	for reason, n := range t.Failed {
		c.counter(ch, "tls_failures_total", n, reason)
	}
	ch <- newRTTMetric(c.descs["tls_handshake_seconds"], &t.HandshakeTime)
	c.counter(ch, "tls_requests_total", t.Requests)
	for _, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		c.counter(ch, "tls_responses_total", t.Responses[class], class)
	}
	for _, name := range fastpath.ResponseErrors {
		c.counter(ch, "tls_request_failures_total", t.RequestsFailed[name], name)
	}
}

func (c *Collector) achieved(att uint64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.lastTime.IsZero() {
		if dt := now.Sub(c.lastTime).Seconds(); dt > 0.05 {
			c.rate = float64(att-c.lastAtt) / dt
		} else {
			return c.rate
		}
	}
	c.lastAtt, c.lastTime = att, now
	return c.rate
}

// rttMetric is a histogram with both classic buckets and native buckets,
// built from the engine's merged log-linear histogram.
type rttMetric struct {
	desc   *prometheus.Desc
	h      *report.Histogram
	labels []*dto.LabelPair
}

// newRTTMetric is h as a histogram metric; labels are name, value pairs
// in the order of d's variable labels.
func newRTTMetric(d *prometheus.Desc, h *report.Histogram, labels ...string) prometheus.Metric {
	m := &rttMetric{desc: d, h: h}
	for i := 0; i+1 < len(labels); i += 2 {
		m.labels = append(m.labels, &dto.LabelPair{Name: &labels[i], Value: &labels[i+1]})
	}
	return m
}

func (m *rttMetric) Desc() *prometheus.Desc { return m.desc }

func (m *rttMetric) Write(out *dto.Metric) error {
	h := m.h
	count := h.N
	sum := float64(h.Sum) / 1e9
	dh := &dto.Histogram{SampleCount: &count, SampleSum: &sum}
	for _, ub := range RTTBuckets {
		cum := h.CountBelow(int64(math.Round(ub * 1e9)))
		b := ub
		dh.Bucket = append(dh.Bucket, &dto.Bucket{CumulativeCount: &cum, UpperBound: &b})
	}
	// Native buckets: each engine bucket's count goes to the native
	// bucket holding its upper bound.
	schema := int32(nativeSchema)
	zt := 1e-9
	var zero uint64
	idx := map[int]int64{}
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		v := float64(report.BucketHigh(i)) / 1e9
		if v <= zt {
			zero += c
			continue
		}
		idx[nativeIndex(v, nativeSchema)] += int64(c)
	}
	keys := make([]int, 0, len(idx))
	for k := range idx {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var prev int64
	for i, k := range keys {
		if i == 0 || k != keys[i-1]+1 {
			off := int32(k)
			if i > 0 {
				off = int32(k - keys[i-1] - 1)
			}
			dh.PositiveSpan = append(dh.PositiveSpan, &dto.BucketSpan{Offset: &off, Length: new(uint32)})
		}
		*dh.PositiveSpan[len(dh.PositiveSpan)-1].Length++
		dh.PositiveDelta = append(dh.PositiveDelta, idx[k]-prev)
		prev = idx[k]
	}
	dh.Schema, dh.ZeroThreshold, dh.ZeroCount = &schema, &zt, &zero
	if len(keys) == 0 {
		// Keep the histogram native even when empty (a zero span).
		off, l := int32(0), uint32(0)
		dh.PositiveSpan = append(dh.PositiveSpan, &dto.BucketSpan{Offset: &off, Length: &l})
	}
	out.Histogram = dh
	out.Label = m.labels
	return nil
}

// nativeIndex is the native histogram bucket of v > 0: the bucket i with
// base^(i-1) < v <= base^i, base = 2^(2^-schema).
func nativeIndex(v float64, schema int) int {
	return int(math.Ceil(math.Log2(v) * float64(int(1)<<schema)))
}

// NewRegistry returns a registry (never the global one) holding a
// Collector over src and the Go runtime and process collectors.
func NewRegistry(src Sources) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(NewCollector(src)); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	return reg, nil
}

// Serve serves /metrics of NewRegistry(src) on addr until the returned stop
// function is called; bound is the address actually listened on (for
// ":0").
func Serve(addr string, src Sources) (bound string, stop func(), err error) {
	reg, err := NewRegistry(src)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: listen on %s: %w (use --metrics-addr to change, empty to disable)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "xdpconnect: metrics at /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with ErrServerClosed on stop
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
