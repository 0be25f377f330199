package xdpconnect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/l7"
	"github.com/xdpconnect/xdpconnect/report"
)

// TLS makes request mode HTTPS: each connection the engine establishes
// runs a TLS client handshake (Go's crypto/tls over the connection as a
// net.Conn), then its requests inside TLS. A goroutine drives each
// connection: the handshake's cryptography costs far more than the
// goroutine (tens of microseconds of a core for ECDSA, more for RSA), and
// crypto/tls is the implementation a Go program would use anyway.
type TLS struct {
	// ServerName is the SNI sent and the name a verified certificate must
	// carry (empty: no SNI, and the target's address is verified).
	ServerName string
	// RootCAs, when set, verify the server's certificate chain against
	// them; nil skips verification, as a load test usually should.
	RootCAs *x509.CertPool
	// MinVersion and MaxVersion bound the versions offered
	// (tls.VersionTLS12, tls.VersionTLS13; 0: crypto/tls's defaults).
	MinVersion, MaxVersion uint16
	// CipherSuites and CurvePreferences restrict what is offered (nil:
	// crypto/tls's defaults; TLS 1.3's suites are not configurable).
	CipherSuites     []uint16
	CurvePreferences []tls.CurveID
	// Resume keeps the sessions the server offers (TLS 1.3 tickets, TLS
	// 1.2 tickets and session IDs) and resumes them on later connections.
	Resume bool
	// NextProtos is the ALPN list (nil: http/1.1).
	NextProtos []string
}

// config is the crypto/tls client configuration of a run.
func (t *TLS) config() *tls.Config {
	c := &tls.Config{ServerName: t.ServerName, RootCAs: t.RootCAs, InsecureSkipVerify: t.RootCAs == nil,
		MinVersion: t.MinVersion, MaxVersion: t.MaxVersion, CipherSuites: t.CipherSuites, CurvePreferences: t.CurvePreferences,
		NextProtos: t.NextProtos}
	if c.NextProtos == nil {
		c.NextProtos = []string{"http/1.1"}
	}
	if t.Resume {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(1024)
	}
	return c
}

// checkTLS is Check's part for TLS.
func (p *Plan) checkTLS() error {
	t := p.TLS
	switch {
	case t == nil:
		return nil
	case p.Request == nil:
		return optionErr("TLS", nil, "needs {Request}: TLS carries request mode's requests")
	case p.Close != fastpath.CloseRST && p.Close != fastpath.CloseFIN:
		return optionErr("TLS", nil, "needs {Close} rst or fin (%s keeps no TLS connection to close)", p.Close)
	case p.KernelSYNs:
		return optionErr("TLS", nil, "takes no {KernelSYNs}: the XDP program makes no handshakes")
	case len(p.Stages) > 0 || len(p.ConcurrencyStages) > 0:
		return optionErr("TLS", nil, "takes no {Stages} or {ConcurrencyStages} yet: give {Rate} and {Concurrency}")
	case t.MinVersion != 0 && t.MaxVersion != 0 && t.MinVersion > t.MaxVersion:
		return optionErr("TLS", nil, "MinVersion above MaxVersion")
	}
	return nil
}

// defaultTLSConcurrency bounds the connections of a TLS run without
// Concurrency: enough to keep both sides' cores busy over a LAN's RTT.
const defaultTLSConcurrency = 256

// tlsStats is one load goroutine's counts, merged at the end (no sharing
// while the run goes).
type tlsStats struct {
	handshakes, resumed        uint64
	failed, versions, ciphers  map[string]uint64
	hs, ttfb, ttlb, sched      report.Histogram
	requests, completed, bytes uint64
	reqFailed, status          map[string]uint64
	dialFailed                 uint64
}

func newTLSStats() *tlsStats {
	return &tlsStats{failed: map[string]uint64{}, versions: map[string]uint64{}, ciphers: map[string]uint64{},
		reqFailed: map[string]uint64{}, status: map[string]uint64{}}
}

func (a *tlsStats) merge(b *tlsStats) {
	a.handshakes += b.handshakes
	a.resumed += b.resumed
	a.requests += b.requests
	a.completed += b.completed
	a.bytes += b.bytes
	a.dialFailed += b.dialFailed
	for _, m := range [][2]map[string]uint64{{a.failed, b.failed}, {a.versions, b.versions}, {a.ciphers, b.ciphers}, {a.reqFailed, b.reqFailed}, {a.status, b.status}} {
		for k, v := range m[1] {
			m[0][k] += v
		}
	}
	a.hs.Merge(&b.hs)
	a.ttfb.Merge(&b.ttfb)
	a.ttlb.Merge(&b.ttlb)
	a.sched.Merge(&b.sched)
}

// runTLS runs p over TLS: the engine only dials (as Dial does), and
// Concurrency goroutines each take the next attempt (at Rate, if set),
// dial, handshake, make the requests and close, until Count or Duration.
func (s *Session) runTLS(ctx context.Context, p Plan, cfg fastpath.Config, h RunHooks) (*report.Report, error) {
	cfg.DialOnly, cfg.Request, cfg.RequestsPerConn, cfg.Count, cfg.Duration, cfg.Rate = true, nil, 0, 0, 0, 0
	cfg.LinkDown = new(atomic.Bool)
	eng, err := s.engineFor(cfg, h)
	if err != nil {
		return nil, err
	}
	if err := waitStart(ctx, p.StartAt); err != nil {
		return nil, err
	}
	engCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	type result struct {
		r   *report.Report
		err error
	}
	ran := make(chan result, 1)
	stopWatch := s.watchLink(cfg.LinkDown)
	go func() {
		r, err := eng.Run(engCtx, h.Interval, h.Progress)
		ran <- result{r, err}
	}()
	for !eng.Running() {
		time.Sleep(100 * time.Microsecond)
	}
	timeout := p.ResponseTimeout
	if timeout == 0 {
		timeout = fastpath.DefaultResponseTimeout
	}
	perConn := max(p.RequestsPerConn, 1)
	conc := p.Concurrency
	if conc == 0 {
		conc = defaultTLSConcurrency
	}
	if p.Count > 0 {
		conc = int(min(uint64(conc), p.Count))
	}
	genCtx := ctx
	if p.Duration > 0 {
		var cancel context.CancelFunc
		genCtx, cancel = context.WithTimeout(ctx, p.Duration)
		defer cancel()
	}
	start := time.Now()
	var next atomic.Uint64 // attempts taken
	// take is the next attempt's number and the time the schedule wants it
	// (Rate: evenly spaced from the start; else now); false at the end.
	take := func() (uint64, time.Time, bool) {
		n := next.Add(1) - 1
		if p.Count > 0 && n >= p.Count || genCtx.Err() != nil {
			return 0, time.Time{}, false
		}
		if p.Rate <= 0 {
			return n, time.Now(), true
		}
		due := start.Add(time.Duration(float64(n) / p.Rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-genCtx.Done():
				return 0, time.Time{}, false
			}
		}
		return n, due, true
	}
	tc := p.TLS.config()
	all := newTLSStats()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newTLSStats()
			for {
				n, due, ok := take()
				if !ok {
					break
				}
				dst := s.opts.Targets[n%uint64(len(s.opts.Targets))]
				tlsOne(ctx, eng, dst, tc, p.Request, perConn, p.Close, timeout, due, st)
			}
			mu.Lock()
			all.merge(st)
			mu.Unlock()
		}()
	}
	wg.Wait()
	genEnd := time.Since(start)
	stopEngine()
	res := <-ran
	s.outages = stopWatch()
	r := res.r
	if r == nil {
		return nil, res.err
	}
	if res.err != nil {
		r.Stopped = res.err.Error()
	}
	fillTLS(r, all, p, genEnd)
	s.complete(r, &cfg)
	return r, res.err
}

// tlsOne is one attempt: dial, TLS handshake, the requests, the close.
func tlsOne(ctx context.Context, eng *fastpath.Engine, dst netip.AddrPort, cfg *tls.Config, spec *l7.Spec, perConn int,
	closeMode fastpath.CloseMode, timeout time.Duration, due time.Time, st *tlsStats) {
	c, err := eng.Dial(ctx, dst)
	if err != nil {
		st.dialFailed++ // the engine's report counts it by errno
		return
	}
	tcpDone := time.Now()
	c.SetDeadline(tcpDone.Add(timeout))
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		st.failed[tlsFailure(err)]++
		c.Abort()
		return
	}
	hsDone := time.Now()
	st.hs.Record(hsDone.Sub(tcpDone).Nanoseconds())
	cs := tc.ConnectionState()
	st.handshakes++
	if cs.DidResume {
		st.resumed++
	}
	st.versions[tls.VersionName(cs.Version)]++
	st.ciphers[tls.CipherSuiteName(cs.CipherSuite)]++
	buf := make([]byte, 16<<10)
	ok := true
	for i := 0; i < perConn && ok; i++ {
		st.requests++
		reqStart := time.Now()
		c.SetDeadline(reqStart.Add(timeout))
		var resp l7.Response
		res := l7.More
		if _, err := tc.Write(spec.Request); err != nil {
			res = l7.ErrTruncated
			st.reqFailed[requestFailure(err)]++
			ok = false
			break
		}
		for res == l7.More {
			n, err := tc.Read(buf)
			if n > 0 {
				if resp.Got == 0 {
					st.ttfb.Record(time.Since(reqStart).Nanoseconds())
				}
				st.bytes += uint64(n)
				res = resp.Feed(spec, buf[:n])
			}
			if err != nil && res == l7.More {
				if err == io.EOF {
					res = resp.Close(spec)
				} else {
					st.reqFailed[requestFailure(err)]++
					ok = false
					break
				}
			}
		}
		switch res {
		case l7.Done:
			st.completed++
			st.ttlb.Record(time.Since(reqStart).Nanoseconds())
			if i == 0 {
				st.sched.Record(time.Since(due).Nanoseconds())
			}
			if resp.Status >= 100 && resp.Status <= 599 {
				st.status[strconv.Itoa(int(resp.Status))]++
			}
		case l7.ErrMalformed:
			st.reqFailed["EBADMSG"]++
			ok = false
		case l7.ErrTooLarge:
			st.reqFailed["EMSGSIZE"]++
			ok = false
		case l7.ErrTruncated:
			if ok {
				st.reqFailed["EOF"]++
			}
			ok = false
		}
	}
	if ok && closeMode == fastpath.CloseFIN {
		// close_notify, then our FIN (an RST if the server's own
		// close_notify is still unread, as Linux's close does).
		tc.Close()
		return
	}
	c.Abort()
}

// requestFailure names a request's failure as request mode's report does
// (fastpath.ResponseErrors).
func requestFailure(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "ETIMEDOUT"
	case errors.Is(err, syscall.ECONNRESET):
		return "ECONNRESET"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	}
	return "EBADMSG" // a TLS record error: what came is not what was sent
}

// alertNames are the TLS alerts by crypto/tls's text, as RFC 8446 §6
// names them.
var alertNames = map[string]string{
	"close notify": "close_notify", "unexpected message": "unexpected_message", "bad record MAC": "bad_record_mac",
	"record overflow": "record_overflow", "handshake failure": "handshake_failure", "bad certificate": "bad_certificate",
	"unsupported certificate": "unsupported_certificate", "revoked certificate": "certificate_revoked",
	"expired certificate": "certificate_expired", "unknown certificate": "certificate_unknown",
	"illegal parameter": "illegal_parameter", "unknown certificate authority": "unknown_ca", "access denied": "access_denied",
	"error decoding message": "decode_error", "error decrypting message": "decrypt_error",
	"protocol version not supported": "protocol_version", "insufficient security level": "insufficient_security",
	"internal error": "internal_error", "inappropriate fallback": "inappropriate_fallback", "user canceled": "user_canceled",
	"missing extension": "missing_extension", "unsupported extension": "unsupported_extension",
	"unrecognized name": "unrecognized_name", "certificate required": "certificate_required",
	"no application protocol": "no_application_protocol",
}

// tlsFailure names why a handshake failed, as TLSReport.Failed counts it.
func tlsFailure(err error) string {
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		var he x509.HostnameError
		switch {
		case errors.As(ce.Err, &ua):
			return "certificate: unknown authority"
		case errors.As(ce.Err, &ci) && ci.Reason == x509.Expired:
			return "certificate: expired"
		case errors.As(ce.Err, &he):
			return "certificate: name mismatch"
		}
		return "certificate: invalid"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		text := strings.TrimPrefix(oe.Err.Error(), "tls: ")
		if name, ok := alertNames[text]; ok {
			return "alert: " + name
		}
		return "alert: " + text
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, syscall.ECONNABORTED), errors.Is(err, context.Canceled):
		return "aborted"
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return "local alert: " + strings.TrimPrefix(ae.Error(), "tls: ")
	}
	return "other: " + err.Error()
}

// fillTLS puts the run's TLS and request counts in r: the handshakes over
// the run's generation (el), the requests as request mode reports them.
func fillTLS(r *report.Report, st *tlsStats, p Plan, el time.Duration) {
	t := &report.TLSReport{Handshakes: st.handshakes, Resumed: st.resumed, Failed: st.failed, Versions: st.versions,
		Ciphers: st.ciphers}
	if _, err := netip.ParseAddr(p.TLS.ServerName); err != nil {
		t.ServerName = p.TLS.ServerName // crypto/tls sends no address as SNI
	}
	if el > 0 {
		t.PerSecond = float64(st.handshakes) / el.Seconds()
	}
	t.HandshakeHist, t.HandshakeTime = st.hs.Buckets(), report.QuantilesOf(&st.hs)
	r.TLS = t
	q := &report.RequestReport{PerConnection: max(p.RequestsPerConn, 1), Requests: st.requests, Completed: st.completed,
		Failed: st.reqFailed, Status: st.status, Classes: map[string]uint64{}, ResponseBytes: st.bytes}
	for code, n := range st.status {
		q.Classes[code[:1]+"xx"] += n
	}
	if el > 0 {
		q.PerSecond, q.BytesPerSecond = float64(st.completed)/el.Seconds(), float64(st.bytes)/el.Seconds()
	}
	q.TTFBHist, q.TTFB = st.ttfb.Buckets(), report.QuantilesOf(&st.ttfb)
	q.TTLBHist, q.TTLB = st.ttlb.Buckets(), report.QuantilesOf(&st.ttlb)
	q.TTLBSchedHist, q.TTLBSched = st.sched.Buckets(), report.QuantilesOf(&st.sched)
	r.Requests = q
}
