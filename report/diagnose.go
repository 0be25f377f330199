package report

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Evidence is what the diagnosis looks at: the report (with the XDP and
// AF_XDP counters) and what the run knew of its path and plan.
type Evidence struct {
	// Report is the run's report, with the XDP and AF_XDP counters.
	Report *Report
	// Interface and Kind name the interface and its link kind.
	Interface, Kind string
	// LocalVirtual: frames on the interface come from a peer on this host.
	LocalVirtual bool
	// Queues is the number of active RX queues.
	Queues int
	// Ports is the number of source ports per (target, source) pair.
	Ports   int
	Sources []netip.Addr
	// Dedicated: some sources are not the kernel's (ARP and ND are
	// answered by xdpconnect).
	Dedicated bool
	// Routed: the sources are routed to this host by a router (not in the
	// interface's subnets): replies need the router's route back to them.
	Routed     bool
	Targets    []netip.AddrPort
	SynRetries int
}

// Diagnose names the causes of missing or dropped replies, most
// fundamental first: a cause listed earlier explains the ones after it
// (replies dropped for checksums leave attempts in flight, which then hold
// every port). Every finding carries the count it is based on and a fix.
func Diagnose(in Evidence) []Finding {
	r := in.Report
	var out []Finding
	add := func(n uint64, fix, cause string, a ...any) {
		out = append(out, Finding{Cause: fmt.Sprintf(cause, a...), Fix: fix, Count: n})
	}
	repliesMissing := false
	if r.Stopped != "" {
		// Whatever else is wrong, nothing could go on after this.
		add(r.InFlight, fmt.Sprintf("check the interface ('ip link show %s') and restart the run", in.Interface),
			"the run stopped early: %s", r.Stopped)
		repliesMissing = true
	}
	for i, o := range r.Outages {
		if r.Stopped != "" {
			break // the run stopped on it: said above
		}
		// While the link was down nothing left or came: it explains the
		// findings after it. The frames it cost are the run's, said once.
		lost := ""
		if i == 0 && (len(r.QueuedDown) > 0 || r.EstablishedDown > 0) {
			var parts []string
			if queued, _ := total(r.QueuedDown); queued > 0 {
				p := fmt.Sprintf("%d frames queued then (%s) waited in the TX ring and left when it was back, late", queued, FormatCounts(r.QueuedDown))
				if r.TxDropped > 0 {
					p += fmt.Sprintf(", and %d found the ring full and were dropped", r.TxDropped)
				}
				parts = append(parts, p)
			}
			if r.EstablishedDown > 0 {
				parts = append(parts, fmt.Sprintf("%d handshakes completed then: counted established here (as Linux counts them), their ACK left late, so the server accepted them late (or never, if it was dropped)", r.EstablishedDown))
			}
			lost = ": " + strings.Join(parts, "; ")
		}
		add(1, fmt.Sprintf("check the link ('ip link show %s', its cable or its peer), then run again, or leave the outage's seconds out (the JSON timeline)", o.Interface),
			"%s was down from %.2f s to %.2f s of the run%s; no handshake time is taken from a SYN that waited in the ring (Karn), so the RTT is the path's",
			o.Interface, o.StartSeconds, o.EndSeconds, lost)
	}
	if n := r.Drops["checksum"]; n > 0 {
		repliesMissing = r.Established == 0
		switch {
		case r.Path != nil && r.Path.AcceptPartialChecksum:
			add(n, fmt.Sprintf("frames are corrupted on the path or by a device: capture with 'tcpdump -vv -ni %s'", in.Interface),
				"%d replies dropped for bad TCP checksums (neither full nor partial)", n)
		case in.LocalVirtual:
			add(n, "leave --partial-checksum at auto (or accept): on this device partial checksums can only come from a peer on this host",
				"%d replies dropped for bad TCP checksums: partial checksums from a local peer's TX checksum offload, rejected by --partial-checksum reject", n)
		default:
			add(n, fmt.Sprintf("if the peer is on this host (a container or VM behind %s), its TX checksum offload leaves partial checksums: --partial-checksum accept, or 'ethtool -K PEER tx off' on the peer; otherwise capture with 'tcpdump -vv -ni %s'", in.Interface, in.Interface),
				"%d replies dropped for bad TCP checksums on %s (%s)", n, in.Interface, in.Kind)
		}
	}
	noSocket := r.XDP["pass_no_socket"] + r.XDP["drop_no_socket"]
	if noSocket > 0 {
		repliesMissing = true
		add(noSocket, fmt.Sprintf("run one worker per active RX queue (leave --workers out, or --workers %d), or lower the queues to the workers: 'ethtool -L %s combined %d'", in.Queues, in.Interface, r.Workers),
			"%d replies arrived on RX queues without an xdpconnect socket (%d worker(s), %d active queues) and went to the kernel, which reset them", noSocket, r.Workers, in.Queues)
	}
	redirected := r.XDP["redirect_tcp"] + r.XDP["redirect_icmp"]
	// SYNs the XDP program made (KernelSYNs) are answered there: no reply
	// is redirected to a socket, and the program counted the answers.
	if r.XDP != nil && r.KernelSYNs == nil && r.Attempted > 0 && redirected == 0 && noSocket == 0 {
		repliesMissing = true
		fix := fmt.Sprintf("check that %s answers (server up and listening, no firewall dropping SYNs), that SYNs leave ('tcpdump -ni %s') and that replies come back through %s", dstList(in.Targets), in.Interface, in.Interface)
		switch {
		case in.Routed:
			fix += fmt.Sprintf("; the sources %v are routed: the router before the target needs a route back to them through this host, and its reverse-path filter (rp_filter) must accept them", in.Sources)
		case in.Dedicated && r.XDP["redirect_arp"]+r.XDP["redirect_nd"] == 0:
			fix += fmt.Sprintf("; the peer never asked for the MAC of the dedicated source address(es) %v (ARP or neighbour solicitation): it needs an on-link route to them", in.Sources)
		}
		add(r.Attempted, fix, "no reply to any of %d SYNs reached xdpconnect on %s", r.Attempted, in.Interface)
	}
	if silent, answered := silentSources(r.Sources); len(silent) > 0 && answered > 0 {
		// The same SYNs to the same targets, answered from some sources
		// and not from others: the difference is each source's own way
		// back.
		var attempts uint64
		names := make([]string, 0, len(silent))
		for _, sr := range silent {
			attempts += sr.Attempted
			if len(names) < 10 {
				names = append(names, sr.Source)
			}
		}
		list := strings.Join(names, ", ")
		if len(silent) > len(names) {
			list += fmt.Sprintf(" and %d more", len(silent)-len(names))
		}
		fix := fmt.Sprintf("the replies to these sources do not come back while those to the other %d do: check the way back to each of them", answered)
		switch {
		case in.Routed:
			fix += " (routed sources: the router before the target needs a route to each source through this host, the right next hop, and a reverse-path filter (rp_filter) that accepts them: 'ip route get SOURCE' and 'sysctl net.ipv4.conf.all.rp_filter' on the router)"
		case in.Dedicated:
			fix += " (dedicated sources on the link: the peer must resolve each one, ARP or neighbour discovery, and route it on-link: 'ip neigh' and 'ip route get SOURCE' on the peer)"
		default:
			fix += " (a filter or a route on the path that treats these addresses apart: 'ip route get SOURCE' on the target or its router)"
		}
		add(attempts, fix, "%d of %d source addresses got no reply to any of their %d attempts (%s), while the others were answered", len(silent), len(r.Sources), attempts, list)
	}
	if n := r.Failed["EADDRNOTAVAIL"]; n > 0 {
		fix := "lower --rate or --concurrency, widen --src-ports, add --src addresses, or (fin mode) shorten --time-wait"
		if repliesMissing {
			fix = "the attempts could not finish because their replies were lost (see above); fixing that frees the ports"
		}
		add(n, fix, "%d attempts found no free source port: all %d ports x %d source address(es) per target were held by attempts in flight or in quarantine", n, in.Ports, len(in.Sources))
	}
	if n := r.Failed["ETIMEDOUT"]; n > 0 && !repliesMissing {
		// What is known is that no SYN-ACK came back: the candidates, and
		// how to tell them apart, not a verdict on the server.
		add(n, "find where the SYNs stop: a capture on the server's interface ('tcpdump -ni IF tcp[tcpflags] == tcp-syn') shows whether they arrive; "+
			"if they do not, a firewall, NAT or connection-tracking limit on the path, or loss; if they arrive unanswered, the server's SYN or accept queue "+
			"('nstat -az TcpExtListenOverflows TcpExtListenDrops' there: raise net.core.somaxconn and tcp_max_syn_backlog, or lower --rate); "+
			"if they are answered, the return path (a route back to the sources, reverse-path filtering)",
			"%d attempts timed out: no SYN-ACK came back to the SYN and its %d retransmissions (dropped on the way, by the server, or on the way back)", n, in.SynRetries)
	}
	if n := r.Failed["ECONNREFUSED"]; n > 0 {
		add(n, "check that the server listens on the port ('ss -ltn' on the server) and that no firewall rejects",
			"%d attempts refused: the server answered the SYN with RST", n)
	}
	var icmp []string
	var icmpN uint64
	for _, e := range []string{"EHOSTUNREACH", "ENETUNREACH", "EACCES", "EHOSTDOWN", "ENONET", "EPROTO", "ENOPROTOOPT", "EOPNOTSUPP"} {
		if n := r.Failed[e]; n > 0 {
			icmp = append(icmp, fmt.Sprintf("%s=%d", e, n))
			icmpN += n
		}
	}
	if icmpN > 0 {
		add(icmpN, fmt.Sprintf("a router reports %s unreachable: check routes and firewalls on the path", dstList(in.Targets)),
			"%d attempts failed with ICMP errors (%s)", icmpN, strings.Join(icmp, " "))
	}
	if r.TxDropped > 0 && len(r.Outages) == 0 {
		add(r.TxDropped, "raise --frames, or lower --rate", "%d frames could not be queued for sending (TX ring or frames exhausted)", r.TxDropped)
	}
	if n := r.XSK.RxLost(); n > 0 {
		add(n, "raise --frames, run more workers (queues), or lower --rate",
			"%d frames dropped by the kernel before xdpconnect read them (AF_XDP RX ring full or fill ring empty)", n)
	}
	tlsFindings(r.TLS, add)
	requestFindings(r.Requests, add)
	if r.InFlight > 0 && !repliesMissing {
		add(r.InFlight, "raise --drain: SYNs are retransmitted after 1 s, 2 s, 3 s ... and Linux gives up after about 2 minutes with 6 retries",
			"%d attempts were still in flight when the drain ended", r.InFlight)
	}
	return out
}

func dstList(d []netip.AddrPort) string {
	var s []string
	for i, a := range d {
		if i == 3 {
			s = append(s, fmt.Sprintf("and %d more", len(d)-3))
			break
		}
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}

// FailureSummary is the message for a run that established nothing: the
// dominant cause of the diagnosis and its fix.
func FailureSummary(r *Report) string {
	msg := fmt.Sprintf("no connection was established (%d attempted)", r.Attempted)
	if q := r.Requests; q != nil && r.Established > 0 {
		msg = fmt.Sprintf("no request completed (%d made on %d connections)", q.Requests, r.Established)
	}
	if t := r.TLS; t != nil && r.Established > 0 && t.Handshakes == 0 {
		msg = fmt.Sprintf("no TLS handshake completed (%d tried)", t.FailedTotal())
	}
	if len(r.Diagnosis) > 0 {
		return msg + ": " + r.Diagnosis[0].Cause + ". Fix: " + r.Diagnosis[0].Fix
	}
	return msg
}

// requestCauses are what each way a request fails says, with its fix.
var requestCauses = map[string][2]string{
	"ETIMEDOUT": {"no end of the response within the response timeout (the server is slow or silent, or the path loses packets)",
		"look at the server's load and logs; raise --response-timeout if the responses are just slow"},
	"ECONNRESET": {"the server (or a device on the path) reset the connection before the end of the response",
		"look at the server's error log and at middleboxes (connection limits, idle timeouts)"},
	"EBADMSG": {"the response is not one its framing can read (not HTTP/1.x, a bad chunk, conflicting lengths)",
		"check the target speaks HTTP/1.1 on that port (not TLS or another protocol); with --request, set --expect or --expect-bytes"},
	"EMSGSIZE": {"the response is larger than --max-response (or its headers than 16 KiB)",
		"raise --max-response, or request a smaller object"},
	"EOF": {"the server closed the connection before the end of the response",
		"look at the server's error log (limits on connections or request rate)"},
}

// requestFindings names request mode's dominant failures, each with its
// count and share, and non-2xx statuses when they are most responses:
// the evidence is the report's own counts.
func requestFindings(q *RequestReport, add func(n uint64, fix, cause string, a ...any)) {
	if q == nil || q.Requests == 0 {
		return
	}
	for _, k := range byCount(q.Failed) {
		n := q.Failed[k]
		c, ok := requestCauses[k]
		if !ok {
			c = [2]string{"the request failed (" + k + ")", "look at the server"}
		}
		add(n, c[1], "%d of %d requests failed with %s (%.1f %%): %s", n, q.Requests, k, 100*float64(n)/float64(q.Requests), c[0])
	}
	var bad uint64
	var classes []string
	for _, cl := range []string{"4xx", "5xx"} {
		if v := q.Classes[cl]; v > 0 {
			bad += v
			classes = append(classes, fmt.Sprintf("%s=%d", cl, v))
		}
	}
	if bad > 0 && 2*bad > q.Completed {
		add(bad, "check the path and the Host header (--http, --host) the server expects",
			"%d of %d complete responses were errors (%s): the server answered, with a status that says it did not serve the request", bad, q.Completed, strings.Join(classes, " "))
	}
}

// byCount is m's keys, the largest count first (ties by name).
func byCount(m map[string]uint64) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		return m[names[i]] > m[names[j]] || m[names[i]] == m[names[j]] && names[i] < names[j]
	})
	return names
}

// tlsCauses are what each failed TLS handshake says, with its fix, by
// the failure's name (TLSReport.Failed).
var tlsCauses = map[string][2]string{
	"alert: protocol_version": {"the server refused the TLS version offered (alert protocol_version)",
		"offer a version it speaks: --tls-version 1.3 or 1.2, or leave --tls-version out for both"},
	"alert: unrecognized_name": {"the server serves no site by the name sent in SNI (alert unrecognized_name)",
		"send a name it serves: --host NAME (the SNI and the Host header)"},
	"alert: handshake_failure": {"the server found nothing it could agree on (alert handshake_failure): the cipher suites or curves offered, or the SNI name for a server that rejects unknown names",
		"leave --tls-ciphers and --tls-curves out, or offer what the server's configuration lists; check --host"},
	"alert: insufficient_security": {"the server wants stronger cipher suites than offered (alert insufficient_security)",
		"leave --tls-ciphers out"},
	"certificate: unknown authority": {"the server's certificate is not signed by an authority in --tls-ca",
		"give --tls-ca the CA that signed the server's certificate (or leave --tls-ca out: load tests need not verify)"},
	"certificate: expired": {"the server's certificate has expired, or is not valid yet (this host's clock)",
		"renew the server's certificate (or check this host's clock)"},
	"certificate: name mismatch": {"the server's certificate is not for the name verified (--host, else the target's address)",
		"set --host to a name the certificate lists"},
	"timeout": {"no end of the TLS handshake within the response timeout (a server busy with cryptography, or one that does not speak TLS on that port)",
		"check the server speaks TLS on that port and its CPU; raise --response-timeout if handshakes are just slow"},
	"closed": {"the server closed the connection during the handshake (it does not speak TLS on that port, or refused the connection)",
		"check the port serves TLS, and the server's error log"},
	"reset": {"the server reset the connection during the handshake",
		"check the server's error log and middleboxes on the path"},
}

// tlsFindings names the causes of failed TLS handshakes, most frequent
// first, each with its count and share.
func tlsFindings(t *TLSReport, add func(n uint64, fix, cause string, a ...any)) {
	if t == nil {
		return
	}
	tries := t.Handshakes + t.FailedTotal()
	for _, k := range byCount(t.Failed) {
		n := t.Failed[k]
		c, ok := tlsCauses[k]
		if !ok {
			c = [2]string{"the handshake failed (" + k + ")", "look at the server's error log"}
		}
		add(n, c[1], "%d of %d TLS handshakes failed with %s (%.1f %%): %s", n, tries, k, 100*float64(n)/float64(tries), c[0])
	}
}

// silentSources are the sources with attempts and not one handshake, and
// how many others had handshakes; a source with too few attempts to tell
// (under 3) is neither.
func silentSources(srcs []SourceReport) (silent []SourceReport, answered int) {
	for _, s := range srcs {
		switch {
		case s.Established > 0:
			answered++
		case s.Attempted >= 3:
			silent = append(silent, s)
		}
	}
	return silent, answered
}
