package report

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestDiagnose(t *testing.T) {
	dst := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:80")}
	src := []netip.Addr{netip.MustParseAddr("198.18.0.1")}
	base := func(r Report) Evidence {
		if r.XDP == nil {
			r.XDP = map[string]uint64{"redirect_tcp": r.Established}
		}
		return Evidence{Report: &r, Interface: "eth1", Kind: "device", Queues: 4, Ports: 100, Sources: src, Targets: dst, SynRetries: 6}
	}
	cases := []struct {
		name string
		in   Evidence
		want []string // causes, in order (substrings)
		fix  string   // substring of the first fix
	}{
		{"clean run", base(Report{Attempted: 10, Established: 10}), nil, ""},
		{"checksums on a NIC", base(Report{Attempted: 10, Drops: map[string]uint64{"checksum": 10}, InFlight: 10,
			XDP: map[string]uint64{"redirect_tcp": 10}}), []string{"bad TCP checksums on eth1 (device)"}, "--partial-checksum accept"},
		{"silence with a dedicated source nobody ARPs for", func() Evidence {
			in := base(Report{Attempted: 5, InFlight: 5, XDP: map[string]uint64{}})
			in.Dedicated = true
			return in
		}(), []string{"no reply to any of 5 SYNs reached xdpconnect on eth1"}, "never asked for the MAC"},
		{"queues without a worker", base(Report{Attempted: 10, Established: 6, Workers: 1, Failed: map[string]uint64{"ETIMEDOUT": 4},
			XDP: map[string]uint64{"redirect_tcp": 6, "pass_no_socket": 4}}), []string{"4 replies arrived on RX queues without an xdpconnect socket (1 worker(s), 4 active queues)"}, "--workers 4"},
		{"timeouts: no verdict without the server's counters", base(Report{Attempted: 10, Established: 7, Failed: map[string]uint64{"ETIMEDOUT": 3}}),
			[]string{"3 attempts timed out: no SYN-ACK came back to the SYN and its 6 retransmissions (dropped on the way, by the server, or on the way back)"}, "a firewall, NAT or connection-tracking limit on the path"},
		{"silence with routed sources", func() Evidence {
			in := base(Report{Attempted: 5, InFlight: 5, XDP: map[string]uint64{}})
			in.Dedicated, in.Routed = true, true
			return in
		}(), []string{"no reply to any of 5 SYNs reached xdpconnect on eth1"}, "needs a route back to them through this host, and its reverse-path filter"},
		{"refused and ICMP", base(Report{Attempted: 10, Established: 4, Failed: map[string]uint64{"ECONNREFUSED": 3, "EHOSTUNREACH": 2, "ENETUNREACH": 1}}),
			[]string{"3 attempts refused", "3 attempts failed with ICMP errors (EHOSTUNREACH=2 ENETUNREACH=1)"}, "ss -ltn"},
		{"ports exhausted on their own", base(Report{Attempted: 10, Established: 8, Failed: map[string]uint64{"EADDRNOTAVAIL": 2}}),
			[]string{"2 attempts found no free source port: all 100 ports x 1 source address(es)"}, "widen --src-ports"},
		{"rings", base(Report{Attempted: 10, Established: 10, TxDropped: 3, XSK: &XSKStats{RxRingFull: 2}}),
			[]string{"3 frames could not be queued", "2 frames dropped by the kernel"}, "--frames"},
		{"drain too short", base(Report{Attempted: 10, Established: 9, InFlight: 1}), []string{"1 attempts were still in flight"}, "--drain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Diagnose(c.in)
			if len(got) != len(c.want) {
				t.Fatalf("findings %+v, want %d", got, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(got[i].Cause, w) || got[i].Count == 0 || got[i].Fix == "" {
					t.Fatalf("finding %d: %+v, want cause %q", i, got[i], w)
				}
			}
			if c.fix != "" && !strings.Contains(got[0].Fix, c.fix) {
				t.Fatalf("fix %q, want %q", got[0].Fix, c.fix)
			}
			// A claim the evidence does not support is never made: routed
			// sources need no on-link route, and silence is no verdict on
			// the server's queues.
			for _, f := range got {
				if c.in.Routed && strings.Contains(f.Fix, "on-link") || strings.Contains(f.Cause+f.Fix, "the server dropped SYNs") {
					t.Fatalf("unsupported claim: %+v", f)
				}
			}
		})
	}
}

// Request mode's failures are named by the report's own counts, the most
// frequent first, with their share; error statuses only when they are
// most of the responses.
func TestDiagnoseRequests(t *testing.T) {
	r := Report{Attempted: 100, Established: 100, XDP: map[string]uint64{"redirect_tcp": 300},
		Requests: &RequestReport{Requests: 100, Completed: 10, Failed: map[string]uint64{"ECONNRESET": 30, "ETIMEDOUT": 60},
			Classes: map[string]uint64{"5xx": 6, "2xx": 4}}}
	got := Diagnose(Evidence{Report: &r, Interface: "eth1", Queues: 1, Ports: 100})
	if len(got) != 3 || !strings.HasPrefix(got[0].Cause, "60 of 100 requests failed with ETIMEDOUT (60.0 %)") || got[0].Count != 60 ||
		!strings.HasPrefix(got[1].Cause, "30 of 100 requests failed with ECONNRESET") || !strings.Contains(got[2].Cause, "5xx=6") {
		t.Fatalf("%+v", got)
	}
	r.Requests.Classes = map[string]uint64{"5xx": 4, "2xx": 6}
	r.Requests.Failed = nil
	if got := Diagnose(Evidence{Report: &r, Interface: "eth1", Queues: 1, Ports: 100}); len(got) != 0 {
		t.Fatalf("a minority of error statuses diagnosed: %+v", got)
	}
	r.Requests.Completed, r.Requests.Failed = 0, map[string]uint64{"EOF": 100}
	r.Diagnosis = Diagnose(Evidence{Report: &r, Interface: "eth1", Queues: 1, Ports: 100})
	if s := FailureSummary(&r); !strings.HasPrefix(s, "no request completed (100 made on 100 connections): 100 of 100 requests failed with EOF") {
		t.Fatal(s)
	}
}

// Saturation is judged from the report's own evidence, each limit once,
// with its value: late attempts and ports over 1 %, any frame lost on our
// side, an attempt rate under 99 % of the asked one when nothing held it
// back; and RateMissed for those that mean the asked rate was not
// delivered.
func TestSaturationJudge(t *testing.T) {
	for _, c := range []struct {
		name   string
		r      Report
		s      Saturation
		want   []string
		missed bool
	}{
		{"clean", Report{Attempted: 100000, AskedRate: 1000, AttemptRate: 1000, DurationSeconds: 100}, Saturation{Late: 999}, nil, false},
		{"late", Report{Attempted: 9800, AskedRate: 1000, AttemptRate: 995, DurationSeconds: 10}, Saturation{Late: 200}, []string{"late"}, true},
		// 200 of a schedule of 20,000 is 1 %, not over it (though it is
		// over 1 % of the 19,800 attempts made).
		{"late at exactly 1 % of the schedule", Report{Attempted: 19800, AskedRate: 1000, AttemptRate: 1000, DurationSeconds: 20}, Saturation{Late: 200}, nil, false},
		{"a hiccup in a short run", Report{Attempted: 980, AskedRate: 1000, AttemptRate: 995, DurationSeconds: 1}, Saturation{Late: 20}, nil, false},
		{"ports", Report{Attempted: 1000, Failed: map[string]uint64{"EADDRNOTAVAIL": 11}}, Saturation{}, []string{"ports"}, true},
		{"rx loss and tx drops", Report{Attempted: 10, TxDropped: 1, XSK: &XSKStats{RxDropped: 3, RxFillRingEmpty: 3}}, Saturation{}, []string{"rx-loss", "tx-drop"}, false},
		{"rate, nothing held back", Report{Attempted: 900, AskedRate: 1000, AttemptRate: 980, DurationSeconds: 1}, Saturation{}, []string{"rate"}, true},
		{"rate held back by the bound", Report{Attempted: 900, AskedRate: 1000, AttemptRate: 980, DurationSeconds: 1}, Saturation{HeldBack: 100}, nil, false},
		{"a run too short to judge its rate", Report{Attempted: 9, AskedRate: 1000, AttemptRate: 900, DurationSeconds: 0.01}, Saturation{}, nil, false},
		// 256 responses of 64 KiB in flight, rings that hold 85 of them.
		{"more in flight than the rings take", Report{Attempted: 1000}, Saturation{Concurrency: 256, RingConnections: 85}, []string{"rx-capacity"}, false},
		{"in flight the rings take", Report{Attempted: 1000}, Saturation{Concurrency: 256, RingConnections: 900}, nil, false},
		{"no bound asked", Report{Attempted: 1000}, Saturation{RingConnections: 85}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.s
			s.Judge(&c.r)
			var got []string
			for _, l := range s.Limits {
				got = append(got, l.Reason)
				if l.Detail == "" {
					t.Errorf("limit %s without words", l.Reason)
				}
			}
			if c.name == "late" && (s.Limits[0].Value != 0.02 || !strings.Contains(s.Limits[0].Detail, "200 attempts (2.0 % of the schedule)")) {
				t.Errorf("late share %v (%s), want 200 of a schedule of 10,000", s.Limits[0].Value, s.Limits[0].Detail)
			}
			c.r.Saturation = &s
			if !slices.Equal(got, c.want) || s.Saturated != (len(c.want) > 0) || c.r.RateMissed() != c.missed {
				t.Fatalf("limits %v (saturated %v, rate missed %v), want %v (%v)", got, s.Saturated, c.r.RateMissed(), c.want, c.missed)
			}
		})
	}
}

// A link that went down is named before what it caused, and not beside a
// run that stopped because the interface went away (that finding says it).
func TestDiagnoseOutage(t *testing.T) {
	r := Report{Attempted: 10, Established: 9, InFlight: 1, TxDropped: 5, XDP: map[string]uint64{"redirect_tcp": 9},
		Outages: []Outage{{Interface: "eth1", StartSeconds: 1.5, EndSeconds: 2.5}}}
	in := Evidence{Report: &r, Interface: "eth1", Queues: 1, Ports: 100}
	got := Diagnose(in)
	if len(got) == 0 || !strings.HasPrefix(got[0].Cause, "eth1 was down from 1.50 s to 2.50 s") {
		t.Fatalf("%+v", got)
	}
	for _, f := range got {
		if strings.Contains(f.Fix, "raise --frames") {
			t.Fatalf("TX drops of an outage blamed on the ring: %+v", f)
		}
	}
	r.Stopped = "worker 0: the interface is gone"
	got = Diagnose(in)
	if !strings.HasPrefix(got[0].Cause, "the run stopped early") {
		t.Fatalf("%+v", got)
	}
	for _, f := range got {
		if strings.Contains(f.Cause, "was down") {
			t.Fatalf("the outage named beside the stop: %+v", got)
		}
	}
}

// One source of several gets no reply while the others do: the finding
// names it (and only it), counts its attempts, and sends routed sources
// to the router's return route and rp_filter. Sources with too few
// attempts to tell, or a run where no source was answered (said by the
// silence finding), name nobody.
func TestDiagnoseSilentSource(t *testing.T) {
	srcs := []SourceReport{{Source: "198.18.210.1", Attempted: 50, Established: 50}, {Source: "198.18.210.2", Attempted: 50, Established: 49, Failed: 1},
		{Source: "198.18.210.9", Attempted: 50, Failed: 50}, {Source: "198.18.210.10", Attempted: 2, Failed: 2}}
	r := &Report{Attempted: 152, Established: 99, Failed: map[string]uint64{"ETIMEDOUT": 53}, Sources: srcs, XDP: map[string]uint64{"redirect_tcp": 99}}
	fs := Diagnose(Evidence{Report: r, Interface: "eth1", Routed: true, Dedicated: true, SynRetries: 1})
	var f *Finding
	for i := range fs {
		if strings.Contains(fs[i].Cause, "source addresses got no reply") {
			f = &fs[i]
		}
	}
	if f == nil || f.Count != 50 || !strings.Contains(f.Cause, "1 of 4 source addresses got no reply to any of their 50 attempts (198.18.210.9)") ||
		strings.Contains(f.Cause, "198.18.210.10") || !strings.Contains(f.Fix, "rp_filter") || !strings.Contains(f.Fix, "route to each source") {
		t.Fatalf("findings %+v", fs)
	}
	for i := range srcs {
		srcs[i].Established = 0
	}
	for _, f := range Diagnose(Evidence{Report: &Report{Attempted: 152, Sources: srcs, XDP: map[string]uint64{}}, Interface: "eth1", Routed: true}) {
		if strings.Contains(f.Cause, "source addresses got no reply") {
			t.Fatalf("no source answered, yet one is singled out: %+v", f)
		}
	}
}
