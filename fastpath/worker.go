package fastpath

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// worker owns one link, a slice of the port space and its timers.
type worker struct {
	id   int
	e    *Engine
	link Link
	umem []byte

	wOff, chunk int // our ports: PortLo+wOff .. PortLo+wOff+chunk-1
	sets        []*tcp.PortSet
	picker      *tcp.PortPicker
	portHash    []portHash          // per pair
	tpl         []tcp.SYNTemplate   // per (target, source) pair
	rtpl        []tcp.ReplyTemplate // per pair: its other segments
	noDF        []bool              // per pair: MTU locked below 552, no DF (C5)
	wheel       *tcp.Wheel
	quar        *tcp.Quarantine
	inbox       []*spsc // inbox[p]: messages from worker p

	rx      []xsk.Desc
	tx      []xsk.Desc
	txN     int
	txEpoch uint64     // flushes so far: tells whether a queued frame is still in w.tx
	kept    *keptStore // response data kept out of order (request mode; made when first needed)
	frames  []uint64   // allocated, unused TX frames
	spare   []uint64   // scratch for frames the TX ring refused
	nFrames int
	pk      tcp.Packet
	// parseFlags are the parser's options, fixed for the run.
	parseFlags tcp.ParseFlags
	expired    []uint32
	msgs       []uint32
	held       []tcp.Held // the quarantine's expired entries
	pending    []uint32   // notifications waiting for the TX flush
	dialsUp    []*Conn    // Dial'ed connections established, told after the TX flush
	// closing are connections whose complete response closes them
	// gracefully once the server's FIN is in, or their wait is over
	// (closeResponded); loops counts receive passes, to tell this pass's.
	closing []closeWait
	loops   uint32
	synQ    []synSent // SYNs whose send time the flush corrects
	rxNs    int64     // arrival of the frame being handled (XDP stamp, else the loop's time)

	c counters
	h report.Histogram
	// ttfb and ttlb time request mode's responses (request.go), from the
	// request; ttlbSched from the attempt's intended start.
	ttfb, ttlb, ttlbSched report.Histogram
	pub                   published
	ts                    []targetStat      // per target (targets.go)
	src                   []sourceCount     // per source address (targets.go), read once the workers are done
	pt                    []publishedTarget // what publish last stored of ts

	// generation
	generating bool
	budget     uint64 // attempts left (count mode); ^0 = unbounded
	rate       float64
	tokens     float64
	heldBack   bool // the last generate stopped at the concurrency bound or busy ports
	lastGenNs  int64
	conc       int // share of Concurrency; 0 = unbounded
	// shedPair and shedOff are where the last shed stopped scanning.
	shedPair, shedOff int
	// rxFrames, in open loop without a Concurrency, is the RX ring's size:
	// generation waits while replies wait in it, and request mode's
	// requests in flight are bounded by what it can take (generate).
	rxFrames int
	// rxBehind: the last receive took a full batch, so more may wait.
	rxBehind bool
	live     int // entries owned and not free
	// Generation takes the targets in turn, and each target's sources in
	// turn: every target gets its share whatever its family's sources.
	tgt       int
	srcNext   []int32
	rnd       uint64
	nowNs     int64
	nowMs     uint32
	lastPub   int64
	closedAll bool
	reqs      chan request
	// polling is set while the worker may sleep in Poll; waker (nil when
	// the link has none) ends the sleep for a request.
	polling atomic.Bool
	waker   Waker
}

// ringFrames is the size of the worker's RX ring: half its socket's
// frames.
func (w *worker) ringFrames() int { return len(w.umem) / w.e.frameSize / 2 }

// requestsInFlight is this worker's requests whose response has not ended
// (a response timed out by another worker's timer may make it 0 early).
func (w *worker) requestsInFlight() int {
	return int(max(int64(requestsOpen(&w.c)), 0))
}

// ringConnections is how many connections a ring of ring frames holds
// when each brings what the established ones did (rxFrames frames over
// est connections; at least one frame each).
func ringConnections(ring int, est, rxFrames uint64) float64 {
	return float64(ring) * float64(est) / float64(max(rxFrames, est))
}

// local maps a table index to this worker's timer id, and back.
func (w *worker) local(idx slot) uint32 {
	pair, off := w.e.pairOf(idx), w.e.offOf(idx)
	return uint32(pair*w.chunk + off - w.wOff)
}

func (w *worker) global(id uint32) slot {
	pair, off := int(id)/w.chunk, int(id)%w.chunk
	return w.e.slotAt(pair, w.wOff+off)
}

func (w *worker) random() uint64 {
	w.rnd ^= w.rnd << 13
	w.rnd ^= w.rnd >> 7
	w.rnd ^= w.rnd << 17
	return w.rnd
}

func (w *worker) run() {
	e := w.e
	idle := e.cfg.Idle
	for {
		w.nowNs = e.now()
		w.nowMs = uint32(w.nowNs / 1e6)
		phase := e.phase.Load()
		if phase == phaseStop {
			break
		}
		if err := w.link.Err(); err != nil {
			e.fail(w.id, err)
			break
		}
		work := w.receive()
		work += w.inboxes()
		work += w.timers()
		if len(w.reqs) > 0 {
			w.requests()
			work++
		}
		if phase == phaseGenerate {
			work += w.generate()
		} else if w.generating {
			w.stopGenerating()
		}
		if phase == phaseClose && !w.closedAll {
			w.closeAll()
			w.closedAll = true
		}
		w.flush()
		w.deliver()
		w.applySYNTimes()
		w.link.Complete()
		if w.nowNs-w.lastPub > 5e6 {
			w.publish()
		}
		if e.conns.Load() > 0 {
			// The application's goroutines (a TLS handshake, a Read)
			// share the cores: a busy loop would hold a P until the
			// scheduler preempts it, 10 ms later.
			runtime.Gosched()
		}
		if work == 0 {
			if idle > 0 && w.txN == 0 {
				// A request queued after this check finds polling set and
				// wakes the poll (Conn.ask).
				w.polling.Store(true)
				if len(w.reqs) == 0 {
					w.link.Poll(int(idle / time.Millisecond))
				}
				w.polling.Store(false)
				w.c[CntIdleNs] += uint64(max(e.now()-w.nowNs, 0))
			}
		}
	}
	w.flush()
	w.deliver()
	w.publish()
}

func (w *worker) publish() {
	w.pub.store(&w.c, &w.h, &w.ttfb, &w.ttlb, &w.ttlbSched)
	w.publishTargets()
	w.pub.generating.Store(w.generating)
	w.lastPub = w.nowNs
}

func (w *worker) stopGenerating() {
	w.generating = false
	w.pub.stopAt.Store(w.nowNs + 1)
	w.publish()
}

// --- transmit ---

// txBuf returns a TX frame to write into, or ok=false when none is free.
func (w *worker) txBuf() (addr uint64, buf []byte, ok bool) {
	if w.nFrames == 0 {
		w.nFrames = w.link.Alloc(w.frames)
		if w.nFrames == 0 {
			w.flush()
			w.link.Complete()
			w.nFrames = w.link.Alloc(w.frames)
			if w.nFrames == 0 {
				w.c[CntTxDropped]++
				return 0, nil, false
			}
		}
	}
	w.nFrames--
	addr = w.frames[w.nFrames]
	fs := uint64(len(w.umem)) // bounds for the slice below
	end := min(addr+uint64(w.e.frameSize), fs)
	return addr, w.umem[addr:end:end], true
}

func (w *worker) queue(addr uint64, n int) {
	if w.linkDown() {
		if k := notSentKind(w.umem[addr : addr+uint64(n)]); k >= 0 {
			w.c[k]++
		}
	}
	w.tx[w.txN] = xsk.Desc{Addr: addr, Len: uint32(n)}
	w.txN++
	w.c[CntTxFrames]++
	if w.txN == len(w.tx) {
		w.flush()
	}
}

// linkDown says the interface is down now (Config.LinkDown).
func (w *worker) linkDown() bool { ld := w.e.cfg.LinkDown; return ld != nil && ld.Load() }

// notSentKind is the counter of a TCP frame of ours queued while the link
// is down, -1 for anything else (ARP replies, neighbour advertisements).
func notSentKind(f []byte) Counter {
	if len(f) < tcp.EthHdrLen+tcp.IPv4HdrLen+20 {
		return -1
	}
	ip := f[tcp.EthHdrLen:]
	et := int(f[12])<<8 | int(f[13])
	var th []byte
	var tcpLen int // from the IP header: a short frame may be padded
	switch {
	case et == 0x0800 && ip[9] == 6 && len(ip) >= int(ip[0]&0xf)*4+20:
		ihl := int(ip[0]&0xf) * 4
		th, tcpLen = ip[ihl:], int(ip[2])<<8|int(ip[3])-ihl
	case et == 0x86dd && len(ip) >= 40+20 && ip[6] == 6:
		th, tcpLen = ip[40:], int(ip[4])<<8|int(ip[5])
	default:
		return -1
	}
	flags := tcp.Flags(th[13])
	switch {
	case flags.Has(tcp.FlagRST):
		return CntDownRST
	case flags.Has(tcp.FlagSYN):
		return CntDownSYN
	case flags.Has(tcp.FlagFIN) || tcpLen > int(th[12]>>4)*4:
		return CntDownData
	}
	return CntDownACK
}

func (w *worker) flush() {
	if w.txN == 0 {
		return
	}
	var t0 int64
	if len(w.synQ) > 0 {
		t0 = w.e.now()
	}
	n := w.txN
	q := w.link.Transmit(w.tx[:w.txN])
	if q < w.txN {
		// Ring full: the frames are lost like a full qdisc would lose
		// them (timers resend what matters); their buffers go back to the
		// link, not to the small local cache, which may be full.
		for i := q; i < w.txN; i++ {
			w.spare[i-q] = w.tx[i].Addr
		}
		w.link.Free(w.spare[:w.txN-q])
		w.c[CntTxDropped] += uint64(w.txN - q)
	}
	w.txN = 0
	w.txEpoch++
	if err := w.link.Kick(); err != nil {
		w.e.fail(w.id, err)
	}
	if len(w.synQ) > 0 {
		w.timeSYNs(t0, w.e.now(), n, q)
	}
}

// path is the flow of entry idx, from our side.
func (w *worker) path(idx slot) tcp.Path {
	e := w.e
	pair := e.pairOf(idx)
	t, s := e.ts(pair)
	tg := &e.cfg.Targets[t]
	p := tcp.Path{SrcMAC: e.cfg.SrcMAC, DstMAC: tg.DstMAC, SrcPort: e.portOf(idx), DstPort: tg.Addr.Port(), NoDF: w.noDF[pair]}
	if e.pairV6[pair] {
		p.V6, p.Src6, p.Dst6 = true, [16]byte(e.srcB[s]), [16]byte(e.dstB[t])
		p.FlowLabel = e.table[idx].conn.FlowLabel()
	} else {
		p.Src, p.Dst = [4]byte(e.srcB[s]), [4]byte(e.dstB[t])
	}
	return p
}

// build writes r, a segment of entry idx's connection, into buf and
// returns its length: from the pair's reply template, or in full where the
// template does not build it.
func (w *worker) build(buf []byte, idx slot, r *tcp.Reply) int {
	pair := w.e.pairOf(idx)
	var label uint32
	if w.e.pairV6[pair] {
		label = w.e.table[idx].conn.FlowLabel()
	}
	if n := w.rtpl[pair].Build(buf, w.e.portOf(idx), label, r); n > 0 {
		return n
	}
	p := w.path(idx)
	return tcp.Build(buf, &p, r)
}

// send sends r, a segment of entry idx's connection.
func (w *worker) send(idx slot, r *tcp.Reply) {
	addr, buf, ok := w.txBuf()
	if !ok {
		return
	}
	w.countSent(r)
	w.queue(addr, w.build(buf, idx, r))
}

// sendPath sends r on path p, which no entry owns.
func (w *worker) sendPath(p *tcp.Path, r *tcp.Reply) {
	addr, buf, ok := w.txBuf()
	if !ok {
		return
	}
	w.countSent(r)
	w.queue(addr, tcp.Build(buf, p, r))
}

// countSent counts r among the segments sent, by kind.
func (w *worker) countSent(r *tcp.Reply) {
	switch {
	case r.Flags.Has(tcp.FlagRST):
		w.c[CntRSTSent]++
	case r.Flags.Has(tcp.FlagFIN):
		w.c[CntFINSent]++
	case r.Flags == tcp.FlagACK:
		w.c[CntACKSent]++
	}
}

// --- receive ---

func (w *worker) receive() int {
	n := w.link.Receive(w.rx)
	w.rxBehind = n == len(w.rx)
	for i := 0; i < n; i++ {
		d := w.rx[i]
		w.rxNs = w.nowNs
		// R7: the SYN-ACK is timed from when the XDP program saw it, not
		// from this loop (which may have started before it came).
		if ns, ok := arrival(w.umem, d.Addr); ok {
			if t, ok := w.e.arrivalTime(ns, w.nowNs); ok {
				w.rxNs = t
				w.c[CntRxStamped]++
			}
		}
		w.frame(w.umem[d.Addr : d.Addr+uint64(d.Len)])
	}
	if n > 0 {
		w.link.Recycle(w.rx[:n])
		w.c[CntRxFrames] += uint64(n)
	}
	if len(w.closing) > 0 {
		w.closeResponded()
	}
	w.loops++
	return n
}

func (w *worker) frame(f []byte) {
	pk := &w.pk
	kind := tcp.ParseWith(f, pk, w.parseFlags)
	if pk.PartialChecksum {
		w.c[CntPartialChecksum]++
	}
	switch kind {
	case tcp.KindDrop:
		w.c[DropCounter(pk.Reason)]++
	case tcp.KindTCP:
		w.segment(pk)
	case tcp.KindICMP:
		w.icmp(pk)
	case tcp.KindARP:
		w.arp(f, pk)
	case tcp.KindNS:
		w.ns(pk)
	}
}

// flowOf finds the table entry of pk's flow: a TCP segment's destination
// is ours, an ICMP error's quoted source is (quoted). ok is false when the
// flow is not in the table.
func (w *worker) flowOf(pk *tcp.Packet, quoted bool) (slot, bool) {
	our, peer := pk.Dst[:], pk.Src[:]
	if pk.V6 {
		our, peer = pk.Dst6[:], pk.Src6[:]
	}
	ourPort, peerPort := pk.DstPort, pk.SrcPort
	if quoted {
		our, peer, ourPort, peerPort = peer, our, peerPort, ourPort
	}
	return w.index(our, ourPort, peer, peerPort)
}

// index finds the table entry of a flow: our address and port, the peer's
// address and port (addresses of 4 or 16 bytes).
func (w *worker) index(our []byte, ourPort uint16, peer []byte, peerPort uint16) (slot, bool) {
	e := w.e
	s := e.srcIndex(our)
	t := e.dstIndex(peer, peerPort)
	if s < 0 || t < 0 || ourPort < e.cfg.PortLo || ourPort > e.cfg.PortHi {
		return 0, false
	}
	pair := e.pairAt[t*len(e.cfg.Sources)+s]
	if pair < 0 {
		return 0, false
	}
	return e.slotOf(int(pair), ourPort), true
}

// noConn answers a segment nobody owns (X2) as the kernel does.
func (w *worker) noConn(pk *tcp.Packet) {
	w.c[CntNoConn]++
	r, ok := tcp.NoSocketReply(&pk.Seg)
	if !ok {
		return
	}
	p := tcp.Path{SrcMAC: w.e.cfg.SrcMAC, DstMAC: pk.SrcMAC, Src: pk.Dst, Dst: pk.Src, SrcPort: pk.DstPort, DstPort: pk.SrcPort}
	if pk.V6 {
		// V7: no socket, so the label is the flow's hash, as the kernel's
		// automatic flow label for a reset without a socket is.
		p.V6, p.Src6, p.Dst6 = true, pk.Dst6, pk.Src6
		p.FlowLabel = uint32(w.e.isn.Hash6(&pk.Dst6, &pk.Src6, pk.DstPort, pk.SrcPort)) & 0xfffff
	}
	w.sendPath(&p, &r)
}

func (w *worker) segment(pk *tcp.Packet) {
	seg := &pk.Seg
	if seg.Flags.Has(tcp.FlagRST) {
		w.c[CntRSTReceived]++
	}
	if seg.Flags.Has(tcp.FlagFIN) {
		w.c[CntFINReceived]++
	}
	idx, ok := w.flowOf(pk, false)
	if !ok {
		w.noConn(pk)
		return
	}
	en := &w.e.table[idx]
	if st := en.peek(); st == tcp.Free || st == tcp.Closed {
		w.noConn(pk) // stateless: no need to take the entry
		return
	}
	switch en.acquire() {
	case tcp.Free, tcp.Closed:
		w.release(en, false)
		w.noConn(pk)
		return
	}
	params := w.e.paramsOf(w.e.pairOf(idx))
	retrans := en.conn.Retrans // Input resets it on ESTABLISHED
	before := en.conn.State
	var v tcp.Verdict
	ex := w.exchange(idx)
	var dc *Conn // a Dial'ed connection's stream
	if ex == nil && en.dialed() {
		dc = w.e.dialedConn(idx)
	}
	switch {
	case w.e.cfg.Close == CloseSYNOnly && dc == nil:
		v = params.ProbeInput(&en.conn, seg, w.nowMs)
	case ex != nil:
		v = params.ExchangeInput(&en.conn, &ex.x, seg, w.nowMs)
	case dc != nil && before != tcp.SynSent && dc.streamUsesX(before):
		v = params.ExchangeInput(&en.conn, &dc.s.x, seg, w.nowMs)
	default:
		v = params.Input(&en.conn, seg, w.nowMs)
	}
	if ex != nil && v.Send && v.DataLen == 0 && len(pk.Payload) > 0 && en.conn.State == tcp.Established &&
		en.conn.RcvNxt.LessThan(seg.Seq) && !seg.Flags.Has(tcp.FlagFIN) && w.keep(&ex.kept, seg.Seq, pk.Payload) && en.conn.SACKOK() {
		// Kept (Q9): the duplicate ACK's SACK block is the run of kept
		// data this segment joined.
		v.Reply.SackL, v.Reply.SackR = w.keptRange(ex.kept, seg.Seq)
	}
	if dc != nil && v.Send && v.DataLen == 0 && len(pk.Payload) > 0 && en.conn.State == tcp.Established &&
		en.conn.RcvNxt.LessThan(seg.Seq) && !seg.Flags.Has(tcp.FlagFIN) && dc.s.keep(seg.Seq, pk.Payload) && en.conn.SACKOK() {
		v.Reply.SackL, v.Reply.SackR = dc.s.keptRange(seg.Seq)
	}
	switch {
	case dc != nil && v.Send && before != tcp.SynSent:
		w.sendConn(dc, &en.conn, params, &v.Reply)
	case v.Send:
		if ex != nil && v.DataLen > 0 && v.Reply.Flags == tcp.FlagACK {
			w.ackData(ex, idx, &v.Reply)
		} else {
			if ex != nil {
				ex.ackAt = 0
			}
			w.send(idx, &v.Reply)
		}
	}
	notify := false
	fast := false
	switch v.Event {
	case tcp.EvProbeAnswered:
		// SYN-only: the answer counts as established and closed at once.
		w.handshake(en, idx, seg, retrans)
		notify = true
	case tcp.EvEstablished:
		w.handshake(en, idx, seg, retrans)
		// The owner cancels the SYN timer, frees or arms (a request's
		// timer replaces the SYN's).
		notify, fast = true, w.established(en, idx)
	case tcp.EvFailed:
		w.fail(en, idx, v.Err)
		notify = true
	case tcp.EvFastRetransmit:
		w.c[CntFastRetransmit]++
		notify, fast = true, true
	case tcp.EvReset:
		notify = true
		if ex != nil {
			w.endExchange(ex)
			w.c[ResponseFailedCounter(respReset)]++
		}
	case tcp.EvTimeWait:
		w.c[CntTimeWait]++
		notify = true
	case tcp.EvClosed:
		notify = true
	}
	if dc != nil && before != tcp.SynSent {
		w.streamInput(en, idx, dc, pk, &v, before)
	}
	if ex != nil && ex.on {
		fin := seg.Flags.Has(tcp.FlagFIN) && before == tcp.Established && en.conn.State == tcp.CloseWait
		if w.response(en, idx, ex, pk, &v, fin) {
			notify, fast = true, true
		}
	}
	switch st := en.conn.State; {
	case st == before:
	case st == tcp.FinWait1 || st == tcp.LastAck || st == tcp.FinWait2:
		// E8: a FIN just left (its retransmission timer starts now, not
		// at the SYN timer still armed), or it was acknowledged (the
		// orphan's FIN-WAIT-2 timeout starts now): the owner re-arms.
		notify, fast = true, true
	default:
		notify = true
	}
	// Our own entry is looked at now, while it is held, instead of taken
	// again after the flush. A port it frees is reused by a SYN queued
	// behind the segment that ended its connection, so it cannot leave
	// first: the wait after the flush is for another owner's ports.
	if notify && w.e.ownerOf(idx) == w.id {
		w.examineHeld(en, idx, false, fast)
		notify = false
	}
	w.release(en, v.Event == tcp.EvReset)
	if v.Event == tcp.EvReset || v.Event == tcp.EvClosed {
		w.e.dialClosed(en, idx)
	}
	if notify {
		w.notify(idx, fast)
	}
}

// rtt records the handshake RTT as tcp.HandshakeRTT says: exact on the
// engine clock when the SYN-ACK answers our latest SYN, else the echoed
// timestamp's millisecond sample (R7).
// It is recorded in the totals and in ts, the target's statistics.
func (w *worker) rtt(en *entry, ts *targetStat, seg *tcp.Segment, retrans uint8) {
	// The timestamp settings it reads are net.ipv4's, shared by IPv6.
	synNs := en.syn.ns(w.nowNs)
	latest, ms, ok := w.e.params[0].HandshakeRTT(&en.conn, seg, uint32(synNs/1e6), w.nowMs, retrans)
	// Karn: the SYN answered waited in the TX ring while the link was down
	// (the latest one, or an earlier one when the answer is not to the
	// latest): when it left is not known, and its time would be the
	// outage's, not the path's.
	if f := en.st.Load(); !ok || f&lastDownBit != 0 && latest || f&downBit != 0 && !latest {
		return
	}
	ns := ms * 1e6
	if latest {
		ns = max(w.rxNs-synNs, 0)
	}
	w.h.Record(ns)
	ts.h.Record(ns)
}

// handshake counts a completed handshake (or an answered probe), and
// marks the connection open until release counts its end.
func (w *worker) handshake(en *entry, idx slot, seg *tcp.Segment, retrans uint8) {
	w.c[CntEstablished]++
	if w.linkDown() {
		// Its ACK, queued next, waits in the TX ring with the link: the
		// server accepts the connection late, or never if the ring
		// overflows first (Linux counts it established too).
		w.c[CntEstablishedDown]++
	}
	en.setFlag(openBit, true)
	pair := w.e.pairOf(idx)
	if w.e.pairV6[pair] {
		w.c[CntEstablished6]++
	}
	ts := w.target(pair)
	ts.established++
	w.src[w.e.pairS[pair]].established++
	w.rtt(en, ts, seg, retrans)
}

// established applies the close mode to a fresh connection (a Dial'ed one
// is held until Conn.Close), or sends its request in request mode; rearm
// says its timer must be armed anew.
func (w *worker) established(en *entry, idx slot) (rearm bool) {
	if en.dialed() {
		if c := w.e.dialedConn(idx); c != nil {
			w.startStream(en, idx, c)
			// connect() returns once the handshake's ACK is out (Linux
			// sends it before the woken caller can take the socket):
			// Dial is told after the flush (deliver).
			w.dialsUp = append(w.dialsUp, c)
		}
		return false
	}
	if w.e.ex != nil {
		w.startRequest(en, idx)
		return true
	}
	params := w.e.paramsOf(w.e.pairOf(idx))
	switch w.e.cfg.Close {
	case CloseRST:
		v := params.Close(&en.conn, true, w.nowMs)
		w.send(idx, &v.Reply)
	case CloseFIN:
		v := params.Close(&en.conn, false, w.nowMs)
		w.send(idx, &v.Reply)
	}
	return false
}

func (w *worker) fail(en *entry, idx slot, err syscall.Errno) {
	w.c[FailedCounter(err)]++
	pair := w.e.pairOf(idx)
	if w.e.pairV6[pair] {
		w.c[CntFailed6]++
	}
	w.target(pair).failed++
	w.src[w.e.pairS[pair]].failed++
	en.conn.State = tcp.Closed
	if en.dialed() {
		w.e.dialFailed(idx, err)
	}
}

// notify tells the entry's owner to look at it (free the port, arm a
// timer). Delivery waits until the loop has flushed our TX batch (deliver),
// so an owner never reuses a port before the RST or ACK that ended its
// previous connection is on the wire; and it never happens while this
// worker holds an entry.
func (w *worker) notify(idx slot, fast bool) {
	v := uint32(idx)
	if fast {
		v |= msgFastRetransmit
	}
	w.pending = append(w.pending, v) // grows only past 4 batches of events
}

// deliver hands pending notifications to their owners (or handles our own).
func (w *worker) deliver() {
	for _, c := range w.dialsUp {
		c.tell(0)
	}
	clear(w.dialsUp)
	w.dialsUp = w.dialsUp[:0]
	for _, v := range w.pending {
		idx := slot(v &^ msgFastRetransmit)
		owner := w.e.ownerOf(idx)
		if owner == w.id {
			w.examine(idx, false, v&msgFastRetransmit != 0)
			continue
		}
		// Full inbox: the owner's armed timer finds the entry lazily.
		w.e.workers[owner].inbox[w.id].push(v)
	}
	w.pending = w.pending[:0]
}

func (w *worker) inboxes() int {
	n := 0
	for _, q := range w.inbox {
		if q == nil {
			continue
		}
		w.msgs = q.drain(w.msgs[:0])
		for _, m := range w.msgs {
			w.examine(slot(m&^msgFastRetransmit), false, m&msgFastRetransmit != 0)
		}
		n += len(w.msgs)
	}
	return n
}

func (w *worker) icmp(pk *tcp.Packet) {
	idx, ok := w.flowOf(pk, true)
	if !ok {
		return
	}
	en := &w.e.table[idx]
	if st := en.peek(); st != tcp.SynSent && st != tcp.SynRecv {
		return
	}
	en.acquire()
	pair := w.e.pairOf(idx)
	params := w.e.paramsOf(pair)
	v := params.ICMPInput(&en.conn, pk.ICMPType, pk.ICMPCode, pk.QuotedSeq, pk.ICMPMTU)
	if v.Event == tcp.EvFailed {
		w.c[CntICMP]++
		w.fail(en, idx, v.Err)
	}
	w.release(en, false)
	if v.PMTU > 0 {
		// C5: the next SYN of this pair advertises the smaller MSS; below
		// 552 the route's MTU is locked and DF goes, from all segments.
		w.noDF[pair] = w.noDF[pair] || v.NoDF
		p := w.path(idx)
		w.tpl[pair].Reset(params, &p, uint16(max(v.PMTU-40, 256)))
		w.rtpl[pair].Reset(&p, params.TOS, params.TTL)
		w.c[CntICMP]++
	}
	if v.Event == tcp.EvFailed {
		w.notify(idx, false)
	}
}

func (w *worker) arp(f []byte, pk *tcp.Packet) {
	if pk.ARPOp != tcp.ARPRequest {
		return
	}
	s := w.e.srcIndex(pk.Dst[:])
	if s < 0 || !w.e.cfg.Sources[s].Dedicated {
		return
	}
	_, l2 := tcp.Ethernet(f).Type()
	a := tcp.ARP(f[l2:])
	addr, buf, ok := w.txBuf()
	if !ok {
		return
	}
	n := tcp.BuildARPReply(buf, w.e.cfg.SrcMAC, pk.Dst, a.SenderMAC(), a.SenderIP())
	w.c[CntARPReplies]++
	w.queue(addr, n)
}

// ns answers a neighbour solicitation for a dedicated IPv6 source, as arp
// does for IPv4: the kernel does not own the address, so nobody else will.
func (w *worker) ns(pk *tcp.Packet) {
	s := w.e.srcIndex(pk.Dst6[:])
	if s < 0 || !w.e.cfg.Sources[s].Dedicated {
		return
	}
	addr, buf, ok := w.txBuf()
	if !ok {
		return
	}
	n := tcp.BuildNA(buf, w.e.cfg.SrcMAC, &pk.Dst6, pk.SrcMAC[:], &pk.Src6)
	w.c[CntARPReplies]++
	w.queue(addr, n)
}

// --- timers and ownership ---

func (w *worker) timers() int {
	nowMs := int64(w.nowMs)
	total := 0
	for {
		w.expired = w.wheel.Advance(nowMs, w.expired[:0])
		for _, id := range w.expired {
			w.examine(w.global(id), true, false)
		}
		total += len(w.expired)
		if len(w.expired) < cap(w.expired) {
			break
		}
	}
	w.held = w.quar.Expire(nowMs, w.held[:0])
	for _, h := range w.held {
		idx := slot(h.ID) // the quarantine holds slots as plain numbers
		en := &w.e.table[idx]
		en.acquire()
		if uint32(en.conn.ISS) != h.Tag {
			// An RST ended that TIME-WAIT (E9) and freed the port: this
			// entry is a later connection's, which may be in a
			// TIME-WAIT of its own, queued behind this one.
			w.release(en, false)
			continue
		}
		if en.conn.State == tcp.TimeWait {
			en.conn.State = tcp.Closed
		}
		w.examineHeld(en, idx, false, false)
		w.release(en, false)
	}
	return total
}

// examine is the owner's bookkeeping for entry idx: retransmit on expiry,
// arm the timer the state needs, or free the port.
func (w *worker) examine(idx slot, expired, fast bool) {
	en := &w.e.table[idx]
	en.acquire()
	w.examineHeld(en, idx, expired, fast)
	w.release(en, false)
}

// examineHeld is examine of an entry the owner holds already: taking an
// entry is a locked instruction, and releasing it another.
func (w *worker) examineHeld(en *entry, idx slot, expired, fast bool) {
	id := w.local(idx)
	params := w.e.paramsOf(w.e.pairOf(idx))
	switch en.conn.State {
	case tcp.SynSent, tcp.SynRecv:
		switch {
		case fast:
			w.wheel.Schedule(id, int64(w.nowMs)+params.TimeoutMinMs)
		case expired:
			v, resend, next := params.OnTimer(&en.conn, w.nowMs)
			if v.Event == tcp.EvFailed {
				w.fail(en, idx, v.Err)
				break
			}
			if resend {
				w.retransmitSYN(en, idx)
				w.wheel.Schedule(id, int64(w.nowMs)+next)
			}
		}
	case tcp.FinWait1, tcp.Closing, tcp.LastAck:
		if expired {
			v, _, next := params.OnTimer(&en.conn, w.nowMs)
			if v.Send {
				w.send(idx, &v.Reply)
			}
			if v.Event == tcp.EvClosed {
				break
			}
			w.wheel.Schedule(id, int64(w.nowMs)+next)
		} else if !w.wheel.Scheduled(id) || fast {
			w.wheel.Schedule(id, int64(w.nowMs)+params.FINRTO(&en.conn))
		}
	case tcp.FinWait2:
		if en.dialed() && w.e.dialedConn(idx).streamReads() {
			// Shut for writing only: a socket that reads has no
			// FIN-WAIT-2 timeout (tcp_fin_timeout is the orphan's).
			w.wheel.Cancel(id)
		} else if expired {
			en.conn.State = tcp.Closed // orphan FIN-WAIT-2 timeout
		} else if !w.wheel.Scheduled(id) || fast {
			w.wheel.Schedule(id, int64(w.nowMs)+w.e.cfg.TimeWait.Milliseconds())
		}
	case tcp.TimeWait:
		w.e.dialClosed(en, idx)
		w.wheel.Cancel(id)
		if en.st.Load()&quarBit != 0 {
			break // queued already
		}
		if w.quar.Push(uint32(idx), uint32(en.conn.ISS), int64(w.nowMs)+w.e.cfg.TimeWait.Milliseconds()) {
			en.setFlag(quarBit, true)
		} else {
			en.conn.State = tcp.Closed // quarantine full: free now
		}
	case tcp.Established, tcp.CloseWait:
		if ex := w.exchange(idx); ex != nil {
			w.requestTimer(en, idx, ex, id, expired, fast)
		} else if c := w.e.dialedConn(idx); c != nil && en.dialed() {
			w.streamTimer(en, idx, c, id, expired, fast)
		} else {
			w.wheel.Cancel(id)
		}
	}
	if en.conn.State == tcp.Closed {
		w.e.dialClosed(en, idx)
		w.wheel.Cancel(id)
		en.conn.State = tcp.Free
		en.setDialed(false)
		if w.e.ex != nil {
			w.endExchange(&w.e.ex[idx]) // cut short by the run's end: in flight
		}
		en.setFlag(quarBit, false)
		w.sets[w.e.pairOf(idx)].Set(w.e.portOf(idx), false)
		w.live--
	}
}

// release publishes the entry's state and lets others take it. It is the
// one place where the end of an established connection is counted: once
// its state has reached TIME-WAIT or CLOSED, as closed, or as reset when
// the peer's RST ended it. The open flag makes a second count impossible.
func (w *worker) release(en *entry, reset bool) {
	var clear uint32
	if en.st.Load()&openBit != 0 {
		switch en.conn.State {
		case tcp.TimeWait, tcp.Closed, tcp.Free:
			clear = openBit
			if reset {
				w.c[CntReset]++
			} else {
				w.c[CntClosed]++
			}
		}
	}
	en.release(clear)
}

func (w *worker) retransmitSYN(en *entry, idx slot) {
	addr, buf, ok := w.txBuf()
	if !ok {
		return
	}
	pair := w.e.pairOf(idx)
	sport := w.e.portOf(idx)
	c := &en.conn
	en.markSYN(w.linkDown(), false)
	n := w.tpl[pair].Stamp(buf, sport, c.ISS, w.e.paramsOf(pair).TSVal(c, w.nowMs), c.NextIPID(), true)
	w.tpl[pair].SetFlowLabel(buf, c.FlowLabel())
	en.syn = synTimeOf(w.nowNs)
	w.synQ = append(w.synQ, synSent{idx: idx, pos: w.txN, orig: w.nowNs})
	w.c[CntRetransmits]++
	w.c[CntSYNSent]++
	w.queue(addr, n)
}

// --- generation ---

func (w *worker) generate() int {
	e := w.e
	if !w.generating {
		return 0
	}
	if w.budget == 0 || (e.cfg.Duration > 0 && w.nowNs >= e.cfg.Duration.Nanoseconds()) {
		w.stopGenerating()
		return 0
	}
	n := len(w.tx) - w.txN
	if len(e.cfg.Stages) > 0 {
		// The ramp's rate now, this worker's share; at 0 nothing is due
		// (not "as fast as possible").
		if w.rate = e.rateAt(time.Duration(w.nowNs)) / float64(e.genWorkers); w.rate <= 0 {
			w.lastGenNs = w.nowNs
			return 0
		}
	}
	if w.rate > 0 {
		dt := w.nowNs - w.lastGenNs
		w.lastGenNs = w.nowNs
		// The bucket holds 10 ms of the schedule: a worker that slept in
		// poll a little past its timeout, or was descheduled, catches up
		// in its next batches. What the bucket cannot hold was due and not
		// started: the worker's own lateness, unless the plan's bound held
		// it back last time.
		full := max(float64(len(w.tx)), w.rate/100)
		w.tokens += w.rate * float64(dt) / 1e9
		if over := w.tokens - full; over >= 1 {
			if w.heldBack {
				w.c[CntHeldBack] += uint64(over)
			} else {
				w.c[CntLate] += uint64(over)
			}
			w.tokens -= float64(uint64(over))
		}
		n = min(n, int(w.tokens))
	}
	w.heldBack = false
	if w.rxFrames > 0 {
		if w.rxBehind {
			// Replies wait in the RX ring (the last receive took a full
			// batch): no new attempt before they are taken. The worker is
			// the limit; the tokens left are late.
			n = 0
		} else if e.ex != nil {
			// Each response in flight brings about as many frames as those
			// before it did (50 frames of a 64 KiB one): the ring holds
			// that many responses' worth, and more requests in flight
			// would overrun it when their responses come together. They
			// pile up because the server answers slowly: the tokens left
			// are held back, the target's. Attempts in SYN-SENT are not
			// counted: a SYN-ACK is one frame, and SYNs a firewall drops
			// bring none (counting them, a device dropping SYNs over a
			// limit stopped the generation and was called its limit).
			bound := w.rxFrames
			if done := w.c[CntResponses]; done >= 64 {
				bound = max(int(ringConnections(w.rxFrames, done, w.c[CntRxFrames])), 64)
			}
			if room := bound - w.requestsInFlight(); n > room {
				n = room
				w.heldBack = true
			}
		}
	}
	if len(e.cfg.ConcurrencyStages) > 0 {
		// The ramp's bound now; 0 here is none, not "unbounded".
		bound := e.concAt(time.Duration(w.nowNs), w.id)
		if w.live > bound {
			w.shed(w.live - bound)
		}
		if bound-w.live < n {
			n = bound - w.live
			w.heldBack = true
		}
	} else if w.conc > 0 && w.conc-w.live < n {
		// Negative when Dial'ed connections took the worker past its
		// bound: nothing to make (and n must not wrap below).
		n = w.conc - w.live
		w.heldBack = true
	}
	if n <= 0 {
		return 0
	}
	if uint64(n) > w.budget {
		n = int(w.budget)
	}
	made := 0
	for made < n {
		t := w.tgt
		if w.tgt++; w.tgt == len(w.srcNext) {
			w.tgt = 0
		}
		k := w.srcNext[t]
		if w.srcNext[t]++; w.srcNext[t] == e.pairCount[t] {
			w.srcNext[t] = 0
		}
		pair := int(e.pairFirst[t] + k)
		s := int(e.pairS[pair])
		dport := e.cfg.Targets[t].Addr.Port()
		port, errno := w.pick(pair, s, t, dport)
		if errno != 0 {
			if w.rate > 0 {
				// P4: connect() would fail at once with EADDRNOTAVAIL.
				w.c[CntAttempted]++
				w.c[FailedCounter(syscall.EADDRNOTAVAIL)]++
				if e.pairV6[pair] {
					w.c[CntAttempted6]++
					w.c[CntFailed6]++
				}
				ts := w.target(pair)
				ts.attempted++
				ts.failed++
				w.tokens--
				w.budget--
				made++
				continue
			}
			w.c[CntPortsBusy]++
			w.heldBack = true
			break
		}
		idx := e.slotOf(pair, port)
		intended := w.nowNs
		if w.rate > 0 && w.tokens > 1 {
			// The oldest token waited (tokens-1)/rate: the schedule wanted
			// this attempt that long ago.
			intended -= int64((w.tokens - 1) / w.rate * 1e9)
		}
		if !w.open(idx, pair, port, false, intended) {
			w.sets[pair].Set(port, false)
			break
		}
		made++
		w.tokens--
		w.budget--
	}
	return made
}

// pick picks a port of pair (source s, target t at port dport) as
// PortPicker.Pick does, from the pair's hash of this 10 s period, which it
// computes once: every attempt of the pair hashes the same addresses.
func (w *worker) pick(pair, s, t int, dport uint16) (uint16, syscall.Errno) {
	now := int64(w.nowMs)
	h := &w.portHash[pair]
	if ep := tcp.HashEpoch(now) + 1; h.epoch != ep {
		h.f, h.epoch = w.picker.Hash(w.e.srcB[s], w.e.dstB[t], dport, now), ep
	}
	return w.picker.PickHashed(w.sets[pair], h.f)
}

// portHash is a pair's port-picking hash (PortPicker.Hash) and its
// period plus one (0: none yet).
type portHash struct {
	f     uint64
	epoch int64
}

// open starts an attempt on the free entry idx and sends its SYN;
// intendedNs is when the schedule wanted it (request mode keeps it).
func (w *worker) open(idx slot, pair int, port uint16, dialed bool, intendedNs int64) bool {
	e := w.e
	addr, buf, ok := w.txBuf()
	if !ok {
		return false
	}
	t, s := e.ts(pair)
	var h uint64
	if e.pairV6[pair] {
		h = e.isn.Hash6((*[16]byte)(e.srcB[s]), (*[16]byte)(e.dstB[t]), port, e.cfg.Targets[t].Addr.Port())
	} else {
		h = e.isn.Hash4([4]byte(e.srcB[s]), [4]byte(e.dstB[t]), port, e.cfg.Targets[t].Addr.Port())
	}
	params := e.paramsOf(pair)
	en := &e.table[idx]
	en.acquire()
	en.setDialed(dialed)
	en.setFlag(openBit, false)
	en.markSYN(w.linkDown(), true)
	tsval := params.Open(&en.conn, tcp.ISN(h, w.nowNs+w.e.isnBase), tcp.TSOffset(h)+w.e.tsBase, uint16(w.random()), w.nowMs)
	en.syn = synTimeOf(w.nowNs)
	if e.ex != nil {
		e.ex[idx].intended = intendedNs // published by the release below
	}
	n := w.tpl[pair].Stamp(buf, port, en.conn.ISS, tsval, en.conn.IPID-1, false)
	w.tpl[pair].SetFlowLabel(buf, en.conn.FlowLabel())
	w.release(en, false)
	w.synQ = append(w.synQ, synSent{idx: idx, pos: w.txN, orig: w.nowNs})
	w.wheel.Schedule(w.local(idx), int64(w.nowMs)+params.SynRTO(0))
	w.live++
	w.c[CntAttempted]++
	if e.pairV6[pair] {
		w.c[CntAttempted6]++
	}
	w.target(pair).attempted++
	w.src[w.e.pairS[pair]].attempted++
	w.c[CntSYNSent]++
	w.queue(addr, n)
	return true
}

// closeAll ends the run's connections by their close mode: held ones (and
// those Dial left open) are aborted with RST|ACK.
func (w *worker) closeAll() {
	e := w.e
	for pair := range w.sets {
		for off := w.wOff; off < w.wOff+w.chunk && off < e.nPorts; off++ {
			w.abort(pair, e.slotAt(pair, off))
		}
	}
}

// abort ends an open connection with RST|ACK; ok is false when the slot
// held none.
func (w *worker) abort(pair int, idx slot) (ok bool) {
	en := &w.e.table[idx]
	if st := en.peek(); st != tcp.Established && st != tcp.CloseWait {
		return false
	}
	en.acquire()
	if ok = en.conn.State == tcp.Established || en.conn.State == tcp.CloseWait; ok {
		v := w.e.paramsOf(pair).Close(&en.conn, true, w.nowMs)
		w.send(idx, &v.Reply)
	}
	w.release(en, false)
	w.examine(idx, false, false)
	return ok
}

// shedScan bounds the slots one shed call looks at, so that a falling
// concurrency ramp spreads its aborts over the loop's passes instead of
// stalling one of them over a large table.
const shedScan = 4096

// shed aborts up to k held connections (a concurrency ramp fell below
// those open), scanning on from where the last call stopped; it stops
// early when the TX batch is full (the rest go in later passes).
func (w *worker) shed(k int) {
	e := w.e
	for scanned := 0; k > 0 && scanned < shedScan && w.txN < len(w.tx); scanned++ {
		if w.shedOff >= w.chunk || w.wOff+w.shedOff >= e.nPorts {
			w.shedOff = 0
			if w.shedPair++; w.shedPair >= len(w.sets) {
				w.shedPair = 0
			}
		}
		idx := e.slotAt(w.shedPair, w.wOff+w.shedOff)
		w.shedOff++
		if w.abort(w.shedPair, idx) {
			k--
		}
	}
}
