package xdpconnect

import (
	"fmt"
	"net/netip"
	"time"
)

// Options say where a session sends from and how. The zero value of a field
// means its default (see [DefaultOptions]); Targets is required.
type Options struct {
	// Netns runs the session in this named network namespace (as made by
	// `ip netns add`); empty means the caller's.
	Netns string
	// Iface, if set, must be the interface the targets' routes use.
	Iface string
	// Targets are the destinations, IPv4 or IPv6 (mixed). All must leave
	// through one interface.
	Targets []netip.AddrPort
	// Sources are the source addresses of either family; a family the
	// targets need and Sources lack uses its first target's route
	// source. Addresses the kernel does not own are dedicated: the
	// session answers ARP and neighbour solicitations for them. They must
	// be spare addresses of the interface's subnets unless SourcesRouted
	// says a router sends their traffic here.
	Sources       []netip.Addr
	SourcesRouted bool
	// PortLo..PortHi are the source ports; zero means a range outside
	// ip_local_port_range, reserved for the session's lifetime.
	PortLo, PortHi uint16
	// Workers is the number of workers, one per RX queue; zero means one
	// per active queue.
	Workers int
	// Attach is how the XDP program is attached (auto: native, else
	// generic).
	Attach AttachMode
	// PartialChecksum says when TCP segments with partial checksums are
	// taken (see [PartialAuto]).
	PartialChecksum PartialPolicy
	// SocketMode is the AF_XDP bind mode (auto: zero-copy, else copy).
	SocketMode SocketMode
	// XDPTX sends every frame from the XDP program (live frames, one
	// BPF_PROG_RUN per batch, no socket buffer per frame) instead of the
	// AF_XDP TX ring; receiving stays on AF_XDP. It needs the program
	// attached in native mode and an interface that takes redirected
	// frames (a veth: its peer has an XDP program or GRO on).
	XDPTX bool
	// Frames is the number of UMEM frames per socket (a power of two,
	// 64..262144).
	Frames int
	// Batch is the RX/TX batch size (0: 64, or 256 in request mode, where
	// a larger batch lets one ACK cover more of a response; see
	// fastpath.Config.Batch).
	Batch int
	// NoPin leaves worker threads unpinned (by default worker i runs on
	// CPU i).
	NoPin bool
	// Idle is how long an idle worker sleeps in poll (0: the default 1 ms).
	Idle time.Duration
	// SynRetries is TCP_SYNCNT (1..127); zero means the namespace's
	// tcp_syn_retries (6 by default).
	SynRetries int
	// TargetStats is how many targets get statistics of their own (in the
	// report and the metrics); the rest are summed as "other" (0: 16).
	TargetStats int
	// Key seeds the ISN hash and the port picker (the kernel's net_secret);
	// when zero, the host's per-boot key (/run/xdpconnect/secret, made on
	// first use), or a key of the run's own if that cannot be kept.
	Key [16]byte
	// Shard is this node's part of a run on several nodes; ShardBy says
	// what the shards partition besides the count and the rate; RunID ties
	// the shards' reports together (empty: a hash of the targets and the
	// plan, the same on every shard started with the same flags).
	Shard   Shard
	ShardBy ShardBy
	RunID   string

	sourcesGiven bool // Sources came from the caller, not the route
}

// PartialPolicy says when segments with a partial checksum are taken.
type PartialPolicy int

// Partial checksum policies.
const (
	// PartialAuto takes them on devices whose frames can only come from a
	// peer on this host (veth, netkit, macvlan/ipvlan on one of those).
	PartialAuto PartialPolicy = iota
	// PartialAccept takes them on any device.
	PartialAccept
	// PartialReject drops them as bad checksums.
	PartialReject
)

// String is the policy's flag value.
func (p PartialPolicy) String() string { return [...]string{"auto", "accept", "reject"}[p] }

// ParsePartialPolicy parses "auto", "accept" or "reject".
func ParsePartialPolicy(s string) (PartialPolicy, error) {
	for p := PartialAuto; p <= PartialReject; p++ {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("partial checksum policy %q: want auto, accept or reject", s)
}

// Plan is a load: how many attempts, how fast, and how connections end.
type Plan struct {
	// Count stops generation after that many attempts; Duration after
	// that long. At least one is required: every run is bounded.
	Count    uint64
	Duration time.Duration
	// Rate is attempts per second (0: as fast as possible).
	Rate float64
	// Stages ramp the rate instead of Rate: linearly over each stage's
	// Duration from the previous stage's Rate (0 before the first); the
	// generation lasts their total (Duration then is 0 or that total).
	Stages []Stage
	// Concurrency bounds attempts in flight plus open connections (0: none).
	Concurrency int
	// ConcurrencyStages ramp that bound (Close hold only): linearly over
	// each stage from the previous stage's count (0 before the first), the
	// Stage's Rate read as a number of connections; generation lasts their
	// total. Where the bound falls, held connections are aborted (RST)
	// until it holds. Rate, if set, caps the opening rate.
	ConcurrencyStages []Stage
	// Close is what happens after the handshake.
	Close CloseMode
	// Warmup is excluded from the measured rate.
	Warmup time.Duration
	// Drain is how long in-flight attempts get once generation stops.
	Drain time.Duration
	// HoldFor keeps held connections open this long (Close hold only).
	HoldFor time.Duration
	// TimeWait is the quarantine of a port that ended in TIME-WAIT.
	TimeWait time.Duration
	// StartAt, if set, delays the first SYN until then (wall clock), so
	// that shards on several nodes start together.
	StartAt time.Time
	// KernelSYNs (Close synonly only) has the XDP program make the SYNs
	// and count their answers, scanner-style: one SYN per probe (scan.go).
	KernelSYNs bool
	// Request, when set, is request mode: each connection sends it once
	// established and reads the response before the close mode applies
	// (HTTPRequest builds one).
	Request *Request
	// ResponseTimeout bounds a request's time to the end of its response
	// (0: fastpath.DefaultResponseTimeout).
	ResponseTimeout time.Duration
	// RequestsPerConn is how many requests a connection makes, each after
	// the previous response (0: one).
	RequestsPerConn int
	// TLS, with Request, makes request mode HTTPS: a TLS handshake on
	// each connection, the requests inside it.
	TLS *TLS
}

// DefaultOptions are the options' defaults, in one place.
func DefaultOptions() Options {
	return Options{Frames: 8192, Idle: time.Millisecond}
}

// DefaultPlan is the plan's defaults (no bound: set Count or Duration).
// Its zero durations are the engine's defaults, filled in one place
// (fastpath.Config.Validate): Drain 5 s, in request mode at least the
// response timeout and a second; TimeWait 60 s.
func DefaultPlan() Plan { return Plan{} }
