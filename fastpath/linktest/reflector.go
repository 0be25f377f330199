package linktest

import (
	"encoding/binary"

	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// Reflector is a link with a peer that costs as little as moving frame
// descriptors, for measuring the engine alone (its per-core ceiling): a
// SYN (IPv4) becomes its SYN-ACK in the same frame, which is then received; every
// other frame (ACKs, RSTs) is taken and freed. Nothing is copied, locked or
// allocated. It serves one worker, and it is no checker: use [Server] to
// test behaviour.
//
// Its own work per handshake, turning the SYN into its SYN-ACK (about 30 ns:
// a look at the flags byte, a copy of the frame and one checksum), is part
// of what a benchmark over it measures, on the worker's core.
type Reflector struct {
	umem []byte
	free []uint64   // frames free for Alloc
	rx   []xsk.Desc // SYN-ACKs waiting for Receive (a ring of len(rx))
	head int        // next to receive
	n    int        // waiting
	// Answered counts SYNs answered; Taken the other frames.
	Answered, Taken uint64
}

// NewReflector returns a reflector with [Frames] frames.
func NewReflector() *Reflector {
	r := &Reflector{umem: make([]byte, Frames*frameSize), rx: make([]xsk.Desc, Frames)}
	r.free = make([]uint64, 0, Frames)
	for i := range Frames {
		r.free = append(r.free, uint64(i)*frameSize)
	}
	return r
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

// Transmit answers each SYN with its SYN-ACK, built in the SYN's own frame
// behind the receive headroom (where an arrival stamp would go), and takes
// every other frame.
func (r *Reflector) Transmit(descs []xsk.Desc) int {
	for _, d := range descs {
		if !r.answer(d.Addr, r.umem[d.Addr:d.Addr+uint64(d.Len)]) {
			r.free = append(r.free, d.Addr)
			r.Taken++
		}
	}
	return len(descs)
}

// answer turns f, at addr, into its SYN-ACK if it is an IPv4 SYN; false
// for anything else. It looks at the flags byte alone to tell (an ACK or
// an RST costs nothing more), and makes the SYN-ACK as a peer's fast path
// would: the SYN's headers with addresses and ports swapped (which leaves
// the IPv4 header checksum as it was), its own sequence numbers, the SYN's
// options with the timestamp echoed, and the TCP checksum summed once.
func (r *Reflector) answer(addr uint64, f []byte) bool {
	const eth, ip = tcp.EthHdrLen, tcp.EthHdrLen + tcp.IPv4HdrLen
	if r.n == len(r.rx) || len(f) < ip+20 || f[12] != 0x08 || f[13] != 0x00 || f[eth] != 0x45 || f[eth+9] != tcp.ProtoTCP ||
		tcp.Flags(f[ip+13]) != tcp.FlagSYN {
		return false
	}
	at := addr + headroom
	out := r.umem[at : at+uint64(len(f))]
	copy(out, f)
	copy(out[0:6], f[6:12])
	copy(out[6:12], f[0:6])
	copy(out[eth+12:eth+16], f[eth+16:eth+20])
	copy(out[eth+16:eth+20], f[eth+12:eth+16])
	end := eth + int(binary.BigEndian.Uint16(f[eth+2:])) // past any Ethernet padding
	if end < ip+20 || end > len(f) {
		return false
	}
	th, ot := f[ip:end], out[ip:end]
	copy(ot[0:2], th[2:4])
	copy(ot[2:4], th[0:2])
	binary.BigEndian.PutUint32(ot[4:], 0x1000)
	binary.BigEndian.PutUint32(ot[8:], binary.BigEndian.Uint32(th[4:])+1)
	ot[13] = byte(tcp.FlagSYN | tcp.FlagACK)
	binary.BigEndian.PutUint16(ot[14:], 65160)
	ot[16], ot[17] = 0, 0
	hl := min(int(th[12]>>4)*4, len(ot))
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
	var src, dst [4]byte
	copy(src[:], out[eth+12:eth+16])
	copy(dst[:], out[eth+16:eth+20])
	binary.BigEndian.PutUint16(ot[16:], tcp.Fold(tcp.Sum(ot, tcp.PseudoSum4(src, dst, tcp.ProtoTCP, uint16(len(ot))))))
	r.rx[(r.head+r.n)%len(r.rx)] = xsk.Desc{Addr: at, Len: uint32(len(out))}
	r.n++
	r.Answered++
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
