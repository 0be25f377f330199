package fastpath

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/xdpconnect/xdpconnect/tcp"
)

// Streams: a Dial'ed connection carries data both ways, as a socket does
// (Conn is a net.Conn). The worker that owns the entry runs its TCP, with
// request mode's rules for what it sends (tcp.Exchange: the peer's MSS and
// window, slow start from InitCwnd, fast retransmit and NewReno recovery,
// tail loss probe, RTO with backoff, zero-window probes). The application
// reaches it through the stream's two buffers and the worker's request
// channel: Write queues bytes and pokes the owner, which sends what the
// windows allow; received bytes in order (and those kept out of order,
// once the hole is filled) go to the receive buffer, whose free space is
// the window we announce. Nothing here runs for the generator's
// connections: only entries marked dialed have a stream.

const (
	// streamSndBuf bounds what Write queues ahead of the peer's
	// acknowledgements (Linux autotunes tcp_wmem; a fixed megabyte keeps
	// a 64 KiB window full on any path this engine reaches).
	streamSndBuf = 1 << 20
	// streamRcvBuf is the receive buffer. The window we announce is its
	// free space, capped by the initial window (tcp.Params.Announced),
	// and its right edge never moves back (tcp_select_window), so a peer
	// that honours it never overfills the buffer.
	streamRcvBuf = 256 << 10
)

// stream is a Dial'ed connection's data: the application's side (under
// mu) and the worker's (under the entry's lock).
type stream struct {
	mu     sync.Mutex
	snd    []byte // from x.Start: sent and unacknowledged, then unsent
	rcv    []byte // received, not yet read
	rcvErr error  // what Read returns once rcv is empty (io.EOF after the peer's FIN)
	sndErr error  // what Write returns (the connection was reset)
	shut   bool   // our FIN is wanted (CloseWrite or Close)
	closed bool   // Close was called: Read and Write return net.ErrClosed
	// maxWnd is the window the connection announces at most (set before
	// Dial returns).
	maxWnd int

	readable, writable chan struct{} // signals (capacity 1)
	poked              atomic.Bool   // a write request is queued for the owner
	rdDeadline         atomic.Int64  // unix ns; 0: none
	wrDeadline         atomic.Int64

	// The worker's (under the entry's lock).
	x tcp.Exchange
	// ooo is data kept out of order (Q9), by sequence: the stream's own,
	// not the worker's store, since the worker that takes a segment need
	// not be the one that closes the connection; oooBytes bounds it.
	ooo      []oooSeg
	oooBytes int
	edge     tcp.Seq // the right edge of the window last announced
	finSent  bool
}

// oooSeg is a segment kept out of order.
type oooSeg struct {
	seq  tcp.Seq
	data []byte
}

// keep keeps payload, a segment at seq beyond RCV.NXT, in order; it says
// whether it is kept (now or already). Two windows' worth at most.
func (s *stream) keep(seq tcp.Seq, payload []byte) bool {
	i := 0
	for ; i < len(s.ooo) && s.ooo[i].seq.LessEq(seq); i++ {
		if s.ooo[i].seq == seq && len(s.ooo[i].data) >= len(payload) {
			return true // a retransmission of what is kept
		}
	}
	if len(payload) == 0 || s.oooBytes+len(payload) > 2*s.maxWnd {
		return false
	}
	s.ooo = append(s.ooo, oooSeg{})
	copy(s.ooo[i+1:], s.ooo[i:])
	s.ooo[i] = oooSeg{seq: seq, data: bytes.Clone(payload)}
	s.oooBytes += len(payload)
	return true
}

// keptRange is the contiguous run of kept data that holds seq: the SACK
// block a duplicate ACK reports.
func (s *stream) keptRange(seq tcp.Seq) (l, r tcp.Seq) {
	started := false
	for _, k := range s.ooo {
		end := k.seq + tcp.Seq(len(k.data))
		if started && k.seq.LessEq(r) {
			if r.LessThan(end) {
				r = end // the run goes on
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

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dialedConn is the Conn of a dialed entry (nil once it is gone).
func (e *Engine) dialedConn(idx slot) *Conn {
	e.mu.Lock()
	c := e.waiters[idx]
	e.mu.Unlock()
	return c
}

// streamUsesX says which Input a dialed connection's segment goes
// through: the stream's exchange while the application may still read
// (its acknowledgements move the send buffer; data in FIN-WAIT is read);
// plain Input once Close orphaned it, so data after our FIN resets (E11).
func (c *Conn) streamUsesX(st tcp.State) bool {
	if st == tcp.Established || st == tcp.CloseWait {
		return true
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return !c.s.closed
}

// startStream readies a connection just established for data, before
// Dial returns it.
func (w *worker) startStream(en *entry, idx slot, c *Conn) {
	tc := &en.conn
	params := w.e.paramsOf(w.e.pairOf(idx))
	params.StartExchange(tc, &c.s.x, 0)
	// A segment must fit a frame (an MTU beyond the frame size).
	tc.PeerMSS = uint16(min(int(tc.PeerMSS), w.e.frameSize-tcp.MaxReplyLen))
	c.s.maxWnd = int(params.Announced(tc))
	c.s.edge = tc.RcvNxt + tcp.Seq(c.s.maxWnd)
}

// streamWindow is the window field of the connection's next segment: its
// receive buffer's free space, the right edge never moving back (D4).
func (w *worker) streamWindow(c *Conn, tc *tcp.Conn, params *tcp.Params) uint16 {
	c.s.mu.Lock()
	free := max(streamRcvBuf-len(c.s.rcv), 0)
	c.s.mu.Unlock()
	right := tc.RcvNxt + tcp.Seq(min(free, c.s.maxWnd))
	if right.LessThan(c.s.edge) {
		right = c.s.edge
	}
	c.s.edge = right
	win := uint32(right - tc.RcvNxt)
	if tc.WSOK() {
		// Rounded up, as tcp_select_window does rather than shrink.
		unit := uint32(1)<<params.WScale - 1
		win = (win + unit) >> params.WScale
	}
	return uint16(min(win, 65535))
}

// sendConn sends r, one of the stream's own segments, with its window.
func (w *worker) sendConn(c *Conn, tc *tcp.Conn, params *tcp.Params, r *tcp.Reply) {
	if !r.Flags.Has(tcp.FlagRST) {
		r.Window = w.streamWindow(c, tc, params)
	}
	w.send(c.idx, r)
}

// sendStream sends what the windows allow of the stream's queued bytes
// (D1), then our FIN once everything is acknowledged and the application
// asked for it (D5, D6).
func (w *worker) sendStream(en *entry, idx slot, c *Conn) {
	tc := &en.conn
	if tc.State != tcp.Established && tc.State != tcp.CloseWait {
		return
	}
	params := w.e.paramsOf(w.e.pairOf(idx))
	win := w.streamWindow(c, tc, params)
	c.s.mu.Lock()
	// What Write queued since: the stream's end moves on (before the FIN
	// check below, which must see all of it).
	c.s.x.Append(len(c.s.snd) - int(c.s.x.End-c.s.x.Start))
	for {
		r, off, n, ok := params.NextData(tc, &c.s.x, w.nowMs)
		if !ok {
			break
		}
		addr, buf, ok := w.txBuf()
		if !ok {
			break // lost like a full qdisc's frame: the RTO sends it again
		}
		r.Window = win
		r.Payload = c.s.snd[off : off+n]
		w.c[CntStreamBytesSent] += uint64(n)
		w.queue(addr, w.build(buf, idx, &r))
	}
	fin := c.s.shut && !c.s.finSent && c.s.x.SndUna == c.s.x.End
	c.s.mu.Unlock()
	if fin {
		// Our FIN once the peer has all our data: Linux sends it right
		// behind the data; waiting an RTT keeps the FIN's state machine
		// (E8) free of data retransmission.
		c.s.finSent = true
		v := params.Close(tc, false, w.nowMs)
		w.sendConn(c, tc, params, &v.Reply)
		w.notify(idx, true) // E8: the FIN's timer
	}
}

// streamInput takes what segment v (from pk) brought a stream: bytes for
// the application, the peer's FIN or RST, acknowledgements that free the
// send buffer and open the windows.
func (w *worker) streamInput(en *entry, idx slot, c *Conn, pk *tcp.Packet, v *tcp.Verdict, before tcp.State) {
	tc := &en.conn
	s := &c.s
	params := w.e.paramsOf(w.e.pairOf(idx))
	if v.DataLen > 0 {
		w.c[CntStreamBytesReceived] += uint64(v.DataLen)
		s.mu.Lock()
		if !s.closed {
			s.rcv = append(s.rcv, pk.Payload[v.DataAt:v.DataAt+v.DataLen]...)
		}
		s.mu.Unlock()
		if len(s.ooo) > 0 && w.drainStream(tc, c) {
			// The ACK of this segment now covers the kept data too.
			a := params.ACK(tc, w.nowMs)
			if len(s.ooo) > 0 && tc.SACKOK() {
				a.Reply.DSACK = true
				a.Reply.SackL, a.Reply.SackR = s.keptRange(s.ooo[0].seq)
			}
			w.sendConn(c, tc, params, &a.Reply)
		}
		signal(s.readable)
	}
	var err error
	switch {
	case v.Event == tcp.EvReset:
		err = syscall.ECONNRESET
	case pk.Seg.Flags.Has(tcp.FlagFIN) && tc.RcvNxt == pk.Seg.Seq+tcp.Seq(pk.Seg.PayloadLen)+1:
		// The peer's FIN, taken (RCV.NXT is past it; a FIN out of order
		// is not, even when the segment moves our state by acknowledging
		// our FIN): the end of what Read returns.
		s.mu.Lock()
		if s.rcvErr == nil {
			s.rcvErr = io.EOF
		}
		s.mu.Unlock()
		signal(s.readable)
	}
	if err != nil {
		w.endStream(c, err)
	}
	if n := s.x.Release(); n > 0 {
		s.mu.Lock()
		s.snd = s.snd[min(n, len(s.snd)):]
		s.mu.Unlock()
		signal(s.writable)
		w.notify(idx, true) // the RTO restarts from this ACK (RFC 6298 5.3)
	}
	w.sendStream(en, idx, c)
}

// drainStream moves kept data that RCV.NXT has reached to the receive
// buffer; it says whether any was.
func (w *worker) drainStream(tc *tcp.Conn, c *Conn) (took bool) {
	s := &c.s
	for len(s.ooo) > 0 {
		k := s.ooo[0]
		off, m, ok := tc.TakeKept(k.seq, len(k.data))
		if !ok {
			break
		}
		if m > 0 {
			w.c[CntStreamBytesReceived] += uint64(m)
			s.mu.Lock()
			if !s.closed {
				s.rcv = append(s.rcv, k.data[off:off+m]...)
			}
			s.mu.Unlock()
			took = true
		}
		s.oooBytes -= len(k.data)
		s.ooo[0] = oooSeg{}
		s.ooo = s.ooo[1:]
	}
	if len(s.ooo) == 0 {
		s.ooo = nil
	}
	return took
}

// endStream fails both directions with err (a reset; the engine's end),
// unless they have ended already, and wakes the application.
func (w *worker) endStream(c *Conn, err error) {
	c.s.mu.Lock()
	if c.s.rcvErr == nil || c.s.rcvErr == io.EOF && err != nil {
		c.s.rcvErr = err
	}
	if c.s.sndErr == nil {
		c.s.sndErr = err
	}
	c.s.mu.Unlock()
	signal(c.s.readable)
	signal(c.s.writable)
}

// streamTimer is examine's part for an established stream: the
// retransmission timer while data is outstanding (tcp.ExchangeTimer: the
// probe after tcp.ExchangeTimeout, D3, then the RTO), re-armed on every
// acknowledgement (rearm).
func (w *worker) streamTimer(en *entry, idx slot, c *Conn, id uint32, expired, rearm bool) {
	tc := &en.conn
	params := w.e.paramsOf(w.e.pairOf(idx))
	if expired {
		v, resend, _ := params.ExchangeTimer(tc, &c.s.x, w.nowMs)
		if v.Send {
			w.c[CntWindowProbes]++
			w.sendConn(c, tc, params, &v.Reply)
		}
		if resend {
			w.c[CntStreamRetrans]++
			w.sendStream(en, idx, c)
		}
	}
	if !c.s.x.Pending() {
		w.wheel.Cancel(id)
		return
	}
	if expired || rearm || !w.wheel.Scheduled(id) {
		w.wheel.Schedule(id, int64(w.nowMs)+params.ExchangeTimeout(tc, &c.s.x))
	}
}

// streamWrite sends what Write queued (and the FIN CloseWrite asked for).
func (w *worker) streamWrite(c *Conn) {
	c.s.poked.Store(false)
	en := &w.e.table[c.idx]
	switch en.acquire() {
	case tcp.Established, tcp.CloseWait:
		if w.e.dialedConn(c.idx) != c {
			break // gone meanwhile (reset): the entry may be another's
		}
		w.sendStream(en, c.idx, c)
		w.release(en, false)
		w.notify(c.idx, false) // the retransmission timer, if not armed
		return
	}
	w.release(en, false)
}

// streamUpdate sends a window update: Read freed buffer space the peer
// waits for.
func (w *worker) streamUpdate(c *Conn) {
	en := &w.e.table[c.idx]
	switch en.acquire() {
	case tcp.Established, tcp.CloseWait, tcp.FinWait1, tcp.FinWait2:
		if w.e.dialedConn(c.idx) == c {
			params := w.e.paramsOf(w.e.pairOf(c.idx))
			v := params.ACK(&en.conn, w.nowMs)
			w.c[CntWindowUpdates]++
			w.sendConn(c, &en.conn, params, &v.Reply)
		}
	}
	w.release(en, false)
}
