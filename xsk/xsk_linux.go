package xsk

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket options missing from x/sys/unix.
const (
	soPreferBusyPoll  = 69 // SO_PREFER_BUSY_POLL
	soBusyPollBudget  = 70 // SO_BUSY_POLL_BUDGET
	xdpStatisticsSize = int(unsafe.Sizeof(unix.XDPStatistics{}))
)

// ring is one of the four shared rings. Positions grow without bound and
// are masked on access; cached positions avoid touching the shared cache
// line except when the cache runs out or a batch is published.
type ring struct {
	mem        []byte
	producer   *uint32
	consumer   *uint32
	flags      *uint32
	entries    unsafe.Pointer
	mask       uint32
	size       uint32
	cachedProd uint32
	cachedCons uint32
}

func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.entries, uintptr(i&r.mask)*8))
}

func (r *ring) desc(i uint32) *Desc {
	return (*Desc)(unsafe.Add(r.entries, uintptr(i&r.mask)*16))
}

// reserve (producer side) returns how many of n slots are free, at most n.
func (r *ring) reserve(n uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free < n {
		r.cachedCons = atomic.LoadUint32(r.consumer)
		free = r.size - (r.cachedProd - r.cachedCons)
	}
	return min(free, n)
}

// submit publishes n produced entries.
func (r *ring) submit(n uint32) {
	r.cachedProd += n
	atomic.StoreUint32(r.producer, r.cachedProd)
}

// peek (consumer side) returns how many of n entries are available.
func (r *ring) peek(n uint32) uint32 {
	avail := r.cachedProd - r.cachedCons
	if avail < n {
		r.cachedProd = atomic.LoadUint32(r.producer)
		avail = r.cachedProd - r.cachedCons
	}
	return min(avail, n)
}

// release gives n consumed entries back.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.consumer, r.cachedCons)
}

func (r *ring) needWakeup() bool { return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0 }

// Socket is an AF_XDP socket bound to one queue of one interface, with its
// own UMEM.
type Socket struct {
	fd        int
	umem      []byte
	frameSize uint64
	opts      Options
	fill      ring
	comp      ring
	rx        ring
	tx        ring
	free      []uint64 // TX frame stack
	ifindex   int
	queue     int
	zeroCopy  bool
	pollfd    [2]unix.PollFd // the socket, and wakefd
	// wakefd is an eventfd that Wake makes readable: a Poll under way
	// returns at once (-1: none).
	wakefd int
	own    ownCounters
	err    atomic.Pointer[error] // first fatal error, see Err
	// FallbackReason says why zero-copy was not used (empty when it was).
	FallbackReason string
}

// Open creates a socket with its UMEM and binds it to queue of ifindex in the
// calling thread's network namespace.
func Open(ifindex, queue int, o Options) (_ *Socket, err error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("xsk: AF_XDP socket: %w (needs CAP_NET_RAW, or root)", err)
		}
		if errors.Is(err, unix.EAFNOSUPPORT) {
			return nil, fmt.Errorf("xsk: AF_XDP socket: %w: %w (kernel without CONFIG_XDP_SOCKETS)", err, ErrNotSupported)
		}
		return nil, fmt.Errorf("xsk: AF_XDP socket: %w", err)
	}
	s := &Socket{fd: fd, frameSize: uint64(o.FrameSize), opts: o, ifindex: ifindex, queue: queue, wakefd: -1}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	size := o.NumFrames * o.FrameSize
	s.umem, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("xsk: UMEM mmap: %w", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&s.umem[0]))), Len: uint64(size), Size: uint32(o.FrameSize)}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		// Without CAP_IPC_LOCK the pinned UMEM is charged to RLIMIT_MEMLOCK;
		// the kernel says ENOBUFS (or ENOMEM/EPERM) when it is exceeded.
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.ENOBUFS) {
			return nil, fmt.Errorf("xsk: UMEM register: %w (needs CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK)", err)
		}
		return nil, fmt.Errorf("xsk: UMEM register: %w", err)
	}
	rs := uint32(o.RingSize)
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		size := rs
		if opt == unix.XDP_RX_RING {
			size = uint32(o.RxRingSize)
		}
		if err := setsockopt(fd, opt, unsafe.Pointer(&size), 4); err != nil {
			return nil, fmt.Errorf("xsk: ring size option %d: %w", opt, err)
		}
	}
	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return nil, fmt.Errorf("xsk: mmap offsets: %w", err)
	}
	if err := s.mapRing(&s.fill, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, 8, o.RingSize); err != nil {
		return nil, err
	}
	if err := s.mapRing(&s.comp, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, 8, o.RingSize); err != nil {
		return nil, err
	}
	if err := s.mapRing(&s.rx, off.Rx, unix.XDP_PGOFF_RX_RING, 16, o.RxRingSize); err != nil {
		return nil, err
	}
	if err := s.mapRing(&s.tx, off.Tx, unix.XDP_PGOFF_TX_RING, 16, o.RingSize); err != nil {
		return nil, err
	}
	// The first NumFrames-TxFrames frames are for RX, handed to the fill
	// ring (and cycling between it and the RX ring); the rest are TX frames
	// on the free stack.
	rxFrames := uint64(o.NumFrames - o.TxFrames)
	n := s.fill.reserve(uint32(min(rxFrames, uint64(rs))))
	for i := uint32(0); i < n; i++ {
		*s.fill.addr(s.fill.cachedProd + i) = uint64(i) * s.frameSize
	}
	s.fill.submit(n)
	s.free = make([]uint64, 0, o.TxFrames)
	for i := uint64(0); i < uint64(o.TxFrames); i++ {
		s.free = append(s.free, (rxFrames+i)*s.frameSize)
	}
	if o.BusyPoll {
		for _, kv := range [][2]int{{soPreferBusyPoll, 1}, {unix.SO_BUSY_POLL, 20}, {soBusyPollBudget, o.BusyPollBudget}} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, kv[0], kv[1]); err != nil {
				return nil, fmt.Errorf("xsk: busy poll option %d: %w", kv[0], err)
			}
		}
	}
	if err := s.bind(); err != nil {
		return nil, err
	}
	s.pollfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	s.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("xsk: eventfd: %w", err)
	}
	s.pollfd[1] = unix.PollFd{Fd: int32(s.wakefd), Events: unix.POLLIN}
	return s, nil
}

// Wake ends a Poll under way (or the next one) at once: another goroutine
// has work for the socket's owner. It may be called from any goroutine.
func (s *Socket) Wake() {
	one := [8]byte{1}
	_, _ = unix.Write(s.wakefd, one[:])
}

func (s *Socket) bind() error {
	var flags uint16
	if !s.opts.NoNeedWakeup {
		flags |= unix.XDP_USE_NEED_WAKEUP
	}
	try := func(mode uint16) error {
		sa := unix.SockaddrXDP{Flags: flags | mode, Ifindex: uint32(s.ifindex), QueueID: uint32(s.queue)}
		return unix.Bind(s.fd, &sa)
	}
	switch s.opts.Mode {
	case ModeZeroCopy:
		if err := try(unix.XDP_ZEROCOPY); err != nil {
			return fmt.Errorf("xsk: bind zero-copy to ifindex %d queue %d: %w: %w", s.ifindex, s.queue, err, ErrNotSupported)
		}
		s.zeroCopy = true
		return nil
	case ModeAuto:
		err := try(unix.XDP_ZEROCOPY)
		if err == nil {
			s.zeroCopy = true
			return nil
		}
		s.FallbackReason = fmt.Sprintf("zero-copy bind failed (%v); using copy mode", err)
	}
	if err := try(unix.XDP_COPY); err != nil {
		return fmt.Errorf("xsk: bind ifindex %d queue %d: %w", s.ifindex, s.queue, err)
	}
	return nil
}

func (s *Socket) mapRing(r *ring, off unix.XDPRingOffset, pgoff int64, entSize uint64, entries int) error {
	n := uint64(entries)
	length := off.Desc + n*entSize
	mem, err := unix.Mmap(s.fd, pgoff, int(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("xsk: ring mmap: %w", err)
	}
	base := unsafe.Pointer(&mem[0])
	*r = ring{mem: mem, producer: (*uint32)(unsafe.Add(base, off.Producer)), consumer: (*uint32)(unsafe.Add(base, off.Consumer)),
		flags: (*uint32)(unsafe.Add(base, off.Flags)), entries: unsafe.Add(base, off.Desc), mask: uint32(n - 1), size: uint32(n)}
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return nil
}

// FD is the socket's file descriptor, for the XSKMAP.
func (s *Socket) FD() int { return s.fd }

// Queue is the queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// ZeroCopy reports whether the socket is bound in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// FrameSize is the UMEM frame size.
func (s *Socket) FrameSize() int { return int(s.frameSize) }

// Receive copies up to len(descs) received descriptors into descs and
// releases them from the RX ring; the frames stay owned by the caller until
// Recycle. It kicks the fill ring when the kernel asks for it.
func (s *Socket) Receive(descs []Desc) int {
	n := s.rx.peek(uint32(len(descs)))
	if n == 0 {
		s.own.EmptyPolls.Add(1)
		if s.fill.needWakeup() {
			s.own.RxWakeups.Add(1)
			_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
			if e != 0 && !transient(e) {
				s.fail("fill ring wakeup (recvfrom)", e)
			}
		}
		return 0
	}
	for i := uint32(0); i < n; i++ {
		descs[i] = *s.rx.desc(s.rx.cachedCons + i)
	}
	s.rx.release(n)
	s.own.RxFrames.Add(uint64(n))
	return int(n)
}

// Frame returns the bytes of a received descriptor.
func (s *Socket) Frame(d Desc) []byte {
	return s.umem[d.Addr : d.Addr+uint64(d.Len) : d.Addr+uint64(d.Len)]
}

// Recycle gives received frames back to the fill ring.
func (s *Socket) Recycle(descs []Desc) {
	n := s.fill.reserve(uint32(len(descs)))
	for i := uint32(0); i < n; i++ {
		*s.fill.addr(s.fill.cachedProd + i) = descs[i].Addr &^ (s.frameSize - 1)
	}
	s.fill.submit(n)
	// The fill ring holds all RX frames, so it can always take them back.
}

// Alloc pops up to len(addrs) free TX frames and returns how many.
func (s *Socket) Alloc(addrs []uint64) int {
	s.Complete()
	n := min(len(addrs), len(s.free))
	if n < len(addrs) {
		s.own.AllocFail.Add(1)
	}
	top := len(s.free)
	copy(addrs[:n], s.free[top-n:top])
	s.free = s.free[:top-n]
	return n
}

// Buf is the writable buffer of TX frame addr.
func (s *Socket) Buf(addr uint64) []byte { return s.umem[addr : addr+s.frameSize : addr+s.frameSize] }

// Free returns TX frames that will not be sent to the free stack.
func (s *Socket) Free(addrs []uint64) { s.free = append(s.free, addrs...) }

// FreeFrames is the number of TX frames on the free stack.
func (s *Socket) FreeFrames() int { return len(s.free) }

// Transmit queues descs on the TX ring and returns how many were queued; the
// caller frees the rest or retries. Call Kick after the batch.
func (s *Socket) Transmit(descs []Desc) int {
	n := s.tx.reserve(uint32(len(descs)))
	if int(n) < len(descs) {
		s.own.TxRingFull.Add(1)
	}
	for i := uint32(0); i < n; i++ {
		*s.tx.desc(s.tx.cachedProd + i) = descs[i]
	}
	if n > 0 {
		s.tx.submit(n)
		s.own.TxFrames.Add(uint64(n))
	}
	return int(n)
}

// Kick tells the kernel to send what the TX ring holds, if it asked for a
// wakeup. In copy mode one sendto moves at most 32 frames, so Kick repeats
// (a few times at most) until the kernel has consumed the ring. Transient
// refusals are counted, not returned (xdpsock's kick_tx).
func (s *Socket) Kick() error {
	for i := 0; i < 8; i++ {
		if !s.tx.needWakeup() {
			return nil
		}
		if atomic.LoadUint32(s.tx.consumer) == s.tx.cachedProd {
			return nil // nothing left to send
		}
		s.own.TxWakeups.Add(1)
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			continue
		case unix.EAGAIN:
			// Copy mode returns EAGAIN after its 32-frame budget when
			// frames remain: count it and kick again.
			s.own.KickEAGAIN.Add(1)
			continue
		case unix.EBUSY:
			s.own.KickEBUSY.Add(1)
		case unix.ENOBUFS:
			s.own.KickENOBUFS.Add(1)
		case unix.ENETDOWN:
			s.own.KickENETDOWN.Add(1)
		default:
			s.fail("sendto", e)
			return s.Err()
		}
		return nil
	}
	return nil
}

// transient errnos of a wakeup: the kernel is busy, out of buffers, or the
// link is down for a moment (xdpsock's kick_tx treats them so).
func transient(e unix.Errno) bool {
	switch e {
	case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN, unix.EINTR:
		return true
	}
	return false
}

// fail records the socket's first fatal error; [Socket.Err] returns it.
func (s *Socket) fail(op string, e error) {
	if s.err.Load() != nil {
		return
	}
	err := fmt.Errorf("xsk: %s on queue %d: %w", op, s.queue, e)
	if errors.Is(e, unix.ENXIO) || errors.Is(e, unix.ENODEV) {
		err = fmt.Errorf("xsk: %s on queue %d: %w (the interface is gone: the socket is no longer bound)", op, s.queue, e)
	}
	s.err.CompareAndSwap(nil, &err)
}

// Err is the socket's first fatal error (a failed wakeup or poll that is
// not one of the transient errnos), or nil. Once set the socket makes no
// progress: its owner should stop.
func (s *Socket) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Pending is the number of TX descriptors queued but not yet completed.
func (s *Socket) Pending() int { return int(s.own.TxFrames.Load() - s.own.TxCompleted.Load()) }

// Complete reaps the completion ring, returning sent frames to the free
// stack, and returns how many.
func (s *Socket) Complete() int {
	n := s.comp.peek(uint32(s.opts.RingSize))
	for i := uint32(0); i < n; i++ {
		s.free = append(s.free, *s.comp.addr(s.comp.cachedCons + i))
	}
	if n > 0 {
		s.comp.release(n)
		s.own.TxCompleted.Add(uint64(n))
	}
	return int(n)
}

// Poll waits up to timeoutMs for received frames (or a signal of the
// kernel), returning true if some may be ready.
func (s *Socket) Poll(timeoutMs int) bool {
	s.pollfd[0].Revents, s.pollfd[1].Revents = 0, 0
	n, err := unix.Poll(s.pollfd[:], timeoutMs)
	if err != nil && !errors.Is(err, unix.EINTR) {
		s.fail("poll", err)
	}
	if s.pollfd[1].Revents&unix.POLLIN != 0 {
		var b [8]byte
		_, _ = unix.Read(s.wakefd, b[:]) // reset the eventfd
	}
	if n > 0 && s.pollfd[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
		s.fail("poll", fmt.Errorf("revents %#x: %w", s.pollfd[0].Revents, unix.ENXIO))
	}
	return err == nil && n > 0
}

// Stats returns the kernel statistics merged with the socket's counters. It
// may be called from any goroutine (a metrics scrape) while the owner runs.
func (s *Socket) Stats() (Stats, error) {
	st := s.own.load()
	var k unix.XDPStatistics
	if err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&k), uintptr(xdpStatisticsSize)); err != nil {
		return st, fmt.Errorf("xsk: statistics: %w", err)
	}
	st.RxDropped, st.RxInvalidDescs, st.TxInvalidDescs = k.Rx_dropped, k.Rx_invalid_descs, k.Tx_invalid_descs
	st.RxRingFull, st.RxFillRingEmptyDescs, st.TxRingEmptyDescs = k.Rx_ring_full, k.Rx_fill_ring_empty_descs, k.Tx_ring_empty_descs
	return st, nil
}

// Close unmaps the rings and the UMEM and closes the socket.
func (s *Socket) Close() error {
	for _, r := range []*ring{&s.fill, &s.comp, &s.rx, &s.tx} {
		if r.mem != nil {
			_ = unix.Munmap(r.mem)
			r.mem = nil
		}
	}
	var err error
	if s.fd >= 0 {
		err = unix.Close(s.fd)
		s.fd = -1
	}
	if s.wakefd >= 0 {
		_ = unix.Close(s.wakefd)
		s.wakefd = -1
	}
	if s.umem != nil {
		_ = unix.Munmap(s.umem)
		s.umem = nil
	}
	return err
}

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return os.NewSyscallError("setsockopt", e)
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return os.NewSyscallError("getsockopt", e)
	}
	return nil
}

// UMEM is the socket's frame memory: a received descriptor's frame is
// UMEM()[d.Addr:d.Addr+d.Len], a TX frame's buffer UMEM()[addr:addr+FrameSize].
func (s *Socket) UMEM() []byte { return s.umem }
