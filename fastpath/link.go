package fastpath

import "github.com/xdpconnect/xdpconnect/xsk"

// Link is one queue's frame I/O, implemented by *xsk.Socket and by in-memory
// fakes in tests. Every method works on a batch; per-frame access goes
// through the UMEM slice, never through the interface.
type Link interface {
	// UMEM is the frame memory descriptors point into.
	UMEM() []byte
	// FrameSize is the size of a TX frame buffer.
	FrameSize() int
	// Receive fills descs with received frames; they stay the caller's
	// until Recycle.
	Receive(descs []xsk.Desc) int
	// Recycle returns received frames to the link.
	Recycle(descs []xsk.Desc)
	// Alloc pops free TX frames into addrs and returns how many.
	Alloc(addrs []uint64) int
	// Free returns unsent TX frames.
	Free(addrs []uint64)
	// Transmit queues frames and returns how many were queued.
	Transmit(descs []xsk.Desc) int
	// Kick makes the kernel send queued frames if it needs a wakeup.
	Kick() error
	// Complete reclaims sent frames.
	Complete() int
	// Poll waits up to timeoutMs for received frames.
	Poll(timeoutMs int) bool
	// Err is the link's first fatal error (the interface went away, a
	// wakeup failed for good), or nil. The worker stops on it and the run
	// ends with it.
	Err() error
}

var _ Link = (*xsk.Socket)(nil)

// Waker is a Link whose Poll another goroutine can end at once: a Write
// or Close of a Dial'ed connection then reaches an idle worker without
// waiting out Config.Idle.
type Waker interface {
	Wake()
}

var _ Waker = (*xsk.Socket)(nil)
