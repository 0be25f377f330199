package xdpconnect_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// pattern is n bytes of a seeded generator: what each side sends.
func pattern(seed uint64, n int) []byte {
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

func dialSession(t *testing.T, l *lab.Lab, dst ...netip.AddrPort) *xdpconnect.Session {
	t.Helper()
	s, err := xdpconnect.Open(context.Background(), xdpconnect.Options{Netns: l.ClientNS, Targets: dst})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial is s.Dial(dst) within 10 s, or the test's end.
func dial(t *testing.T, s *xdpconnect.Session, dst netip.AddrPort) *fastpath.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Dial(ctx, dst)
	if err != nil {
		t.Fatalf("dial %s: %v", dst, err)
	}
	return c
}

// A Dial'ed connection is a socket: exchanges both ways of any size
// (one byte to several windows), over IPv4 and IPv6; our CloseWrite is
// the server's EOF and its close is ours; deadlines time out as net's do.
func TestConnExchanges(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	const port = 9300
	echo := func(c *net.TCPConn) { io.Copy(c, c) } // ends at our FIN, then closes
	testutil.ServeIn(t, l.ServerNS, netip.AddrPortFrom(l.ServerAddr, port), net.ListenConfig{}, echo)
	testutil.ServeIn(t, l.ServerNS, netip.AddrPortFrom(l.ServerAddr6, port), net.ListenConfig{}, echo)
	dst4, dst6 := netip.AddrPortFrom(l.ServerAddr, port), netip.AddrPortFrom(l.ServerAddr6, port)
	s := dialSession(t, l, dst4, dst6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, dst := range []netip.AddrPort{dst4, dst6} {
		c, err := s.Dial(ctx, dst)
		if err != nil {
			t.Fatalf("dial %s: %v", dst, err)
		}
		if got := c.RemoteAddr().String(); got != net.TCPAddrFromAddrPort(dst).String() {
			t.Fatalf("RemoteAddr %s, want %s", got, dst)
		}
		for i, n := range []int{1, 100, 1448, 1449, 65535, 300_000} {
			want := pattern(uint64(i), n)
			go c.Write(want)
			got := make([]byte, n)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("%s: exchange %d (%d bytes): %v", dst, i, n, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: exchange %d (%d bytes): echo differs", dst, i, n)
			}
		}
		// Nothing more comes: a deadline in the past times the Read out.
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s: read past the deadline: %v", dst, err)
		}
		c.SetReadDeadline(time.Time{})
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("%s: write after CloseWrite: %v, want EPIPE", dst, err)
		}
		// The server's io.Copy sees our FIN, returns, and closes.
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("%s: read after the server's close: %d, %v; want EOF", dst, n, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%s: read after Close: %v", dst, err)
		}
	}
	st := s.Stats()
	if st.Get(fastpath.CntStreamRetrans) != 0 {
		t.Logf("retransmissions on a lossless link: %d", st.Get(fastpath.CntStreamRetrans))
	}
}

// A server reset ends Read with ECONNRESET; unread data at our Close
// resets the server's connection, as Linux's close does.
func TestConnResets(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	const port = 9301
	got := make(chan error, 1)
	testutil.ServeIn(t, l.ServerNS, netip.AddrPortFrom(l.ServerAddr, port), net.ListenConfig{}, func(c *net.TCPConn) {
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil {
			got <- err
			return
		}
		switch string(b) {
		case "reset":
			c.SetLinger(0) // RST on close
		case "talk!":
			c.Write([]byte("unread"))
			_, err := c.Read(b) // our Close with "unread" unread: RST
			got <- err
		}
	})
	dst := netip.AddrPortFrom(l.ServerAddr, port)
	s := dialSession(t, l, dst)
	c := dial(t, s, dst)
	c.Write([]byte("reset"))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the server's RST: %v, want ECONNRESET", err)
	}
	if _, err := c.Write([]byte("more")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write after the server's RST: %v, want ECONNRESET", err)
	}
	c.Close()
	c = dial(t, s, dst)
	c.Write([]byte("talk!"))
	deadline := time.Now().Add(5 * time.Second)
	for st := s.Stats(); st.Get(fastpath.CntStreamBytesReceived) < 6 && time.Now().Before(deadline); st = s.Stats() {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	if err := testutil.Await(t, got, 5*time.Second, "the server's read"); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server read after our Close with unread data: %v, want ECONNRESET", err)
	}
}

// bulk sends n bytes each way at once through the engine and compares
// SHA-256 digests of what each side received with what the other sent.
func bulk(t *testing.T, l *lab.Lab, port int, n int) (elapsed time.Duration) {
	t.Helper()
	up, down := pattern(1, n), pattern(2, n)
	serverGot := make(chan [32]byte, 1)
	testutil.ServeIn(t, l.ServerNS, netip.AddrPortFrom(l.ServerAddr, uint16(port)), net.ListenConfig{}, func(c *net.TCPConn) {
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			c.Write(down)
			c.CloseWrite()
		}()
		h := sha256.New()
		io.Copy(h, c)
		serverGot <- [32]byte(h.Sum(nil))
		<-sent // before the handler's close
	})
	dst := netip.AddrPortFrom(l.ServerAddr, uint16(port))
	s := dialSession(t, l, dst)
	c := dial(t, s, dst)
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(150 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(up)
		if err == nil {
			err = c.CloseWrite()
		}
		wrote <- err
	}()
	h := sha256.New()
	m, err := io.Copy(h, c)
	if err != nil || int(m) != n {
		t.Fatalf("received %d of %d bytes: %v (stats %s)", m, n, err, streamStats(s))
	}
	if err := testutil.Await(t, wrote, 150*time.Second, "our writes"); err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(down) {
		t.Fatal("the server's bytes arrived changed")
	}
	if got := testutil.Await(t, serverGot, 150*time.Second, "the server's digest"); got != sha256.Sum256(up) {
		t.Fatal("our bytes arrived at the server changed")
	}
	el := time.Since(start)
	t.Logf("%d MB each way in %v: %.0f Mbit/s each way; %s", n>>20, el.Round(time.Millisecond), float64(n)*8/el.Seconds()/1e6, streamStats(s))
	return el
}

func streamStats(s *xdpconnect.Session) string {
	st := s.Stats()
	return fmt.Sprintf("sent %d received %d retrans %d updates %d probes %d txdropped %d", st.Get(fastpath.CntStreamBytesSent),
		st.Get(fastpath.CntStreamBytesReceived), st.Get(fastpath.CntStreamRetrans), st.Get(fastpath.CntWindowUpdates), st.Get(fastpath.CntWindowProbes), st.Get(fastpath.CntTxDropped))
}

// 100 MB each way at once, with 1 % of the frames lost each way (nftables
// on the server): what arrives is what was sent, both ways.
func TestConnBulkLoss(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	const port = 9302
	testutil.Nft(t, l.ServerNS, fmt.Sprintf(`table inet loss {
  chain in { type filter hook input priority 0; tcp dport %d numgen random mod 100 < 1 drop; }
  chain out { type filter hook output priority 0; tcp sport %d numgen random mod 100 < 1 drop; }
}`, port, port))
	n := 100 << 20
	if testing.Short() {
		n = 10 << 20
	}
	bulk(t, l, port, n)
}

func TestConnBulk(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	bulk(t, l, 9303, 100<<20)
}

// startNginx runs Debian's nginx in ns on addr until the test ends.
func startNginx(t *testing.T, ns string, addr netip.AddrPort) *lab.Nginx {
	t.Helper()
	return testutil.Nginx(t, func(dir string) (*lab.Nginx, error) { return lab.StartNginx(ns, addr, dir, "") })
}

// net/http over the session against nginx: every status and body as
// nginx serves them, kept-alive connections and one per request, and
// nginx counts the requests and connections we made, no more.
func TestHTTPOverSession(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	dst := netip.AddrPortFrom(l.ServerAddr, 80)
	ng := startNginx(t, l.ServerNS, dst)
	acc0, req0, err := ng.Stats()
	if err != nil {
		t.Fatal(err)
	}
	s := dialSession(t, l, dst)
	var dials atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return s.DialContext(ctx, network, addr)
	}
	pages := []struct {
		path   string
		status int
		size   int
	}{{"/", 200, 3}, {"/empty", 200, 0}, {"/1k", 200, 1024}, {"/16k", 200, 16 << 10}, {"/64k", 200, 64 << 10},
		{"/chunked.html", 200, len("chunked /chunked.html end\n")}, {"/missing", 404, -1}}
	requests := 0
	for _, keepAlive := range []bool{true, false} {
		tr := &http.Transport{DialContext: dial, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 2}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for i := range 5 * len(pages) {
			pg := pages[i%len(pages)]
			resp, err := client.Get("http://" + dst.String() + pg.path)
			if err != nil {
				t.Fatalf("GET %s (keep-alive %v): %v", pg.path, keepAlive, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			requests++
			if err != nil || resp.StatusCode != pg.status || pg.size >= 0 && len(body) != pg.size {
				t.Fatalf("GET %s: status %d, %d bytes, %v; want %d, %d bytes", pg.path, resp.StatusCode, len(body), err, pg.status, pg.size)
			}
		}
		tr.CloseIdleConnections()
	}
	acc, req, err := ng.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if int(req-req0) != requests || int64(acc-acc0) != dials.Load() {
		t.Fatalf("nginx served %d requests on %d connections; we made %d on %d", req-req0, acc-acc0, requests, dials.Load())
	}
	if dials.Load() < int64(requests/2) || dials.Load() >= int64(requests) {
		t.Logf("connections %d for %d requests", dials.Load(), requests)
	}
}

// DialContext's errors are net's: *net.OpError around the kernel's errno,
// an unknown network, an address that is not a target.
func TestDialContextErrors(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	closed := netip.AddrPortFrom(l.ServerAddr, 9304)
	s := dialSession(t, l, closed)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var oe *net.OpError
	if _, err := s.DialContext(ctx, "tcp", closed.String()); !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("closed port: %v", err)
	}
	if _, err := s.DialContext(ctx, "tcp6", closed.String()); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("an IPv4 target over tcp6: %v", err)
	}
	if _, err := s.DialContext(ctx, "udp", closed.String()); !errors.As(err, new(net.UnknownNetworkError)) {
		t.Fatalf("udp: %v", err)
	}
	if _, err := s.DialContext(ctx, "tcp", netip.AddrPortFrom(l.ServerAddr, 9305).String()); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("not a target: %v", err)
	}
}

// An application that does not read closes the window we announce: the
// server stops at the receive buffer (256 KiB, plus at most one window
// in flight), probes the zero window, and resumes on the window update
// our Read sends; nothing is lost.
func TestConnReceiveWindow(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	const port, n = 9306, 4 << 20
	down := pattern(3, n)
	testutil.ServeIn(t, l.ServerNS, netip.AddrPortFrom(l.ServerAddr, port), net.ListenConfig{}, func(c *net.TCPConn) { c.Write(down) })
	dst := netip.AddrPortFrom(l.ServerAddr, port)
	s := dialSession(t, l, dst)
	c := dial(t, s, dst)
	defer c.Close()
	time.Sleep(500 * time.Millisecond) // the server fills what we announce
	st := s.Stats()
	if got := st.Get(fastpath.CntStreamBytesReceived); got > 320<<10 || got < 200<<10 {
		t.Fatalf("%d bytes taken while nobody read: want the 256 KiB buffer", got)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, down) {
		t.Fatalf("read %d of %d bytes (%v), equal %v", len(got), n, err, bytes.Equal(got, down))
	}
	if st := s.Stats(); st.Get(fastpath.CntWindowUpdates) == 0 {
		t.Fatal("no window update after the reads")
	}
}

// tlsServer serves HTTPS on port in the lab's server namespace: Go's
// crypto/tls (tickets on) over kernel TCP, a 200 with "ok" per request,
// Connection: close honoured.
func tlsServer(t *testing.T, l *lab.Lab, port int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab.example"}, DNSNames: []string{"lab.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	testutil.ServeIn(t, l.ServerNS, netip.AddrPortFrom(l.ServerAddr, uint16(port)), net.ListenConfig{}, func(c *net.TCPConn) {
		tc := tls.Server(c, cfg)
		br := bufio.NewReader(tc)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if req.Close {
				tc.Close()
				return
			}
		}
	})
}

// An HTTPS run through the library against a Go server: every handshake
// and request completes, later connections resume the sessions of the
// first ones, the versions asked are the versions negotiated, and the
// timeline's seconds hold the handshakes and responses.
func TestRunTLS(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	const port = 9307
	tlsServer(t, l, port)
	dst := netip.AddrPortFrom(l.ServerAddr, port)
	for _, c := range []struct {
		version uint16
		name    string
		resume  bool
		perConn int
	}{{tls.VersionTLS13, "TLS 1.3", true, 1}, {tls.VersionTLS12, "TLS 1.2", false, 3}} {
		s := dialSession(t, l, dst)
		req, err := xdpconnect.HTTPRequest("GET", "/", "lab.example", c.perConn > 1)
		if err != nil {
			t.Fatal(err)
		}
		const n = 200
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := s.Run(ctx, xdpconnect.Plan{Count: n, Rate: 400, Concurrency: 8, Close: fastpath.CloseFIN, Request: req, RequestsPerConn: c.perConn,
			TLS: &xdpconnect.TLS{ServerName: "lab.example", MinVersion: c.version, MaxVersion: c.version, Resume: c.resume}}, xdpconnect.RunHooks{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		tl, q := r.TLS, r.Requests
		if r.Established != n || tl.Handshakes != n || tl.Versions[c.name] != n || q.Requests != n*uint64(c.perConn) || q.Completed != q.Requests || q.Status["200"] != q.Completed {
			t.Fatalf("%s: established %d, TLS %+v, requests %d complete %d status %v", c.name, r.Established, tl, q.Requests, q.Completed, q.Status)
		}
		if c.resume && tl.Resumed < n/2 || !c.resume && tl.Resumed != 0 {
			t.Fatalf("%s: resumed %d of %d (resume %v)", c.name, tl.Resumed, n, c.resume)
		}
		var hs, ok uint64
		for _, sec := range r.Timeline {
			hs += sec.TLSHandshakes
			ok += sec.Responses["2xx"]
		}
		if hs != n || ok != q.Completed {
			t.Fatalf("%s: the timeline holds %d handshakes and %d responses", c.name, hs, ok)
		}
		if r.Reset != 0 {
			t.Fatalf("%s: %d connections reset by the server", c.name, r.Reset)
		}
		s.Close()
	}
}
