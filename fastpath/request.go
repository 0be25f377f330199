package fastpath

import (
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// Request mode: an established connection sends Config.Request (as the
// application's first write after connect()), reads the response as TCP
// delivers it in order (l7 finds its end), and then the close mode
// applies. Every request ends once: a complete response (counted by status
// code) or one of ResponseErrors; what the run's end cuts short is in
// flight.

// exState is a connection's request and response, beside its entry (only
// in request mode).
type exState struct {
	x    tcp.Exchange
	resp l7.Response
	n    uint16 // requests made on the connection
	on   bool   // the request is under way: its outcome is not counted yet
	// ackAt is 1 + the place in the worker's TX batch of the connection's
	// last ACK of response data, while that batch (ackEpoch) is not sent
	// and nothing else of the connection followed it: ackData updates it
	// in place.
	ackAt    uint32
	ackEpoch uint64
	// kept is 1 + the first slot of the response data kept out of order
	// (kept.go); 0: none.
	kept int32
	// intended is when the schedule wanted the connection's attempt to
	// start (engine ns): its token's time, earlier than the SYN when the
	// worker ran late. Latencies from it hide no stall of the generator.
	intended int64
}

// exchange is entry idx's request state while one is under way, else nil.
func (w *worker) exchange(idx slot) *exState {
	if w.e.ex == nil || !w.e.ex[idx].on {
		return nil
	}
	return &w.e.ex[idx]
}

// startRequest sends the request on a connection just established. Its
// start, from which the response timeout and the response times count, is
// the SYN-ACK's arrival: the request leaves in the same TX batch.
func (w *worker) startRequest(en *entry, idx slot) {
	ex := &w.e.ex[idx]
	if ex.kept != 0 {
		w.dropKept(&ex.kept)
	}
	*ex = exState{on: true, n: 1, intended: ex.intended}
	c := &en.conn
	params := w.e.paramsOf(w.e.pairOf(idx))
	params.StartExchange(c, &ex.x, len(w.e.cfg.Request.Request))
	// A segment must fit a frame (an MTU beyond the frame size).
	c.PeerMSS = uint16(min(int(c.PeerMSS), w.e.frameSize-tcp.MaxReplyLen))
	en.syn = synTimeOf(w.rxNs)
	w.c[CntRequests]++
	w.sendRequest(en, idx, ex)
}

// nextRequest sends a kept-alive connection's next request, its response
// times counting from now.
func (w *worker) nextRequest(en *entry, idx slot, ex *exState) {
	ex.resp, ex.on = l7.Response{}, true
	ex.n++
	w.e.paramsOf(w.e.pairOf(idx)).NextRequest(&en.conn, &ex.x, len(w.e.cfg.Request.Request))
	en.syn = synTimeOf(w.rxNs)
	w.c[CntRequests]++
	w.sendRequest(en, idx, ex)
}

// ackData sends r, a pure ACK of response data in order (Q2, Q8). When the
// connection's last ACK is still in the unsent TX batch with nothing of
// the connection after it, r takes its place instead: one ACK per batch
// and connection, as Linux acknowledges a GRO'd run of segments once.
// ACKs of a full-size response were a frame per segment, which the server
// then has to process; duplicate ACKs (out of order) are never merged,
// they are the server's loss signal.
func (w *worker) ackData(ex *exState, idx slot, r *tcp.Reply) {
	if ex.ackAt > 0 && ex.ackEpoch == w.txEpoch && int(ex.ackAt) <= w.txN {
		d := &w.tx[ex.ackAt-1]
		fs := uint64(len(w.umem))
		buf := w.umem[d.Addr:min(d.Addr+uint64(w.e.frameSize), fs)]
		d.Len = uint32(w.build(buf, idx, r))
		w.c[CntACKMerged]++
		return
	}
	n, epoch := w.txN, w.txEpoch
	w.send(idx, r)
	ex.ackAt = 0
	// Only a frame queued in this batch (send may have flushed first, or
	// found no free frame).
	if w.txEpoch == epoch && w.txN == n+1 {
		ex.ackAt, ex.ackEpoch = uint32(w.txN), epoch
	}
}

// sendRequest sends what the windows allow of entry idx's request.
func (w *worker) sendRequest(en *entry, idx slot, ex *exState) {
	req := w.e.cfg.Request.Request
	params := w.e.paramsOf(w.e.pairOf(idx))
	for {
		r, off, n, ok := params.NextData(&en.conn, &ex.x, w.nowMs)
		if !ok {
			return
		}
		ex.ackAt = 0
		addr, buf, ok := w.txBuf()
		if !ok {
			return // lost like a full qdisc's frame: the RTO sends it again
		}
		r.Payload = req[off : off+n]
		w.queue(addr, w.build(buf, idx, &r))
	}
}

// reqStartNs is when entry idx's request started (engine ns).
func (w *worker) reqStartNs(en *entry) int64 { return en.syn.ns(w.nowNs) }

// response takes what segment v (from pk) brought an exchange: response
// bytes in order, the server's FIN, more window for the request.
// finTaken says the segment's FIN was accepted. rearm says a next request
// started, whose timer must replace the last one's.
func (w *worker) response(en *entry, idx slot, ex *exState, pk *tcp.Packet, v *tcp.Verdict, finTaken bool) (rearm bool) {
	spec := w.e.cfg.Request
	res := l7.More
	switch {
	case v.DataLen > 0:
		if ex.resp.Got == 0 {
			w.ttfb.Record(max(w.rxNs-w.reqStartNs(en), 0))
		}
		w.c[CntResponseBytes] += uint64(v.DataLen)
		res = ex.resp.Feed(spec, pk.Payload[v.DataAt:v.DataAt+v.DataLen])
		if res == l7.More && ex.kept != 0 {
			var took bool
			if res, took = w.drainKept(en, ex); took {
				// The ACK just queued for this segment now covers what
				// was kept too (Q8, Q9), with a SACK block for the next
				// run of kept data beyond a hole.
				a := w.e.paramsOf(w.e.pairOf(idx)).ACK(&en.conn, w.nowMs)
				if ex.kept != 0 && en.conn.SACKOK() {
					first := w.kept.seg[ex.kept-1].seq
					a.Reply.DSACK = true
					a.Reply.SackL, a.Reply.SackR = w.keptRange(ex.kept, first)
				}
				w.ackData(ex, idx, &a.Reply)
			}
		}
	case pk.Seg.PayloadLen > 0:
		w.c[CntOutOfOrder]++
	}
	if res == l7.More && finTaken {
		res = ex.resp.Close(spec)
	}
	if res == l7.More {
		w.sendRequest(en, idx, ex)
		return false
	}
	return w.endRequest(en, idx, ex, res)
}

// endRequest counts the request's outcome, then sends a kept-alive
// connection's next request (next true) or closes the connection: by the
// close mode after a complete response, with RST|ACK after a failure (a
// client closing with unread data resets, as Linux does).
func (w *worker) endRequest(en *entry, idx slot, ex *exState, res l7.Result) (next bool) {
	w.endExchange(ex)
	abort := true
	params := w.e.paramsOf(w.e.pairOf(idx))
	switch res {
	case l7.Done:
		w.c[CntResponses]++
		w.ttlb.Record(max(w.rxNs-w.reqStartNs(en), 0))
		if ex.n == 1 {
			// From the attempt's intended start: the handshake, the
			// request, and any lateness of the generator (wrk2's
			// correction of coordinated omission).
			w.ttlbSched.Record(max(w.rxNs-ex.intended, 0))
		}
		if st := int(ex.resp.Status); st >= 100 && st <= 599 {
			w.c[StatusCounter(st)]++
		}
		if int(ex.n) < w.e.cfg.RequestsPerConn && en.conn.State == tcp.Established {
			w.nextRequest(en, idx, ex)
			return true
		}
		switch w.e.cfg.Close {
		case CloseHold:
			if en.conn.State == tcp.CloseWait {
				// The server's FIN waits for its ACK, which Linux's
				// delayed-ACK timer sends (at most 40 ms later): now.
				v := params.ACK(&en.conn, w.nowMs)
				w.send(idx, &v.Reply)
			}
			return false
		case CloseFIN:
			// Q7: a client closes once it has read the response, and
			// reads what arrived with it first: a server FIN in the same
			// batch makes the close passive (CLOSE-WAIT, LAST-ACK, no
			// TIME-WAIT), as with curl and ab. closeResponded sends it.
			w.closing = append(w.closing, closeWait{idx: idx, loop: w.loops, untilMs: w.nowMs + w.e.finWaitMs, iss: en.conn.ISS}) // grows only past 4 batches
			return false
		}
	case l7.ErrMalformed:
		w.c[ResponseFailedCounter(respMalformed)]++
	case l7.ErrTooLarge:
		w.c[ResponseFailedCounter(respTooLarge)]++
	case l7.ErrTruncated:
		w.c[ResponseFailedCounter(respTruncated)]++
	}
	v := params.Close(&en.conn, abort, w.nowMs)
	if v.Send {
		w.send(idx, &v.Reply)
	}
	return false
}

// requestTimer is examine's part for an established connection with a
// request under way: on expiry the response timeout or the request's RTO
// (tcp.ExchangeTimer), then the next of the two is armed; rearm replaces
// a timer the handshake left.
func (w *worker) requestTimer(en *entry, idx slot, ex *exState, id uint32, expired, rearm bool) {
	c := &en.conn
	params := w.e.paramsOf(w.e.pairOf(idx))
	deadline := (w.reqStartNs(en) + w.e.cfg.ResponseTimeout.Nanoseconds()) / 1e6
	if expired {
		if int64(w.nowMs) >= deadline {
			w.endExchange(ex)
			w.c[ResponseFailedCounter(respTimeout)]++
			v := params.Close(c, true, w.nowMs)
			w.send(idx, &v.Reply)
			return
		}
		v, resend, _ := params.ExchangeTimer(c, &ex.x, w.nowMs)
		if v.Send {
			w.c[CntWindowProbes]++
			w.send(idx, &v.Reply)
		}
		if resend {
			w.c[CntRequestRetrans]++
			w.sendRequest(en, idx, ex)
		}
	}
	if expired || rearm || !w.wheel.Scheduled(id) {
		at := deadline
		if ex.x.Pending() {
			at = min(at, int64(w.nowMs)+params.FINRTO(c))
		}
		w.wheel.Schedule(id, at)
	}
}

// closeWait is a connection whose response is complete, waiting to close
// (Q7): until the server's FIN is in, the RX pass after loop is over, and
// untilMs, whichever comes last of the two passes and the first of the FIN
// and the time.
type closeWait struct {
	idx     slot
	loop    uint32
	untilMs uint32
	// iss tells the connection from a later one on the same port: a reset
	// may free the entry, and its owner reuse it, before the wait is over.
	iss tcp.Seq
}

// finWaitMs is how long a complete response waits for the server's FIN
// before our close (Q7), when the request asked the server to close:
// nginx sends its FIN microseconds after the response, and a client that
// reads to the server's close (ab) never closes first.
const finWaitMs = 10

// closeResponded closes gracefully the connections whose responses are
// complete (Q7), never in the RX pass that completed them, since the
// server's FIN often comes just past that batch: from CLOSE-WAIT once the
// FIN is in (LAST-ACK follows, and no TIME-WAIT on our side), else from
// ESTABLISHED once the wait for it is over. A connection reset meanwhile
// is left as it is.
func (w *worker) closeResponded() {
	keep := w.closing[:0]
	for _, c := range w.closing {
		en := &w.e.table[c.idx]
		st := en.peek()
		if c.loop == w.loops || st == tcp.Established && int32(w.nowMs-c.untilMs) < 0 {
			keep = append(keep, c)
			continue
		}
		st = en.acquire()
		if en.conn.ISS != c.iss {
			// Another connection took the port meanwhile: ours ended.
			w.release(en, false)
			continue
		}
		switch st {
		case tcp.Established, tcp.CloseWait:
			v := w.e.paramsOf(w.e.pairOf(c.idx)).Close(&en.conn, false, w.nowMs)
			if v.Send {
				w.send(c.idx, &v.Reply)
			}
		}
		w.release(en, false)
		// E8: the FIN's retransmission timer starts now.
		w.notify(c.idx, true)
	}
	w.closing = keep
}
