package linktest

import (
	"encoding/binary"

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
//   - data gets [Reflector.Response] with FIN, when set (request mode).
//
// Every other frame (ACKs, RSTs) is taken and freed. Nothing is locked or
// allocated. It serves one worker, and it is no checker: use [Server] to
// test behaviour.
//
// Its own work, on the worker's core, is part of what a benchmark over it
// measures: per SYN a look at the flags byte, a copy of the headers and
// one checksum of them (about 30 ns); per response also a copy of its
// bytes, whose sum is computed once.
type Reflector struct {
	umem []byte
	free []uint64   // frames free for Alloc
	rx   []xsk.Desc // answers waiting for Receive (a ring of len(rx))
	head int        // next to receive
	n    int        // waiting
	resp []byte     // Response
	rsum uint32     // its sum, for the TCP checksum
	// Answered counts SYNs answered, Finished FINs answered, Responded
	// requests answered; Taken the other frames.
	Answered, Finished, Responded, Taken uint64
}

// reflectorISS is the reflector's initial sequence number, for every
// connection.
const reflectorISS = 0x1000

// NewReflector returns a reflector with [Frames] frames.
func NewReflector() *Reflector {
	r := &Reflector{umem: make([]byte, Frames*frameSize), rx: make([]xsk.Desc, Frames)}
	r.free = make([]uint64, 0, Frames)
	for i := range Frames {
		r.free = append(r.free, uint64(i)*frameSize)
	}
	return r
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

// Receive hands out the SYN-ACKs made since the last call.
func (r *Reflector) Receive(descs []xsk.Desc) int {
	k := 0
	for ; k < len(descs) && r.n > 0; k++ {
		descs[k] = r.rx[r.head]
		r.head = (r.head + 1) % len(r.rx)
		r.n--
	}
	return k
}

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

// Transmit answers each question and takes every other frame.
func (r *Reflector) Transmit(descs []xsk.Desc) int {
	for _, d := range descs {
		if !r.answer(d.Addr, r.umem[d.Addr:d.Addr+uint64(d.Len)]) {
			r.free = append(r.free, d.Addr)
			r.Taken++
		}
	}
	return len(descs)
}

// answer builds the answer to f, at addr, if it asks for one; false for
// anything else. It tells by the flags byte (an ACK or an RST costs
// nothing more), and answers as a peer's fast path would: the question's
// headers with addresses and ports swapped, its own sequence numbers, the
// question's options with the timestamp echoed (a SYN's MSS, SACK and
// window scale stay as they came), and the TCP checksum summed once.
func (r *Reflector) answer(addr uint64, f []byte) bool {
	const eth, ip = tcp.EthHdrLen, tcp.EthHdrLen + tcp.IPv4HdrLen
	if r.n == len(r.rx) || len(f) < ip+20 || f[12] != 0x08 || f[13] != 0x00 || f[eth] != 0x45 || f[eth+9] != tcp.ProtoTCP {
		return false
	}
	end := eth + int(binary.BigEndian.Uint16(f[eth+2:])) // past any Ethernet padding
	if end < ip+20 || end > len(f) {
		return false
	}
	th := f[ip:end]
	hl := int(th[12]>>4) * 4
	if hl < 20 || hl > len(th) {
		return false
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
		return false
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
		r.Responded++
	} else if flags&tcp.FlagSYN != 0 {
		r.Answered++
	} else {
		r.Finished++
	}
	binary.BigEndian.PutUint16(ot[16:], tcp.Fold(tcp.Sum(ot, sum)))
	r.rx[(r.head+r.n)%len(r.rx)] = xsk.Desc{Addr: at, Len: uint32(n)}
	r.n++
	return true
}

// Kick sends nothing: Transmit answered already.
func (r *Reflector) Kick() error { return nil }

// Complete reclaims nothing: Transmit took every frame.
func (r *Reflector) Complete() int { return 0 }

// Poll returns at once.
func (r *Reflector) Poll(int) bool { return r.n > 0 }

// Err is nil: the reflector does not fail.
func (r *Reflector) Err() error { return nil }
