package tcp

// Wheel is a hashed timer wheel (Varghese & Lauck scheme 6) for up to
// Capacity timers identified by dense ids 0..Capacity-1 (the caller's table
// indices). Schedule and Cancel are O(1); timers live in intrusive
// doubly-linked slot lists kept in flat arrays, so there is no allocation per
// timer and no pointer for the garbage collector to chase. A timer further
// away than one revolution stays in its slot and is skipped until its time.
// Advance is driven explicitly with the current time: the wheel has no clock.
type Wheel struct {
	tickMs   int64
	mask     int64
	cur      int64 // next tick to process
	heads    []int32
	next     []int32
	prev     []int32
	deadline []int64
	slotOf   []int32 // -1 when not scheduled
	count    int
}

const nilIdx = -1

// NewWheel makes a wheel with slots (a power of two) of tickMs each, for ids
// below capacity, starting at nowMs.
func NewWheel(capacity, slots int, tickMs, nowMs int64) *Wheel {
	if slots&(slots-1) != 0 || slots == 0 {
		panic("tcp: wheel slots must be a power of two")
	}
	w := &Wheel{tickMs: tickMs, mask: int64(slots - 1), cur: nowMs / tickMs,
		heads: make([]int32, slots), next: make([]int32, capacity), prev: make([]int32, capacity),
		deadline: make([]int64, capacity), slotOf: make([]int32, capacity)}
	for i := range w.heads {
		w.heads[i] = nilIdx
	}
	for i := range w.slotOf {
		w.slotOf[i] = nilIdx
	}
	return w
}

// Len is the number of scheduled timers.
func (w *Wheel) Len() int { return w.count }

// Scheduled reports whether id has a pending timer.
func (w *Wheel) Scheduled(id uint32) bool { return w.slotOf[id] != nilIdx }

// Schedule (re)arms id to fire at atMs.
func (w *Wheel) Schedule(id uint32, atMs int64) {
	if w.slotOf[id] != nilIdx {
		w.Cancel(id)
	}
	tick := atMs / w.tickMs
	if atMs%w.tickMs != 0 {
		tick++ // never fire early
	}
	if tick < w.cur {
		tick = w.cur
	}
	s := int32(tick & w.mask)
	i := int32(id)
	w.deadline[i] = atMs
	w.slotOf[i] = s
	w.prev[i] = nilIdx
	w.next[i] = w.heads[s]
	if h := w.heads[s]; h != nilIdx {
		w.prev[h] = i
	}
	w.heads[s] = i
	w.count++
}

// Cancel disarms id; a no-op when not scheduled.
func (w *Wheel) Cancel(id uint32) {
	i := int32(id)
	s := w.slotOf[i]
	if s == nilIdx {
		return
	}
	if p := w.prev[i]; p != nilIdx {
		w.next[p] = w.next[i]
	} else {
		w.heads[s] = w.next[i]
	}
	if n := w.next[i]; n != nilIdx {
		w.prev[n] = w.prev[i]
	}
	w.slotOf[i] = nilIdx
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
		s := int32(w.cur & w.mask)
		for i := w.heads[s]; i != nilIdx; {
			nx := w.next[i]
			if w.deadline[i] <= nowMs {
				if len(out) == cap(out) {
					return out // resume at this tick next time
				}
				w.Cancel(uint32(i))
				out = append(out, uint32(i))
			}
			i = nx
		}
		if w.cur == end {
			break // the current tick may still receive timers due later in it
		}
	}
	return out
}
