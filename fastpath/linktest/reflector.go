package linktest

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"

	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// Reflector is a link with a peer that costs as little as moving frame
// descriptors, for measuring the engine alone (its per-core ceiling). It
// answers IPv4 segments as a stateless server would, each answer built
// behind the receive headroom of the frame that brought its question,
// which is then received:
//   - a SYN gets its SYN-ACK;
//   - a FIN gets FIN|ACK when it acknowledges no more than our SYN, else
//     (our FIN went with a response) an ACK;
//   - data gets [Reflector.SetResponse]'s response with FIN, when set
//     (request mode).
//
// Every other frame (ACKs, RSTs) is taken and freed. Nothing is locked or
// allocated. It serves one worker, and it is no checker: use [Server] to
// test behaviour.
//
// Frames move as they do through an AF_XDP socket's rings: transmitted
// ones through a TX ring to the peer, answers through an RX ring to the
// worker, taken ones back through a completion ring. The peer runs in
// Transmit, on the worker's core, unless [Reflector.Start] gave it a
// goroutine (and, with a core free, a core) of its own, as a peer across a
// link has. On the worker's core its work is part of what a benchmark
// over it measures: per SYN a look at the flags byte, a copy of the
// headers and one checksum of them; per response also a copy of its
// bytes, whose sum is computed once.
type Reflector struct {
	umem []byte
	free []uint64 // frames free for Alloc (the worker's)
	tx   ring[xsk.Desc]
	rx   ring[xsk.Desc]
	comp ring[uint64]
	resp []byte // the response, when set
	rsum uint32 // its sum, for the TCP checksum
	// stop ends the peer's goroutine; done says it ended.
	stop atomic.Bool
	done chan struct{}
	// Answered counts SYNs answered, Finished FINs answered, Responded
	// requests answered; Taken the other frames. Read them after Stop
	// when the peer has a goroutine.
	Answered, Finished, Responded, Taken uint64
	// scratch for the peer
	in, out []xsk.Desc
	took    []uint64
}

// reflectorISS is the reflector's initial sequence number, for every
// connection.
const reflectorISS = 0x1000

// reflectorBatch is how many frames the peer takes from its TX ring at a
// time.
const reflectorBatch = 256

// NewReflector returns a reflector with [Frames] frames.
func NewReflector() *Reflector {
	r := &Reflector{umem: make([]byte, Frames*frameSize), tx: newRing[xsk.Desc](Frames), rx: newRing[xsk.Desc](Frames),
		comp: newRing[uint64](Frames), in: make([]xsk.Desc, reflectorBatch), out: make([]xsk.Desc, 0, reflectorBatch),
		took: make([]uint64, 0, reflectorBatch)}
	r.free = make([]uint64, 0, Frames)
	for i := range Frames {
		r.free = append(r.free, uint64(i)*frameSize)
	}
	return r
}

// Start gives the peer a goroutine of its own, which answers until Stop.
func (r *Reflector) Start() {
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		for idle := 0; !r.stop.Load(); {
			if r.reflect() > 0 {
				idle = 0
			} else if idle++; idle > 64 {
				runtime.Gosched()
			}
		}
	}()
}

// Stop ends the goroutine Start began, once it is done with what it took.
func (r *Reflector) Stop() {
	r.stop.Store(true)
	<-r.done
}

// reflect answers what waits in the TX ring and returns how many frames it
// took.
func (r *Reflector) reflect() int {
	n := r.tx.pop(r.in)
	r.out, r.took = r.out[:0], r.took[:0]
	for _, d := range r.in[:n] {
		if a, ok := r.answer(d.Addr, r.umem[d.Addr:d.Addr+uint64(d.Len)]); ok {
			r.out = append(r.out, a)
		} else {
			r.took = append(r.took, d.Addr)
		}
	}
	k := r.rx.push(r.out)
	for _, a := range r.out[:k] {
		r.count(a)
	}
	for _, a := range r.out[k:] {
		// No room for the answer: lost, its frame freed (counted taken).
		r.took = append(r.took, a.Addr&^(frameSize-1))
	}
	r.Taken += uint64(len(r.took))
	if r.done == nil {
		// On the worker's goroutine: straight back to the free list, where
		// the next Alloc finds them still in cache (through the ring, 10 %
		// fewer handshakes a second).
		r.free = append(r.free, r.took...)
		return n
	}
	for len(r.took) > 0 { // the ring has room for every frame there is
		r.took = r.took[r.comp.push(r.took):]
	}
	return n
}

// count counts an answer that went out, by what it answered: a SYN-ACK a
// SYN, a response (PSH) a request, anything else a FIN.
func (r *Reflector) count(a xsk.Desc) {
	switch f := tcp.Flags(r.umem[a.Addr+tcp.EthHdrLen+tcp.IPv4HdrLen+13]); {
	case f&tcp.FlagSYN != 0:
		r.Answered++
	case f&tcp.FlagPSH != 0:
		r.Responded++
	default:
		r.Finished++
	}
}

// SetResponse makes the reflector answer every segment with data with
// resp and FIN, as a server closing after one response does. resp must
// fit a frame behind the headers (at most 1500 bytes).
func (r *Reflector) SetResponse(resp []byte) {
	r.resp = append([]byte(nil), resp...)
	r.rsum = tcp.Sum(r.resp, 0)
}

// UMEM is the frame memory.
func (r *Reflector) UMEM() []byte { return r.umem }

// FrameSize is the size of a frame buffer.
func (r *Reflector) FrameSize() int { return frameSize }

// Receive hands out the answers made since the last call.
func (r *Reflector) Receive(descs []xsk.Desc) int { return r.rx.pop(descs) }

// Recycle frees received frames.
func (r *Reflector) Recycle(descs []xsk.Desc) {
	for _, d := range descs {
		r.free = append(r.free, d.Addr&^(frameSize-1))
	}
}

// Alloc pops free frames.
func (r *Reflector) Alloc(addrs []uint64) int {
	k := min(len(addrs), len(r.free))
	copy(addrs, r.free[len(r.free)-k:])
	r.free = r.free[:len(r.free)-k]
	return k
}

// Free returns frames.
func (r *Reflector) Free(addrs []uint64) { r.free = append(r.free, addrs...) }

// Transmit puts frames in the TX ring, and answers them at once unless the
// peer has a goroutine of its own.
func (r *Reflector) Transmit(descs []xsk.Desc) int {
	k := r.tx.push(descs)
	if r.done == nil {
		for r.reflect() > 0 {
		}
	}
	return k
}

// answer builds the answer to f, at addr, if it asks for one, and returns
// it; false for anything else. It tells by the flags byte (an ACK or an RST costs
// nothing more), and answers as a peer's fast path would: the question's
// headers with addresses and ports swapped, its own sequence numbers, the
// question's options with the timestamp echoed (a SYN's MSS, SACK and
// window scale stay as they came), and the TCP checksum summed once.
func (r *Reflector) answer(addr uint64, f []byte) (xsk.Desc, bool) {
	const eth, ip = tcp.EthHdrLen, tcp.EthHdrLen + tcp.IPv4HdrLen
	if len(f) < ip+20 || f[12] != 0x08 || f[13] != 0x00 || f[eth] != 0x45 || f[eth+9] != tcp.ProtoTCP {
		return xsk.Desc{}, false
	}
	end := eth + int(binary.BigEndian.Uint16(f[eth+2:])) // past any Ethernet padding
	if end < ip+20 || end > len(f) {
		return xsk.Desc{}, false
	}
	th := f[ip:end]
	hl := int(th[12]>>4) * 4
	if hl < 20 || hl > len(th) {
		return xsk.Desc{}, false
	}
	seq, ack := binary.BigEndian.Uint32(th[4:]), binary.BigEndian.Uint32(th[8:])
	var flags tcp.Flags
	var body []byte
	var mySeq, theirEnd uint32
	switch fl := tcp.Flags(th[13]); {
	case fl == tcp.FlagSYN:
		flags, mySeq, theirEnd = tcp.FlagSYN|tcp.FlagACK, reflectorISS, seq+1
	case fl&(tcp.FlagFIN|tcp.FlagRST|tcp.FlagSYN) == tcp.FlagFIN:
		flags, mySeq, theirEnd = tcp.FlagACK, ack, seq+uint32(len(th)-hl)+1
		if ack == reflectorISS+1 {
			flags |= tcp.FlagFIN // ours not sent yet: it goes now
		}
	case fl&(tcp.FlagRST|tcp.FlagSYN) == 0 && len(th) > hl && r.resp != nil && ack == reflectorISS+1:
		flags, mySeq, theirEnd = tcp.FlagFIN|tcp.FlagPSH|tcp.FlagACK, ack, seq+uint32(len(th)-hl)
		body = r.resp
	default:
		return xsk.Desc{}, false
	}
	// The answer's headers go behind the headroom, clear of the question's
	// headers (at most 134 bytes), which are read while they are written.
	at := addr + headroom
	n := ip + hl + len(body)
	out := r.umem[at : at+uint64(n)]
	copy(out[0:6], f[6:12])
	copy(out[6:12], f[0:6])
	copy(out[12:ip], f[12:ip])
	copy(out[eth+12:eth+16], f[eth+16:eth+20])
	copy(out[eth+16:eth+20], f[eth+12:eth+16])
	ot := out[ip : ip+hl]
	copy(ot[0:2], th[2:4])
	copy(ot[2:4], th[0:2])
	binary.BigEndian.PutUint32(ot[4:], mySeq)
	binary.BigEndian.PutUint32(ot[8:], theirEnd)
	ot[12] = th[12]
	ot[13] = byte(flags)
	binary.BigEndian.PutUint16(ot[14:], 65160)
	ot[16], ot[17], ot[18], ot[19] = 0, 0, 0, 0
	copy(ot[20:], th[20:hl])
	for o := 20; o < hl; {
		switch k := ot[o]; {
		case k == 0:
			o = hl
		case k == 1:
			o++
		case o+1 >= hl || int(ot[o+1]) < 2:
			o = hl
		default:
			if k == 8 && ot[o+1] == 10 && o+10 <= hl { // timestamps: echo theirs, send 1
				copy(ot[o+6:o+10], th[o+2:o+6])
				binary.BigEndian.PutUint32(ot[o+2:], 1)
			}
			o += int(ot[o+1])
		}
	}
	sum := tcp.PseudoSum4([4]byte(out[eth+12:eth+16]), [4]byte(out[eth+16:eth+20]), tcp.ProtoTCP, uint16(hl+len(body)))
	if n != end {
		// Swapping the addresses left the IP header's checksum as it was;
		// a new length does not.
		iph := out[eth:ip]
		binary.BigEndian.PutUint16(iph[2:], uint16(n-eth))
		iph[10], iph[11] = 0, 0
		binary.BigEndian.PutUint16(iph[10:], tcp.Checksum(iph))
	}
	if body != nil {
		copy(out[ip+hl:], body)
		sum += r.rsum
	}
	binary.BigEndian.PutUint16(ot[16:], tcp.Fold(tcp.Sum(ot, sum)))
	return xsk.Desc{Addr: at, Len: uint32(n)}, true
}

// Kick sends nothing: the peer takes from the TX ring on its own.
func (r *Reflector) Kick() error { return nil }

// Complete frees the frames the peer took.
func (r *Reflector) Complete() int {
	n := 0
	for {
		k := len(r.free)
		m := r.comp.pop(r.free[k:cap(r.free)])
		r.free = r.free[:k+m]
		if n += m; m == 0 {
			return n
		}
	}
}

// Poll says whether answers wait.
func (r *Reflector) Poll(int) bool { return r.rx.len() > 0 }

// Err is nil: the reflector does not fail.
func (r *Reflector) Err() error { return nil }

// ring is a single-producer single-consumer ring, as an AF_XDP socket's
// rings are: the producer and the consumer each own an index, published a
// batch at a time.
type ring[T any] struct {
	prod atomic.Uint64
	_    [56]byte
	cons atomic.Uint64
	_    [56]byte
	buf  []T
	mask uint64
}

func newRing[T any](size int) ring[T] { return ring[T]{buf: make([]T, size), mask: uint64(size - 1)} }

// push adds what fits of vs and returns how many.
func (q *ring[T]) push(vs []T) int {
	p := q.prod.Load()
	n := min(uint64(len(vs)), uint64(len(q.buf))-(p-q.cons.Load()))
	for i := range n {
		q.buf[(p+i)&q.mask] = vs[i]
	}
	q.prod.Store(p + n)
	return int(n)
}

// pop takes up to len(out) values into out and returns how many.
func (q *ring[T]) pop(out []T) int {
	c := q.cons.Load()
	n := min(uint64(len(out)), q.prod.Load()-c)
	for i := range n {
		out[i] = q.buf[(c+i)&q.mask]
	}
	q.cons.Store(c + n)
	return int(n)
}

func (q *ring[T]) len() int { return int(q.prod.Load() - q.cons.Load()) }
