package linktest

import (
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
// Its own work per handshake, parsing the SYN and building the SYN-ACK, is
// part of what a benchmark over it measures, on the worker's core.
type Reflector struct {
	umem   []byte
	free   []uint64   // frames free for Alloc
	rx     []xsk.Desc // SYN-ACKs waiting for Receive (a ring of len(rx))
	head   int        // next to receive
	n      int        // waiting
	pk     tcp.Packet
	params tcp.Params
	// Answered counts SYNs answered; Taken the other frames.
	Answered, Taken uint64
}

// NewReflector returns a reflector with [Frames] frames.
func NewReflector() *Reflector {
	r := &Reflector{umem: make([]byte, Frames*frameSize), rx: make([]xsk.Desc, Frames), params: tcp.DefaultParams(1500, false)}
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
	pk := &r.pk
	for _, d := range descs {
		f := r.umem[d.Addr : d.Addr+uint64(d.Len)]
		if tcp.Parse(f, pk) != tcp.KindTCP || pk.V6 || pk.Seg.Flags != tcp.FlagSYN || r.n == len(r.rx) {
			r.free = append(r.free, d.Addr)
			r.Taken++
			continue
		}
		p := tcp.Path{DstMAC: pk.SrcMAC, Src: pk.Dst, Dst: pk.Src, SrcPort: pk.DstPort, DstPort: pk.SrcPort}
		copy(p.SrcMAC[:], f[0:6])
		reply := tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 0x1000, Ack: pk.Seg.Seq + 1, Window: 65160,
			SYNOpts: &r.params, MSS: 1460, TSVal: 1, TSEcr: pk.Seg.Opts.TSVal}
		at := d.Addr + headroom
		n := tcp.Build(r.umem[at:d.Addr+frameSize], &p, &reply)
		r.rx[(r.head+r.n)%len(r.rx)] = xsk.Desc{Addr: at, Len: uint32(n)}
		r.n++
		r.Answered++
	}
	return len(descs)
}

// Kick sends nothing: Transmit answered already.
func (r *Reflector) Kick() error { return nil }

// Complete reclaims nothing: Transmit took every frame.
func (r *Reflector) Complete() int { return 0 }

// Poll returns at once.
func (r *Reflector) Poll(int) bool { return r.n > 0 }

// Err is nil: the reflector does not fail.
func (r *Reflector) Err() error { return nil }
