package fastpath

import (
	"encoding/binary"
	"time"

	"github.com/xdpconnect/xdpconnect/tcp"
	"golang.org/x/sys/unix"
)

// The arrival stamp the XDP program writes in front of a redirected TCP
// segment (bpf/xdp.h, struct xdpc_meta): rx_ns from bpf_ktime_get_ns() and a
// check word, 16 bytes ending where the frame starts, native byte order.
const (
	metaLen   = 16
	metaMagic = 0x78647063746d6521
)

// arrival returns the stamp in front of the frame at addr and clears it:
// the headroom is reused by later frames, which may come without one.
func arrival(umem []byte, addr uint64) (ns int64, ok bool) {
	if addr < metaLen || addr > uint64(len(umem)) {
		return 0, false
	}
	m := umem[addr-metaLen : addr : addr]
	ts := binary.NativeEndian.Uint64(m)
	ok = binary.NativeEndian.Uint64(m[8:]) == ts^metaMagic
	clear(m)
	return int64(ts), ok
}

// monoBase is CLOCK_MONOTONIC (the stamps' clock) at the engine's epoch:
// a stamp minus it is engine time. With Config.Clock the stamps are taken
// to be in engine time already (a test's link writes them).
func (e *Engine) setMonoBase() {
	if e.cfg.Clock != nil {
		e.monoBase = 0
		return
	}
	var ts unix.Timespec
	err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	e.monoBase = ts.Nano() - int64(time.Since(e.epoch))
	if err != nil {
		e.monoBase = noStamps
	} else {
		e.tsBase = uint32(e.monoBase / 1e6)
	}
	e.isnBase = e.epoch.UnixNano()
}

// arrivalTime is the engine time of a stamp ns, seen at engine time now:
// ok is false when stamps cannot be used or this one is not plausible
// (before the epoch, or from the future).
func (e *Engine) arrivalTime(ns, now int64) (int64, bool) {
	t := ns - e.monoBase
	return t, e.monoBase != noStamps && t >= 0 && t <= now+1e9
}

// noStamps as the monotonic base says the stamps cannot be used: replies
// are timed by the loop that finds them.
const noStamps = -1

// synSent is a SYN in the TX batch: when the batch is flushed, its entry's
// send time moves from the loop's start to its place in the sendto that
// put it on the wire (applied by applySYNTimes, outside any entry lock).
type synSent struct {
	idx  slot
	pos  int   // place in the batch
	orig int64 // the send time as stamped
	at   int64 // send time estimated at the flush
	// state: 0 in the batch, 1 flushed (at is set), 2 refused by the ring.
	state uint8
}

// timeSYNs estimates when each SYN of the batch just flushed left: the
// batch went out between t0 and t1 (Transmit and the kick), in order; the
// ring took the first q of n frames.
func (w *worker) timeSYNs(t0, t1 int64, n, q int) {
	step := (t1 - t0) / int64(n) // one division a batch, not one a SYN
	for i := range w.synQ {
		s := &w.synQ[i]
		if s.state != 0 {
			continue // timed by an earlier flush
		}
		s.state = 2 // never sent: nothing to correct
		if s.pos < q {
			s.at, s.state = t0+step*int64(s.pos), 1
		}
	}
}

// applySYNTimes sets the send times of the SYNs flushed since the last
// call, for attempts still waiting for their SYN-ACK with that SYN.
func (w *worker) applySYNTimes() {
	left := w.synQ[:0]
	for _, s := range w.synQ {
		switch s.state {
		case 0:
			left = append(left, s) // still in the batch
			continue
		case 2:
			continue
		}
		en := &w.e.table[s.idx]
		en.acquire()
		if st := en.conn.State; (st == tcp.SynSent || st == tcp.SynRecv) && en.syn == synTimeOf(s.orig) {
			en.syn = synTimeOf(s.at)
		}
		w.release(en, false)
	}
	w.synQ = left
}
