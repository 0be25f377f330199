package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/report"
)

// The tls scenario: TLS handshakes per second on one core (CPU 0), a new
// connection per request, against nginx with TLS (one worker on CPU 1),
// for ECDSA P-256 and RSA-2048 server certificates and TLS 1.3 and 1.2
// (nginx offers only that version). xdpconnect --tls, full and resumed
// handshakes; h2load (one request per connection: Connection: close; it
// resumes the session on each reconnection); ab (no keep-alive, full
// handshakes); a Go crypto/tls client loop over kernel sockets, full
// and resumed; and the ceiling row: crypto/tls client and server
// handshaking in memory on one core, no network. Every client offers
// X25519 then P-256.

// tlsConns is what every tool keeps in flight.
const tlsConns = 64

// tlsName is the name the benchmark's certificates carry (SNI and Host).
const tlsName = "lab.example"

// benchCert is a self-signed server certificate of kind "ecdsa" (P-256)
// or "rsa" (2048 bits), as PEM and as crypto/tls takes it.
func benchCert(kind string) (certPEM, keyPEM []byte, c tls.Certificate, err error) {
	var key crypto.Signer
	switch kind {
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("certificate kind %q: want ecdsa or rsa", kind)
	}
	if err != nil {
		return nil, nil, c, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: tlsName}, DNSNames: []string{tlsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, c, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, c, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// tlsVersion is "1.3" or "1.2" as crypto/tls's constant.
func tlsVersion(v string) (uint16, error) {
	switch v {
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.2":
		return tls.VersionTLS12, nil
	}
	return 0, fmt.Errorf("TLS version %q: want 1.2 or 1.3", v)
}

// clientCurves is what every client of the scenario offers.
var clientCurves = []tls.CurveID{tls.X25519, tls.CurveP256}

// GoTLS is the Go crypto/tls client baseline: conns goroutines each
// connect over a kernel socket, handshake (resuming sessions with
// resume), GET / with Connection: close, read to the server's close and
// close, for d. It must run in the client's network namespace.
func GoTLS(dst string, conns int, d time.Duration, version string, resume bool, out io.Writer) error {
	v, err := tlsVersion(version)
	if err != nil {
		return err
	}
	cfg := &tls.Config{ServerName: tlsName, InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, CurvePreferences: clientCurves,
		NextProtos: []string{"http/1.1"}}
	if resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1024)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second}, Config: cfg}
	req := []byte("GET / HTTP/1.1\r\nHost: " + tlsName + "\r\nConnection: close\r\n\r\n")
	one := func() error {
		c, err := dialer.DialContext(ctx, "tcp", dst)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(req); err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, c)
		return err
	}
	return loop(ctx, conns, d, one, out)
}

// TLSCeiling is crypto/tls handshaking with itself in memory (net.Pipe),
// client and server in this process, for d: handshakes per second. Run
// with GOMAXPROCS=1 on one CPU, it bounds what a Go client on one core can
// reach against a Go server on the same core.
func TLSCeiling(kind, version string, d time.Duration) (float64, error) {
	_, _, cert, err := benchCert(kind)
	if err != nil {
		return 0, err
	}
	v, err := tlsVersion(version)
	if err != nil {
		return 0, err
	}
	scfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: v, MaxVersion: v}
	ccfg := &tls.Config{ServerName: tlsName, InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, CurvePreferences: clientCurves}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		a, z := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- tls.Server(z, scfg).Handshake() }()
		err := tls.Client(a, ccfg).Handshake()
		if serr := <-done; err == nil {
			err = serr
		}
		a.Close()
		z.Close()
		if err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// startNginxTLS runs nginx (one worker, on CPU 1) with an HTTPS server
// on port 443 offering only version, with a certificate of kind; the
// bed's target becomes it.
func (b *bed) startNginxTLS(kind, version string) (stop func(), err error) {
	certPEM, keyPEM, _, err := benchCert(kind)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "xdpc-nginx-tls")
	if err != nil {
		return nil, err
	}
	b.dst = netip.AddrPortFrom(b.l.ServerAddr, 443)
	ng, err := lab.StartNginxTLS(b.l.ServerNS, netip.AddrPortFrom(b.l.ServerAddr, 80), dir, "1",
		lab.NginxTLS{Addr: b.dst, CertPEM: certPEM, KeyPEM: keyPEM, Protocols: "TLSv" + version})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return func() { ng.Stop(); os.RemoveAll(dir) }, nil
}

var (
	h2loadRate = regexp.MustCompile(`finished in [^,]+, ([0-9.]+) req/s`)
	h2loadDone = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded`)
	abRate     = regexp.MustCompile(`Requests per second:\s+([0-9.]+)`)
)

// runPeer runs a kernel-socket TLS client on CPU 0 in the client
// namespace and reads its rate from its output.
func (o *Options) runPeer(b *bed, tool string) (float64, error) {
	url := "https://" + b.dst.String() + "/"
	var args []string
	var re *regexp.Regexp
	switch tool {
	case "h2load":
		// h2load's duration mode does not end with Connection: close (it
		// spins); a count does: what a core does in o.Duration, roughly.
		n := int(5000 * o.Duration.Seconds())
		args = []string{"h2load", "--h1", "-n", strconv.Itoa(n), "-c", strconv.Itoa(tlsConns), "-H", "Connection: close",
			"--groups", "X25519:P-256", url}
		re = h2loadRate
	case "ab":
		args = []string{"ab", "-t", strconv.Itoa(int(o.Duration.Seconds())), "-n", "10000000", "-c", strconv.Itoa(tlsConns), url}
		re = abRate
	default:
		return 0, fmt.Errorf("peer %q", tool)
	}
	if _, err := exec.LookPath(args[0]); err != nil {
		return 0, fmt.Errorf("%s is not installed (Debian: nghttp2-client, apache2-utils)", args[0])
	}
	cmd := exec.Command("taskset", append([]string{"-c", "0", "ip", "netns", "exec", b.l.ClientNS}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", tool, err, out)
	}
	m := re.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s: no rate in its output: %s", tool, out)
	}
	if tool == "h2load" {
		// Only if every request succeeded is the rate one of handshakes.
		if d := h2loadDone.FindSubmatch(out); d == nil || string(d[1]) == "0" || !bytes.Contains(out, []byte(" 0 failed")) {
			return 0, fmt.Errorf("h2load: requests failed: %s", out)
		}
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// tlsScenario measures every row, for each certificate kind and version.
func (o *Options) tlsScenario() ([]Row, error) {
	var rows []Row
	for _, kind := range []string{"ecdsa", "rsa"} {
		for _, version := range []string{"1.3", "1.2"} {
			r, err := o.tlsCompare(kind, version)
			if err != nil {
				return rows, err
			}
			rows = append(rows, r...)
		}
	}
	return rows, nil
}

func (o *Options) tlsCompare(kind, version string) ([]Row, error) {
	b, err := newBed(false, 1, 0)
	if err != nil {
		return nil, err
	}
	defer b.close()
	stop, err := b.startNginxTLS(kind, version)
	if err != nil {
		return nil, err
	}
	defer stop()
	certName := map[string]string{"ecdsa": "ECDSA P-256", "rsa": "RSA-2048"}[kind]
	sc := fmt.Sprintf("tls %s TLS %s", certName, version)
	target := "nginx, 1 worker on CPU 1"
	unit := "handshakes/s"
	row := func(tool, note string) *Row {
		return &Row{Scenario: sc, Tool: tool, Target: target, Workers: 1, Unit: unit, Note: note}
	}
	xFull := row("xdpconnect full", fmt.Sprintf("--tls --concurrency %d", tlsConns))
	xRes := row("xdpconnect resumed", fmt.Sprintf("--tls --tls-resume --concurrency %d", tlsConns))
	// h2load's reconnections resume the session (nginx's log showed 1936
	// of 2000 resumed): a row beside xdpconnect's resumed one.
	h2 := row("h2load resumed", fmt.Sprintf("-c %d, Connection: close; reconnections resume the session", tlsConns))
	ab := row("ab full", fmt.Sprintf("-c %d", tlsConns))
	goFull := row("go crypto/tls client full", fmt.Sprintf("%d goroutines, kernel sockets", tlsConns))
	goRes := row("go crypto/tls client resumed", fmt.Sprintf("%d goroutines, kernel sockets, session cache", tlsConns))
	ceil := &Row{Scenario: sc, Tool: "crypto/tls in memory full", Target: "itself (client and server on CPU 0)", Workers: 1, Unit: unit,
		Note: "the ceiling: a Go client and a Go server on one core"}
	busy := map[*Row]*busyRuns{}
	measure := func(r *Row, fn func() error) error {
		if busy[r] == nil {
			busy[r] = new(busyRuns)
		}
		return busy[r].measure(fn)
	}
	for i := 0; i < o.Runs; i++ {
		for _, x := range []*Row{xFull, xRes} {
			args := []string{"--duration", o.Duration.String(), "--concurrency", strconv.Itoa(tlsConns), "--close", "fin",
				"--http", "GET /", "--host", tlsName, "--tls", "--tls-version", version, "--tls-curves", "X25519,P-256"}
			if x == xRes {
				args = append(args, "--tls-resume")
			}
			var r *report.Report
			if err := measure(x, func() (err error) { r, err = o.runXDPConnect(b, 1, args...); return err }); err != nil {
				return nil, err
			}
			if r.TLS == nil || r.TLS.Handshakes == 0 {
				return nil, fmt.Errorf("xdpconnect --tls: no handshake (report %+v)", r.TLS)
			}
			x.Runs = append(x.Runs, r.TLS.PerSecond)
			o.logf("  %s %s run %d: %.0f handshakes/s (resumed %d of %d, failed %v)", sc, x.Tool, i+1, r.TLS.PerSecond, r.TLS.Resumed, r.TLS.Handshakes, r.TLS.Failed)
		}
		for _, p := range []*Row{h2, ab} {
			var v float64
			if err := measure(p, func() (err error) { v, err = o.runPeer(b, firstWord(p.Tool)); return err }); err != nil {
				return nil, err
			}
			p.Runs = append(p.Runs, v)
			o.logf("  %s %s run %d: %.0f handshakes/s", sc, p.Tool, i+1, v)
		}
		for _, g := range []*Row{goFull, goRes} {
			var res *BaselineResult
			if err := measure(g, func() (err error) { res, err = o.runGoTLS(b, version, g == goRes); return err }); err != nil {
				return nil, err
			}
			v := float64(res.Handshakes) / res.Seconds
			g.Runs = append(g.Runs, v)
			o.logf("  %s %s run %d: %.0f handshakes/s (%d errors)", sc, g.Tool, i+1, v, res.Errors)
		}
		var v float64
		if err := measure(ceil, func() (err error) { v, err = o.runCeiling(kind, version); return err }); err != nil {
			return nil, err
		}
		ceil.Runs = append(ceil.Runs, v)
		o.logf("  %s ceiling run %d: %.0f handshakes/s", sc, i+1, v)
	}
	out := []Row{}
	for _, r := range []*Row{xFull, xRes, h2, ab, goFull, goRes, ceil} {
		summarize(r)
		if busy[r] != nil {
			r.CPUBusy = busy[r].medians()
			r.Note += "; " + busyNote(r.CPUBusy)
		}
		out = append(out, *r)
	}
	return out, nil
}

// firstWord is a peer row's command: its tool name's first word.
func firstWord(tool string) string {
	for i, c := range tool {
		if c == ' ' {
			return tool[:i]
		}
	}
	return tool
}

// runGoTLS runs the Go crypto/tls client baseline on CPU 0 in the client
// namespace.
func (o *Options) runGoTLS(b *bed, version string, resume bool) (*BaselineResult, error) {
	args := []string{"-c", "0", "ip", "netns", "exec", b.l.ClientNS, o.Self, "baseline-go", "--dst", b.dst.String(),
		"--conns", strconv.Itoa(tlsConns), "--duration", o.Duration.String(), "--tls", version}
	if resume {
		args = append(args, "--tls-resume")
	}
	out, err := exec.Command("taskset", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("go crypto/tls client: %w", err)
	}
	var res BaselineResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		return nil, err
	}
	if res.Handshakes == 0 {
		return nil, fmt.Errorf("go crypto/tls client to %s: no handshake in %.1f s (%d errors)", b.dst, res.Seconds, res.Errors)
	}
	return &res, nil
}

// runCeiling runs TLSCeiling in its own process on CPU 0, GOMAXPROCS=1.
func (o *Options) runCeiling(kind, version string) (float64, error) {
	cmd := exec.Command("taskset", "-c", "0", o.Self, "tls-ceiling", "--cert", kind, "--tls", version, "--duration", o.Duration.String())
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("tls-ceiling: %w", err)
	}
	return strconv.ParseFloat(string(bytes.TrimSpace(out)), 64)
}
