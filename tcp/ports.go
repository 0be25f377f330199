package tcp

import (
	"encoding/binary"
	"math/bits"
	"syscall"
)

// PortSet is a bitmap of busy ports over a range [Lo, Hi], indexed by
// port-Lo. The caller marks a port busy while a connection (or its
// quarantine) holds it.
type PortSet struct {
	Lo, Hi uint16
	bits   []uint64
}

// NewPortSet returns an empty set over [lo, hi].
func NewPortSet(lo, hi uint16) *PortSet {
	return &PortSet{Lo: lo, Hi: hi, bits: make([]uint64, (int(hi)-int(lo))/64+1)}
}

// Busy reports whether port is held.
func (s *PortSet) Busy(port uint16) bool {
	i := int(port - s.Lo)
	return s.bits[i>>6]&(1<<(i&63)) != 0
}

// firstFree is the first free index of start, start+2 ... below end
// (indices are port-Lo), a bitmap word at a time.
func (s *PortSet) firstFree(start, end uint32) (uint32, bool) {
	parity := uint64(0x5555555555555555) << (start & 1)
	for w := start >> 6; w<<6 < end; w++ {
		free := ^s.bits[w] & parity
		if w == start>>6 {
			free &= ^uint64(0) << (start & 63)
		}
		if free != 0 {
			j := w<<6 + uint32(bits.TrailingZeros64(free))
			return j, j < end
		}
	}
	return 0, false
}

// Set marks port held (busy=true) or free.
func (s *PortSet) Set(port uint16, busy bool) {
	i := int(port - s.Lo)
	if busy {
		s.bits[i>>6] |= 1 << (i & 63)
	} else {
		s.bits[i>>6] &^= 1 << (i & 63)
	}
}

// PortPicker selects source ports as Linux's __inet_hash_connect does
// (P1, P2): RFC 6056 Algorithm 4 (double hash) with a keyed hash of
// (saddr, daddr, dport) re-keyed every 10 s, a perturbation table, and a scan
// that tries ports of the parity of Lo first, stepping by 2, then the other
// parity. Not safe for concurrent use: one per worker.
type PortPicker struct {
	k0, k1  uint64
	perturb [1 << 16]uint16 // table_perturb
	rnd     uint64          // xorshift state for the perturbation step
}

// NewPortPicker keys a picker; seed fills the perturbation table as the
// kernel's boot-time random values.
func NewPortPicker(key [16]byte, seed uint64) *PortPicker {
	pp := &PortPicker{k0: binary.LittleEndian.Uint64(key[:8]), k1: binary.LittleEndian.Uint64(key[8:]), rnd: seed | 1}
	for i := range pp.perturb {
		pp.perturb[i] = uint16(pp.next())
	}
	return pp
}

func (pp *PortPicker) next() uint64 {
	pp.rnd ^= pp.rnd << 13
	pp.rnd ^= pp.rnd >> 7
	pp.rnd ^= pp.rnd << 17
	return pp.rnd
}

// Pick returns a free port of set for the connection (src, dst, dport) and
// marks it busy, or EADDRNOTAVAIL when every port is held (P4). src and dst
// are the addresses' bytes, 4 (IPv4) or 16 (IPv6, hashed as
// secure_ipv6_port_ephemeral does: both addresses whole). nowMs feeds the
// 10 s re-keying of the hash.
func (pp *PortPicker) Pick(set *PortSet, src, dst []byte, dport uint16, nowMs int64) (uint16, syscall.Errno) {
	return pp.PickHashed(set, pp.Hash(src, dst, dport, nowMs))
}

// Hash is the keyed hash Pick starts from. It changes only with its
// arguments and every 10 s ([HashEpoch]): a caller that picks many ports
// for the same addresses may keep it for that long and use PickHashed.
func (pp *PortPicker) Hash(src, dst []byte, dport uint16, nowMs int64) uint64 {
	var b [44]byte
	l := copy(b[:16], src)
	l += copy(b[l:l+16], dst)
	binary.LittleEndian.PutUint32(b[l:], uint32(dport))
	binary.LittleEndian.PutUint64(b[l+4:], uint64(HashEpoch(nowMs)))
	return sipHash24(pp.k0, pp.k1, b[:l+12])
}

// HashEpoch is the 10 s period of nowMs that keys Hash.
func HashEpoch(nowMs int64) int64 { return nowMs / 10000 }

// PickHashed is Pick from f, the connection's Hash.
func (pp *PortPicker) PickHashed(set *PortSet, f uint64) (uint16, syscall.Errno) {
	n := uint32(set.Hi) - uint32(set.Lo) + 1
	span := n &^ 1 // P1: rounded down to even
	if span == 0 {
		span = 1
	}
	idx := f & 0xffff
	offset := (uint32(pp.perturb[idx]) + uint32(f>>32)) % span &^ 1
	port, i, ok := pp.scan(set, offset, n)
	if !ok {
		return 0, syscall.EADDRNOTAVAIL
	}
	set.Set(port, true)
	step := max(i, 2*uint32(pp.next()%8)) + 2
	pp.perturb[idx] += uint16(step)
	return port, 0
}

// scan finds the port Pick takes from offset in a range of n ports, and
// its i, the distance the kernel's loop went.
func (pp *PortPicker) scan(set *PortSet, offset, n uint32) (port uint16, i uint32, ok bool) {
	for pass := uint32(0); pass < 2; pass++ {
		// The kernel tries port (off+i) mod n for i = 0, 2, 4 ... < n:
		// from off up to the range's end, then, wrapped, from where that
		// sequence lands up to off. Each run is one parity, found a word
		// of the bitmap at a time.
		off := (offset + pass) % n
		j, ok := set.firstFree(off, n)
		i := j - off
		if !ok {
			wrap := off + (n-off+1)&^1 - n // the first wrapped index
			j, ok = set.firstFree(wrap, off)
			i = j + n - off
		}
		if ok {
			return uint16(uint32(set.Lo) + j), i, true
		}
	}
	return 0, 0, false
}

// Quarantine holds ports closed by FIN until their TIME-WAIT ends, so a new
// connection never reuses a 4-tuple the server may still hold. Because every
// entry waits the same time, a FIFO ring suffices: O(1) push and expiry, no
// allocation after construction.
type Quarantine struct {
	held  []Held
	until []int64
	head  int
	n     int
}

// Held is a quarantine's entry: a port's id and a tag that tells its
// connection from a later one on the same port. An RST ends a TIME-WAIT
// early (E9) and frees the port while its entry stays queued; the port's
// next connection may reach TIME-WAIT before that entry's time comes, and
// must not be freed by it.
type Held struct{ ID, Tag uint32 }

// NewQuarantine holds up to capacity entries.
func NewQuarantine(capacity int) *Quarantine {
	return &Quarantine{held: make([]Held, capacity), until: make([]int64, capacity)}
}

// Push holds id, tagged with tag, until untilMs; false when full (the caller
// decides what a full quarantine means).
func (q *Quarantine) Push(id, tag uint32, untilMs int64) bool {
	if q.n == len(q.held) {
		return false
	}
	i := (q.head + q.n) % len(q.held)
	q.held[i], q.until[i] = Held{id, tag}, untilMs
	q.n++
	return true
}

// Expire appends to out the entries whose time has come at nowMs, removes
// them, and returns out.
func (q *Quarantine) Expire(nowMs int64, out []Held) []Held {
	for q.n > 0 && q.until[q.head] <= nowMs && len(out) < cap(out) {
		out = append(out, q.held[q.head])
		q.head = (q.head + 1) % len(q.held)
		q.n--
	}
	return out
}

// Len is the number of held entries.
func (q *Quarantine) Len() int { return q.n }
