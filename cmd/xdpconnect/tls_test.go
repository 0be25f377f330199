package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xdpconnect test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// file writes the CA's certificate for --tls-ca.
func (ca *testCA) file(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue is a server certificate for name and addr, valid until notAfter,
// and its key, in PEM.
func (ca *testCA) issue(t *testing.T, name string, addr netip.Addr, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{addr.AsSlice()}, NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// startNginxTLS runs nginx in ns with a plain server on port and an HTTPS
// one on tlsPort (t.Addr is set here).
func startNginxTLS(t *testing.T, ns string, addr netip.Addr, port, tlsPort uint16, cfg lab.NginxTLS) *lab.Nginx {
	t.Helper()
	cfg.Addr = netip.AddrPortFrom(addr, tlsPort)
	return testutil.Nginx(t, func(dir string) (*lab.Nginx, error) {
		return lab.StartNginxTLS(ns, netip.AddrPortFrom(addr, port), dir, "", cfg)
	})
}

// httpsLab is a lab with nginx serving HTTPS on the server's port 443 (the
// plain server on 80), offering protocols (default both versions), with
// a certificate for lab.example from ca, a CA made for the test.
func httpsLab(t *testing.T, protocols string) (l *lab.Lab, ca *testCA, ng *lab.Nginx, dst netip.AddrPort) {
	t.Helper()
	l = testutil.NewLab(t, lab.Options{})
	ca = newCA(t)
	cert, key := ca.issue(t, "lab.example", l.ServerAddr, time.Now().Add(24*time.Hour))
	ng = startNginxTLS(t, l.ServerNS, l.ServerAddr, 80, 443, lab.NginxTLS{CertPEM: cert, KeyPEM: key, Protocols: protocols})
	return l, ca, ng, netip.AddrPortFrom(l.ServerAddr, 443)
}

// HTTPS against nginx: every connection's handshake and request complete,
// nginx counts the requests we count, in TLS 1.3 and 1.2; with
// --tls-resume nginx's own log ($ssl_session_reused) shows the resumed
// share we report, and the certificate verifies with --tls-ca.
func TestTLSNginx(t *testing.T) {
	l, ca, ng, dst := httpsLab(t, "")
	caFile := ca.file(t)
	for _, c := range []struct {
		version, want string
		resume        bool
	}{{"1.3", "TLS 1.3", false}, {"1.2", "TLS 1.2", false}, {"1.3", "TLS 1.3", true}, {"1.2", "TLS 1.2", true}} {
		name := "v" + c.version
		if c.resume {
			name += "-resume"
		}
		t.Run(name, func(t *testing.T) {
			const n = 300
			_, before, err := ng.Stats()
			if err != nil {
				t.Fatal(err)
			}
			logBefore, _ := ng.TLSLog()
			args := []string{"--dst", dst.String(), "--count", strconv.Itoa(n), "--concurrency", "16", "--close", "fin",
				"--http", "GET /1k", "--host", "lab.example", "--tls", "--tls-ca", caFile, "--tls-version", c.version}
			if c.resume {
				args = append(args, "--tls-resume")
			}
			r, stderr, code := runBinary(t, l.ClientNS, args...)
			if code != 0 || r == nil || r.TLS == nil || r.Requests == nil {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			tl, q := r.TLS, r.Requests
			if r.Established != n || tl.Handshakes != n || tl.FailedTotal() != 0 || tl.Versions[c.want] != n || q.Completed != n || q.Status["200"] != n {
				t.Fatalf("established %d, handshakes %d failed %v versions %v, complete %d status %v", r.Established, tl.Handshakes, tl.Failed, tl.Versions, q.Completed, q.Status)
			}
			// nginx closes after the response (Connection: close): we read
			// its close_notify and close without one of ours, which its
			// closed socket would answer with an RST.
			if r.Reset != 0 || r.RSTReceived != 0 {
				t.Fatalf("%d connections reset by nginx (%d RSTs)", r.Reset, r.RSTReceived)
			}
			if tl.HandshakeTime.P50 <= 0 || tl.PerSecond <= 0 || tl.ServerName != "lab.example" {
				t.Fatalf("handshake time %+v, %v/s, SNI %q", tl.HandshakeTime, tl.PerSecond, tl.ServerName)
			}
			waitNginxRequests(t, &nginx{ng}, before, n)
			log, err := ng.TLSLog()
			if err != nil {
				t.Fatal(err)
			}
			var reused, lines uint64
			for _, line := range log[len(logBefore):] {
				lines++
				if f := strings.Fields(line); len(f) == 3 && f[1] == "r" {
					reused++
				}
			}
			if lines != n || reused != tl.Resumed {
				t.Fatalf("nginx logged %d requests, %d on resumed sessions; we report %d resumed", lines, reused, tl.Resumed)
			}
			if c.resume && tl.Resumed < n/2 || !c.resume && tl.Resumed != 0 {
				t.Fatalf("resumed %d of %d (--tls-resume %v)", tl.Resumed, n, c.resume)
			}
			t.Logf("%s: %.0f handshakes/s, p50 %.2f ms, resumed %d", name, tl.PerSecond, tl.HandshakeTime.P50*1e3, tl.Resumed)
		})
	}
}

// Failed handshakes are counted by their cause, the run fails, and the
// diagnosis names the cause: a strict server and another SNI name, a
// certificate from another authority or expired with --tls-ca, a TLS
// 1.3-only server and --tls-version 1.2.
func TestTLSFailures(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	ca, other := newCA(t), newCA(t)
	good, goodKey := ca.issue(t, "lab.example", l.ServerAddr, time.Now().Add(24*time.Hour))
	old, oldKey := ca.issue(t, "lab.example", l.ServerAddr, time.Now().Add(-time.Hour))
	for i, c := range []struct {
		name   string
		server lab.NginxTLS
		args   []string
		reason string
	}{
		{"sni", lab.NginxTLS{CertPEM: good, KeyPEM: goodKey, ServerName: "lab.example"}, []string{"--host", "other.example"}, "alert: unrecognized_name"},
		{"untrusted", lab.NginxTLS{CertPEM: good, KeyPEM: goodKey}, []string{"--host", "lab.example", "--tls-ca", other.file(t)}, "certificate: unknown authority"},
		{"expired", lab.NginxTLS{CertPEM: old, KeyPEM: oldKey}, []string{"--host", "lab.example", "--tls-ca", ca.file(t)}, "certificate: expired"},
		{"version", lab.NginxTLS{CertPEM: good, KeyPEM: goodKey, Protocols: "TLSv1.3"}, []string{"--tls-version", "1.2"}, "alert: protocol_version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := uint16(8000 + i)
			startNginxTLS(t, l.ServerNS, l.ServerAddr, port, port+100, c.server)
			const n = 20
			dst := netip.AddrPortFrom(l.ServerAddr, port+100)
			r, stderr, code := runBinary(t, l.ClientNS, append([]string{"--dst", dst.String(), "--count", strconv.Itoa(n), "--concurrency", "4",
				"--close", "fin", "--http", "GET /", "--tls"}, c.args...)...)
			if code == 0 || r == nil || r.TLS == nil {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if r.Established != n || r.TLS.Handshakes != 0 || r.TLS.Failed[c.reason] != n || len(r.TLS.Failed) != 1 {
				t.Fatalf("established %d, handshakes %d, failed %v; want %d %q", r.Established, r.TLS.Handshakes, r.TLS.Failed, n, c.reason)
			}
			if len(r.Diagnosis) == 0 || !strings.Contains(r.Diagnosis[0].Cause, c.reason) || !strings.Contains(stderr, "no TLS handshake completed") {
				t.Fatalf("diagnosis %+v; stderr %s", r.Diagnosis, stderr)
			}
		})
	}
}

// RFC 9411's HTTPS tests against nginx with TLS: each procedure reaches
// its target with every criterion met, its KPI counted from completed TLS
// handshakes, and nginx served at least the transactions measured.
func TestRFC9411HTTPS(t *testing.T) {
	l, _, ng, dst := httpsLab(t, "")
	phases := []string{"--ramp-up", "1s", "--sustain", "3s", "--ramp-down", "1s", "--dst", dst.String(), "--host", "lab.example",
		"--src-ports", "10000-60999", "--sizes", "1k", "--no-search"}
	for _, c := range []struct {
		args   []string
		target float64
	}{
		{[]string{"https-cps", "--target", "400"}, 400},
		{[]string{"https-tps", "--target", "800", "--requests-per-conn", "4"}, 800},
		{[]string{"https-latency", "--target", "200"}, 200},
		{[]string{"https-concurrent", "--target", "300"}, 300},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			_, before, err := ng.Stats()
			if err != nil {
				t.Fatal(err)
			}
			r, stderr, code := runRFC(t, l.ClientNS, append(c.args, phases...)...)
			if code != 0 || r == nil || len(r.Passes) != 1 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			want := map[string]string{"https-cps": "7.6", "https-tps": "7.7", "https-latency": "7.8", "https-concurrent": "7.9"}[c.args[0]]
			if r.Section != want {
				t.Fatalf("section %s, want %s", r.Section, want)
			}
			p := r.Passes[0]
			var served uint64
			for _, st := range p.Steps {
				m := st.Measured
				if !st.Pass || m.KPI < 0.95*st.Objective || m.KPI > 1.05*st.Objective || m.Failed != 0 {
					t.Fatalf("%s: %+v\n%s", st.Step, st, stderr)
				}
				served += m.Transactions
			}
			if p.Result != c.target {
				t.Fatalf("result %.0f of %.0f: %s", p.Result, c.target, p.Verdict)
			}
			_, after, err := ng.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if after-before < served {
				t.Fatalf("nginx served %d requests, the sustain phases alone counted %d", after-before, served)
			}
		})
	}
}

// An HTTPS run's metrics: the TLS series while it runs (counters that
// never go down) and, after it, exactly the report's counts: handshakes,
// resumed ones, failures by cause, responses by class.
func TestTLSMetrics(t *testing.T) {
	l, _, _, dst := httpsLab(t, "TLSv1.2")
	var during int
	var w *metricsWatch
	r := runIn(t, l, dst, func(o *runOpts) {
		req, err := xdpconnect.HTTPRequest("GET", "/1k", "lab.example", false)
		if err != nil {
			t.Fatal(err)
		}
		o.plan.Request = req
		o.plan.Count, o.plan.Rate, o.plan.Close = 600, 600, xdpconnect.CloseFIN
		o.plan.TLS = &xdpconnect.TLS{ServerName: "lab.example", Resume: true}
		w = watchMetrics(t, o, func(_ string, m map[string]float64) {
			if m["xdpconnect_tls_handshakes_total"] > 0 {
				during++
			}
		})
	})
	w.wait(t)
	if during == 0 || r.TLS == nil || r.TLS.Handshakes != 600 {
		t.Fatalf("%d scrapes saw handshakes; report %+v", during, r.TLS)
	}
	w.sameAsReport(t, map[string]uint64{"xdpconnect_tls_handshakes_total": r.TLS.Handshakes, "xdpconnect_tls_resumed_total": r.TLS.Resumed,
		"xdpconnect_tls_requests_total": r.Requests.Requests, `xdpconnect_tls_responses_total{class="2xx"}`: r.Requests.Classes["2xx"],
		"xdpconnect_tls_handshake_seconds_count": r.TLS.Handshakes, `xdpconnect_tls_request_failures_total{errno="EOF"}`: 0})
	if r.TLS.Resumed == 0 {
		t.Fatal("no session resumed")
	}
}
