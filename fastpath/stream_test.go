package fastpath

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// echoServer is linktest's server answering every byte it takes with the
// same bytes: a stream's peer.
func echoServer() *linktest.Server {
	srv := linktest.NewServer()
	srv.Respond = func(req []byte) []byte { return bytes.Clone(req) }
	return srv
}

func dialStream(t *testing.T, srv *linktest.Server, link *linktest.Link) (*Engine, *Conn, func()) {
	t.Helper()
	e, stop := dialOnly(t, testConfig(80, 81), link)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.Dial(ctx, netip.MustParseAddrPort("198.18.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	return e, c, func() { stop() }
}

// A stream's bytes go out in segments of the peer's MSS and come back
// through Read in order (D1); the peer's FIN is Read's EOF (D5), after
// which our FIN goes (CloseWrite) and the engine counts a close.
func TestStreamEcho(t *testing.T) {
	srv := echoServer()
	e, c, stop := dialStream(t, srv, linktest.NewLink(srv.Handle))
	var _ net.Conn = c
	for i, n := range []int{1, 1448, 1449, 10000} {
		want := bytes.Repeat([]byte{byte('a' + i)}, n)
		if _, err := c.Write(want); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("echo of %d bytes: %v, equal %v", n, err, bytes.Equal(got, want))
		}
	}
	// Nothing more comes: the deadline ends the Read as net's does.
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	// The server answers our FIN with its own.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer's FIN: %d, %v", n, err)
	}
	waitFor(t, "the connection's end", func() bool {
		select {
		case <-c.closed:
			return true
		default:
			return false
		}
	})
	st := e.Snapshot()
	if st.Get(CntStreamBytesSent) != 1+1448+1449+10000 || st.Get(CntStreamBytesReceived) != 1+1448+1449+10000 {
		t.Fatalf("stream bytes sent %d received %d", st.Get(CntStreamBytesSent), st.Get(CntStreamBytesReceived))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	stop()
	clean(t, srv)
}

// Close with bytes the application did not read resets the connection
// (D6), and the peer takes the RST; so does Abort.
func TestStreamCloseUnread(t *testing.T) {
	for _, abort := range []bool{false, true} {
		srv := echoServer()
		_, c, stop := dialStream(t, srv, linktest.NewLink(srv.Handle))
		c.Write([]byte("unread"))
		if !abort {
			waitFor(t, "the echo", func() bool {
				c.s.mu.Lock()
				defer c.s.mu.Unlock()
				return len(c.s.rcv) == len("unread")
			})
		}
		var err error
		if abort {
			err = c.Abort()
		} else {
			err = c.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		// Abort returns with the RST queued; the link's peer takes it in
		// its own time (under -race, after the check had run).
		waitFor(t, "the server to take the RST", func() bool { return srv.Resets() >= 1 })
		if srv.Resets() != 1 {
			t.Fatalf("abort %v: the server took %d resets", abort, srv.Resets())
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		stop()
		clean(t, srv)
	}
}

// Frames lost both ways (a seeded 3 %): the stream still carries every
// byte in order, through retransmissions (D2, D3) and kept out-of-order
// data (Q9).
func TestStreamLoss(t *testing.T) {
	srv := echoServer()
	link := linktest.NewLink(srv.Handle)
	link.Loss = 0.03
	e, c, stop := dialStream(t, srv, link)
	defer stop()
	want := make([]byte, 40000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got := make([]byte, len(want))
	c.SetDeadline(time.Now().Add(30 * time.Second))
	go c.Write(want)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		st := e.Snapshot()
		t.Fatalf("read %v, equal %v; lost %d frames, retransmissions %d", err, bytes.Equal(got, want), link.Lost(), st.Get(CntStreamRetrans))
	}
	if link.Lost() == 0 {
		t.Fatal("no frame lost: the test tests nothing")
	}
}

// A stream keeps what comes out of order (Q9), in order, once; the SACK
// block of a segment is the run it joined; two windows at most; RCV.NXT
// reaching the kept data takes it, up to the next hole.
func TestStreamKeep(t *testing.T) {
	c := &Conn{}
	s := &c.s
	s.maxWnd = 1000
	seg := func(n int) []byte { return bytes.Repeat([]byte{byte(n)}, 100) }
	for _, at := range []tcp.Seq{1300, 1100, 1200, 1600, 1100} {
		if !s.keep(at, seg(int(at/100))) {
			t.Fatalf("segment at %d not kept", at)
		}
	}
	if len(s.ooo) != 4 || s.oooBytes != 400 || s.ooo[0].seq != 1100 || s.ooo[3].seq != 1600 {
		t.Fatalf("kept %+v (%d bytes)", s.ooo, s.oooBytes)
	}
	if l, r := s.keptRange(1200); l != 1100 || r != 1400 {
		t.Fatalf("run of 1200: %d-%d, want 1100-1400", l, r)
	}
	if l, r := s.keptRange(1600); l != 1600 || r != 1700 {
		t.Fatalf("run of 1600: %d-%d, want 1600-1700", l, r)
	}
	if s.keep(5000, make([]byte, 1700)) {
		t.Fatal("kept past two windows")
	}
	var w worker
	tc := tcp.Conn{RcvNxt: 1100}
	if !w.drainStream(&tc, c) || tc.RcvNxt != 1400 || len(c.s.rcv) != 300 || len(c.s.ooo) != 1 || c.s.oooBytes != 100 {
		t.Fatalf("drained to %d, %d bytes read, %d kept", tc.RcvNxt, len(c.s.rcv), len(c.s.ooo))
	}
	if c.s.rcv[0] != 11 || c.s.rcv[299] != 13 {
		t.Fatal("the kept bytes came out of order")
	}
}

// The window announced is the receive buffer's free space, at most the
// largest window, and its right edge never moves back (D4): a buffer
// that fills keeps the edge where it was; data that arrives moves the
// window's left edge only.
func TestStreamWindow(t *testing.T) {
	var w worker
	params := tcp.DefaultParams(1500, false) // no window scaling negotiated below
	c := &Conn{}
	c.s.maxWnd = 60000
	tc := tcp.Conn{RcvNxt: 1000}
	c.s.edge = tc.RcvNxt + 60000
	if got := w.streamWindow(c, &tc, &params); got != 60000 {
		t.Fatalf("empty buffer: window %d, want the largest, 60000", got)
	}
	c.s.rcv = make([]byte, streamRcvBuf-10000) // 10000 bytes free
	if got := w.streamWindow(c, &tc, &params); got != 60000 {
		t.Fatalf("buffer filled, nothing arrived: window %d, want 60000 (the edge stays)", got)
	}
	tc.RcvNxt += 55000 // what was announced arrived (the buffer filled by it)
	if got := w.streamWindow(c, &tc, &params); got != 10000 {
		t.Fatalf("after 55000 bytes in: window %d, want the free 10000", got)
	}
	c.s.rcv = make([]byte, streamRcvBuf) // full: the edge holds
	if got := w.streamWindow(c, &tc, &params); got != 10000 {
		t.Fatalf("full buffer: window %d, want 10000 (the edge may not move back)", got)
	}
	tc.RcvNxt += 10000
	if got := w.streamWindow(c, &tc, &params); got != 0 {
		t.Fatalf("full buffer, the window used up: %d, want 0", got)
	}
}
