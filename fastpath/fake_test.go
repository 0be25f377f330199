package fastpath

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// memLink is an in-memory Link: what the worker transmits goes to a peer
// function, which may answer with frames that the worker then receives.
type memLink struct {
	mu    sync.Mutex
	umem  []byte
	fs    int
	free  []uint64 // TX frames
	rxq   [][]byte // frames waiting for Receive
	rxBuf uint64   // next RX frame slot
	peer  func(frame []byte) [][]byte
	rng   *rand.Rand
	loss  float64
	sent  atomic.Uint64
	lost  atomic.Uint64
}

const memFrames = 4096

func newMemLink(peer func([]byte) [][]byte) *memLink {
	l := &memLink{fs: 2048, umem: make([]byte, 2*memFrames*2048), peer: peer, rng: rand.New(rand.NewPCG(7, 7))}
	for i := 0; i < memFrames; i++ {
		l.free = append(l.free, uint64(memFrames+i)*2048)
	}
	return l
}

func (l *memLink) UMEM() []byte   { return l.umem }
func (l *memLink) FrameSize() int { return l.fs }

func (l *memLink) Receive(descs []xsk.Desc) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(descs) && len(l.rxq) > 0 {
		addr := (l.rxBuf % memFrames) * 2048
		l.rxBuf++
		f := l.rxq[0]
		l.rxq = l.rxq[1:]
		copy(l.umem[addr:], f)
		descs[n] = xsk.Desc{Addr: addr, Len: uint32(len(f))}
		n++
	}
	return n
}

func (l *memLink) Recycle([]xsk.Desc) {}

func (l *memLink) Alloc(addrs []uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(len(addrs), len(l.free))
	copy(addrs, l.free[len(l.free)-n:])
	l.free = l.free[:len(l.free)-n]
	return n
}

func (l *memLink) Free(addrs []uint64) {
	l.mu.Lock()
	l.free = append(l.free, addrs...)
	l.mu.Unlock()
}

func (l *memLink) Transmit(descs []xsk.Desc) int {
	l.mu.Lock()
	var frames [][]byte
	for _, d := range descs {
		frames = append(frames, append([]byte(nil), l.umem[d.Addr:d.Addr+uint64(d.Len)]...))
		l.free = append(l.free, d.Addr) // completes at once
	}
	l.mu.Unlock()
	for _, f := range frames {
		l.sent.Add(1)
		if l.loss > 0 && l.rng.Float64() < l.loss {
			l.lost.Add(1)
			continue
		}
		replies := l.peer(f)
		l.mu.Lock()
		for _, r := range replies {
			if l.loss > 0 && l.rng.Float64() < l.loss {
				l.lost.Add(1)
				continue
			}
			l.rxq = append(l.rxq, r)
		}
		l.mu.Unlock()
	}
	return len(descs)
}

func (l *memLink) Kick() error             { return nil }
func (l *memLink) Complete() int           { return 0 }
func (l *memLink) Poll(timeoutMs int) bool { return false }
func (l *memLink) Err() error              { return nil }

// fakeServer is a Linux-like passive opener on ports 80 (listening), 81
// (closed: RST|ACK) and 82 (blackholed). It counts accepted connections and
// connections it still holds.
type fakeServer struct {
	mu       sync.Mutex
	p        tcp.Params
	half     map[uint32]tcp.Seq // sport -> ISS of SYN-RECEIVED
	est      map[uint32]bool
	accepted atomic.Uint64
	mac      [6]byte
}

func newFakeServer() *fakeServer {
	return &fakeServer{p: tcp.DefaultParams(1500, false), half: map[uint32]tcp.Seq{}, est: map[uint32]bool{}, mac: [6]byte{2, 0, 0, 0, 0, 2}}
}

func (s *fakeServer) handle(frame []byte) [][]byte {
	var pk tcp.Packet
	if tcp.Parse(frame, &pk) != tcp.KindTCP {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := &pk.Seg
	key := uint32(pk.SrcPort)<<8 | uint32(pk.Src[3])
	path := &tcp.Path{SrcMAC: s.mac, DstMAC: pk.SrcMAC, Src: pk.Dst, Dst: pk.Src, SrcPort: pk.DstPort, DstPort: pk.SrcPort}
	out := func(r *tcp.Reply) [][]byte {
		b := make([]byte, tcp.MaxReplyLen)
		return [][]byte{b[:tcp.Build(b, path, r)]}
	}
	switch pk.DstPort {
	case 82:
		return nil
	case 81:
		if r, ok := tcp.NoSocketReply(seg); ok {
			return out(&r)
		}
		return nil
	}
	switch {
	case seg.Flags.Has(tcp.FlagRST):
		delete(s.half, key)
		delete(s.est, key)
	case seg.Flags == tcp.FlagSYN:
		iss, ok := s.half[key]
		if !ok {
			iss = tcp.Seq(key * 2654435761)
			s.half[key] = iss
		}
		return out(&tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: iss, Ack: seg.Seq + 1, Window: 65160,
			SYNOpts: &s.p, MSS: 1460, TSVal: 1, TSEcr: seg.Opts.TSVal})
	case seg.Flags.Has(tcp.FlagACK):
		if iss, ok := s.half[key]; ok && seg.Ack == iss+1 {
			delete(s.half, key)
			s.est[key] = true
			s.accepted.Add(1)
		}
		if seg.Flags.Has(tcp.FlagFIN) && s.est[key] {
			delete(s.est, key)
			return out(&tcp.Reply{Flags: tcp.FlagACK | tcp.FlagFIN, Seq: seg.Ack, Ack: seg.Seq + 1})
		}
	}
	return nil
}

func (s *fakeServer) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.est)
}
