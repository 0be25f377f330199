package fastpath

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// CloseMode says what happens to a connection once established.
type CloseMode int

// Close modes.
const (
	// CloseRST aborts at once with RST|ACK (SO_LINGER 0, spec E10).
	CloseRST CloseMode = iota
	// CloseFIN closes gracefully (E8); a port that ends in TIME-WAIT is
	// quarantined for TimeWait.
	CloseFIN
	// CloseHold keeps connections open, answering keepalives, data and the
	// server's FIN, and aborts them all at the end of the run.
	CloseHold
	// CloseSYNOnly never completes a handshake: a SYN-ACK is counted (as
	// established) and answered with RST seq = SEG.ACK, as SYN scanners
	// (masscan, zmap) do. For SYN-rate comparisons only.
	CloseSYNOnly
)

// String is the mode's flag value (rst, fin, hold, synonly).
func (m CloseMode) String() string {
	return [...]string{"rst", "fin", "hold", "synonly"}[m]
}

// ParseCloseMode parses "rst", "fin" or "hold".
func ParseCloseMode(s string) (CloseMode, error) {
	switch s {
	case "rst":
		return CloseRST, nil
	case "fin":
		return CloseFIN, nil
	case "hold":
		return CloseHold, nil
	case "synonly":
		return CloseSYNOnly, nil
	}
	return 0, fmt.Errorf("close mode %q: want rst, fin, hold or synonly", s)
}

// Target is a destination with the link-layer address of its next hop.
type Target struct {
	Addr   netip.AddrPort
	DstMAC [6]byte
}

// Source is one of our source addresses.
type Source struct {
	Addr netip.Addr
	// Dedicated means the kernel does not own the address, so the engine
	// answers ARP for it.
	Dedicated bool
}

// family is 0 for IPv4, 1 for IPv6: the index of Engine.params.
func family(a netip.Addr) int {
	if a.Is6() {
		return 1
	}
	return 0
}

// Config is a load plan. See [Config.Validate] for the rules.
type Config struct {
	Targets []Target
	Sources []Source
	SrcMAC  [6]byte
	// PortLo..PortHi is the source port range, split between workers.
	PortLo, PortHi uint16
	// Params are the TCP parameters (MSS from the MTU, SYN retries ...)
	// of IPv4 connections; Params6 those of IPv6 ones (IPv6 set). A zero
	// Params6 is derived from Params (same settings, IPv6's MSS).
	Params  tcp.Params
	Params6 tcp.Params

	// Rate is the asked rate of new attempts per second (0: as fast as
	// possible).
	Rate float64
	// Stages, when set, ramp the rate instead of Rate: linearly, over each
	// stage's Duration, from the previous stage's Rate (0 before the
	// first) to its own (k6's stages); generation lasts their total.
	Stages []Stage
	// Concurrency bounds attempts plus open connections (0: no bound).
	Concurrency int
	// ConcurrencyStages ramp that bound instead (hold mode): linearly over
	// each stage's Duration from the previous stage's count (0 before the
	// first) to its own, each Stage's Rate read as a number of
	// connections; generation lasts their total. Where the bound falls
	// below the connections open, held ones are aborted (RST|ACK, as hold
	// mode's end does) until it holds.
	ConcurrencyStages []Stage
	// LinkDown, when set, is true while the interface is down (its link
	// events): frames queued then are counted as not sent, by kind, and
	// handshakes completed then as established without their ACK.
	LinkDown *atomic.Bool
	// Count stops generation after that many attempts (0: no bound).
	Count uint64
	// Duration stops generation after that long (0: no bound).
	Duration time.Duration
	// Warmup is excluded from the measured rate.
	Warmup time.Duration
	// Drain bounds the time in-flight attempts get after generation stops;
	// what is still in flight then is reported as such.
	Drain time.Duration
	// Close is the close mode.
	Close CloseMode
	// HoldFor keeps held connections (hold mode) open this long after
	// generation ends, before they are closed.
	HoldFor time.Duration
	// TimeWait is how long a port that ended in TIME-WAIT is quarantined
	// (TCP_TIMEWAIT_LEN, 60 s).
	TimeWait time.Duration
	// Key seeds the ISN hash (net_secret) and the port picker; random when
	// zero.
	Key [16]byte
	// TargetStats is how many targets (the first ones) get statistics of
	// their own in the report and the metrics; the others are summed as
	// "other" (0: DefaultTargetStats).
	TargetStats int
	// Batch is the RX/TX batch size (default 64; in request mode 256: the
	// ACKs of a connection's response segments read in one batch are one
	// (Q8), and with many responses interleaved a batch of 64 held about
	// one segment of each; 256 made 64 KiB responses 14 % faster and 1 KiB
	// ones 12-17 %, with no added latency, while the handshake rate gains
	// 4 % at the cost of handshake RTTs timed by the loop 4x longer).
	Batch int
	// Pin pins worker i to CPU i.
	Pin bool
	// Idle is how long an idle worker sleeps in poll (default 1 ms; 0
	// busy-polls).
	Idle time.Duration
	// AcceptPartialChecksum takes TCP segments whose checksum field holds
	// the pseudo-header sum (tcp.AcceptPartialChecksum). Set it only when
	// the link's frames can only come from a peer on this host.
	AcceptPartialChecksum bool
	// Clock, if set, is the engine's clock: the time since the run started.
	// Tests drive it by hand (linktest.Clock) so timeouts take no real
	// time; nil is the monotonic clock.
	Clock func() time.Duration
	// Request, when set, is request mode: every connection the run makes
	// sends this request once established and reads its response, then
	// the close mode applies (Dial's connections are not affected).
	Request *l7.Spec
	// RequestsPerConn is how many requests each connection makes, one
	// after the other's response (keep-alive; 0 is 1).
	RequestsPerConn int
	// ResponseTimeout bounds a request's time from its first send to the
	// end of its response (default 10 s, at most 120 s); past it the
	// request fails with ETIMEDOUT.
	ResponseTimeout time.Duration
	// DialOnly runs the engine without generation, for Dial, until Run's
	// context is cancelled (or Stop); Count and Duration are not needed.
	DialOnly bool
}

// Request mode's response timeout: its default, and its bound (a request's
// start is kept in a synTime, 137 s of range).
const (
	DefaultResponseTimeout = 10 * time.Second
	MaxResponseTimeout     = 120 * time.Second
	// MaxRequestsPerConn bounds keep-alive requests (a 16-bit count).
	MaxRequestsPerConn = 65535
)

// maxEntries bounds the connection table (64 B an entry: 4 GiB).
const maxEntries = 1 << 26

// Validate checks the plan and fills defaults.
func (c *Config) Validate(workers int) error {
	if len(c.Targets) == 0 {
		return errors.New("no target")
	}
	if len(c.Sources) == 0 {
		return errors.New("no source address")
	}
	var fams [2]bool // a source of each family
	for _, s := range c.Sources {
		if s.Addr.Is4In6() || s.Addr.Zone() != "" || !s.Addr.IsValid() {
			return fmt.Errorf("source %s: want a plain IPv4 or IPv6 address", s.Addr)
		}
		fams[family(s.Addr)] = true
	}
	for _, t := range c.Targets {
		a := t.Addr.Addr()
		if a.Is4In6() || a.Zone() != "" || !a.IsValid() {
			return fmt.Errorf("target %s: want a plain IPv4 or IPv6 address", t.Addr)
		}
		if !fams[family(a)] {
			return fmt.Errorf("target %s: no source address of its family", t.Addr)
		}
	}
	if c.PortLo == 0 || c.PortHi < c.PortLo {
		return fmt.Errorf("bad source port range %d-%d", c.PortLo, c.PortHi)
	}
	if ports := int(c.PortHi-c.PortLo) + 1; ports < 2*workers {
		return fmt.Errorf("source port range %d-%d too small for %d worker(s): give each worker 2 ports or more", c.PortLo, c.PortHi, workers)
	}
	if n := len(c.Targets) * len(c.Sources) * (int(c.PortHi-c.PortLo) + 1); n > maxEntries {
		return fmt.Errorf("targets x sources x ports = %d exceeds %d table entries: narrow the source ports or addresses", n, maxEntries)
	}
	if c.Rate < 0 || c.Concurrency < 0 {
		return errors.New("negative rate or concurrency")
	}
	if err := checkStages(c); err != nil {
		return err
	}
	if c.Count == 0 && c.Duration == 0 && !c.DialOnly {
		return errors.New("a run needs a count or a duration")
	}
	if err := CheckRequest(c.Request, c.Close, c.RequestsPerConn, c.ResponseTimeout); err != nil {
		return err
	}
	if c.Request != nil {
		if c.ResponseTimeout == 0 {
			c.ResponseTimeout = DefaultResponseTimeout
		}
		if c.RequestsPerConn == 0 {
			c.RequestsPerConn = 1
		}
	}
	if c.Params.MSS == 0 {
		c.Params = tcp.DefaultParams(1500, false)
	}
	if c.Params6.MSS == 0 {
		// The IPv4 settings on the same MTU, with IPv6's MSS and window (V4).
		c.Params6 = c.Params
		c.Params6.IPv6 = true
		c.Params6.SetMTU(int(c.Params.MSS) + tcp.IPv4HdrLen + tcp.TCPHdrLen)
	}
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
		if c.Request != nil {
			c.Batch = DefaultRequestBatch
		}
	}
	if c.TimeWait == 0 {
		c.TimeWait = DefaultTimeWait
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
		if c.Request != nil {
			// A request in flight when generation stops may take its
			// whole response timeout: the drain must not cut it short.
			c.Drain = max(c.Drain, c.ResponseTimeout+time.Second)
		}
	}
	return nil
}

// Defaults of Config's durations (a zero field means its default).
const (
	// DefaultDrain is the drain; in request mode at least the response
	// timeout and a second.
	DefaultDrain = 5 * time.Second
	// DefaultTimeWait is the quarantine of a port after TIME-WAIT, as
	// Linux's TCP_TIMEWAIT_LEN.
	DefaultTimeWait = 60 * time.Second
)

// ConfigError says which Config field cannot work, and why.
type ConfigError struct {
	Field  string // as Config spells it: Request, RequestsPerConn ...
	Reason string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Reason }

// CheckRequest is the one check of request mode's settings (zeros mean
// the defaults): without a request, no request setting; with one, a valid
// request, a close mode with handshakes, and bounded counts and times.
// Config.Validate runs it, and so can a caller before anything is set up.
func CheckRequest(req *l7.Spec, close CloseMode, perConn int, timeout time.Duration) error {
	bad := func(field, f string, a ...any) error { return &ConfigError{Field: field, Reason: fmt.Sprintf(f, a...)} }
	if req == nil {
		switch {
		case perConn != 0:
			return bad("RequestsPerConn", "needs a request ({Request})")
		case timeout != 0:
			return bad("ResponseTimeout", "needs a request ({Request})")
		}
		return nil
	}
	switch {
	case close == CloseSYNOnly:
		return bad("Close", "request mode needs handshakes: not synonly")
	case perConn < 0 || perConn > MaxRequestsPerConn:
		return bad("RequestsPerConn", "%d requests per connection: want 1 to %d", perConn, MaxRequestsPerConn)
	case timeout < 0 || timeout > MaxResponseTimeout:
		return bad("ResponseTimeout", "%v: want up to %v", timeout, MaxResponseTimeout)
	}
	if err := req.Validate(); err != nil {
		return bad("Request", "%v", err)
	}
	return nil
}

// Stage is one leg of a rate ramp: over Duration the rate moves linearly
// from the previous stage's Rate to this one's.
type Stage struct {
	Duration time.Duration
	Rate     float64
}

// The default batch sizes (Config.Batch).
const (
	DefaultBatch        = 64
	DefaultRequestBatch = 256
)

// MaxStages bounds a ramp's legs.
const MaxStages = 1000

// checkStages validates a ramp and sets the generation's Duration to its
// total.
func checkStages(c *Config) error {
	if len(c.ConcurrencyStages) > 0 {
		total, err := CheckConcurrencyStages(c.ConcurrencyStages, c.Close, c.Concurrency, len(c.Stages) > 0, c.Request != nil, c.Duration)
		c.Duration = total
		return err
	}
	if len(c.Stages) == 0 {
		return nil
	}
	total, err := CheckStages(c.Stages, c.Rate, c.Duration)
	c.Duration = total
	return err
}

// CheckConcurrencyStages is the one check of a concurrency ramp beside
// the rest of a plan, and its total length. The error is a *ConfigError
// naming ConcurrencyStages.
func CheckConcurrencyStages(stages []Stage, close CloseMode, concurrency int, rateStages, request bool, d time.Duration) (time.Duration, error) {
	bad := func(f string, a ...any) error {
		return &ConfigError{Field: "ConcurrencyStages", Reason: fmt.Sprintf(f, a...)}
	}
	switch {
	case close != CloseHold:
		return 0, bad("ramps the connections held open: needs {Close} hold")
	case concurrency != 0 || rateStages:
		return 0, bad("is the concurrency bound, ramped: no {Concurrency} or {Stages} beside it ({Rate} caps the opening rate)")
	case request:
		return 0, bad("aborts held connections as the ramp falls: not in request mode")
	}
	return checkRamp(stages, d, "ConcurrencyStages", "%v connections", "count")
}

// CheckStages is the one check of a ramp beside a rate and a duration, and
// its total length: a ramp with a rate of its own, or a duration other
// than its total, would say two things. The error is a *ConfigError.
func CheckStages(stages []Stage, rate float64, d time.Duration) (time.Duration, error) {
	if rate != 0 {
		return 0, &ConfigError{Field: "Stages", Reason: "stages set the rate: no {Rate} beside them"}
	}
	return checkRamp(stages, d, "Stages", "%v/s", "rate")
}

// checkRamp checks a ramp's legs (values in unit, a format of the value)
// and its length against the run's Duration d; errors name field.
func checkRamp(stages []Stage, d time.Duration, field, unit, what string) (time.Duration, error) {
	bad := func(f string, a ...any) error { return &ConfigError{Field: field, Reason: fmt.Sprintf(f, a...)} }
	if len(stages) > MaxStages {
		return 0, bad("%d stages: at most %d", len(stages), MaxStages)
	}
	var total time.Duration
	for i, s := range stages {
		if s.Duration <= 0 || s.Rate < 0 || s.Rate != s.Rate || s.Rate > 1e12 {
			return 0, bad("stage %d (%v at "+unit+"): want a positive duration and a finite %s >= 0", i+1, s.Duration, s.Rate, what)
		}
		total += s.Duration
	}
	if d != 0 && d != total {
		return 0, bad("the stages last %v: {Duration} is theirs, or leave it out", total)
	}
	return total, nil
}
