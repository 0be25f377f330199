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
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// Frames is the number of RX and of TX frames of a Link.
const Frames = 4096

const frameSize = 2048

// headroom is the space in front of a received frame.
const headroom = 256

// MetaMagic is the XDP program's check word for arrival stamps
// (XDPC_META_MAGIC in bpf/xdp.h).
const MetaMagic = 0x78647063746d6521

// Link is an in-memory fastpath.Link. It is safe for one worker plus
// concurrent Sent/Lost/Break calls.
type Link struct {
	mu    sync.Mutex
	umem  []byte
	free  []uint64 // TX frames
	rxq   []queued // frames waiting for Receive
	rxBuf uint64   // next RX frame slot
	peer  func(frame []byte) [][]byte
	rng   *rand.Rand
	// Loss is the probability that a frame (either way) is lost; set it
	// before the run.
	Loss float64
	// Delay holds the peer's answers back for this long on Clock (which
	// must be set with it): a round trip of Delay. Set both before the run.
	Delay time.Duration
	Clock *Clock
	// Stamp writes an arrival stamp in front of each received frame, as
	// the XDP program does: the Clock time the frame was due (engine
	// time). Set it with Clock, before the run.
	Stamp bool
	// Late moves the stamps this much later: a frame that arrived after
	// the worker read its clock for the loop that finds it, as on a real
	// link.
	Late  time.Duration
	seen  time.Duration // Clock at the previous Receive
	sent  atomic.Uint64
	lost  atomic.Uint64
	polls atomic.Uint64
	wait  atomic.Int64 // the latest Poll's timeout
	err   atomic.Pointer[error]
}

type queued struct {
	f  []byte
	at time.Duration
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
	// A delayed frame is handed out only if it was due when the previous
	// Receive looked at the clock: the worker read its own time before
	// this call, and after that one, so it never sees a frame before its
	// time even though the clock may move during this call.
	now := l.seen
	if l.Clock != nil {
		l.seen = l.Clock.Now()
	}
	for n < len(descs) && len(l.rxq) > 0 && (l.Clock == nil || l.rxq[0].at <= now) {
		// Frames start past a headroom, as in an AF_XDP UMEM, where the
		// arrival stamp goes.
		addr := (l.rxBuf%Frames)*frameSize + headroom
		l.rxBuf++
		f := l.rxq[0].f
		if l.Stamp {
			ns := uint64(l.rxq[0].at + l.Late)
			binary.NativeEndian.PutUint64(l.umem[addr-16:], ns)
			binary.NativeEndian.PutUint64(l.umem[addr-8:], ns^MetaMagic)
		}
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
		var at time.Duration
		if l.Clock != nil {
			at = l.Clock.Now() + l.Delay
		}
		for _, r := range replies {
			if l.lose() {
				continue
			}
			l.mu.Lock()
			l.rxq = append(l.rxq, queued{r, at})
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
	for _, f := range frames {
		l.rxq = append(l.rxq, queued{f: f})
	}
	l.mu.Unlock()
}

// Kick returns the link's fatal error, if it was broken.
func (l *Link) Kick() error { return l.Err() }

// Complete reclaims nothing: Transmit completes at once.
func (l *Link) Complete() int { return 0 }

// Poll does not wait for frames, but yields the processor: an idle worker
// spinning on a link must leave the test's goroutine (which may be moving a
// Clock) room to run, even when there are more workers than processors.
func (l *Link) Poll(timeoutMs int) bool {
	l.wait.Store(int64(timeoutMs))
	runtime.Gosched()
	return false
}

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

// PollTimeout is the timeout, in milliseconds, of the latest Poll: what
// an idle worker would have slept on a real socket.
func (l *Link) PollTimeout() int64 { return l.wait.Load() }

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
// ListenPort, RST|ACK on ClosedPort, silence on BlackholePort. It is
// strict as a Linux server is, so that a client bug shows: it completes a
// handshake only on an ACK with the right numbers, takes an RST only at
// exactly the sequence number it expects (RFC 5961, as tcp_validate_incoming
// does), and records every frame that a Linux peer would drop or that no
// Linux client would send as a violation. Attempts, Accepted, Refused and
// Resets count what it saw.
type Server struct {
	mu         sync.Mutex
	p          tcp.Params
	flows      map[flowKey]*flow
	attempts   map[uint64]bool // (port, ISN) of every attempt seen
	accepted   atomic.Uint64
	refused    atomic.Uint64
	resets     atomic.Uint64
	open       int
	maxOpen    int
	violations []string
	mac        [6]byte
	// Clock, when set, lets the server check that a retransmitted SYN's
	// TSval advanced with the time since the first SYN (R1, I3).
	Clock *Clock
	// SYNs records, per client port, the clock time of every SYN (with
	// Clock set); for timing checks.
	SYNs map[uint16][]time.Duration
	// MSS is the MSS of the latest SYN, per client port.
	MSS map[uint16]uint16
	// NoDF expects frames without Don't Fragment: the test locked the
	// path's MTU below 552 (C5). Set it before the run.
	NoDF bool
	// Respond, when set before the run, makes ListenPort an application
	// server (request mode's tests): the client's data in order is
	// collected until Respond says it is a whole request (a response, not
	// nil), which is sent in 1448-byte segments, with a FIN after it when
	// CloseAfter is set. A retransmitted request gets the last response
	// again (the server's own retransmission, without a timer).
	Respond    func(request []byte) []byte
	CloseAfter bool
	// FINApart, with CloseAfter, sends the FIN in a segment of its own
	// right after the response's last, as nginx does.
	FINApart bool
	requests atomic.Uint64
}

// flowKey is a connection's 4-tuple as the client sends it (an IPv4
// address in the first 4 bytes).
type flowKey struct {
	src, dst     [16]byte
	sport, dport uint16
}

// keyOf is pk's flow key.
func keyOf(pk *tcp.Packet) flowKey {
	k := flowKey{sport: pk.SrcPort, dport: pk.DstPort}
	if pk.V6 {
		k.src, k.dst = pk.Src6, pk.Dst6
	} else {
		copy(k.src[:], pk.Src[:])
		copy(k.dst[:], pk.Dst[:])
	}
	return k
}

type flow struct {
	irs, iss tcp.Seq // client's and server's ISN
	// Request mode: data taken from the client and sent to it, the
	// request so far, the last response, and whether our FIN went.
	rcv, snd uint32
	req      []byte
	last     []byte
	finSent  bool
	tsval    uint32 // client's first TSval
	firstSYN time.Duration
	est      bool // ESTABLISHED
	closing  bool // LAST-ACK: the client's FIN was answered
	serverTS uint32
	ipid     uint16 // IP ID of the latest SYN
	label    uint32 // IPv6 flow label of the latest SYN
}

// NewServer returns a server with Linux's default TCP parameters.
func NewServer() *Server {
	return &Server{p: tcp.DefaultParams(1500, false), flows: map[flowKey]*flow{}, attempts: map[uint64]bool{},
		mac: [6]byte{2, 0, 0, 0, 0, 2}, SYNs: map[uint16][]time.Duration{}, MSS: map[uint16]uint16{}}
}

func (s *Server) violate(format string, a ...any) {
	if len(s.violations) < 20 {
		s.violations = append(s.violations, fmt.Sprintf(format, a...))
	}
}

func (s *Server) now() time.Duration {
	if s.Clock == nil {
		return 0
	}
	return s.Clock.Now()
}

// Handle answers one frame; use it as a Link's peer.
func (s *Server) Handle(frame []byte) [][]byte {
	var pk tcp.Packet
	if tcp.Parse(frame, &pk) != tcp.KindTCP {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var id ipID
	if pk.V6 {
		ip := tcp.IPv6(frame[tcp.EthHdrLen:])
		if ip.HopLimit() != s.p.TTL || binary.BigEndian.Uint32(ip)>>20&0xff != 0 {
			s.violate("port %d: hop limit %d traffic class %#x, want %d and 0 (V2)", pk.SrcPort, ip.HopLimit(), binary.BigEndian.Uint32(ip)>>20&0xff, s.p.TTL)
		}
		id = ipID{v6: true, label: ip.FlowLabel()}
	} else {
		ip := tcp.IPv4(frame[tcp.EthHdrLen:])
		if ff := ip.FlagsFrag(); ff != 0x4000 && !(s.NoDF && ff == 0) || ip.TTL() != s.p.TTL {
			s.violate("port %d: IP flags %#04x TTL %d, want DF and TTL %d", pk.SrcPort, ip.FlagsFrag(), ip.TTL(), s.p.TTL)
		}
		id = ipID{id: ip.ID()}
	}
	seg := &pk.Seg
	key := keyOf(&pk)
	path := &tcp.Path{SrcMAC: s.mac, DstMAC: pk.SrcMAC, Src: pk.Dst, Dst: pk.Src, SrcPort: pk.DstPort, DstPort: pk.SrcPort,
		V6: pk.V6, Src6: pk.Dst6, Dst6: pk.Src6}
	out := func(r *tcp.Reply) [][]byte {
		b := make([]byte, tcp.MaxReplyLen)
		return [][]byte{b[:tcp.Build(b, path, r)]}
	}
	if seg.Flags == tcp.FlagSYN {
		s.syn(&pk, key, id)
	}
	switch pk.DstPort {
	case BlackholePort:
		return nil
	case ClosedPort:
		if r, ok := tcp.NoSocketReply(seg); ok {
			if seg.Flags == tcp.FlagSYN {
				s.refused.Add(1)
			}
			return out(&r)
		}
		return nil
	}
	f := s.flows[key]
	switch {
	case f == nil:
		if !seg.Flags.Has(tcp.FlagRST) {
			s.violate("port %d: %v for no connection", pk.SrcPort, seg.Flags)
		}
	case seg.Flags.Has(tcp.FlagRST):
		// After our FIN the client's own FIN may have gone before its RST.
		if want := f.irs + 1 + tcp.Seq(f.rcv); seg.Seq != want && !(f.finSent && seg.Seq == want+1) {
			s.violate("port %d: RST seq %d, want exactly %d (a Linux server ignores it)", pk.SrcPort, seg.Seq, want)
			return nil
		}
		s.resets.Add(1)
		s.drop(key, f)
	case seg.Flags == tcp.FlagSYN:
		mss := uint16(1460)
		if pk.V6 {
			mss = 1440
		}
		return out(&tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: f.iss, Ack: seg.Seq + 1, Window: 65160,
			SYNOpts: &s.p, MSS: mss, TSVal: f.serverTS, TSEcr: seg.Opts.TSVal})
	case seg.Flags.Has(tcp.FlagACK) && f.closing:
		// LAST-ACK: the client's ACK of our FIN ends the connection.
		wantSeq, wantAck := f.irs+2+tcp.Seq(f.rcv), f.iss+2+tcp.Seq(f.snd)
		if seg.Flags != tcp.FlagACK || seg.Seq != wantSeq || seg.Ack != wantAck {
			s.violate("port %d: %v seq %d ack %d in LAST-ACK, want ACK %d %d", pk.SrcPort, seg.Flags, seg.Seq, seg.Ack, wantSeq, wantAck)
			return nil
		}
		delete(s.flows, key)
	case seg.Flags.Has(tcp.FlagACK) && f.est && s.Respond != nil:
		return s.exchange(key, f, &pk, path)
	case seg.Flags.Has(tcp.FlagACK):
		if seg.Seq != f.irs+1 || seg.Ack != f.iss+1 {
			s.violate("port %d: %v seq %d ack %d, want %d %d", pk.SrcPort, seg.Flags, seg.Seq, seg.Ack, f.irs+1, f.iss+1)
			return nil
		}
		// H1: 64240 (IPv6: 64800) scaled by 7, rounded up.
		win := uint16(502)
		if pk.V6 {
			win = 507
		}
		if !seg.Opts.HasTS || seg.Opts.TSEcr != f.serverTS || seg.Window != win {
			s.violate("port %d: ACK TS %v echo %d window %d, want echo %d window %d", pk.SrcPort, seg.Opts.HasTS, seg.Opts.TSEcr, seg.Window, f.serverTS, win)
		}
		if id.v6 && id.label != f.label {
			s.violate("port %d: ACK flow label %#x after a SYN with %#x (V3: the same until a timeout)", pk.SrcPort, id.label, f.label)
		}
		if !f.est {
			// A connected socket numbers its datagrams in turn (DF set:
			// inet_id++): the ACK comes after the SYN it answers.
			if !id.v6 && !next(f.ipid, id.id) {
				s.violate("port %d: handshake ACK IP ID %d after a SYN with %d", pk.SrcPort, id.id, f.ipid)
			}
			f.est = true
			s.accepted.Add(1)
			s.open++
			s.maxOpen = max(s.maxOpen, s.open)
		}
		if seg.Flags.Has(tcp.FlagFIN) {
			s.open--
			f.est, f.closing = false, true
			return out(&tcp.Reply{Flags: tcp.FlagACK | tcp.FlagFIN, Seq: seg.Ack, Ack: seg.Seq + 1})
		}
	}
	return nil
}

// exchange is an established connection's segment in request mode:
// request bytes in order are taken (and answered once whole), an old copy
// gets the last response again, the client's FIN is answered.
func (s *Server) exchange(key flowKey, f *flow, pk *tcp.Packet, path *tcp.Path) [][]byte {
	seg := &pk.Seg
	finBit := tcp.Seq(0)
	if f.finSent {
		finBit = 1
	}
	if seg.Ack.LessThan(f.iss+1) || (f.iss + 1 + tcp.Seq(f.snd) + finBit).LessThan(seg.Ack) {
		s.violate("port %d: ACK %d outside [%d, %d]", pk.SrcPort, seg.Ack, f.iss+1, f.iss+1+tcp.Seq(f.snd)+finBit)
		return nil
	}
	want := f.irs + 1 + tcp.Seq(f.rcv)
	switch {
	case seg.Seq.LessThan(want) && len(pk.Payload) > 0:
		return s.send(f, seg, path, f.last) // a retransmitted request
	case seg.Seq != want:
		s.violate("port %d: segment at %d, expected %d", pk.SrcPort, seg.Seq, want)
		return nil
	}
	var out [][]byte
	if n := len(pk.Payload); n > 0 {
		f.rcv += uint32(n)
		f.req = append(f.req, pk.Payload...)
		if resp := s.Respond(f.req); resp != nil {
			s.requests.Add(1)
			f.req, f.last = f.req[:0], resp
			f.snd += uint32(len(resp))
			out = s.send(f, seg, path, resp)
		} else if !seg.Flags.Has(tcp.FlagFIN) {
			// Part of a request, or one never answered: ACKed (a Linux
			// server's delayed ACK, at once here).
			r := tcp.Reply{Flags: tcp.FlagACK, Seq: f.iss + 1 + tcp.Seq(f.snd) + finBit, Ack: want + tcp.Seq(n), Window: 509,
				TS: true, TSVal: f.serverTS, TSEcr: seg.Opts.TSVal}
			b := make([]byte, tcp.MaxReplyLen)
			out = append(out, b[:tcp.Build(b, path, &r)])
		}
	}
	if seg.Flags.Has(tcp.FlagFIN) {
		s.open--
		r := tcp.Reply{Flags: tcp.FlagACK, Seq: f.iss + 1 + tcp.Seq(f.snd) + finBit, Ack: f.irs + 2 + tcp.Seq(f.rcv), Window: 509}
		if !f.finSent {
			// Our FIN too: LAST-ACK until the client acknowledges it.
			r.Flags |= tcp.FlagFIN
			f.est, f.closing = false, true
		} else {
			s.drop(key, f) // TIME-WAIT on our side: the flow is done
			s.open++       // drop counted it already
		}
		b := make([]byte, tcp.MaxReplyLen)
		out = append(out, b[:tcp.Build(b, path, &r)])
	}
	return out
}

// send sends resp, the last response, whose bytes end at f.snd.
func (s *Server) send(f *flow, seg *tcp.Segment, path *tcp.Path, resp []byte) [][]byte {
	if resp == nil {
		return nil
	}
	start := f.iss + 1 + tcp.Seq(f.snd) - tcp.Seq(len(resp))
	var out [][]byte
	for off := 0; off == 0 || off < len(resp); off += 1448 {
		end := min(off+1448, len(resp))
		r := tcp.Reply{Flags: tcp.FlagACK, Seq: start + tcp.Seq(off), Ack: f.irs + 1 + tcp.Seq(f.rcv), Window: 509,
			TS: true, TSVal: f.serverTS, TSEcr: seg.Opts.TSVal, Payload: resp[off:end]}
		if end == len(resp) {
			r.Flags |= tcp.FlagPSH
			if s.CloseAfter && !s.FINApart {
				r.Flags |= tcp.FlagFIN
				f.finSent = true
			}
		}
		b := make([]byte, tcp.MaxReplyLen+len(r.Payload))
		out = append(out, b[:tcp.Build(b, path, &r)])
	}
	if s.CloseAfter && s.FINApart {
		fin := tcp.Reply{Flags: tcp.FlagACK | tcp.FlagFIN, Seq: start + tcp.Seq(len(resp)), Ack: f.irs + 1 + tcp.Seq(f.rcv), Window: 509,
			TS: true, TSVal: f.serverTS, TSEcr: seg.Opts.TSVal}
		b := make([]byte, tcp.MaxReplyLen)
		out = append(out, b[:tcp.Build(b, path, &fin)])
		f.finSent = true
	}
	return out
}

// Requests is the number of requests Respond answered.
func (s *Server) Requests() uint64 { return s.requests.Load() }

// ipID is what tells a retransmitted SYN from a new attempt with the same
// ISN: the next IP ID (IPv4), a new flow label (IPv6, V3).
type ipID struct {
	v6    bool
	id    uint16
	label uint32
}

// syn records an attempt and checks a retransmitted SYN against the first.
func (s *Server) syn(pk *tcp.Packet, key flowKey, id ipID) {
	seg := &pk.Seg
	s.attempts[uint64(pk.SrcPort)<<32|uint64(seg.Seq)] = true
	if s.Clock != nil {
		s.SYNs[pk.SrcPort] = append(s.SYNs[pk.SrcPort], s.Clock.Now())
	}
	s.MSS[pk.SrcPort] = seg.Opts.MSS
	if pk.DstPort != ListenPort {
		return
	}
	f := s.flows[key]
	// The same ISN from the next IP ID is a retransmission. (A new
	// attempt on a port freed in the same instant of a manual clock has
	// the same ISN too, and a fresh random IP ID.)
	// The same ISN again is a retransmission when the IP ID follows
	// (IPv4) or the flow label changed (IPv6: every timeout re-rolls it,
	// V3), and no SYN follows the handshake on one connection. Otherwise
	// it is a new attempt on a port freed in the same instant of a manual
	// clock (the ISN's clock did not move; on a real one it always does).
	relabel := id.v6 && f != nil && f.label != id.label
	if f != nil && f.irs == seg.Seq && !f.est && !f.closing && (relabel || !id.v6 && next(f.ipid, id.id)) {
		// The worker stamps a SYN on the time it read at the top of its
		// loop; the clock may have moved by a step since: allow 1 ms.
		if d := int64(seg.Opts.TSVal-f.tsval) - int64((s.now()-f.firstSYN)/time.Millisecond); s.Clock != nil && (d < -1 || d > 1) {
			s.violate("port %d: retransmitted SYN TSval %d, %v after the first (%d)", pk.SrcPort, seg.Opts.TSVal, s.now()-f.firstSYN, f.tsval)
		}
		f.ipid, f.label = id.id, id.label
		return
	}
	if f != nil {
		s.drop(key, f) // a new attempt on the port: the old one is gone
	}
	h := (uint32(key.sport)<<16 | uint32(key.dport)) ^ uint32(key.src[3]^key.src[15])<<8 ^ uint32(key.dst[3]^key.dst[15])<<24
	s.flows[key] = &flow{irs: seg.Seq, iss: tcp.Seq(h * 2654435761), tsval: seg.Opts.TSVal, firstSYN: s.now(), serverTS: h | 1, ipid: id.id, label: id.label}
}

// next reports whether IP ID b can follow a on one connection: a socket
// numbers its datagrams in turn (b = a+1), and lost ones leave gaps.
func next(a, b uint16) bool { return b-a >= 1 && b-a < 64 }

func (s *Server) drop(key flowKey, f *flow) {
	if f.est {
		s.open--
	}
	delete(s.flows, key)
}

// ISS is the server's initial sequence number on the connection of pk (a
// client's segment), 0 when it has none.
func (s *Server) ISS(pk *tcp.Packet) tcp.Seq {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.flows[keyOf(pk)]; f != nil {
		return f.iss
	}
	return 0
}

// Attempts is the number of distinct attempts (port and ISN) seen.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.attempts)
}

// Accepted is the number of handshakes the server completed.
func (s *Server) Accepted() uint64 { return s.accepted.Load() }

// Refused is the number of SYNs ClosedPort answered with RST|ACK.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Resets is the number of RSTs the server took (at the exact sequence).
func (s *Server) Resets() uint64 { return s.resets.Load() }

// Open is the number of connections the server still holds.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// MaxOpen is the largest number of connections held at once.
func (s *Server) MaxOpen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxOpen
}

// HalfOpen is the number of flows that sent a SYN and neither completed
// nor were reset.
func (s *Server) HalfOpen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.flows {
		if !f.est {
			n++
		}
	}
	return n
}

// Violations lists (up to 20) frames no Linux client sends or that a
// Linux server would drop.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Clock is a clock a test moves by hand (fastpath.Config.Clock): time
// stands still until Advance. Step is how far a lock-step driver moves it
// at a time (1 ms when zero).
type Clock struct {
	ns   atomic.Int64
	Step time.Duration
}

// Now is the time since the clock's start.
func (c *Clock) Now() time.Duration { return time.Duration(c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// ICMPError is the ICMP (IPv4) or ICMPv6 error a router on the path would
// send about frame f (one of ours: Ethernet, IP, TCP): from the router's
// address (198.18.0.254 or 2001:2::fe) back to f's source and MAC, quoting
// f's IP header and 8 bytes of TCP (IPv4, RFC 792) or the whole packet
// (IPv6, RFC 4443). mtu fills the next-hop MTU (frag-needed) or the MTU
// field (Packet Too Big).
func ICMPError(f []byte, typ, code uint8, mtu uint32) []byte {
	l3 := f[tcp.EthHdrLen:]
	if tcp.IPv4(l3).Version() == 4 {
		ip := tcp.IPv4(l3)
		quote := ip[:ip.HeaderLen()+8]
		b := make([]byte, tcp.EthHdrLen+tcp.IPv4HdrLen+tcp.ICMPHdrLen+len(quote))
		tcp.Ethernet(b).Encode(f[6:12], f[0:6], tcp.EtherIPv4)
		ic := b[tcp.EthHdrLen+tcp.IPv4HdrLen:]
		ic[0], ic[1] = typ, code
		binary.BigEndian.PutUint16(ic[6:], uint16(mtu))
		copy(ic[tcp.ICMPHdrLen:], quote)
		binary.BigEndian.PutUint16(ic[2:], tcp.Checksum(ic))
		tcp.IPv4(b[tcp.EthHdrLen:]).Encode(&tcp.IPv4Fields{TotalLen: uint16(len(b) - tcp.EthHdrLen), TTL: 64,
			Protocol: tcp.ProtoICMP, Src: [4]byte{198, 18, 0, 254}, Dst: ip.Src()})
		return b
	}
	ip := tcp.IPv6(l3)
	router, dst := [16]byte{0x20, 0x01, 0, 2, 15: 0xfe}, ip.Src()
	quote := l3[:tcp.IPv6HdrLen+ip.PayloadLen()]
	b := make([]byte, tcp.EthHdrLen+tcp.IPv6HdrLen+tcp.ICMPHdrLen+len(quote))
	tcp.Ethernet(b).Encode(f[6:12], f[0:6], tcp.EtherIPv6)
	m := b[tcp.EthHdrLen+tcp.IPv6HdrLen:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:], mtu)
	copy(m[tcp.ICMPHdrLen:], quote)
	binary.BigEndian.PutUint16(m[2:], tcp.Fold(tcp.Sum(m, tcp.PseudoSum6(&router, &dst, tcp.ProtoICMPv6, uint32(len(m))))))
	tcp.IPv6(b[tcp.EthHdrLen:]).Encode(&tcp.IPv6Fields{PayloadLen: uint16(len(m)), NextHeader: tcp.ProtoICMPv6, HopLimit: 64, Src: router, Dst: dst})
	return b
}
