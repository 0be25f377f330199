package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/bpf"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// --xdp-syn against the Linux listener, IPv4 and IPv6 targets, a listening
// and a closed port: every probe ends once, counted by the XDP program:
// the listening port's probes are established and the closed one's
// refused, exactly; the server, whose SYN-ACKs the program reset, holds no
// half-open connection after; and a blackholed target's probes time out.
func TestKernelSYNs(t *testing.T) {
	testutil.SkipIfNotSupported(t, bpf.LiveFrames())
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, PeerGRO: true})
	// Both sides know each other's MAC first (one handshake per family):
	// a probe is one SYN, and one queued behind address resolution is
	// lost for good.
	for _, a := range []netip.Addr{l.ServerAddr, l.ServerAddr6} {
		runIn(t, l, netip.AddrPortFrom(a, 8080), func(o *runOpts) { o.plan.Count = 1 })
	}
	dsts := []netip.AddrPort{netip.AddrPortFrom(l.ServerAddr, 8080), netip.AddrPortFrom(l.ServerAddr6, 8080),
		netip.AddrPortFrom(l.ServerAddr, 8081), netip.AddrPortFrom(l.ServerAddr6, 8081)}
	r := runIn(t, l, dsts[0], func(o *runOpts) {
		o.opts.Targets = dsts
		o.plan.Count, o.plan.Close, o.plan.KernelSYNs = 8000, fastpath.CloseSYNOnly, true
	})
	if r.Attempted != 8000 || r.Established != 4000 || r.Failed["ECONNREFUSED"] != 4000 || r.FailedTotal() != 4000 || r.KernelSYNs == nil {
		t.Fatalf("report %+v (failed %v)", r, r.Failed)
	}
	// Paced: the generator is called for a millisecond's SYNs at a time,
	// and the pace holds over a second to a few percent.
	r = runIn(t, l, dsts[0], func(o *runOpts) {
		o.opts.Targets = dsts[:2]
		o.plan.Count, o.plan.Rate, o.plan.Close, o.plan.KernelSYNs = 40000, 40000, fastpath.CloseSYNOnly, true
	})
	if r.Established != 40000 || r.AttemptRate < 36000 || r.AttemptRate > 42000 {
		t.Fatalf("paced: established %d, attempt rate %.0f/s, asked 40000/s", r.Established, r.AttemptRate)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := lab.SocketStates(l.ServerNS)
		if err != nil {
			t.Fatal(err)
		}
		if st[lab.StateSynRecv] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still has %d half-open connections: our RSTs did not reach it", st[lab.StateSynRecv])
		}
		time.Sleep(50 * time.Millisecond)
	}
	hole := netip.MustParseAddr("198.18.0.99")
	blackhole(t, l, hole)
	r = runIn(t, l, netip.AddrPortFrom(hole, 8080), func(o *runOpts) {
		o.plan.Count, o.plan.Close, o.plan.KernelSYNs, o.plan.Drain = 1000, fastpath.CloseSYNOnly, true, 300*time.Millisecond
	})
	if r.Attempted != 1000 || r.Failed["ETIMEDOUT"] != 1000 {
		t.Fatalf("blackhole: report %+v", r)
	}
}

// --xdp-syn against a peer that answers in place on the same veth (the
// XDP reflector): the SYN-ACK travels back in the generator's own page,
// our program turns it into the RST in that page, and the page returns to
// the generator's pool with the RST's length in its frame header. Every
// probe, of both families, must still leave as a whole SYN and be
// answered: the kernel keeps a page's header unless the generator moves
// the frame's bounds, and before it did, the SYNs after the first few
// hundred left cut to the RST's length and were never answered.
func TestKernelSYNsAgainstReflector(t *testing.T) {
	testutil.SkipIfNotSupported(t, bpf.LiveFrames())
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	refl := attachReflector(t, l)
	const n = 60000
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) {
		o.opts.Targets = []netip.AddrPort{netip.AddrPortFrom(l.ServerAddr, 8080), netip.AddrPortFrom(l.ServerAddr6, 8080)}
		o.plan.Count, o.plan.Rate, o.plan.Close, o.plan.KernelSYNs = n, 0, fastpath.CloseSYNOnly, true
	})
	synAcks, _, _, err := refl.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if r.Attempted != n || r.Established != n || synAcks != n {
		t.Fatalf("%d probes: %d established, the reflector answered %d SYNs (report %+v, failed %v)",
			n, r.Established, synAcks, r, r.Failed)
	}
}
