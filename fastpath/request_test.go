package fastpath

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// httpServer makes srv answer each whole HTTP request (headers ended) with
// a status and a body of n bytes framed by Content-Length.
func httpServer(srv *linktest.Server, status, n int) []byte {
	resp := []byte("HTTP/1.1 " + strconv.Itoa(status) + " X\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n" + strings.Repeat("b", n))
	srv.Respond = func(req []byte) []byte {
		if !bytes.HasSuffix(req, []byte("\r\n\r\n")) {
			return nil
		}
		return resp
	}
	return resp
}

func requestConfig(t *testing.T, keepAlive bool) Config {
	t.Helper()
	req, err := l7.HTTPRequest("GET", "/", "198.18.0.2", keepAlive)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(linktest.ListenPort)
	cfg.Request = &l7.Spec{Request: req}
	return cfg
}

// requestBooks checks request mode's books: each established connection
// made its requests, each request ended once.
func requestBooks(t *testing.T, r *report.Report, perConn uint64) {
	t.Helper()
	q := r.Requests
	if q == nil || q.Requests != q.Completed+q.FailedTotal()+q.InFlight || q.Requests > r.Established*perConn || q.Requests < r.Established {
		t.Fatalf("books: established %d, requests %+v", r.Established, q)
	}
}

// Request mode over two workers, responses of four segments and the
// server's FIN: every request completes with its status, the bytes are the
// server's, the server answered each once, and the strict server saw
// nothing a Linux client would not send (sequence numbers across data,
// RSTs at RCV.NXT after the FIN exchange).
func TestRequestModeBooks(t *testing.T) {
	for _, mode := range []CloseMode{CloseRST, CloseFIN, CloseHold} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := linktest.NewServer()
			srv.CloseAfter = true
			resp := httpServer(srv, 404, 5000)
			links, _ := peerLinks(srv.Handle, 2)
			cfg := requestConfig(t, false)
			cfg.Count, cfg.Close = 500, mode
			r := runEngine(t, cfg, links...)
			clean(t, srv)
			requestBooks(t, r, 1)
			q := r.Requests
			if r.Established != 500 || q.Completed != 500 || q.Status["404"] != 500 || q.Classes["4xx"] != 500 || srv.Requests() != 500 {
				t.Fatalf("established %d, complete %d, status %v, the server answered %d", r.Established, q.Completed, q.Status, srv.Requests())
			}
			if q.ResponseBytes != 500*uint64(len(resp)) || q.TTLB.P50 < q.TTFB.P50 || q.TTFB.P50 <= 0 {
				t.Fatalf("bytes %d (want 500 x %d), ttfb %+v ttlb %+v", q.ResponseBytes, len(resp), q.TTFB, q.TTLB)
			}
			if r.Closed != r.Established || srv.Open() != 0 {
				t.Fatalf("closed %d of %d, server still open %d", r.Closed, r.Established, srv.Open())
			}
			// One time to the first and one to the last byte per response,
			// each within the run.
			if n, m := histCount(q.TTFBHist), histCount(q.TTLBHist); n != 500 || m != 500 || q.TTLB.Max > r.ElapsedSeconds {
				t.Fatalf("%d TTFB and %d TTLB samples for 500 responses, TTLB max %v", n, m, q.TTLB.Max)
			}
			if q.Retransmits != 0 || q.OutOfOrder != 0 || q.WindowProbes != 0 {
				t.Fatalf("a lossless link, and %d request retransmissions, %d out of order, %d window probes", q.Retransmits, q.OutOfOrder, q.WindowProbes)
			}
			// The drain ends when the last request does, not at its 5 s.
			if r.ElapsedSeconds > 3 {
				t.Fatalf("the run took %.1f s", r.ElapsedSeconds)
			}
		})
	}
}

// A request starts at its SYN-ACK's arrival stamp, which may be later
// than the loop's clock: its timer must still be an RTO away (read as
// 137 s in the past, the stamp armed a response deadline long gone, and
// the request went again at once).
func TestRequestModeLateStamps(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	httpServer(srv, 200, 10)
	links, loops := peerLinks(srv.Handle, 1)
	loops[0].Clock, loops[0].Delay, loops[0].Stamp, loops[0].Late = clk, 2*time.Millisecond, true, 300*time.Microsecond
	cfg := requestConfig(t, false)
	cfg.Count, cfg.Rate = 200, 1000
	r := runClocked(t, cfg, clk, links, nil, loops...)
	clean(t, srv)
	requestBooks(t, r, 1)
	if q := r.Requests; q.Completed != 200 || q.Retransmits != 0 || r.RxStamped == 0 {
		t.Fatalf("complete %d, request retransmissions %d, stamped %d", q.Completed, q.Retransmits, r.RxStamped)
	}
}

// histCount is the number of samples in a report's histogram.
func histCount(h []report.Bucket) uint64 {
	var n uint64
	for _, b := range h {
		n += b.Count
	}
	return n
}

// Keep-alive: four requests per connection, each after the previous
// response; the server keeps the connection, the client closes it (fin).
func TestRequestModeKeepAlive(t *testing.T) {
	srv := linktest.NewServer()
	httpServer(srv, 200, 3000)
	cfg := requestConfig(t, true)
	cfg.Count, cfg.RequestsPerConn, cfg.Close = 300, 4, CloseFIN
	r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
	clean(t, srv)
	requestBooks(t, r, 4)
	if q := r.Requests; q.Requests != 1200 || q.Completed != 1200 || srv.Requests() != 1200 || q.PerConnection != 4 {
		t.Fatalf("requests %d, complete %d, the server answered %d", q.Requests, q.Completed, srv.Requests())
	}
	if r.Closed != r.Established || srv.Open() != 0 {
		t.Fatalf("closed %d of %d, server still open %d", r.Closed, r.Established, srv.Open())
	}
}

// 5 % loss both ways on the engine clock: requests are retransmitted on
// their RTO, every request ends once, and none is left in flight.
func TestRequestModeLoss(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	srv.CloseAfter = true
	httpServer(srv, 200, 100)
	links, loops := peerLinks(srv.Handle, 1)
	loops[0].Loss = 0.05
	cfg := requestConfig(t, false)
	cfg.Count, cfg.Rate, cfg.Drain = 1000, 10000, 30*time.Second
	cfg.Params.SynRetries = 3
	cfg.ResponseTimeout = 20 * time.Second
	r := runClocked(t, cfg, clk, links, nil, loops...)
	requestBooks(t, r, 1)
	q := r.Requests
	// The server answers a request sent again with its response again,
	// so every request completes within the 20 s response timeout.
	if q.InFlight != 0 || q.Retransmits == 0 || q.Completed != r.Established {
		t.Fatalf("established %d: %+v", r.Established, q)
	}
	if srv.Requests() < q.Completed {
		t.Fatalf("the server answered %d requests, %d complete", srv.Requests(), q.Completed)
	}
}

// A server that never answers: each request fails with ETIMEDOUT once the
// response timeout has passed since it was sent (engine clock), after its
// RTO-driven retransmissions stopped mattering; the books balance.
func TestRequestModeResponseTimeout(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	srv.Respond = func([]byte) []byte { return nil }
	links, loops := peerLinks(srv.Handle, 1)
	cfg := requestConfig(t, false)
	cfg.Count, cfg.ResponseTimeout = 100, 700*time.Millisecond
	r := runClocked(t, cfg, clk, links, nil, loops...)
	clean(t, srv)
	requestBooks(t, r, 1)
	q := r.Requests
	if r.Established != 100 || q.Failed["ETIMEDOUT"] != 100 || q.Completed != 0 || q.Retransmits != 0 || q.OutOfOrder != 0 {
		t.Fatalf("established %d: %+v", r.Established, q)
	}
	if r.RSTSent != 100 || srv.Resets() != 100 || srv.Open() != 0 {
		t.Fatalf("RSTs sent %d, taken %d, server still open %d", r.RSTSent, srv.Resets(), srv.Open())
	}
	if el := time.Duration(r.ElapsedSeconds * 1e9); el < 700*time.Millisecond || el > 2*time.Second {
		t.Fatalf("the run took %v of engine time for a 700 ms response timeout", el)
	}
}

// Request mode needs handshakes, a valid request and bounded times.
func TestRequestConfigChecked(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Close = CloseSYNOnly },
		func(c *Config) { c.Request.Request = nil },
		func(c *Config) { c.ResponseTimeout = 121 * time.Second },
		func(c *Config) { c.RequestsPerConn = -1 },
	} {
		cfg := requestConfig(t, false)
		mod(&cfg)
		if err := cfg.Validate(1); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
	cfg := requestConfig(t, false)
	cfg.RequestsPerConn, cfg.ResponseTimeout = MaxRequestsPerConn, MaxResponseTimeout
	if err := cfg.Validate(1); err != nil {
		t.Errorf("the bounds themselves: %v", err)
	}
	cfg.RequestsPerConn++
	if err := cfg.Validate(1); err == nil {
		t.Error("one request per connection too many accepted")
	}
}

// sinkLink is a Link that sends nowhere and allocates nothing: TX frames
// come back at once.
type sinkLink struct{ umem []byte }

func (l *sinkLink) UMEM() []byte           { return l.umem }
func (l *sinkLink) FrameSize() int         { return 2048 }
func (l *sinkLink) Receive([]xsk.Desc) int { return 0 }
func (l *sinkLink) Recycle([]xsk.Desc)     {}
func (l *sinkLink) Alloc(addrs []uint64) int {
	n := min(len(addrs), len(l.umem)/2048) // as many frames as its UMEM has
	for i := range addrs[:n] {
		addrs[i] = uint64(i) * 2048
	}
	return n
}
func (l *sinkLink) Free([]uint64)                 {}
func (l *sinkLink) Transmit(descs []xsk.Desc) int { return len(descs) }
func (l *sinkLink) Kick() error                   { return nil }
func (l *sinkLink) Complete() int                 { return 0 }
func (l *sinkLink) Poll(int) bool                 { return false }
func (l *sinkLink) Err() error                    { return nil }

// sinkAttempt is an engine for cfg on a sinkLink, its worker after one
// attempt's SYN (entry idx, connection c), and the server's path to it.
func sinkAttempt(t *testing.T, cfg Config) (w *worker, idx slot, c *tcp.Conn, srv *tcp.Path) {
	t.Helper()
	e, err := New(cfg, []Link{&sinkLink{umem: make([]byte, 2048*64*2)}})
	if err != nil {
		t.Fatal(err)
	}
	w = e.workers[0]
	w.nowNs, w.nowMs = 1e9, 1000
	port := cfg.PortLo
	idx = e.slotOf(0, port)
	w.sets[0].Set(port, true)
	if !w.open(idx, 0, port, false, w.nowNs) {
		t.Fatal("no SYN")
	}
	srv = &tcp.Path{SrcMAC: cfg.Targets[0].DstMAC, DstMAC: cfg.SrcMAC, Src: [4]byte{198, 18, 0, 2}, Dst: [4]byte{198, 18, 0, 1},
		SrcPort: cfg.Targets[0].Addr.Port(), DstPort: port}
	return w, idx, &e.table[idx].conn, srv
}

// sinkSynAck is the server's SYN-ACK to sinkAttempt's SYN (c's), as Linux
// sends it (DefaultParams' options, MSS 1460, window 65160).
func sinkSynAck(c *tcp.Conn, srv *tcp.Path) []byte {
	params := tcp.DefaultParams(1500, false)
	b := make([]byte, tcp.MaxReplyLen)
	return b[:tcp.Build(b, srv, &tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 5000, Ack: c.ISS + 1, Window: 65160, SYNOpts: &params, MSS: 1460, TSVal: 1})]
}

// The request path allocates nothing per segment: a response segment read
// (in order, ACKed, the reader fed), one out of order, and a request's
// timer expiring (its tail loss probe, then the RTO resending it).
func TestRequestHotPathAllocatesNothing(t *testing.T) {
	cfg := requestConfig(t, false)
	// A response that never ends, so that every segment is read.
	cfg.Request.Framing, cfg.Request.Expect, cfg.Request.MaxResponse = l7.Substring, []byte("never"), 1<<31
	cfg.Count, cfg.ResponseTimeout = 1, 100*time.Second
	w, idx, c, srv := sinkAttempt(t, cfg)
	build := func(r tcp.Reply) []byte {
		b := make([]byte, tcp.MaxReplyLen+len(r.Payload))
		return b[:tcp.Build(b, srv, &r)]
	}
	w.frame(sinkSynAck(c, srv))
	w.deliver()
	if c.State != tcp.Established || w.exchange(idx) == nil {
		t.Fatalf("state %v", c.State)
	}
	ack := c.ISS + 1 + tcp.Seq(len(cfg.Request.Request))
	var frames [][]byte
	for i := 0; i < 400; i++ {
		seq := tcp.Seq(5001 + 100*(i/2))
		if i%2 == 1 {
			seq += 1 << 20 // out of order
		}
		frames = append(frames, build(tcp.Reply{Flags: tcp.FlagACK | tcp.FlagPSH, Seq: seq, Ack: ack, Window: 502,
			TS: true, TSVal: uint32(2 + i), Payload: bytes.Repeat([]byte("x"), 100)}))
	}
	k := 0
	read := testing.AllocsPerRun(100, func() {
		w.frame(frames[k])
		k++
		w.flush()
		w.deliver()
	})
	ex := w.exchange(idx)
	ex.x.SndUna = ex.x.Start // as if the request were not acknowledged
	x0, got := ex.x, ex.resp.Got
	timer := testing.AllocsPerRun(100, func() {
		ex.x = x0 // something to resend each time
		c.Retrans = 0
		w.examine(idx, true, false)
		w.flush()
	})
	if read != 0 || timer != 0 {
		t.Fatalf("allocations: %v per response segment, %v per timer expiry", read, timer)
	}
	if got == 0 || w.c[CntOutOfOrder] == 0 || w.c[CntRequestRetrans] == 0 {
		t.Fatalf("read %d bytes, %d out of order, %d retransmissions: the paths were not taken", got, w.c[CntOutOfOrder], w.c[CntRequestRetrans])
	}
}

// The request report from the counters: exact codes at both ends of the
// range and their classes, failures by name, rates over the measured
// window, and the text lines (bytes in B to GB, failures in brackets).
func TestRequestReportParts(t *testing.T) {
	e, err := New(requestConfig(t, false), []Link{&sinkLink{umem: make([]byte, 2048*64*2)}})
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	s.Counters[CntRequests] = 12
	s.Counters[CntResponses] = 9
	s.Counters[StatusCounter(100)] = 1
	s.Counters[StatusCounter(599)] = 3
	s.Counters[StatusCounter(200)] = 5
	s.Counters[ResponseFailedCounter(respTruncated)] = 2
	s.Counters[CntResponseBytes] = 2_500_000_000
	e.respStart, e.respEnd, e.bytesStart, e.bytesEnd = 1, 9, 500_000_000, 2_500_000_000
	q := e.requestReport(&s, 2)
	if q.Status["100"] != 1 || q.Status["599"] != 3 || q.Status["200"] != 5 || len(q.Status) != 3 {
		t.Fatalf("status %v", q.Status)
	}
	if q.Classes["1xx"] != 1 || q.Classes["5xx"] != 3 || q.Classes["2xx"] != 5 || len(q.Classes) != 3 {
		t.Fatalf("classes %v", q.Classes)
	}
	if q.Failed["EOF"] != 2 || len(q.Failed) != 1 || q.InFlight != 1 || q.FailedTotal() != 2 {
		t.Fatalf("failed %v, in flight %d", q.Failed, q.InFlight)
	}
	if q.PerSecond != 4 || q.BytesPerSecond != 1e9 || q.PerConnection != 1 {
		t.Fatalf("%v/s, %v B/s", q.PerSecond, q.BytesPerSecond)
	}
	var b strings.Builder
	(&report.Report{Requests: q}).WriteText(&b)
	for _, want := range []string{"12: 9 complete, 2 failed [EOF=2], 1 in flight", "100=1 200=5 599=3", "4 responses/s, 1.0 GB/s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	if q := e.requestReport(&s, 0); q.PerSecond != 0 || q.BytesPerSecond != 0 {
		t.Fatalf("no window, and %v/s", q.PerSecond)
	}
}

// Responses the reader ends in each way, from the strict server: the
// close completes a close-delimited one, cuts a short one (EOF); garbage
// (EBADMSG) and headers past the limit (EMSGSIZE) fail; every connection
// is closed and the server saw nothing a Linux client would not send.
// Statuses 599 and 600: both complete, only the first is counted by code.
func TestRequestModeOutcomes(t *testing.T) {
	cases := []struct {
		name, resp string
		outcome    string // "" for complete
		status     string
	}{
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nuntil the close", "", "200"},
		{"short", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", "EOF", ""},
		{"garbage", "SSH-2.0-OpenSSH\r\n", "EBADMSG", ""},
		{"long headers", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("h", 200) + "\r\n\r\n", "EMSGSIZE", ""},
		{"status 599", "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", "", "599"},
		{"status 600", "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", "", "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := linktest.NewServer()
			srv.CloseAfter = true
			srv.Respond = func(req []byte) []byte {
				if !bytes.HasSuffix(req, []byte("\r\n\r\n")) {
					return nil
				}
				return []byte(tc.resp)
			}
			cfg := requestConfig(t, false)
			cfg.Count = 50
			cfg.Request.MaxHeader = 128
			r := runEngine(t, cfg, linktest.NewLink(srv.Handle))
			clean(t, srv)
			requestBooks(t, r, 1)
			q := r.Requests
			switch {
			case tc.outcome != "":
				if q.Failed[tc.outcome] != 50 || q.Completed != 0 {
					t.Fatalf("complete %d, failed %v: want 50 %s", q.Completed, q.Failed, tc.outcome)
				}
			case tc.status == "-":
				if q.Completed != 50 || len(q.Status) != 0 {
					t.Fatalf("complete %d, status %v: want 50, none counted by code", q.Completed, q.Status)
				}
			default:
				if q.Completed != 50 || q.Status[tc.status] != 50 {
					t.Fatalf("complete %d, status %v, failed %v", q.Completed, q.Status, q.Failed)
				}
			}
			if r.Closed != r.Established || srv.Open() != 0 {
				t.Fatalf("closed %d of %d, server still open %d", r.Closed, r.Established, srv.Open())
			}
		})
	}
}

// A request larger than a frame holds goes in frame-sized segments, even
// when the peer's MSS (a jumbo MTU) would allow more.
func TestRequestSegmentsFitFrames(t *testing.T) {
	cfg := requestConfig(t, false)
	cfg.Request.Request = bytes.Repeat([]byte("r"), 5000)
	cfg.Params = tcp.DefaultParams(9000, false)
	w, _, c, srv := sinkAttempt(t, cfg)
	b := make([]byte, tcp.MaxReplyLen)
	w.flush()
	w.frame(b[:tcp.Build(b, srv, &tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 5000, Ack: c.ISS + 1, Window: 65535,
		SYNOpts: &cfg.Params, MSS: 8960, TSVal: 1})])
	var sizes []int
	for _, d := range w.tx[:w.txN] {
		var pk tcp.Packet
		if tcp.Parse(w.umem[d.Addr:d.Addr+uint64(d.Len)], &pk) == tcp.KindTCP && len(pk.Payload) > 0 {
			sizes = append(sizes, len(pk.Payload))
		}
	}
	room := 2048 - tcp.MaxReplyLen
	if len(sizes) != 3 || sizes[0] != room || sizes[1] != room || sizes[2] != 5000-2*room {
		t.Fatalf("segments of %v bytes, want %d, %d, %d", sizes, room, room, 5000-2*room)
	}
}

// Q8: the client acknowledges a run of response segments that reach it in
// one batch with one ACK, of the last byte (as Linux does a GRO'd run),
// and never merges duplicate ACKs: with the response's first segment lost,
// the three segments after it each get their own duplicate ACK, the
// server's signal to retransmit. Q9: they are kept, with SACK blocks that
// grow over them, so the lost segment alone, sent again as a SACK-aware
// server does, completes the response (ACKed to its end at once).
func TestRequestACKPerBatch(t *testing.T) {
	for _, lose := range []bool{false, true} {
		t.Run(map[bool]string{false: "in order", true: "first segment lost"}[lose], func(t *testing.T) {
			srv := linktest.NewServer()
			resp := httpServer(srv, 200, 5000) // 4 segments
			var mu sync.Mutex
			var acks []tcp.Seq // the client's pure ACKs after its request
			var sacks [][2]tcp.Seq
			var irs tcp.Seq
			var resent [][]byte // the lost segment, sent again at the third duplicate ACK
			requested, lost := false, false
			peer := func(f []byte) [][]byte {
				var pk tcp.Packet
				if tcp.ParseWith(f, &pk, 0) == tcp.KindTCP {
					mu.Lock()
					switch {
					case len(pk.Payload) > 0:
						requested = true
					case requested && pk.Seg.Flags == tcp.FlagACK:
						acks = append(acks, pk.Seg.Ack)
						if l, r, ok := firstSACK(f); ok {
							sacks = append(sacks, [2]tcp.Seq{l, r})
						}
						if len(acks) == 3 && resent != nil {
							// The server's fast retransmit, from the lost
							// segment on (the linktest server has no timers).
							out := resent
							resent = nil
							mu.Unlock()
							return out
						}
					}
					mu.Unlock()
				}
				out := srv.Handle(f)
				var pk2 tcp.Packet
				for i, o := range out {
					if tcp.ParseWith(o, &pk2, 0) != tcp.KindTCP || len(pk2.Payload) == 0 {
						continue
					}
					mu.Lock()
					irs = pk2.Seg.Seq - 1 // the first segment's sequence: IRS+1
					drop := lose && !lost
					lost = lost || drop
					mu.Unlock()
					if drop {
						resent = [][]byte{bytes.Clone(o)}
						return append(out[:i:i], out[i+1:]...)
					}
					break
				}
				return out
			}
			links, _ := peerLinks(peer, 1)
			cfg := requestConfig(t, false)
			cfg.Count, cfg.Close = 1, CloseRST
			r := runEngine(t, cfg, links...)
			clean(t, srv)
			mu.Lock()
			defer mu.Unlock()
			if r.Requests.Completed != 1 {
				t.Fatalf("complete %d", r.Requests.Completed)
			}
			end := irs + 1 + tcp.Seq(len(resp))
			if !lose {
				if len(acks) != 1 || acks[0] != end || r.Requests.ACKsMerged != 3 {
					t.Fatalf("ACKs %v (want one, of %d), merged %d", acks, end, r.Requests.ACKsMerged)
				}
				return
			}
			// Three duplicates of IRS+1, each its own frame, whose SACK
			// blocks grow over the kept segments; then one ACK of the
			// whole response once the lost segment came.
			seg := tcp.Seq(1448)
			want := [][2]tcp.Seq{{irs + 1 + seg, irs + 1 + 2*seg}, {irs + 1 + seg, irs + 1 + 3*seg}, {irs + 1 + seg, end}}
			if len(acks) != 4 || acks[0] != irs+1 || acks[1] != irs+1 || acks[2] != irs+1 || acks[3] != end ||
				len(sacks) != 3 || sacks[0] != want[0] || sacks[1] != want[1] || sacks[2] != want[2] {
				t.Fatalf("ACKs %v with SACK blocks %v: want 3 duplicates of %d with %v, then %d", acks, sacks, irs+1, want, end)
			}
			if q := r.Requests; q.OutOfOrder != 3 || q.Kept != 3 {
				t.Fatalf("out of order %d, kept %d", q.OutOfOrder, q.Kept)
			}
		})
	}
}

// firstSACK is the first SACK block of an IPv4 TCP frame.
func firstSACK(f []byte) (l, r tcp.Seq, ok bool) {
	ip := f[14:]
	th := ip[int(ip[0]&0xf)*4:]
	opts := th[20 : int(th[12]>>4)*4]
	for len(opts) >= 2 {
		switch opts[0] {
		case tcp.OptEOL:
			return 0, 0, false
		case tcp.OptNOP:
			opts = opts[1:]
			continue
		}
		n := int(opts[1])
		if n < 2 || n > len(opts) {
			return 0, 0, false
		}
		if opts[0] == tcp.OptSACK && n >= 10 {
			return tcp.Seq(binary.BigEndian.Uint32(opts[2:])), tcp.Seq(binary.BigEndian.Uint32(opts[6:])), true
		}
		opts = opts[n:]
	}
	return 0, 0, false
}

// Q9's store: segments are kept in sequence order whatever order they
// came in, a retransmission of a kept one takes no second slot, the SACK
// run is the contiguous kept data around a segment, RCV.NXT drains only
// up to the next hole, and every slot is free again when the request
// ends; a full store keeps nothing more.
func TestKeptStore(t *testing.T) {
	cfg := requestConfig(t, false)
	cfg.Request = &l7.Spec{Request: []byte("x"), Framing: l7.Bytes, ExpectBytes: 1000} // any bytes are response
	w, idx, c, _ := sinkAttempt(t, cfg)
	ex := &w.e.ex[idx]
	*ex = exState{on: true, n: 1}
	c.State = tcp.Established
	base := c.RcvNxt
	data := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 100) }
	at := func(i int) tcp.Seq { return base + tcp.Seq(100*i) }
	for _, i := range []int{3, 1, 2, 5, 3} {
		if !w.keep(&ex.kept, at(i), data(i)) {
			t.Fatalf("segment %d not kept", i)
		}
	}
	if n := keptSlots - len(w.kept.free); n != 4 {
		t.Fatalf("%d slots taken for 4 segments", n)
	}
	if l, r := w.keptRange(ex.kept, at(2)); l != at(1) || r != at(4) {
		t.Fatalf("run around segment 2: [%d, %d), want [%d, %d)", l-base, r-base, 100, 400)
	}
	if l, r := w.keptRange(ex.kept, at(5)); l != at(5) || r != at(6) {
		t.Fatalf("run around segment 5: [%d, %d)", l-base, r-base)
	}
	// Segment 0 arrives in order: 1 to 3 drain, 5 waits behind the hole at 4.
	c.RcvNxt = at(1)
	ex.resp = l7.Response{}
	if _, took := w.drainKept(&w.e.table[idx], ex); !took || c.RcvNxt != at(4) || ex.kept == 0 {
		t.Fatalf("drained to %d, kept left %v", c.RcvNxt-base, ex.kept != 0)
	}
	if got := w.kept.bytes(ex.kept - 1); !bytes.Equal(got, data(5)) {
		t.Fatalf("left %q", got)
	}
	w.endExchange(ex)
	if len(w.kept.free) != keptSlots || ex.kept != 0 {
		t.Fatalf("%d of %d slots free after the request ended", len(w.kept.free), keptSlots)
	}
	w.kept.free = w.kept.free[:0]
	if w.keep(&ex.kept, at(7), data(7)) {
		t.Fatal("kept with no free slot")
	}
}

// The server resets the connection instead of answering the request: the
// request fails ECONNRESET, the connection is counted reset by the peer,
// and nothing more leaves for it (no ACK, no RST of ours, no request
// retransmission), in every close mode.
func TestRequestResetByServer(t *testing.T) {
	for _, mode := range []CloseMode{CloseRST, CloseFIN, CloseHold} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := linktest.NewServer()
			httpServer(srv, 200, 10)
			var mu sync.Mutex
			reset := map[uint16]bool{}
			after := 0 // our segments on a port after its RST
			l := linktest.NewLink(func(f []byte) [][]byte {
				var pk tcp.Packet
				if tcp.Parse(f, &pk) != tcp.KindTCP {
					return srv.Handle(f)
				}
				mu.Lock()
				defer mu.Unlock()
				if reset[pk.SrcPort] {
					after++
					return nil
				}
				if len(pk.Payload) == 0 {
					return srv.Handle(f)
				}
				reset[pk.SrcPort] = true
				srv.Handle(f) // the server's books: it had the request
				return [][]byte{replyTo(&pk, &tcp.Reply{Flags: tcp.FlagRST | tcp.FlagACK, Seq: pk.Seg.Ack,
					Ack: pk.Seg.Seq + tcp.Seq(len(pk.Payload)), TTL: 64})}
			})
			cfg := requestConfig(t, false)
			cfg.Count, cfg.Close = 20, mode
			r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
			requestBooks(t, r, 1)
			q := r.Requests
			if q.Failed["ECONNRESET"] != 20 || q.Completed != 0 || r.Reset != 20 || r.RSTSent != 0 {
				t.Fatalf("requests %+v; reset by the peer %d, RSTs sent %d", q, r.Reset, r.RSTSent)
			}
			mu.Lock()
			defer mu.Unlock()
			if after != 0 {
				t.Fatalf("%d segments sent after the server's RST", after)
			}
		})
	}
}

// Keep-alive timing: each request is timed from its own send, not from the
// connection's first request or its SYN. Over a 2 ms round trip, the
// fourth request of a connection has the same time to first byte as the
// first (timed from the connection's first request it would be 8 ms).
func TestRequestKeepAliveTimedPerRequest(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	httpServer(srv, 200, 10)
	links, loops := peerLinks(srv.Handle, 1)
	loops[0].Clock, loops[0].Delay = clk, 2*time.Millisecond
	cfg := requestConfig(t, true)
	cfg.Count, cfg.RequestsPerConn, cfg.Close = 20, 4, CloseFIN
	r := runClocked(t, cfg, clk, links, nil, loops...)
	clean(t, srv)
	requestBooks(t, r, 4)
	q := r.Requests
	if q.Completed != 80 || histCount(q.TTFBHist) != 80 || histCount(q.TTLBHist) != 80 {
		t.Fatalf("complete %d, TTFB samples %d, TTLB samples %d", q.Completed, histCount(q.TTFBHist), histCount(q.TTLBHist))
	}
	// One round trip of 2 ms each (the clock steps a millisecond a loop).
	if q.TTFB.Max > 0.0035 || q.TTFB.P50 < 0.0015 || q.TTLB.Max > 0.0035 {
		t.Fatalf("TTFB p50 %v max %v, TTLB max %v s: want every request one 2 ms round trip", q.TTFB.P50, q.TTFB.Max, q.TTLB.Max)
	}
}
