package fastpath

import (
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// Out-of-order response data is kept (Q9), as Linux keeps it in its
// out-of-order queue: a segment lost on the way (or dropped by a full RX
// ring) then costs the server one retransmission, not the rest of the
// response again. Each worker keeps copies in a store of its own, made at
// the first segment it keeps; a connection's kept segments form a list in
// sequence order, from its exState. When the store is full a segment is
// not kept (the server sends it again, as before).

// keptSlots is the number of segments a worker keeps at most.
const keptSlots = 1024

// kept is one kept segment.
type kept struct {
	next int32 // 1 + the connection's next slot by sequence; 0: the last
	seq  tcp.Seq
	n    uint16
}

type keptStore struct {
	data []byte // keptSlots slots of size bytes
	size int
	seg  []kept
	free []int32
}

func newKeptStore(size int) *keptStore {
	s := &keptStore{data: make([]byte, keptSlots*size), size: size, seg: make([]kept, keptSlots), free: make([]int32, keptSlots)}
	for i := range s.free {
		s.free[i] = int32(keptSlots - 1 - i)
	}
	return s
}

func (s *keptStore) bytes(i int32) []byte {
	k := &s.seg[i]
	return s.data[int(i)*s.size : int(i)*s.size+int(k.n)]
}

// keep copies payload, an out-of-order segment at seq, into the list at
// head (1 + its first slot; 0: empty). It reports whether the data is kept
// (now or already).
func (w *worker) keep(head *int32, seq tcp.Seq, payload []byte) bool {
	if w.kept == nil {
		w.kept = newKeptStore(w.e.frameSize)
	}
	s := w.kept
	if len(payload) == 0 || len(payload) > s.size {
		return false
	}
	// Its place: after every kept segment that starts before it.
	prev := int32(-1)
	for i := *head - 1; i >= 0; i = s.seg[i].next - 1 {
		k := &s.seg[i]
		if k.seq == seq && int(k.n) >= len(payload) {
			return true // a retransmission of what is kept
		}
		if !k.seq.LessThan(seq) {
			break
		}
		prev = i
	}
	if len(s.free) == 0 {
		return false
	}
	i := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.seg[i] = kept{seq: seq, n: uint16(len(payload))}
	copy(s.data[int(i)*s.size:], payload)
	if prev < 0 {
		s.seg[i].next, *head = *head, i+1
	} else {
		s.seg[i].next, s.seg[prev].next = s.seg[prev].next, i+1
	}
	w.c[CntKept]++
	return true
}

// keptRange is the contiguous run of kept data that holds seq: the SACK
// block a duplicate ACK reports (its first block is the latest segment's).
func (w *worker) keptRange(head int32, seq tcp.Seq) (l, r tcp.Seq) {
	s := w.kept
	started := false
	for i := head - 1; i >= 0; i = s.seg[i].next - 1 {
		k := &s.seg[i]
		end := k.seq + tcp.Seq(k.n)
		if started && k.seq.LessEq(r) {
			if r.LessThan(end) {
				r = end
			}
			continue
		}
		if started && l.LessEq(seq) && seq.LessThan(r) {
			return l, r
		}
		l, r, started = k.seq, end, true
	}
	return l, r
}

// drainKept feeds the response the kept data RCV.NXT has reached, in
// order, until a hole or the response's end; took says something was.
func (w *worker) drainKept(en *entry, ex *exState) (res l7.Result, took bool) {
	s := w.kept
	res = l7.More
	for ex.kept != 0 && res == l7.More {
		i := ex.kept - 1
		k := s.seg[i]
		off, m, ok := en.conn.TakeKept(k.seq, int(k.n))
		if !ok {
			break
		}
		if m > 0 {
			w.c[CntResponseBytes] += uint64(m)
			res = ex.resp.Feed(w.e.cfg.Request, s.bytes(i)[off:off+m])
			took = true
		}
		ex.kept = k.next
		s.free = append(s.free, i)
	}
	return res, took
}

// dropKept frees the list at head: its request or stream ended.
func (w *worker) dropKept(head *int32) {
	for *head != 0 {
		i := *head - 1
		*head = w.kept.seg[i].next
		w.kept.free = append(w.kept.free, i)
	}
}

// endExchange ends ex's request: its outcome is counted (or it is cut
// short), and what it kept is freed.
func (w *worker) endExchange(ex *exState) {
	ex.on = false
	if ex.kept != 0 {
		w.dropKept(&ex.kept)
	}
}
