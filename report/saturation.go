package report

import (
	"fmt"
	"time"
)

// Saturation says whether the generator, not the target, set the limit of
// a run, and the evidence. A load generator near its own limits measures
// itself: attempts start late, frames are lost before they are read, and
// the latencies it reports are partly its own. When Saturated, the text
// report says so first and marks the latency lines.
type Saturation struct {
	// Saturated is true when any limit below was crossed (Judge).
	Saturated bool `json:"saturated" merge:"derived"`
	// Limits are the crossed limits, each with its measured value.
	Limits []Limit `json:"reasons,omitempty" merge:"derived"`
	// Late counts attempts the rate asked for that a worker did not start
	// in time: it came round too late (its loop was busy) or its TX batch
	// was full. Lateness is the generator's.
	Late uint64 `json:"late_attempts" merge:"sum"`
	// HeldBack counts attempts the rate asked for that the plan's own
	// bound held back (the concurrency bound, every source port busy, or
	// in request mode as many responses in flight as the RX ring takes):
	// the target was slower than the rate, not the generator.
	HeldBack uint64 `json:"held_back_attempts" merge:"sum"`
	// TLSLate counts an HTTPS run's attempts that started more than
	// TLSLateAfter after their time in the rate's schedule: the TLS
	// client (its cryptography, a goroutine per connection) fell behind.
	TLSLate uint64 `json:"tls_late_attempts,omitempty" merge:"sum"`
	// Busy is the busiest worker's share of the run spent working (not
	// waiting in poll), 0..1; with Idle 0 workers never wait and it is 1.
	Busy float64 `json:"busy_fraction" merge:"max"`
	// Concurrency is the plan's bound on connections in flight (0: none),
	// and RingConnections how many of this run's connections the workers'
	// RX rings hold: each ring's frames over the frames a connection
	// brought (a SYN-ACK alone, or 50 frames of a 64 KiB response).
	Concurrency     uint64  `json:"concurrency,omitempty" merge:"sum"`
	RingConnections float64 `json:"ring_connections,omitempty" merge:"sum"`
}

// Limit is one crossed limit: what, how much, and the threshold.
type Limit struct {
	Reason    string  `json:"reason"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Detail    string  `json:"detail"`
}

// Thresholds of Judge: late attempts above this share of the schedule
// (and more than LateMin: a run of a few thousand attempts on a busy
// machine is not saturated by one scheduling hiccup), and an attempt rate
// below this share of the asked one.
const (
	LateShare = 0.01
	LateMin   = 100
	RateShare = 0.99
	// RingShare: a concurrency above this many times what the RX rings
	// hold. Measured here, 64 KiB responses: 6.9k requests/s at 64 in
	// flight (0.75 of the rings' 85), 3.7k at 128 (1.5), 3.1-3.5k at 256
	// (3.0), where the responses' segments overran the rings.
	RingShare = 1.5
	// TLSLateAfter is how late an HTTPS run's attempt may start before it
	// counts in TLSLate: goroutines wake within a millisecond or two of
	// their time on an idle machine.
	TLSLateAfter = 10 * time.Millisecond
)

// Judge sets s.Saturated and s.Limits from r's counts: late attempts over
// 1 % of the schedule, attempts without a free source port over 1 % of
// them, received frames lost before a worker read them,
// frames that could not be queued for sending, and an asked rate not
// delivered though nothing held the attempts back.
func (s *Saturation) Judge(r *Report) {
	s.Limits = nil
	// A link that went down fills the TX ring with what waits for it and
	// stops the generation: late attempts, frames that found the ring
	// full and the rate not delivered are the outage's (the diagnosis
	// names it), not the generator's.
	outage := len(r.Outages) > 0
	if sched := r.Attempted + s.Late; s.Late > LateMin && float64(s.Late) > LateShare*float64(sched) && !outage {
		s.Limits = append(s.Limits, Limit{Reason: "late", Value: float64(s.Late) / float64(sched), Threshold: LateShare,
			Detail: fmt.Sprintf("%d attempts (%.1f %% of the schedule) started late or not at all: the workers could not keep the asked rate (busiest worker busy %.0f %% of the time)",
				s.Late, 100*float64(s.Late)/float64(sched), 100*s.Busy)})
	}
	if s.TLSLate > LateMin && float64(s.TLSLate) > LateShare*float64(r.Attempted) && !outage {
		s.Limits = append(s.Limits, Limit{Reason: "tls-client", Value: float64(s.TLSLate) / float64(max(r.Attempted, 1)), Threshold: LateShare,
			Detail: fmt.Sprintf("%d attempts (%.1f %%) started more than %s after their time: the TLS client's cryptography could not keep the asked rate on this machine's cores",
				s.TLSLate, 100*float64(s.TLSLate)/float64(max(r.Attempted, 1)), TLSLateAfter)})
	}
	if n := r.Failed["EADDRNOTAVAIL"]; r.Attempted > 0 && float64(n) > LateShare*float64(r.Attempted) {
		s.Limits = append(s.Limits, Limit{Reason: "ports", Value: float64(n) / float64(r.Attempted), Threshold: LateShare,
			Detail: fmt.Sprintf("%d attempts (%.1f %%) found no free source port: every port was held by attempts or requests in flight, or in TIME-WAIT; more ports or source addresses would keep more in flight (the target's latency sets how many are needed)",
				n, 100*float64(n)/float64(r.Attempted))})
	}
	if n := r.XSK.RxLost(); n > 0 {
		s.Limits = append(s.Limits, Limit{Reason: "rx-loss", Value: float64(n),
			Detail: fmt.Sprintf("%d received frames dropped before a worker read them (fill ring empty %d, RX ring full %d): the target's answers were lost on our side, and its retransmissions are in the latencies",
				n, r.XSK.RxFillRingEmpty, r.XSK.RxRingFull)})
	}
	if s.Concurrency > 0 && s.RingConnections > 0 && float64(s.Concurrency) > RingShare*s.RingConnections {
		s.Limits = append(s.Limits, Limit{Reason: "rx-capacity", Value: float64(s.Concurrency) / s.RingConnections, Threshold: RingShare,
			Detail: fmt.Sprintf("%d connections in flight asked, and the RX rings hold about %.0f of this run's (their replies' frames each): the replies overrun the rings and the generator limits the run; ask for at most %.0f in flight, or more --frames",
				s.Concurrency, s.RingConnections, s.RingConnections)})
	}
	if r.TxDropped > 0 && !outage {
		s.Limits = append(s.Limits, Limit{Reason: "tx-drop", Value: float64(r.TxDropped),
			Detail: fmt.Sprintf("%d frames could not be queued for sending (TX ring or frames exhausted)", r.TxDropped)})
	}
	if r.AskedRate > 0 && r.DurationSeconds >= 1 && r.AttemptRate < RateShare*r.AskedRate && s.HeldBack == 0 && !outage {
		s.Limits = append(s.Limits, Limit{Reason: "rate", Value: r.AttemptRate / r.AskedRate, Threshold: RateShare,
			Detail: fmt.Sprintf("attempted %.0f/s of the %.0f/s asked (%.1f %%)", r.AttemptRate, r.AskedRate, 100*r.AttemptRate/r.AskedRate)})
	}
	s.Saturated = len(s.Limits) > 0
}

// RateMissed says the run did not deliver its asked rate because of the
// generator: late attempts, an attempt rate below the asked one, or source
// ports that ran out, over their thresholds (the command's exit status
// says so).
func (r *Report) RateMissed() bool {
	if r.Saturation == nil {
		return false
	}
	for _, l := range r.Saturation.Limits {
		if l.Reason == "late" || l.Reason == "rate" || l.Reason == "ports" {
			return true
		}
	}
	return false
}
