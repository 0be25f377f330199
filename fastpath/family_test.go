package fastpath

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// The engine's IPv6 connections: the end-to-end behaviours of the IPv4
// tests, on 2001:2::/48 addresses, and IPv4 and IPv6 in one run.

// v6 maps a lab IPv4 address 198.18.a.b to 2001:2::a:b.
func v6(a netip.Addr) netip.Addr {
	b := a.As4()
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 13: b[2], 15: b[3]})
}

// sixify moves cfg's targets and sources to IPv6.
func sixify(cfg Config) Config {
	tg := make([]Target, len(cfg.Targets))
	for i, t := range cfg.Targets {
		tg[i] = Target{Addr: netip.AddrPortFrom(v6(t.Addr.Addr()), t.Addr.Port()), DstMAC: t.DstMAC}
	}
	src := make([]Source, len(cfg.Sources))
	for i, s := range cfg.Sources {
		src[i] = Source{Addr: v6(s.Addr), Dedicated: s.Dedicated}
	}
	cfg.Targets, cfg.Sources = tg, src
	return cfg
}

// Accepted, refused and reset exactly as over IPv4 (three workers, the
// strict server checks hop limit, flow labels and the 507 window).
func TestEngineServerAgreesIPv6(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	links, loops := peerLinks(srv.Handle, 3)
	cfg := sixify(testConfig(linktest.ListenPort, linktest.ClosedPort))
	cfg.Count = 1001
	r := runClocked(t, cfg, clk, links, nil, loops...)
	clean(t, srv)
	if r.Attempted != 1001 || srv.Attempts() != 1001 || r.Established != srv.Accepted() || r.Failed["ECONNREFUSED"] != srv.Refused() ||
		r.Established+srv.Refused() != 1001 || srv.Resets() != r.Established || srv.Open() != 0 {
		t.Fatalf("report %+v; server: %d attempts, %d accepted, %d refused, %d resets, %d open",
			r, srv.Attempts(), srv.Accepted(), srv.Refused(), srv.Resets(), srv.Open())
	}
}

// V3, R2, R4 over IPv6: a blackholed SYN is sent at 0, 1 and 2 s with a
// new flow label each time (the strict server checks), and fails at 3 s.
// Under loss the books still balance and labels never break the rules.
func TestEngineTimeoutAndLossIPv6(t *testing.T) {
	var mu sync.Mutex
	labels := map[uint16][]uint32{}
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.V6 && pk.Seg.Flags == tcp.FlagSYN {
			mu.Lock()
			labels[pk.SrcPort] = append(labels[pk.SrcPort], tcp.IPv6(f[tcp.EthHdrLen:]).FlowLabel())
			mu.Unlock()
		}
		return nil
	})
	cfg := sixify(testConfig(linktest.BlackholePort))
	cfg.Count, cfg.Params.SynRetries = 20, 1
	r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
	if r.Failed["ETIMEDOUT"] != 20 || r.Retransmits != 40 {
		t.Fatalf("report %+v", r)
	}
	for port, ls := range labels {
		if len(ls) != 3 || ls[0] == ls[1] || ls[1] == ls[2] || ls[0] == ls[2] {
			t.Fatalf("port %d: SYN flow labels %x, want three different ones", port, ls)
		}
	}

	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	lossy := linktest.NewLink(srv.Handle)
	lossy.Loss = 0.2
	cfg = sixify(testConfig(80))
	cfg.Count, cfg.Params.SynRetries, cfg.Drain = 2000, 2, 20*time.Second
	r = runClocked(t, cfg, clk, []Link{lossy}, nil, lossy)
	clean(t, srv)
	if r.Established+r.Failed["ETIMEDOUT"] != 2000 || r.Retransmits == 0 || srv.Accepted() > r.Established {
		t.Fatalf("lossy: report %+v, accepted %d", r, srv.Accepted())
	}
}

// V5, V6: ICMPv6 errors about our SYN fail it at once with
// icmpv6_err_convert's errno; Packet Too Big changes nothing (the SYN
// keeps MSS 1440, and retransmits on its timer).
func TestEngineICMPv6(t *testing.T) {
	for _, tc := range []struct {
		typ, code uint8
		errno     string
	}{{1, 4, "ECONNREFUSED"}, {1, 3, "EHOSTUNREACH"}, {1, 1, "EACCES"}, {2, 0, "ETIMEDOUT"}} {
		l, mss := icmpResponder(tc.typ, tc.code, 1280)
		cfg := sixify(testConfig(linktest.BlackholePort))
		cfg.Count, cfg.Params.SynRetries = 30, 1
		r := runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
		if r.Failed[tc.errno] != 30 {
			t.Errorf("ICMPv6 %d/%d: failed %v, want 30 %s", tc.typ, tc.code, r.Failed, tc.errno)
		}
		if seen := mss(); len(seen) != 1 || !seen[1440] {
			t.Errorf("ICMPv6 %d/%d: SYN MSS %v, want only 1440", tc.typ, tc.code, seen)
		}
	}
}

// One run with IPv4 and IPv6 targets, one IPv4 source and three IPv6
// ones: every attempt goes out in its target's family from a source of
// that family, each target gets half the attempts (whatever its number of
// sources), the server accepts them all, and the table holds no pair
// across families.
func TestEngineMixedFamilies(t *testing.T) {
	srv := linktest.NewServer()
	clk := &linktest.Clock{}
	srv.Clock = clk
	var mu sync.Mutex
	fams := map[bool]int{}
	srcs := map[netip.Addr]int{}
	links, loops := peerLinks(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.Seg.Flags == tcp.FlagSYN {
			mu.Lock()
			fams[pk.V6]++
			if pk.V6 {
				srcs[netip.AddrFrom16(pk.Src6)]++
			} else {
				srcs[netip.AddrFrom4(pk.Src)]++
			}
			mu.Unlock()
		}
		return srv.Handle(f)
	}, 2)
	four := testConfig(80)
	six := sixify(four)
	cfg := four
	cfg.Targets = append(cfg.Targets, six.Targets...)
	cfg.Sources = append(cfg.Sources, six.Sources[0], Source{Addr: netip.MustParseAddr("2001:2::3")}, Source{Addr: netip.MustParseAddr("2001:2::4")})
	cfg.Count = 1000
	var e *Engine
	r := runClocked(t, cfg, clk, links, engineOf(&e), loops...)
	clean(t, srv)
	if r.Established != 1000 || srv.Accepted() != 1000 || fams[true] != 500 || fams[false] != 500 {
		t.Fatalf("established %d, accepted %d, SYNs by family %v", r.Established, srv.Accepted(), fams)
	}
	want := []report.FamilyReport{{Family: "ipv4", Attempted: 500, Established: 500, Failed: 0}, {Family: "ipv6", Attempted: 500, Established: 500, Failed: 0}}
	if len(r.Families) != 2 || r.Families[0] != want[0] || r.Families[1] != want[1] || r.TCP6 == nil || r.TCP6.MSS != 1440 || r.TCP.MSS != 1460 {
		t.Fatalf("families %+v, settings %+v / %+v", r.Families, r.TCP, r.TCP6)
	}
	if len(srcs) != 4 || srcs[netip.MustParseAddr("198.18.0.1")] != 500 {
		t.Fatalf("SYNs by source %v, want 500 from the IPv4 one and the rest from the three IPv6 ones", srcs)
	}
	if len(e.table) != 4*e.nPorts {
		t.Fatalf("table of %d entries for 4 pairs of %d ports", len(e.table), e.nPorts)
	}
	if _, err := New(Config{Targets: six.Targets, Sources: four.Sources, PortLo: 1000, PortHi: 2000, Count: 1}, []Link{linktest.NewLink(nil)}); err == nil {
		t.Fatal("an IPv6 target without an IPv6 source was taken")
	}
}

// X2 and V7 over IPv6: a stray segment is answered from the address it
// was sent to, with the incoming traffic class less ECN, hop limit 64; a
// neighbour solicitation for a dedicated source is answered, one for an
// address the kernel owns is left to the kernel.
func TestEngineNoConnectionAndNDIPv6(t *testing.T) {
	var mu sync.Mutex
	var rsts []tcp.Packet
	var nas, hops, tcs []int
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		switch tcp.Parse(f, &pk) {
		case tcp.KindTCP:
			if pk.Seg.Flags.Has(tcp.FlagRST) {
				mu.Lock()
				rsts = append(rsts, pk)
				ip := tcp.IPv6(f[tcp.EthHdrLen:])
				hops, tcs = append(hops, int(ip.HopLimit())), append(tcs, int(pk.TOS))
				mu.Unlock()
			}
		case tcp.KindDrop:
			if len(f) == tcp.NALen && f[tcp.EthHdrLen+tcp.IPv6HdrLen] == tcp.ICMPv6NeighAdvert {
				mu.Lock()
				nas = append(nas, int(f[tcp.EthHdrLen+tcp.IPv6HdrLen+8+15]))
				mu.Unlock()
			}
		}
		return nil
	})
	cfg := sixify(testConfig(linktest.BlackholePort))
	cfg.Sources = append(cfg.Sources, Source{Addr: netip.MustParseAddr("2001:2::8000:7"), Dedicated: true})
	cfg.Count, cfg.Params.SynRetries = 1, 0
	us, peer := cfg.Sources[0].Addr.As16(), cfg.Targets[0].Addr.Addr().As16()
	b := make([]byte, tcp.MaxReplyLen)
	n := tcp.Build(b, &tcp.Path{SrcMAC: [6]byte{2, 0, 0, 0, 0, 2}, DstMAC: [6]byte{2, 0, 0, 0, 0, 1}, V6: true, Src6: peer, Dst6: us,
		SrcPort: 80, DstPort: 10005}, &tcp.Reply{Flags: tcp.FlagSYN | tcp.FlagACK, Seq: 77, Ack: 4242, TOS: 0x2b})
	// Solicitations for the dedicated source, for the kernel's, and for
	// an address that is not ours at all.
	l.Inject(b[:n], nsFor(peer, cfg.Sources[1].Addr.As16()), nsFor(peer, us), nsFor(peer, netip.MustParseAddr("2001:2::9:9").As16()))
	runClocked(t, cfg, &linktest.Clock{}, []Link{l}, nil, l)
	mu.Lock()
	defer mu.Unlock()
	if len(rsts) != 1 || rsts[0].Seg.Flags != tcp.FlagRST || rsts[0].Seg.Seq != 4242 || rsts[0].Src6 != us || hops[0] != 64 || tcs[0] != 0x28 {
		t.Fatalf("X2/V7 replies %+v, hop limits %v, traffic classes %v", rsts, hops, tcs)
	}
	if len(nas) != 1 || nas[0] != 7 {
		t.Fatalf("neighbour advertisements for %v, want one for ::8000:7", nas)
	}
}

// nsFor is a neighbour solicitation from peer for target.
func nsFor(peer, target [16]byte) []byte {
	b := make([]byte, tcp.EthHdrLen+tcp.IPv6HdrLen+32)
	tcp.Ethernet(b).Encode([]byte{0x33, 0x33, 0xff, 0, 0, target[15]}, []byte{2, 0, 0, 0, 0, 2}, tcp.EtherIPv6)
	dst := [16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: target[13], 14: target[14], 15: target[15]}
	m := b[tcp.EthHdrLen+tcp.IPv6HdrLen:]
	m[0] = tcp.ICMPv6NeighSolicit
	copy(m[8:24], target[:])
	m[24], m[25] = 1, 1
	copy(m[26:32], []byte{2, 0, 0, 0, 0, 2})
	sum := tcp.Fold(tcp.Sum(m, tcp.PseudoSum6(&peer, &dst, tcp.ProtoICMPv6, 32)))
	m[2], m[3] = byte(sum>>8), byte(sum)
	tcp.IPv6(b[tcp.EthHdrLen:]).Encode(&tcp.IPv6Fields{PayloadLen: 32, NextHeader: tcp.ProtoICMPv6, HopLimit: 255, Src: peer, Dst: dst})
	return b
}

// Dial over IPv6 in an engine with both families: the connection leaves
// from the IPv6 source, a refusal is ECONNREFUSED, and an IPv4-mapped form
// of a target is not a target.
func TestDialIPv6(t *testing.T) {
	srv := linktest.NewServer()
	four := testConfig(80, 81)
	six := sixify(four)
	cfg := four
	cfg.Targets = append(cfg.Targets, six.Targets...)
	cfg.Sources = append(cfg.Sources, six.Sources...)
	e, stop := dialOnly(t, cfg, linktest.NewLink(srv.Handle))
	c, err := e.Dial(context.Background(), netip.MustParseAddrPort("[2001:2::2]:80"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Local.Addr() != six.Sources[0].Addr || srv.Open() != 1 {
		t.Fatalf("dialed from %v, server open %d", c.Local, srv.Open())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Dial(context.Background(), netip.MustParseAddrPort("[2001:2::2]:81")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial closed port: %v", err)
	}
	if _, err := e.Dial(context.Background(), netip.MustParseAddrPort("[::ffff:198.18.0.2]:80")); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("dial a mapped address: %v", err)
	}
	r := stop()
	fams := []report.FamilyReport{{Family: "ipv4", Attempted: 0, Established: 0, Failed: 0}, {Family: "ipv6", Attempted: 2, Established: 1, Failed: 1}}
	if r.Established != 1 || r.Closed != 1 || r.Failed["ECONNREFUSED"] != 1 || srv.Open() != 0 || len(r.Families) != 2 || r.Families[0] != fams[0] || r.Families[1] != fams[1] {
		t.Fatalf("report %+v open %d", r, srv.Open())
	}
	clean(t, srv)
}

// V3 after the handshake: a request segment lost, and its tail loss probe
// lost too, is sent again on its RTO with a new flow label; the probe keeps
// the connection's label, as Linux's (which re-rolls it on timeouts only).
// A label fixed at the SYN, one re-drawn per segment, or one re-rolled on
// the probe, differs here.
func TestRequestRetransmissionFlowLabelIPv6(t *testing.T) {
	srv := linktest.NewServer()
	httpServer(srv, 200, 100)
	clk := &linktest.Clock{}
	srv.Clock = clk
	var mu sync.Mutex
	labels := map[uint16][]uint32{} // per port: SYN, then each request segment
	dropped := map[uint16]int{}
	l := linktest.NewLink(func(f []byte) [][]byte {
		var pk tcp.Packet
		if tcp.Parse(f, &pk) == tcp.KindTCP && pk.V6 && (pk.Seg.Flags == tcp.FlagSYN || len(pk.Payload) > 0) {
			mu.Lock()
			labels[pk.SrcPort] = append(labels[pk.SrcPort], tcp.IPv6(f[tcp.EthHdrLen:]).FlowLabel())
			drop := len(pk.Payload) > 0 && dropped[pk.SrcPort] < 2
			if drop {
				dropped[pk.SrcPort]++
			}
			mu.Unlock()
			if drop {
				return nil // the request and its probe are lost
			}
		}
		return srv.Handle(f)
	})
	cfg := sixify(requestConfig(t, false))
	cfg.Count = 10
	r := runClocked(t, cfg, clk, []Link{l}, nil, l)
	if q := r.Requests; q == nil || q.Completed != 10 || q.Retransmits != 20 {
		t.Fatalf("report %+v, requests %+v", r, r.Requests)
	}
	for port, ls := range labels {
		// SYN, the lost request, its lost probe, the RTO's retransmission.
		if len(ls) != 4 || ls[0] != ls[1] || ls[2] != ls[1] || ls[3] == ls[2] {
			t.Fatalf("port %d: flow labels %x, want the SYN's on the request and its probe, a new one after the RTO", port, ls)
		}
	}
}
