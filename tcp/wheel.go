package tcp

// Wheel is a hashed timer wheel (Varghese & Lauck scheme 6) for up to
// Capacity timers identified by dense ids 0..Capacity-1 (the caller's table
// indices). Schedule and Cancel are O(1); timers live in intrusive
// doubly-linked slot lists kept in flat arrays (12 bytes a timer), so there
// is no allocation per timer and no pointer for the garbage collector to
// chase. A timer further
// away than one revolution stays in its slot and is skipped until its time.
// Advance is driven explicitly with the current time: the wheel has no clock.
type Wheel struct {
	tickMs int64
	mask   int64
	cur    int64 // next tick to process
	base   int64 // the ms due values count from
	// Links hold id+1 (0 ends a list), due holds deadline-base+1 (0: not
	// scheduled): a timer costs 12 bytes, and a new wheel is all zeros,
	// so memory nobody schedules on is never touched (the kernel maps it
	// on first write).
	heads []uint32
	next  []uint32
	prev  []uint32
	due   []uint32
	count int
}

// WheelTimerBytes is the memory of one timer of a Wheel's capacity.
const WheelTimerBytes = 12

// NewWheel makes a wheel with slots (a power of two) of tickMs each, for ids
// below capacity, starting at nowMs. Deadlines are kept as 32-bit
// milliseconds from nowMs: a wheel serves 49 days.
func NewWheel(capacity, slots int, tickMs, nowMs int64) *Wheel {
	if slots&(slots-1) != 0 || slots == 0 {
		panic("tcp: wheel slots must be a power of two")
	}
	cur := nowMs / tickMs
	return &Wheel{tickMs: tickMs, mask: int64(slots - 1), cur: cur, base: cur * tickMs,
		heads: make([]uint32, slots), next: make([]uint32, capacity), prev: make([]uint32, capacity),
		due: make([]uint32, capacity)}
}

// Len is the number of scheduled timers.
func (w *Wheel) Len() int { return w.count }

// Scheduled reports whether id has a pending timer.
func (w *Wheel) Scheduled(id uint32) bool { return w.due[id] != 0 }

// deadline is id's deadline in ms (id scheduled).
func (w *Wheel) deadline(id uint32) int64 { return w.base + int64(w.due[id]) - 1 }

// slot is where a timer due at atMs lives: its tick, rounded up so that it
// never fires early.
func (w *Wheel) slot(atMs int64) uint32 { return uint32((atMs + w.tickMs - 1) / w.tickMs & w.mask) }

// Schedule (re)arms id to fire at atMs.
func (w *Wheel) Schedule(id uint32, atMs int64) {
	if w.due[id] != 0 {
		w.Cancel(id)
	}
	// A deadline already past fires at the next tick processed; it is
	// stored as that tick's start, so its slot follows from it.
	atMs = max(atMs, w.cur*w.tickMs)
	s := w.slot(atMs)
	w.due[id] = uint32(atMs-w.base) + 1
	w.prev[id] = 0
	h := w.heads[s]
	w.next[id] = h
	if h != 0 {
		w.prev[h-1] = id + 1
	}
	w.heads[s] = id + 1
	w.count++
}

// Cancel disarms id; a no-op when not scheduled.
func (w *Wheel) Cancel(id uint32) {
	if w.due[id] == 0 {
		return
	}
	p, n := w.prev[id], w.next[id]
	if p != 0 {
		w.next[p-1] = n
	} else {
		w.heads[w.slot(w.deadline(id))] = n
	}
	if n != 0 {
		w.prev[n-1] = p
	}
	w.due[id] = 0
	w.count--
}

// Advance moves the wheel to nowMs and appends the ids of expired timers to
// out (up to its capacity), disarming them. When out fills up, the remaining
// expiries are returned by the next call: callers process timers in batches.
func (w *Wheel) Advance(nowMs int64, out []uint32) []uint32 {
	end := nowMs / w.tickMs
	if end-w.cur > w.mask+1 {
		// Slept for more than a revolution: every slot is due once.
		w.cur = end - w.mask - 1
	}
	for ; w.cur <= end; w.cur++ {
		for i := w.heads[w.cur&w.mask]; i != 0; {
			id := i - 1
			i = w.next[id]
			if w.deadline(id) <= nowMs {
				if len(out) == cap(out) {
					return out // resume at this tick next time
				}
				w.Cancel(id)
				out = append(out, id)
			}
		}
		if w.cur == end {
			break // the current tick may still receive timers due later in it
		}
	}
	return out
}
