package xsk

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Desc is an RX or TX descriptor: a frame's address in the UMEM and its
// length. Same layout as struct xdp_desc.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// CopyMode selects how the socket binds.
type CopyMode int

// Bind modes.
const (
	// ModeAuto tries zero-copy and falls back to copy mode.
	ModeAuto CopyMode = iota
	// ModeCopy binds in copy mode.
	ModeCopy
	// ModeZeroCopy requires zero-copy and fails without it.
	ModeZeroCopy
)

// Options configure a socket. Zero values take the defaults of
// [DefaultOptions]; sizes must be powers of two.
type Options struct {
	NumFrames int // UMEM frames (default 4096)
	// TxFrames of them are for TX, the rest for RX (0: half).
	TxFrames  int
	FrameSize int // bytes per frame: 2048 or 4096 (default 2048)
	RingSize  int // entries of each of the four rings (default 2048)
	// RxRingSize overrides RingSize for the RX ring (0: RingSize).
	RxRingSize int
	Mode       CopyMode // zero-copy or copy
	// NeedWakeup asks the kernel to say when it needs a syscall to make
	// progress (XDP_USE_NEED_WAKEUP); default true.
	NoNeedWakeup bool
	// BusyPoll enables SO_PREFER_BUSY_POLL with SO_BUSY_POLL and
	// SO_BUSY_POLL_BUDGET = BusyPollBudget (default 64).
	BusyPoll       bool
	BusyPollBudget int
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{NumFrames: 4096, FrameSize: 2048, RingSize: 2048, BusyPollBudget: 64}
}

func (o *Options) fill() error {
	d := DefaultOptions()
	if o.NumFrames == 0 {
		o.NumFrames = d.NumFrames
	}
	if o.FrameSize == 0 {
		o.FrameSize = d.FrameSize
	}
	if o.RingSize == 0 {
		o.RingSize = d.RingSize
	}
	if o.BusyPollBudget == 0 {
		o.BusyPollBudget = d.BusyPollBudget
	}
	if o.RxRingSize == 0 {
		o.RxRingSize = o.RingSize
	}
	for _, v := range []int{o.NumFrames, o.FrameSize, o.RingSize, o.RxRingSize} {
		if v <= 0 || v&(v-1) != 0 {
			return fmt.Errorf("xsk: sizes must be powers of two: %+v", *o)
		}
	}
	if o.FrameSize != 2048 && o.FrameSize != 4096 {
		return fmt.Errorf("xsk: frame size %d: must be 2048 or 4096", o.FrameSize)
	}
	if o.NumFrames < o.RingSize {
		return errors.New("xsk: NumFrames must be at least RingSize")
	}
	if o.TxFrames == 0 {
		o.TxFrames = o.NumFrames / 2
	}
	if o.TxFrames < 0 || o.TxFrames >= o.NumFrames {
		return fmt.Errorf("xsk: TxFrames %d out of 1..%d", o.TxFrames, o.NumFrames-1)
	}
	return nil
}

// Stats are the kernel's XDP_STATISTICS plus the socket's own counters.
type Stats struct {
	// Kernel (XDP_STATISTICS).
	RxDropped            uint64
	RxInvalidDescs       uint64
	TxInvalidDescs       uint64
	RxRingFull           uint64
	RxFillRingEmptyDescs uint64
	TxRingEmptyDescs     uint64
	// Own counters.
	RxFrames     uint64 // descriptors received
	TxFrames     uint64 // descriptors queued for transmission
	TxCompleted  uint64 // descriptors completed
	EmptyPolls   uint64 // Receive calls that found nothing
	RxWakeups    uint64 // recvfrom kicks for the fill ring
	TxWakeups    uint64 // sendto kicks
	KickEAGAIN   uint64 // sendto returned EAGAIN (normal in copy mode)
	KickEBUSY    uint64
	KickENOBUFS  uint64
	KickENETDOWN uint64
	TxRingFull   uint64 // Transmit could not queue all of a batch
	AllocFail    uint64 // Alloc found no free TX frame
}

// ErrNotSupported wraps errors of missing kernel or driver support.
var ErrNotSupported = errors.New("not supported")

// ownCounters are updated by the owner once per batch and read by anyone.
type ownCounters struct {
	RxFrames, TxFrames, TxCompleted, EmptyPolls, RxWakeups, TxWakeups       atomic.Uint64
	KickEAGAIN, KickEBUSY, KickENOBUFS, KickENETDOWN, TxRingFull, AllocFail atomic.Uint64
}

func (c *ownCounters) load() Stats {
	return Stats{RxFrames: c.RxFrames.Load(), TxFrames: c.TxFrames.Load(), TxCompleted: c.TxCompleted.Load(),
		EmptyPolls: c.EmptyPolls.Load(), RxWakeups: c.RxWakeups.Load(), TxWakeups: c.TxWakeups.Load(),
		KickEAGAIN: c.KickEAGAIN.Load(), KickEBUSY: c.KickEBUSY.Load(), KickENOBUFS: c.KickENOBUFS.Load(),
		KickENETDOWN: c.KickENETDOWN.Load(), TxRingFull: c.TxRingFull.Load(), AllocFail: c.AllocFail.Load()}
}

// XDPHeadroom is the kernel's XDP_PACKET_HEADROOM: received bytes start
// this far into a UMEM frame, so a frame of FrameSize bytes receives at most
// FrameSize - XDPHeadroom bytes of Ethernet frame.
const XDPHeadroom = 256

// FrameSizeFor is the UMEM frame size that receives Ethernet frames of an
// interface MTU whole: 2048 up to MTU 1778, 4096 above (which receives up to
// MTU 3826; larger frames need multi-buffer AF_XDP).
func FrameSizeFor(mtu int) int {
	if mtu+14 <= 2048-XDPHeadroom {
		return 2048
	}
	return 4096
}

// MaxRxMTU is the largest MTU whose frames a UMEM frame of frameSize bytes
// receives whole.
func MaxRxMTU(frameSize int) int { return frameSize - XDPHeadroom - 14 }
