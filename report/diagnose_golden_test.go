package report

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// diagnoseCases are runs that each lead the diagnosis down other
// branches, with counts all distinct so that a finding counted from the
// wrong field shows, and values on the branches' edges.
func diagnoseCases() map[string]Evidence {
	src := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	dst := func(n int) []netip.AddrPort {
		var out []netip.AddrPort
		for i := range n {
			out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(2 + i)}), 80))
		}
		return out
	}
	base := func(r *Report) Evidence {
		return Evidence{Report: r, Interface: "xc0", Kind: "veth", Queues: 2, Ports: 100, Sources: src("198.18.0.1"), Targets: dst(1), SynRetries: 6}
	}
	silent := func(n int) []SourceReport {
		var out []SourceReport
		for i := range n {
			out = append(out, SourceReport{Source: fmt.Sprintf("198.18.1.%d", i+1), Attempted: 3})
		}
		out = append(out, SourceReport{Source: "198.18.2.1", Attempted: 2},
			SourceReport{Source: "198.18.3.1", Attempted: 50, Established: 1}, SourceReport{Source: "198.18.3.2", Attempted: 60, Established: 59})
		return out
	}
	cases := map[string]Evidence{
		"stopped": base(&Report{Attempted: 20, InFlight: 4, Stopped: "worker 0: the interface is gone", Failed: map[string]uint64{"ETIMEDOUT": 5, "EADDRNOTAVAIL": 3},
			Outages: []Outage{{Interface: "xc0", StartSeconds: 1, EndSeconds: 2}}}),
		"outages": base(&Report{Attempted: 30, Established: 30, TxDropped: 7, QueuedDown: map[string]uint64{"syn": 3, "ack": 2}, EstablishedDown: 4,
			Outages: []Outage{{Interface: "xc0", StartSeconds: 1.25, EndSeconds: 2.5}, {Interface: "xc0", StartSeconds: 3, EndSeconds: 3.5}}}),
		"outage, queued, nothing dropped, none established": base(&Report{Attempted: 30, Established: 30, QueuedDown: map[string]uint64{"syn": 5},
			Outages: []Outage{{Interface: "xc0", StartSeconds: 1, EndSeconds: 2}}}),
		"replies of both kinds": base(&Report{Attempted: 10, Established: 5, Failed: map[string]uint64{"EHOSTUNREACH": 5},
			XDP: map[string]uint64{"redirect_tcp": 5, "redirect_icmp": 5}}),
		"nothing attempted":             base(&Report{XDP: map[string]uint64{}}),
		"every source answered":         base(&Report{Attempted: 20, Established: 20, Sources: []SourceReport{{Source: "198.18.0.1", Attempted: 10, Established: 10}, {Source: "198.18.0.3", Attempted: 10, Established: 10}}}),
		"requests, nothing established": base(&Report{Attempted: 5, Failed: map[string]uint64{"ECONNREFUSED": 5}, Requests: &RequestReport{}}),
		"requests, 5xx alone": base(&Report{Attempted: 60, Established: 60, Requests: &RequestReport{Requests: 60, Completed: 60,
			Classes: map[string]uint64{"2xx": 10, "4xx": 0, "5xx": 50}}}),
		"outage, nothing queued":     base(&Report{Attempted: 30, Established: 30, Outages: []Outage{{Interface: "xc0", StartSeconds: 1, EndSeconds: 1.5}}}),
		"outage, only established":   base(&Report{Attempted: 30, Established: 30, EstablishedDown: 1, Outages: []Outage{{Interface: "xc0", StartSeconds: 1, EndSeconds: 1.5}}}),
		"checksum, partial accepted": base(&Report{Attempted: 9, Drops: map[string]uint64{"checksum": 5}, Path: &Path{AcceptPartialChecksum: true}, InFlight: 9}),
		"ports":                      base(&Report{Attempted: 40, Established: 29, Failed: map[string]uint64{"EADDRNOTAVAIL": 11}}),
		"timeouts and icmp": base(&Report{Attempted: 50, Established: 27, InFlight: 3, TxDropped: 8, XSK: &XSKStats{RxDropped: 1, RxRingFull: 2},
			Failed: map[string]uint64{"ETIMEDOUT": 3, "ECONNREFUSED": 4, "EHOSTUNREACH": 1, "EACCES": 2, "EPROTO": 5}}),
		"requests": base(&Report{Attempted: 100, Established: 100, Requests: &RequestReport{Requests: 100, Completed: 80,
			Failed: map[string]uint64{"ETIMEDOUT": 5, "EOF": 5, "EWEIRD": 10}, Classes: map[string]uint64{"2xx": 39, "4xx": 30, "5xx": 11}}}),
		// 40 of 80 errors is half, not most: no finding of statuses.
		"requests, half errors": base(&Report{Attempted: 80, Established: 80, Requests: &RequestReport{Requests: 80, Completed: 80,
			Classes: map[string]uint64{"2xx": 40, "5xx": 40}}}),
		"no requests made":    base(&Report{Attempted: 1, Established: 1, Requests: &RequestReport{Failed: map[string]uint64{"EOF": 1}}}),
		"silent sources":      base(&Report{Attempted: 146, Established: 60, Sources: silent(12)}),
		"one silent source":   base(&Report{Attempted: 113, Established: 60, Sources: silent(1)}),
		"every source silent": base(&Report{Attempted: 9, Sources: []SourceReport{{Source: "198.18.1.1", Attempted: 5}, {Source: "198.18.1.2", Attempted: 4}}}),
		// Handshakes 31 + failed 2+3+4+7+8+9 = 64 tried: shares are of
		// the tries, not of the connections or the requests.
		"tls failures": base(&Report{Attempted: 70, Established: 64, Failed: map[string]uint64{"ETIMEDOUT": 6}, TLS: &TLSReport{Handshakes: 31,
			Failed: map[string]uint64{"alert: protocol_version": 9, "certificate: expired": 8, "alert: unrecognized_name": 7, "timeout": 4, "closed": 3, "other: eh": 2}},
			Requests: &RequestReport{Requests: 31, Completed: 31}}),
	}
	e := base(&Report{Attempted: 6, Drops: map[string]uint64{"checksum": 6}, Established: 2})
	e.LocalVirtual = true
	cases["checksum, local peer"] = e
	e = base(&Report{Attempted: 7, Drops: map[string]uint64{"checksum": 1}, Established: 7})
	cases["checksum, remote"] = e
	e = base(&Report{Attempted: 12, Workers: 1, XDP: map[string]uint64{"pass_no_socket": 3, "drop_no_socket": 4, "redirect_tcp": 5}, Failed: map[string]uint64{"EADDRNOTAVAIL": 9}})
	e.Queues = 4
	cases["replies on queues without a socket"] = e
	e = base(&Report{Attempted: 10, InFlight: 2, XDP: map[string]uint64{"redirect_tcp": 0}, Failed: map[string]uint64{"ETIMEDOUT": 8}})
	e.Routed, e.Sources, e.Targets = true, src("198.19.9.1", "198.19.9.2"), dst(5)
	cases["no reply, routed sources"] = e
	e = base(&Report{Attempted: 11, XDP: map[string]uint64{}})
	e.Dedicated, e.Targets = true, dst(3)
	cases["no reply, dedicated sources never asked for"] = e
	e = base(&Report{Attempted: 13, XDP: map[string]uint64{"redirect_arp": 2}})
	e.Dedicated, e.Targets = true, dst(4)
	cases["no reply, dedicated sources asked for"] = e
	cases["no reply, SYNs made by XDP"] = base(&Report{Attempted: 14, XDP: map[string]uint64{}, KernelSYNs: &KernelSYNs{}})
	cases["no reply, ICMP only"] = base(&Report{Attempted: 15, XDP: map[string]uint64{"redirect_icmp": 15}, Failed: map[string]uint64{"EHOSTUNREACH": 15}})
	e = base(&Report{Attempted: 16, Established: 1, Sources: silent(2)})
	e.Routed = true
	cases["silent sources, routed"] = e
	e = base(&Report{Attempted: 17, Established: 1, Sources: silent(2)})
	e.Dedicated = true
	cases["silent sources, dedicated"] = e
	return cases
}

// Every case's findings (count, cause, fix, in order) equal the golden
// file: go test ./report -run TestDiagnoseGolden -update rewrites it.
func TestDiagnoseGolden(t *testing.T) {
	cases := diagnoseCases()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		fmt.Fprintf(&b, "== %s\n", name)
		for _, f := range Diagnose(cases[name]) {
			fmt.Fprintf(&b, "%d | %s\n    fix: %s\n", f.Count, f.Cause, f.Fix)
		}
		if r := *cases[name].Report; r.Established == 0 || r.Requests != nil {
			r.Diagnosis = Diagnose(cases[name])
			fmt.Fprintf(&b, "summary: %s\n", FailureSummary(&r))
		}
	}
	golden(t, "diagnose.golden", b.String())
}

// Each limit's value, threshold and words, and the edges of each test
// (exactly at a threshold is not over it), equal the golden file.
func TestSaturationGolden(t *testing.T) {
	cases := []struct {
		name string
		r    Report
		s    Saturation
	}{
		{"every limit", Report{Attempted: 9000, AskedRate: 1000, AttemptRate: 900, DurationSeconds: 10, TxDropped: 7,
			Failed: map[string]uint64{"EADDRNOTAVAIL": 270}, XSK: &XSKStats{RxDropped: 5, RxRingFull: 6, RxFillRingEmpty: 4}},
			Saturation{Late: 1000, Busy: 0.97, Concurrency: 400, RingConnections: 200}},
		{"late: 100 is not over the minimum", Report{Attempted: 900, AskedRate: 1000, AttemptRate: 1000, DurationSeconds: 1}, Saturation{Late: 100}},
		{"late: 101 is", Report{Attempted: 899, AskedRate: 1000, AttemptRate: 1000, DurationSeconds: 1}, Saturation{Late: 101, Busy: 0.5}},
		{"late, in an outage", Report{Attempted: 899, Outages: []Outage{{}}}, Saturation{Late: 101}},
		{"ports: 1 % is not over", Report{Attempted: 1000, Failed: map[string]uint64{"EADDRNOTAVAIL": 10}}, Saturation{}},
		{"ports: nothing attempted", Report{Failed: map[string]uint64{"EADDRNOTAVAIL": 10}}, Saturation{}},
		{"rx-capacity: 1.5 times is not over", Report{Attempted: 1}, Saturation{Concurrency: 300, RingConnections: 200}},
		{"rx-capacity: no ring estimate", Report{Attempted: 1}, Saturation{Concurrency: 300}},
		{"tx-drop, in an outage", Report{Attempted: 1, TxDropped: 3, Outages: []Outage{{}}}, Saturation{}},
		{"rate: 99 % is not under", Report{Attempted: 99, AskedRate: 100, AttemptRate: 99, DurationSeconds: 1}, Saturation{}},
		{"rate: under a second", Report{Attempted: 9, AskedRate: 100, AttemptRate: 50, DurationSeconds: 0.999}, Saturation{}},
		{"rate: held back", Report{Attempted: 9, AskedRate: 100, AttemptRate: 50, DurationSeconds: 2}, Saturation{HeldBack: 1}},
		{"rate: as fast as possible", Report{Attempted: 9, AttemptRate: 50, DurationSeconds: 2}, Saturation{}},
	}
	var b strings.Builder
	for _, c := range cases {
		s := c.s
		s.Judge(&c.r)
		fmt.Fprintf(&b, "== %s: saturated %v\n", c.name, s.Saturated)
		for _, l := range s.Limits {
			fmt.Fprintf(&b, "%s value %.6g threshold %g: %s\n", l.Reason, l.Value, l.Threshold, l.Detail)
		}
	}
	golden(t, "saturation.golden", b.String())
}
