package xdpconnect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"maps"
	"math"
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
	"github.com/xdpconnect/xdpconnect/metrics"
	"github.com/xdpconnect/xdpconnect/report"
)

// TLS makes request mode HTTPS: each connection the engine establishes
// runs a TLS client handshake (Go's crypto/tls over the connection as a
// net.Conn), then its requests inside TLS. A goroutine drives each
// connection: the handshake's cryptography costs far more than the
// goroutine (a full ECDSA handshake took about 200 µs of the client's
// core here, 70 % of it cryptography), and crypto/tls is the
// implementation a Go program would use anyway.
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
	case p.Close == fastpath.CloseSYNOnly:
		return optionErr("TLS", nil, "needs {Close} rst, fin or hold (synonly establishes no connection)")
	case p.KernelSYNs:
		return optionErr("TLS", nil, "takes no {KernelSYNs}: the XDP program makes no handshakes")
	case len(p.ConcurrencyStages) > 0:
		return optionErr("TLS", nil, "takes no {ConcurrencyStages} yet: give {Count}, {Rate} and {HoldFor} with {Close} hold")
	case t.MinVersion != 0 && t.MaxVersion != 0 && t.MinVersion > t.MaxVersion:
		return optionErr("TLS", nil, "MinVersion above MaxVersion")
	}
	return nil
}

// defaultTLSConcurrency bounds the connections of a TLS run without
// Concurrency: enough to keep both sides' cores busy over a LAN's RTT.
const defaultTLSConcurrency = 256

// tlsStats are a TLS run's totals, kept by its timeline under its lock:
// the report's TLS and request parts at the end, the metrics meanwhile.
type tlsStats struct {
	handshakes, resumed        uint64
	failed, versions, ciphers  map[string]uint64
	groups                     map[string]uint64
	hs, ttfb, ttlb, sched      report.Histogram
	requests, completed, bytes uint64
	reqFailed, status          map[string]uint64
}

// classes are the complete responses by status class ("2xx").
func (t *tlsStats) classes() map[string]uint64 {
	c := map[string]uint64{}
	for code, n := range t.status {
		c[code[:1]+"xx"] += n
	}
	return c
}

func newTLSStats() *tlsStats {
	return &tlsStats{failed: map[string]uint64{}, versions: map[string]uint64{}, ciphers: map[string]uint64{}, groups: map[string]uint64{},
		reqFailed: map[string]uint64{}, status: map[string]uint64{}}
}

// tlsRun is what a TLS run's goroutines share.
type tlsRun struct {
	eng       *fastpath.Engine
	cfg       *tls.Config
	spec      *l7.Spec
	perConn   int
	closeMode fastpath.CloseMode
	timeout   time.Duration
	tl        *tlsTimeline
	// release ends the holding of held connections (Close hold).
	release chan struct{}
}

// runTLS runs p over TLS: the engine only dials (as Dial does), and
// Concurrency goroutines each take the next attempt (at Rate or along
// Stages, if set), dial, handshake, make the requests and close (or hold
// the connection until HoldFor after the generation), until Count or
// Duration.
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
	stopWatch := s.watchLink(cfg.LinkDown)
	finish := runBehind(ctx, eng, h.Interval, h.Progress)
	defer finish()
	if !waitRunning(eng) {
		// Its Run ended at once (a socket failed): nothing to load.
		_, err := finish()
		s.outages = stopWatch()
		return nil, errors.Join(errors.New("xdpconnect: the engine did not start"), err)
	}
	run := &tlsRun{eng: eng, cfg: p.TLS.config(), spec: p.Request, perConn: max(p.RequestsPerConn, 1), closeMode: p.Close,
		timeout: p.ResponseTimeout, tl: &tlsTimeline{start: time.Now(), tot: newTLSStats()}, release: make(chan struct{})}
	s.tlsLive.Store(run.tl)
	if run.timeout == 0 {
		run.timeout = fastpath.DefaultResponseTimeout
	}
	conc := p.Concurrency
	switch {
	case conc == 0 && p.Close == fastpath.CloseHold && p.Count > 0:
		conc = int(p.Count) // each held connection keeps its goroutine
	case conc == 0:
		conc = defaultTLSConcurrency
	}
	if p.Count > 0 {
		conc = int(min(uint64(conc), p.Count))
	}
	genCtx, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	if d := p.Duration; d > 0 || len(p.Stages) > 0 {
		if len(p.Stages) > 0 {
			d = stagesTotal(p.Stages)
		}
		var cancel context.CancelFunc
		genCtx, cancel = context.WithTimeout(genCtx, d)
		defer cancel()
	}
	start := run.tl.start
	var next, started, late atomic.Uint64 // attempts taken, begun, and begun late
	// genOver closes when Count attempts have begun; genCtx ends with
	// Duration or the stages (or ctx): the generation's two ends.
	genOver := make(chan struct{})
	var overOnce sync.Once
	begin := func() {
		if started.Add(1) == p.Count {
			overOnce.Do(func() { close(genOver) })
		}
	}
	// take is the next attempt's number and the time the schedule wants it
	// (Rate: evenly spaced from the start; Stages: along their ramp; else
	// now), once that time has come; false when the goroutine has no more
	// to do (the count is taken, the schedule is over, or the generation
	// ended).
	take := func() (uint64, time.Time, bool) {
		n := next.Add(1) - 1
		if p.Count > 0 && n >= p.Count || genCtx.Err() != nil {
			return 0, time.Time{}, false
		}
		var at time.Duration
		switch {
		case len(p.Stages) > 0:
			var ok bool
			if at, ok = stagesDue(p.Stages, n); !ok {
				return 0, time.Time{}, false // genCtx ends at the stages' end
			}
		case p.Rate > 0:
			at = time.Duration(float64(n) / p.Rate * float64(time.Second))
		default:
			begin()
			return n, time.Now(), true
		}
		due := start.Add(at)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-genCtx.Done():
				return 0, time.Time{}, false
			}
		} else if -d > report.TLSLateAfter {
			late.Add(1) // every goroutine was busy with earlier attempts
		}
		begin()
		return n, due, true
	}
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, due, ok := take()
				if !ok {
					break
				}
				run.one(ctx, s.opts.Targets[n%uint64(len(s.opts.Targets))], due)
			}
		}()
	}
	select {
	case <-genOver:
	case <-genCtx.Done():
	}
	genEnd := time.Since(start)
	if p.Close == fastpath.CloseHold {
		select {
		case <-time.After(p.HoldFor):
		case <-ctx.Done():
		}
	}
	close(run.release)
	wg.Wait()
	r, runErr := finish()
	s.outages = stopWatch()
	if r == nil {
		return nil, runErr
	}
	if runErr != nil {
		r.Stopped = runErr.Error()
	}
	fillTLS(r, run.tl.tot, p, genEnd) // the goroutines are done: no lock
	run.tl.fill(r)
	if r.Saturation == nil {
		r.Saturation = &report.Saturation{}
	}
	r.Saturation.TLSLate = late.Load()
	s.complete(r, &cfg)
	return r, runErr
}

// stagesTotal is the stages' whole duration.
func stagesTotal(stages []Stage) time.Duration {
	var d time.Duration
	for _, st := range stages {
		d += st.Duration
	}
	return d
}

// stagesDue is when, from the start, the stages' ramp wants attempt n (the
// time its cumulative count reaches n: the rate ramps linearly over each
// stage from the previous stage's rate, 0 before the first); false past
// their end.
func stagesDue(stages []Stage, n uint64) (time.Duration, bool) {
	left := float64(n)
	from, at := 0.0, time.Duration(0)
	for _, st := range stages {
		d := st.Duration.Seconds()
		area := (from + st.Rate) / 2 * d
		if left < area {
			// from*t + slope/2*t^2 = left, for t in [0, d).
			slope := (st.Rate - from) / d
			var t float64
			if math.Abs(slope) < 1e-12 {
				t = left / from
			} else {
				t = (-from + math.Sqrt(from*from+2*slope*left)) / slope
			}
			return at + time.Duration(t*float64(time.Second)), true
		}
		left -= area
		from, at = st.Rate, at+st.Duration
	}
	return 0, false
}

// one is one attempt: dial, TLS handshake, the requests, the close.
func (run *tlsRun) one(ctx context.Context, dst netip.AddrPort, due time.Time) {
	c, err := run.eng.Dial(ctx, dst)
	if err != nil {
		return // the engine's report counts it by errno
	}
	tcpDone := time.Now()
	c.SetDeadline(tcpDone.Add(run.timeout))
	tc := tls.Client(c, run.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		run.tl.tlsFailed(tlsFailure(err))
		c.Abort()
		return
	}
	run.tl.handshake(time.Since(tcpDone), tc.ConnectionState())
	buf := make([]byte, 16<<10)
	ok := true
	for i := 0; i < run.perConn && ok; i++ {
		run.tl.request()
		reqStart := time.Now()
		c.SetDeadline(reqStart.Add(run.timeout))
		var resp l7.Response
		res := l7.More
		var ttfb time.Duration
		got := 0 // response bytes read
		if _, err := tc.Write(run.spec.Request); err != nil {
			run.tl.requestFailed(requestFailure(err), 0, 0)
			ok = false
			break
		}
		why := ""
		for res == l7.More && why == "" {
			n, err := tc.Read(buf)
			if n > 0 {
				if got == 0 {
					ttfb = time.Since(reqStart)
				}
				got += n
				res = resp.Feed(run.spec, buf[:n])
			}
			if err != nil && res == l7.More {
				if err == io.EOF {
					res = resp.Close(run.spec)
				} else {
					why = requestFailure(err)
				}
			}
		}
		switch res {
		case l7.Done:
			sched := time.Duration(-1)
			if i == 0 {
				sched = time.Since(due)
			}
			code := "0"
			if resp.Status >= 100 && resp.Status <= 599 {
				code = strconv.Itoa(int(resp.Status))
			}
			run.tl.response(code, ttfb, time.Since(reqStart), sched, got)
			continue
		case l7.ErrMalformed:
			why = "EBADMSG"
		case l7.ErrTooLarge:
			why = "EMSGSIZE"
		case l7.ErrTruncated:
			why = "EOF"
		}
		run.tl.requestFailed(why, ttfb, got)
		ok = false
	}
	switch {
	case ok && run.closeMode == fastpath.CloseHold:
		// Held until the run lets go, then aborted as hold mode's are.
		c.SetDeadline(time.Time{})
		select {
		case <-run.release:
		case <-ctx.Done():
		}
	case ok && run.closeMode == fastpath.CloseFIN:
		if run.perConn == 1 {
			// The request asked the server to close: its close_notify and
			// FIN follow the response at once (nginx's do). Read them, and
			// close without a close_notify of ours, which a server that
			// has closed its socket answers with an RST (the RFC 9411
			// criteria count those).
			c.SetReadDeadline(time.Now().Add(closeNotifyWait))
			if _, err := tc.Read(buf); err == io.EOF {
				c.Close()
				return
			}
		}
		// close_notify, then our FIN (an RST if data is still unread, as
		// Linux's close does).
		tc.Close()
		return
	}
	c.Abort()
}

// closeNotifyWait is how long a connection whose request asked the server
// to close waits for the server's close_notify before closing first (as
// request mode waits for the server's FIN: fastpath's finWaitMs).
const closeNotifyWait = 10 * time.Millisecond

// tlsTimeline is a TLS run's outcomes second by second, put in the
// report's timeline beside the engine's counts (the RFC 9411 procedures
// judge from it).
type tlsTimeline struct {
	mu    sync.Mutex
	start time.Time
	secs  []*tlsSecond
	tot   *tlsStats // the run's totals so far
}

type tlsSecond struct {
	handshakes           uint64
	tlsFailed, reqFailed map[string]uint64
	responses            map[string]uint64 // by class
	ttfb, ttlb           report.Histogram
}

// now is the current second's record; the caller holds mu.
func (tl *tlsTimeline) now() *tlsSecond {
	i := max(int(time.Since(tl.start)/time.Second), 0)
	for len(tl.secs) <= i {
		tl.secs = append(tl.secs, &tlsSecond{tlsFailed: map[string]uint64{}, reqFailed: map[string]uint64{}, responses: map[string]uint64{}})
	}
	return tl.secs[i]
}

// handshake records a handshake complete after d, and what it negotiated.
func (tl *tlsTimeline) handshake(d time.Duration, cs tls.ConnectionState) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.now().handshakes++
	t := tl.tot
	t.handshakes++
	if cs.DidResume {
		t.resumed++
	}
	t.hs.Record(d.Nanoseconds())
	t.versions[tls.VersionName(cs.Version)]++
	t.ciphers[tls.CipherSuiteName(cs.CipherSuite)]++
	t.groups[cs.CurveID.String()]++
}

func (tl *tlsTimeline) tlsFailed(why string) {
	tl.mu.Lock()
	tl.now().tlsFailed[why]++
	tl.tot.failed[why]++
	tl.mu.Unlock()
}

func (tl *tlsTimeline) request() {
	tl.mu.Lock()
	tl.tot.requests++
	tl.mu.Unlock()
}

// requestFailed records a request that failed with why, after its first
// byte at ttfb (0: none came) and n bytes.
func (tl *tlsTimeline) requestFailed(why string, ttfb time.Duration, n int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.now().reqFailed[why]++
	t := tl.tot
	t.reqFailed[why]++
	t.bytes += uint64(n)
	if n > 0 {
		t.ttfb.Record(ttfb.Nanoseconds())
	}
}

// response records a complete response of status code ("0": none), of n
// bytes; sched is the time from the attempt's place in the schedule, for
// a connection's first response (else negative).
func (tl *tlsTimeline) response(code string, ttfb, ttlb, sched time.Duration, n int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	sec := tl.now()
	class := "other"
	if code != "0" {
		class = code[:1] + "xx"
	}
	sec.responses[class]++
	sec.ttfb.Record(ttfb.Nanoseconds())
	sec.ttlb.Record(ttlb.Nanoseconds())
	t := tl.tot
	t.completed++
	t.bytes += uint64(n)
	if code != "0" {
		t.status[code]++
	}
	t.ttfb.Record(ttfb.Nanoseconds())
	t.ttlb.Record(ttlb.Nanoseconds())
	if sched >= 0 {
		t.sched.Record(sched.Nanoseconds())
	}
}

// counts are the totals so far, copied for a scrape.
func (tl *tlsTimeline) counts() metrics.TLSCounts {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	t := tl.tot
	c := metrics.TLSCounts{Handshakes: t.handshakes, Resumed: t.resumed, Failed: maps.Clone(t.failed), Requests: t.requests,
		Responses: t.classes(), RequestsFailed: maps.Clone(t.reqFailed), HandshakeTime: t.hs}
	return c
}

// fill adds the seconds to r's timeline (the engine's, second by second:
// both count from their starts, within a millisecond of each other).
func (tl *tlsTimeline) fill(r *report.Report) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i, ts := range tl.secs {
		for len(r.Timeline) <= i {
			r.Timeline = append(r.Timeline, report.Second{T: len(r.Timeline)})
		}
		sec := &r.Timeline[i]
		sec.TLSHandshakes = ts.handshakes
		sec.TLSFailed = addCounts(sec.TLSFailed, ts.tlsFailed)
		sec.RequestsFailed = addCounts(sec.RequestsFailed, ts.reqFailed)
		sec.Responses = addCounts(sec.Responses, ts.responses)
		sec.TTFBHist, sec.TTFB = ts.ttfb.Buckets(), report.QuantilesOf(&ts.ttfb)
		sec.TTLBHist, sec.TTLB = ts.ttlb.Buckets(), report.QuantilesOf(&ts.ttlb)
	}
}

// addCounts adds b to a (made when nil and b has counts).
func addCounts(a, b map[string]uint64) map[string]uint64 {
	for k, v := range b {
		if a == nil {
			a = map[string]uint64{}
		}
		a[k] += v
	}
	return a
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
	// Unnamed failures share one name: the report's and the metrics'
	// labels come from a bounded set.
	return "other"
}

// fillTLS puts the run's TLS and request counts in r: the handshakes over
// the run's generation (el), the requests as request mode reports them.
func fillTLS(r *report.Report, st *tlsStats, p Plan, el time.Duration) {
	t := &report.TLSReport{Handshakes: st.handshakes, Resumed: st.resumed, Failed: st.failed, Versions: st.versions,
		Ciphers: st.ciphers, Groups: st.groups}
	if _, err := netip.ParseAddr(p.TLS.ServerName); err != nil {
		t.ServerName = p.TLS.ServerName // crypto/tls sends no address as SNI
	}
	if el > 0 {
		t.PerSecond = float64(st.handshakes) / el.Seconds()
	}
	t.HandshakeHist, t.HandshakeTime = st.hs.Buckets(), report.QuantilesOf(&st.hs)
	r.TLS = t
	q := &report.RequestReport{PerConnection: max(p.RequestsPerConn, 1), Requests: st.requests, Completed: st.completed,
		Failed: st.reqFailed, Status: st.status, Classes: st.classes(), ResponseBytes: st.bytes}
	if el > 0 {
		q.PerSecond, q.BytesPerSecond = float64(st.completed)/el.Seconds(), float64(st.bytes)/el.Seconds()
	}
	q.TTFBHist, q.TTFB = st.ttfb.Buckets(), report.QuantilesOf(&st.ttfb)
	q.TTLBHist, q.TTLB = st.ttlb.Buckets(), report.QuantilesOf(&st.ttlb)
	q.TTLBSchedHist, q.TTLBSched = st.sched.Buckets(), report.QuantilesOf(&st.sched)
	r.Requests = q
}
