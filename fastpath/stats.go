package fastpath

import (
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// Counter indexes a worker's counters.
type Counter int

// Counters. Drops by parse reason and failures by errno follow the named
// ones; read them with DropCounter and FailedCounter.
const (
	CntAttempted       Counter = iota // SYNs of new attempts sent
	CntEstablished                    // handshakes completed
	CntRetransmits                    // SYN retransmissions
	CntSYNSent                        // SYNs sent, first and retransmitted
	CntACKSent                        // pure ACKs sent
	CntRSTSent                        // RSTs sent (ours and ctl-replies)
	CntFINSent                        // FINs sent
	CntRSTReceived                    // RSTs received
	CntFINReceived                    // FINs received
	CntClosed                         // connections fully closed after ESTABLISHED
	CntReset                          // established connections reset by the peer
	CntRxFrames                       // frames received
	CntTxFrames                       // frames queued for transmission
	CntTxDropped                      // frames not sent: no TX frame or ring space
	CntNoConn                         // segments for no connection (answered per X2)
	CntICMP                           // ICMP errors matched to a connection
	CntARPReplies                     // ARP replies and neighbour advertisements sent for dedicated sources
	CntFastRetransmit                 // SYNs resent early after a bad ACK (R5)
	CntPortsBusy                      // generation paused: every port of a pair held
	CntPartialChecksum                // segments taken with a partial checksum (local peer's TX offload)
	CntRxStamped                      // TCP segments with the XDP program's arrival stamp
	CntAttempted6                     // the attempts, established and failed ones over IPv6
	CntEstablished6
	CntFailed6
	CntRequests            // request mode: requests started (one per established connection)
	CntResponses           // responses read to their end
	CntResponseBytes       // response bytes taken in order
	CntRequestRetrans      // request segments sent again after an RTO
	CntOutOfOrder          // response segments not at RCV.NXT (ACKed with a SACK block; kept when the store has room)
	CntWindowProbes        // zero-window probes: the server's window held the request back
	CntTimeWait            // connections that ended in TIME-WAIT: we closed first, the port is quarantined
	CntLate                // attempts the rate asked for that the worker did not start in time (it came round too late)
	CntHeldBack            // attempts the rate asked for that the concurrency bound or busy ports held back
	CntIdleNs              // nanoseconds the worker waited in poll with nothing to do
	CntACKMerged           // ACKs of response data that took the place of the connection's ACK still in the TX batch
	CntKept                // out-of-order response segments kept until the hole before them filled
	CntDownSYN             // frames queued while the interface was down (Config.LinkDown), which the kernel drops: SYNs,
	CntDownACK             // pure ACKs,
	CntDownRST             // RSTs,
	CntDownData            // and segments with data or a FIN
	CntEstablishedDown     // handshakes completed while the interface was down: their ACK never left
	CntStreamBytesSent     // Dial'ed connections (streams): bytes sent, retransmissions included,
	CntStreamBytesReceived // bytes received in order (for Read),
	CntStreamRetrans       // RTOs and tail loss probes that sent data again,
	CntWindowUpdates       // window updates sent after Read freed the receive buffer
	dropBase               // frames dropped by parse reason, tcp.NumDropReasons of them
	failedBase             = dropBase + Counter(tcp.NumDropReasons)
	respFailedBase         = failedBase + Counter(len(Errnos))  // requests failed, by ResponseErrors
	statusBase             = respFailedBase + numResponseErrors // responses by status code, 100..599
	numCounters            = statusBase + 500
)

// ResponseErrors name the ways a request fails after the handshake, in
// report order: no end of the response within the response timeout
// (ETIMEDOUT), a reset (ECONNRESET), a response its framing cannot read
// (EBADMSG), one past the size limits (EMSGSIZE), the server's close
// before the end (EOF).
var ResponseErrors = [numResponseErrors]string{"ETIMEDOUT", "ECONNRESET", "EBADMSG", "EMSGSIZE", "EOF"}

// Indexes of ResponseErrors.
const (
	respTimeout = iota
	respReset
	respMalformed
	respTooLarge
	respTruncated
	numResponseErrors
)

// ResponseFailedCounter is the counter of requests that failed with
// ResponseErrors[i].
func ResponseFailedCounter(i int) Counter { return respFailedBase + Counter(i) }

// StatusCounter is the counter of complete responses with HTTP status
// code (100 to 599).
func StatusCounter(code int) Counter { return statusBase + Counter(code-100) }

// ResponsesFailed is the number of requests that failed.
func (s *Snapshot) ResponsesFailed() uint64 {
	return responsesFailed((*counters)(&s.Counters))
}

func responsesFailed(c *counters) uint64 {
	var n uint64
	for i := range numResponseErrors {
		n += c[ResponseFailedCounter(i)]
	}
	return n
}

// requestsOpen is requests sent less responses ended, in two's complement:
// one worker's count can dip below zero (a response timed out by another
// worker's timer), which the worker clamps and the sum over workers does
// not see.
func requestsOpen(c *counters) uint64 {
	return c[CntRequests] - c[CntResponses] - responsesFailed(c)
}

// RequestsInFlight is the number of requests whose response has not
// ended yet.
func (s *Snapshot) RequestsInFlight() uint64 {
	return requestsOpen((*counters)(&s.Counters))
}

// Errnos are the outcomes an attempt can fail with, in report order.
var Errnos = [...]syscall.Errno{
	syscall.ECONNREFUSED, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
	syscall.EADDRNOTAVAIL, syscall.ENOPROTOOPT, syscall.EOPNOTSUPP, syscall.EHOSTDOWN,
	syscall.ENONET, syscall.EPROTO, syscall.EACCES, syscall.ECONNRESET, syscall.ECONNABORTED,
}

var errnoNames = map[syscall.Errno]string{
	syscall.ECONNREFUSED: "ECONNREFUSED", syscall.ETIMEDOUT: "ETIMEDOUT", syscall.EHOSTUNREACH: "EHOSTUNREACH",
	syscall.ENETUNREACH: "ENETUNREACH", syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL", syscall.ENOPROTOOPT: "ENOPROTOOPT",
	syscall.EOPNOTSUPP: "EOPNOTSUPP", syscall.EHOSTDOWN: "EHOSTDOWN", syscall.ENONET: "ENONET",
	syscall.EPROTO: "EPROTO", syscall.EACCES: "EACCES", syscall.ECONNABORTED: "ECONNABORTED",
	syscall.ECONNRESET: "ECONNRESET",
}

// ErrnoName is the symbolic name of e ("ECONNREFUSED").
func ErrnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return e.Error()
}

func errnoIndex(e syscall.Errno) int {
	for i, x := range Errnos {
		if x == e {
			return i
		}
	}
	return len(Errnos) - 1 // ECONNABORTED: "no error recorded", as the kernel
}

// counters are a worker's plain counters; only the worker writes them.
type counters [numCounters]uint64

// published is what a worker last published: read with atomics by anyone.
type published struct {
	c [numCounters]atomic.Uint64
	h publishedHist
	// ttfb and ttlb are request mode's times to the response's first and
	// last byte.
	ttfb, ttlb publishedHist
	ttlbSched  publishedHist
	// generating is 1 while the worker still creates attempts.
	generating atomic.Bool
	// stopAt is 1 + the engine time (ns) at which the worker stopped
	// generating; 0 while it has not.
	stopAt atomic.Int64
}

func (p *published) store(c *counters, h, ttfb, ttlb, ttlbSched *report.Histogram) {
	for i := range c {
		if v := c[i]; v != 0 || p.c[i].Load() != 0 {
			p.c[i].Store(v)
		}
	}
	p.h.store(h)
	if ttfb.N != 0 || ttlb.N != 0 {
		p.ttfb.store(ttfb)
		p.ttlb.store(ttlb)
		p.ttlbSched.store(ttlbSched)
	}
}

// publishedHist is a Histogram a worker publishes: read with atomics by
// anyone.
type publishedHist struct {
	counts [report.NumBuckets]atomic.Uint64
	n, sum atomic.Uint64
	max    atomic.Int64
}

func (p *publishedHist) store(h *report.Histogram) {
	for i := range h.Counts {
		if v := h.Counts[i]; v != 0 || p.counts[i].Load() != 0 {
			p.counts[i].Store(v)
		}
	}
	p.n.Store(h.N)
	p.sum.Store(h.Sum)
	p.max.Store(h.Max)
}

// addTo adds what was published to h (summing over workers).
func (p *publishedHist) addTo(h *report.Histogram) {
	for b := range h.Counts {
		h.Counts[b] += p.counts[b].Load()
	}
	h.N += p.n.Load()
	h.Sum += p.sum.Load()
	h.Max = max(h.Max, p.max.Load())
}

// Snapshot is the engine's state summed over workers at one moment.
type Snapshot struct {
	Counters [numCounters]uint64
	RTT      report.Histogram
	// TTFB and TTLB are request mode's times from the request to the
	// response's first and last byte.
	TTFB, TTLB report.Histogram
	// TTLBSched is the time to last byte from each attempt's intended
	// start (its place in the rate's schedule): the handshake, the request
	// and any lateness of the generator.
	TTLBSched report.Histogram
	// Failed maps errno names to counts (non-zero ones only).
	Failed map[string]uint64
	// Per-worker counters, for per-queue metrics.
	PerWorker [][numCounters]uint64
	// ElapsedSeconds since the run started, and the measured window
	// (after warm-up, until generation stopped).
	ElapsedSeconds float64
	AskedRate      float64
	// Generating is true while some worker still creates attempts.
	Generating bool
}

// Get returns counter c.
func (s *Snapshot) Get(c Counter) uint64 { return s.Counters[c] }

// InFlight is the number of attempts not ended yet.
func (s *Snapshot) InFlight() uint64 {
	return s.Counters[CntAttempted] - s.Counters[CntEstablished] - s.FailedTotal()
}

// Open is the number of established connections not closed yet.
func (s *Snapshot) Open() uint64 {
	return s.Counters[CntEstablished] - s.Counters[CntClosed] - s.Counters[CntReset]
}

// FailedCounter is the counter of attempts that failed with e (errnos
// outside Errnos count as ECONNABORTED, "no error recorded", as the kernel).
func FailedCounter(e syscall.Errno) Counter { return failedBase + Counter(errnoIndex(e)) }

// DropCounter is the counter of received frames the parser dropped for r.
func DropCounter(r tcp.DropReason) Counter { return dropBase + Counter(r) }

// FailedWith is the number of attempts that failed with e.
func (s *Snapshot) FailedWith(e syscall.Errno) uint64 { return s.Counters[FailedCounter(e)] }

// Dropped is the number of received frames dropped for r.
func (s *Snapshot) Dropped(r tcp.DropReason) uint64 { return s.Counters[DropCounter(r)] }

// FailedTotal is the number of failed attempts.
func (s *Snapshot) FailedTotal() uint64 {
	var n uint64
	for i := range Errnos {
		n += s.Counters[failedBase+Counter(i)]
	}
	return n
}

// Drops returns frames dropped by the parser, by reason name.
func (s *Snapshot) Drops() map[string]uint64 {
	m := map[string]uint64{}
	for r := tcp.DropReason(1); r < tcp.NumDropReasons; r++ {
		if v := s.Counters[DropCounter(r)]; v != 0 {
			m[r.String()] = v
		}
	}
	return m
}

// errnoCounts adds the failures by errno name that get gives (a snapshot's
// counters, or a second's differences) to m, made when nil and needed.
func errnoCounts(m map[string]uint64, get func(Counter) uint64) map[string]uint64 {
	for i, errno := range Errnos {
		if v := get(failedBase + Counter(i)); v != 0 {
			if m == nil {
				m = map[string]uint64{}
			}
			m[ErrnoName(errno)] += v
		}
	}
	return m
}

// responseFailures adds the failed requests that get gives to m by
// ResponseErrors name; a nil m is made when there are any.
func responseFailures(m map[string]uint64, get func(Counter) uint64) map[string]uint64 {
	for i, name := range ResponseErrors {
		if v := get(ResponseFailedCounter(i)); v != 0 {
			if m == nil {
				m = map[string]uint64{}
			}
			m[name] += v
		}
	}
	return m
}

// statusCounts are the complete responses that get gives by exact status
// ("200") and by class ("2xx"); nil maps when there are none.
func statusCounts(get func(Counter) uint64) (status, classes map[string]uint64) {
	for code := 100; code <= 599; code++ {
		if v := get(StatusCounter(code)); v != 0 {
			if status == nil {
				status, classes = map[string]uint64{}, map[string]uint64{}
			}
			status[strconv.Itoa(code)] = v
			classes[strconv.Itoa(code/100)+"xx"] += v
		}
	}
	return status, classes
}
