// Package linktest has in-memory stand-ins for the engine's links and for a
// Linux server, so the engine (fastpath) and programs built on it can be
// tested without a network, deterministically when driven by [Clock]
// (as wireguard-go's conn/bindtest and tun/tuntest do for its device).
//
// A [Link] hands every transmitted frame to a peer function at once and
// queues the peer's answers for Receive; it can lose frames at random (a
// seeded generator) and can be broken ([Link.Break]) as if its interface
// went away. A [Server] is a Linux-like passive opener on three ports:
// ListenPort accepts, ClosedPort answers RST|ACK, BlackholePort drops.
package linktest

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// Frames is the number of RX and of TX frames of a Link.
const Frames = 4096

const frameSize = 2048

// Link is an in-memory fastpath.Link. It is safe for one worker plus
// concurrent Sent/Lost/Break calls.
type Link struct {
	mu    sync.Mutex
	umem  []byte
	free  []uint64 // TX frames
	rxq   [][]byte // frames waiting for Receive
	rxBuf uint64   // next RX frame slot
	peer  func(frame []byte) [][]byte
	rng   *rand.Rand
	// Loss is the probability that a frame (either way) is lost; set it
	// before the run.
	Loss  float64
	sent  atomic.Uint64
	lost  atomic.Uint64
	polls atomic.Uint64
	err   atomic.Pointer[error]
}

// NewLink returns a link whose transmitted frames go to peer; peer's
// return values are received. peer runs on the transmitting goroutine.
func NewLink(peer func(frame []byte) [][]byte) *Link {
	l := &Link{umem: make([]byte, 2*Frames*frameSize), peer: peer, rng: rand.New(rand.NewPCG(7, 7))}
	for i := 0; i < Frames; i++ {
		l.free = append(l.free, uint64(Frames+i)*frameSize)
	}
	return l
}

// UMEM is the frame memory.
func (l *Link) UMEM() []byte { return l.umem }

// FrameSize is the size of a frame buffer.
func (l *Link) FrameSize() int { return frameSize }

// Receive hands out queued frames.
func (l *Link) Receive(descs []xsk.Desc) int {
	l.polls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(descs) && len(l.rxq) > 0 {
		addr := (l.rxBuf % Frames) * frameSize
		l.rxBuf++
		f := l.rxq[0]
		l.rxq = l.rxq[1:]
		copy(l.umem[addr:], f)
		descs[n] = xsk.Desc{Addr: addr, Len: uint32(len(f))}
		n++
	}
	return n
}

// Recycle is a no-op: RX frames are reused in turn.
func (l *Link) Recycle([]xsk.Desc) {}

// Alloc pops free TX frames.
func (l *Link) Alloc(addrs []uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(len(addrs), len(l.free))
	copy(addrs, l.free[len(l.free)-n:])
	l.free = l.free[:len(l.free)-n]
	return n
}

// Free returns TX frames.
func (l *Link) Free(addrs []uint64) {
	l.mu.Lock()
	l.free = append(l.free, addrs...)
	l.mu.Unlock()
}

// Transmit delivers the frames to the peer (completing them at once) and
// queues its answers.
func (l *Link) Transmit(descs []xsk.Desc) int {
	l.mu.Lock()
	frames := make([][]byte, 0, len(descs))
	for _, d := range descs {
		frames = append(frames, append([]byte(nil), l.umem[d.Addr:d.Addr+uint64(d.Len)]...))
		l.free = append(l.free, d.Addr)
	}
	l.mu.Unlock()
	for _, f := range frames {
		l.sent.Add(1)
		if l.lose() {
			continue
		}
		replies := l.peer(f)
		for _, r := range replies {
			if l.lose() {
				continue
			}
			l.mu.Lock()
			l.rxq = append(l.rxq, r)
			l.mu.Unlock()
		}
	}
	return len(descs)
}

func (l *Link) lose() bool {
	if l.Loss == 0 {
		return false
	}
	l.mu.Lock()
	lost := l.rng.Float64() < l.Loss
	l.mu.Unlock()
	if lost {
		l.lost.Add(1)
	}
	return lost
}

// Inject queues frames for Receive, as if they had arrived (replies that
// RSS put on this queue, hostile frames).
func (l *Link) Inject(frames ...[]byte) {
	l.mu.Lock()
	l.rxq = append(l.rxq, frames...)
	l.mu.Unlock()
}

// Kick returns the link's fatal error, if it was broken.
func (l *Link) Kick() error { return l.Err() }

// Complete reclaims nothing: Transmit completes at once.
func (l *Link) Complete() int { return 0 }

// Poll does not wait.
func (l *Link) Poll(int) bool { return false }

// Err is the error Break set, or nil.
func (l *Link) Err() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Break makes the link fail for good with err, as a socket whose interface
// went away does.
func (l *Link) Break(err error) { l.err.CompareAndSwap(nil, &err) }

// Sent and Lost count frames handed to the peer and frames lost.
func (l *Link) Sent() uint64 { return l.sent.Load() }

// Lost counts frames lost either way.
func (l *Link) Lost() uint64 { return l.lost.Load() }

// Polls counts Receive calls: a worker makes one per loop, so a test that
// moves a [Clock] can wait until the worker has looked at the new time.
func (l *Link) Polls() uint64 { return l.polls.Load() }

// Ports of a Server.
const (
	ListenPort    = 80
	ClosedPort    = 81
	BlackholePort = 82
)

// Server is a Linux-like passive opener: SYN-ACK with options on
// ListenPort, RST|ACK on ClosedPort, silence on BlackholePort. It counts the
// connections it accepted and those it still holds.
type Server struct {
	mu       sync.Mutex
	p        tcp.Params
	half     map[uint32]tcp.Seq // peer port and address -> ISS of SYN-RECEIVED
	est      map[uint32]bool
	accepted atomic.Uint64
	mac      [6]byte
}

// NewServer returns a server with Linux's default TCP parameters.
func NewServer() *Server {
	return &Server{p: tcp.DefaultParams(1500, false), half: map[uint32]tcp.Seq{}, est: map[uint32]bool{}, mac: [6]byte{2, 0, 0, 0, 0, 2}}
}

// Handle answers one frame; use it as a Link's peer.
func (s *Server) Handle(frame []byte) [][]byte {
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
	case BlackholePort:
		return nil
	case ClosedPort:
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

// Accepted is the number of handshakes the server completed.
func (s *Server) Accepted() uint64 { return s.accepted.Load() }

// Open is the number of connections the server still holds.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.est)
}

// Clock is a clock a test moves by hand (fastpath.Config.Clock): time
// stands still until Advance.
type Clock struct{ ns atomic.Int64 }

// Now is the time since the clock's start.
func (c *Clock) Now() time.Duration { return time.Duration(c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
