package fastpath

import (
	"runtime"
	"sync/atomic"

	"github.com/xdpconnect/xdpconnect/tcp"
)

// entryBytes is the size of an entry (checked by a test): with the 12
// bytes of its timer in the owner's wheel, a connection costs 64 bytes.
const entryBytes = 52

// connBytes is what a connection slot costs: its entry and its timer.
const connBytes = entryBytes + tcp.WheelTimerBytes

// entry is one connection slot: tcp.Conn's 44 bytes and 8 of our own.
type entry struct {
	// st mirrors conn.State for lock-free peeks; busyBit marks the entry
	// taken by one worker, which alone may touch the other fields;
	// dialedBit marks an entry opened by Engine.Dial; openBit marks a
	// connection that was established and has not ended yet.
	st   atomic.Uint32
	syn  synTime // send time of the latest SYN
	conn tcp.Conn
}

const (
	stateMask = 0xff
	busyBit   = 1 << 8
	dialedBit = 1 << 9 // opened by Engine.Dial: report its outcome
	openBit   = 1 << 10
	// downBit: a SYN of the attempt was queued while the interface was
	// down (it left, late, when the link came back); lastDownBit: the
	// latest one was. Their send times are not known, so no RTT sample is
	// taken from them (Karn).
	downBit     = 1 << 11
	lastDownBit = 1 << 12
	// quarBit: the port waits in its owner's TIME-WAIT quarantine. An
	// entry in TIME-WAIT is examined again when a second worker's
	// notice, a retransmitted FIN or its timer finds it; it must be
	// queued once, or the quarantine fills with doubles and frees ports
	// at once (P5).
	quarBit  = 1 << 13
	flagBits = dialedBit | openBit | downBit | lastDownBit | quarBit
)

// synTime is an engine time in units of 32 ns, mod 2^32: 137 s of range,
// more than the age of the latest SYN of any attempt still in SYN-SENT
// (at most the largest RTO, 120 s), in 4 bytes instead of 8.
type synTime uint32

// synTimeOf is ns as a synTime.
func synTimeOf(ns int64) synTime { return synTime(ns >> 5) }

// ns is t in engine nanoseconds (rounded down to 32 ns), seen from nowNs,
// which is less than 136 s after t, or up to 1 s before it: a time taken
// from an XDP arrival stamp may be later than the loop's clock (a request
// starts at the SYN-ACK's arrival, and its timer is armed in that loop).
func (t synTime) ns(nowNs int64) int64 {
	n := nowNs >> 5
	back := uint32(n) - uint32(t)
	if ahead := -back; ahead <= synTimeAhead {
		return (n + int64(ahead)) << 5
	}
	return (n - int64(back)) << 5
}

// synTimeAhead is how far (in 32 ns units, 1 s) a synTime may lie after
// the clock it is read with.
const synTimeAhead = 1e9 >> 5

// acquire takes the entry and returns its state. Contention only happens
// when a SYN-ACK on one queue races the owner's timer for the same entry:
// the holder is processing one segment, so spinning is brief.
func (e *entry) acquire() tcp.State {
	for spins := 0; ; spins++ {
		v := e.st.Load()
		if v&busyBit == 0 && e.st.CompareAndSwap(v, v|busyBit) {
			return tcp.State(v & stateMask)
		}
		if spins > 64 {
			runtime.Gosched()
		}
	}
}

// release publishes the entry's new state, with the flags in clear
// cleared, and lets others take it.
func (e *entry) release(clear uint32) { e.st.Store(uint32(e.conn.State) | e.st.Load()&flagBits&^clear) }

// setFlag sets or clears a flag bit of the entry, which the caller has
// taken. It stores only a change: an atomic store is a locked
// instruction, and most calls find the bit as they want it.
func (e *entry) setFlag(bit uint32, on bool) {
	v := e.st.Load()
	nv := v &^ bit
	if on {
		nv |= bit
	}
	if nv != v {
		e.st.Store(nv)
	}
}

// peek is the entry's state without taking it.
func (e *entry) peek() tcp.State { return tcp.State(e.st.Load() & stateMask) }

// dialed says Engine.Dial opened the entry.
func (e *entry) dialed() bool { return e.st.Load()&dialedBit != 0 }

// markSYN records whether the SYN being queued goes into a down link: the
// caller has taken the entry; first starts a new attempt. It stores only
// when a bit changes: with the link up, never after the first attempt.
func (e *entry) markSYN(down, first bool) {
	v := e.st.Load()
	nv := v
	if first {
		nv &^= downBit
	}
	if down {
		nv |= downBit | lastDownBit
	} else {
		nv &^= lastDownBit
	}
	if nv != v {
		e.st.Store(nv)
	}
}

// setDialed marks the entry, which the caller has taken, as Dial's or not.
func (e *entry) setDialed(on bool) { e.setFlag(dialedBit, on) }

// spsc is a single-producer single-consumer ring of entry indices (with
// flags in the top bit) from one worker to the entry's owner.
type spsc struct {
	head atomic.Uint64 // consumer
	_    [56]byte
	tail atomic.Uint64 // producer
	_    [56]byte
	buf  []uint32
	mask uint64
}

func newSPSC(size int) *spsc { return &spsc{buf: make([]uint32, size), mask: uint64(size - 1)} }

// push returns false when full; the owner's timer then catches up lazily.
func (q *spsc) push(v uint32) bool {
	t := q.tail.Load()
	if t-q.head.Load() == uint64(len(q.buf)) {
		return false
	}
	q.buf[t&q.mask] = v
	q.tail.Store(t + 1)
	return true
}

// drain appends up to cap(out)-len(out) values to out.
func (q *spsc) drain(out []uint32) []uint32 {
	h, t := q.head.Load(), q.tail.Load()
	for h < t && len(out) < cap(out) {
		out = append(out, q.buf[h&q.mask])
		h++
	}
	q.head.Store(h)
	return out
}

// msgFastRetransmit asks the owner to re-arm the SYN timer to TCP_TIMEOUT_MIN (R5).
const msgFastRetransmit = 1 << 31

// slot is a connection's place in the table: the pair (target, source
// address) and the source port, laid out as pair*ports + (port - PortLo).
// Only the layout functions below know that arithmetic.
type slot uint32

// slotOf is the slot of a pair's port.
func (e *Engine) slotOf(pair int, port uint16) slot {
	return slot(pair*e.nPorts + int(port-e.cfg.PortLo))
}

// slotAt is the slot of a pair's port offset (port - PortLo).
func (e *Engine) slotAt(pair, off int) slot { return slot(pair*e.nPorts + off) }

// pairOf is the slot's pair (target index * sources + source index).
func (e *Engine) pairOf(s slot) int { return int(s) / e.nPorts }

// offOf is the slot's port offset from PortLo.
func (e *Engine) offOf(s slot) int { return int(s) % e.nPorts }

// portOf is the slot's source port.
func (e *Engine) portOf(s slot) uint16 { return e.cfg.PortLo + uint16(e.offOf(s)) }
