package report

// Second is one second of a run: what happened between T and T+1 seconds
// after its start (shards started together with a start time share their
// seconds, and merge adds them second by second). Counts are of that
// second; in flight and open are at its end; the histograms hold the
// second's samples.
type Second struct {
	T           int               `json:"t" merge:"key"`
	Attempted   uint64            `json:"attempted" merge:"sum"`
	Established uint64            `json:"established" merge:"sum"`
	Failed      map[string]uint64 `json:"failed,omitempty" merge:"sum"`
	InFlight    uint64            `json:"in_flight" merge:"sum"`
	Open        uint64            `json:"open" merge:"sum"`
	// AskedRate is the rate the plan asked for at the second's middle
	// (the stages' ramp; 0: as fast as possible).
	AskedRate float64 `json:"asked_rate" merge:"sum"`
	// AskedOpen is the concurrency ramp's bound at the second's middle
	// (hold mode's ConcurrencyStages; 0 without one).
	AskedOpen float64 `json:"asked_open,omitempty" merge:"sum"`
	// Closed and Reset count established connections that ended in the
	// second: closed by us, or reset by the peer.
	Closed uint64 `json:"closed" merge:"sum"`
	Reset  uint64 `json:"reset" merge:"sum"`
	// Responses counts complete responses by status class ("2xx"), and
	// RequestsFailed failed requests by reason (ETIMEDOUT, ECONNRESET ...).
	Responses      map[string]uint64 `json:"responses,omitempty" merge:"sum"`
	RequestsFailed map[string]uint64 `json:"requests_failed,omitempty" merge:"sum"`
	// TLSHandshakes and TLSFailed count the TLS handshakes completed, and
	// failed by cause (TLSReport.Failed), in an HTTPS run.
	TLSHandshakes uint64            `json:"tls_handshakes,omitempty" merge:"sum"`
	TLSFailed     map[string]uint64 `json:"tls_failed,omitempty" merge:"sum"`
	RTT           Quantiles         `json:"rtt_seconds" merge:"each"`
	RTTHist       []Bucket          `json:"rtt_histogram,omitempty" merge:"keyed"`
	TTFB          Quantiles         `json:"ttfb_seconds" merge:"each"`
	TTFBHist      []Bucket          `json:"ttfb_histogram,omitempty" merge:"keyed"`
	TTLB          Quantiles         `json:"ttlb_seconds" merge:"each"`
	TTLBHist      []Bucket          `json:"ttlb_histogram,omitempty" merge:"keyed"`
}

// SetHistograms sets the second's histograms and their quantiles.
func (s *Second) SetHistograms(rtt, ttfb, ttlb *Histogram) {
	s.RTTHist, s.RTT = rtt.Buckets(), QuantilesOf(rtt)
	s.TTFBHist, s.TTFB = ttfb.Buckets(), QuantilesOf(ttfb)
	s.TTLBHist, s.TTLB = ttlb.Buckets(), QuantilesOf(ttlb)
}

// Sub sets h to a - b: the samples of a cumulative histogram a that came
// after b was taken. Its Max is the upper bound of its highest bucket
// (within 6.25 % of the interval's largest value), capped at a's.
func (h *Histogram) Sub(a, b *Histogram) {
	h.Max = 0
	for i := range h.Counts {
		if h.Counts[i] = a.Counts[i] - b.Counts[i]; h.Counts[i] != 0 {
			h.Max = min(BucketHigh(i), a.Max)
		}
	}
	h.N, h.Sum = a.N-b.N, a.Sum-b.Sum
}
