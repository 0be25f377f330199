package xdpconnect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/report"
)

// selfSigned is a certificate for name valid until notAfter, and a pool
// that trusts it.
func selfSigned(t *testing.T, name string, notAfter time.Time) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// socketPair is two connected local sockets (AF_UNIX): buffered, unlike
// net.Pipe, so that a side that fails mid-flight and writes its alert
// does not wait on a peer that is still writing.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	return cs[0], cs[1]
}

// handshakeErr is the client's error of a handshake in memory with a
// crypto/tls server.
func handshakeErr(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	a, z := socketPair(t)
	defer a.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	z.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		defer z.Close()
		tls.Server(z, server).Handshake()
	}()
	return tls.Client(a, client).Handshake()
}

// Each way a handshake fails is named as the report counts it: the
// peer's alert by its RFC 8446 name, our verdict on the certificate, the
// connection's end.
func TestTLSFailureNames(t *testing.T) {
	good, pool := selfSigned(t, "lab.example", time.Now().Add(24*time.Hour))
	old, oldPool := selfSigned(t, "lab.example", time.Now().Add(-time.Hour))
	_, otherPool := selfSigned(t, "other.example", time.Now().Add(24*time.Hour))
	srv := &tls.Config{Certificates: []tls.Certificate{good}}
	for _, c := range []struct {
		name   string
		server *tls.Config
		client *tls.Config
		want   string
	}{
		{"version", &tls.Config{Certificates: []tls.Certificate{good}, MinVersion: tls.VersionTLS13},
			&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}, "alert: protocol_version"},
		{"untrusted", srv, &tls.Config{ServerName: "lab.example", RootCAs: otherPool}, "certificate: unknown authority"},
		{"expired", &tls.Config{Certificates: []tls.Certificate{old}}, &tls.Config{ServerName: "lab.example", RootCAs: oldPool}, "certificate: expired"},
		{"name", srv, &tls.Config{ServerName: "www.example", RootCAs: pool}, "certificate: name mismatch"},
		{"alpn", &tls.Config{Certificates: []tls.Certificate{good}, NextProtos: []string{"h2"}},
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"spdy/3"}}, "alert: no_application_protocol"},
	} {
		err := handshakeErr(t, c.server, c.client)
		if err == nil {
			t.Errorf("%s: the handshake succeeded", c.name)
			continue
		}
		if got := tlsFailure(err); got != c.want {
			t.Errorf("%s: %v named %q, want %q", c.name, err, got, c.want)
		}
	}
	for err, want := range map[error]string{
		os.ErrDeadlineExceeded: "timeout", &net.OpError{Op: "read", Err: syscall.ECONNRESET}: "reset",
		io.EOF: "closed", io.ErrUnexpectedEOF: "closed", &net.OpError{Op: "read", Err: syscall.ECONNABORTED}: "aborted",
	} {
		if got := tlsFailure(err); got != want {
			t.Errorf("%v named %q, want %q", err, got, want)
		}
	}
	for err, want := range map[error]string{os.ErrDeadlineExceeded: "ETIMEDOUT", syscall.ECONNRESET: "ECONNRESET", io.EOF: "EOF",
		errors.New("tls: bad record MAC"): "EBADMSG"} {
		if got := requestFailure(err); got != want {
			t.Errorf("request failure %v named %q, want %q", err, got, want)
		}
	}
}

// The plan's checks: TLS needs request mode, a close mode that closes,
// no XDP-made SYNs, versions in order.
func TestTLSPlanChecks(t *testing.T) {
	req := &Request{Request: []byte("GET / HTTP/1.1\r\n\r\n")}
	for _, c := range []struct {
		p    Plan
		want string
	}{
		{Plan{Count: 1, TLS: &TLS{}}, "needs Request"},
		{Plan{Count: 1, Request: req, Close: fastpath.CloseSYNOnly, TLS: &TLS{}}, "needs Close"},
		{Plan{Count: 1, Request: req, TLS: &TLS{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS12}}, "MinVersion above"},
		{Plan{Count: 1, Request: req, Close: fastpath.CloseHold, ConcurrencyStages: []Stage{{Duration: time.Second, Rate: 1}}, TLS: &TLS{}}, "ConcurrencyStages"},
	} {
		err := c.p.checkTLS()
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an OptionError with %q", c.p, err, c.want)
		}
	}
	if err := (&Plan{Count: 1, Request: req, Close: fastpath.CloseFIN, TLS: &TLS{}}).checkTLS(); err != nil {
		t.Fatal(err)
	}
}

// fillTLS: the handshakes and requests over the generation's time,
// statuses by class, no SNI shown for an address.
func TestFillTLS(t *testing.T) {
	st := newTLSStats()
	st.handshakes, st.resumed, st.requests, st.completed, st.bytes = 40, 10, 40, 38, 3800
	st.status["200"], st.status["404"], st.status["503"] = 30, 6, 2
	st.reqFailed["EOF"] = 2
	st.hs.Record(2e6)
	var r report.Report
	fillTLS(&r, st, Plan{TLS: &TLS{ServerName: "198.18.0.2"}}, 2*time.Second)
	if r.TLS.PerSecond != 20 || r.TLS.Resumed != 10 || r.TLS.ServerName != "" || r.TLS.HandshakeTime.P50 <= 0 {
		t.Fatalf("TLS %+v", r.TLS)
	}
	q := r.Requests
	if q.PerSecond != 19 || q.BytesPerSecond != 1900 || q.Classes["2xx"] != 30 || q.Classes["4xx"] != 6 || q.Classes["5xx"] != 2 || q.PerConnection != 1 {
		t.Fatalf("requests %+v", q)
	}
	fillTLS(&r, st, Plan{TLS: &TLS{ServerName: "lab.example"}, RequestsPerConn: 3}, time.Second)
	if r.TLS.ServerName != "lab.example" || r.Requests.PerConnection != 3 {
		t.Fatalf("SNI %q, per connection %d", r.TLS.ServerName, r.Requests.PerConnection)
	}
}

// The stages' schedule: attempt n is due when the ramp's area reaches n;
// a flat stage spaces them evenly; past the stages, none.
func TestStagesDue(t *testing.T) {
	stages := []Stage{{Duration: 2 * time.Second, Rate: 100}, {Duration: time.Second, Rate: 100}, {Duration: time.Second, Rate: 0}}
	for _, c := range []struct {
		n    uint64
		want time.Duration
		ok   bool
	}{
		{0, 0, true},
		// The ramp to 100/s over 2 s: 25 t^2 attempts by t, so 25 at 1 s
		// and 100 at 2 s; then 100/s.
		{25, time.Second, true}, {100, 2 * time.Second, true}, {150, 2500 * time.Millisecond, true},
		// Down to 0 over the last second: 50 more, the 225th at 3.29 s.
		{225, 3*time.Second + 292893218*time.Nanosecond, true},
		{250, 0, false},
	} {
		got, ok := stagesDue(stages, c.n)
		if ok != c.ok || (got-c.want).Abs() > time.Microsecond {
			t.Errorf("attempt %d due at %v (%v), want %v (%v)", c.n, got, ok, c.want, c.ok)
		}
	}
	if d := stagesTotal(stages); d != 4*time.Second {
		t.Fatalf("total %v", d)
	}
}
