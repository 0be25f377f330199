package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
)

// runIn runs xdpconnect in the lab's client namespace.
func runIn(t *testing.T, l *lab.Lab, dst netip.AddrPort, mod func(*runOpts)) *report.Report {
	t.Helper()
	r, err := runInErr(l, dst, mod)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runInErr is runIn for goroutines other than the test's (which must not
// call Fatal): the failure comes back as an error.
func runInErr(l *lab.Lab, dst netip.AddrPort, mod func(*runOpts)) (*report.Report, error) {
	o := &runOpts{quiet: true, progress: time.Second, opts: xdpconnect.DefaultOptions(), plan: xdpconnect.DefaultPlan()}
	o.opts.Netns = l.ClientNS
	o.opts.Targets = []netip.AddrPort{dst}
	o.opts.Frames = 4096
	o.opts.PortLo, o.opts.PortHi = 40000, 49999
	o.plan.Count, o.plan.Rate = 2000, 20000
	if mod != nil {
		mod(o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := execute(ctx, o, io.Discard, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if r.Attempted != r.Established+r.FailedTotal()+r.InFlight {
		return nil, fmt.Errorf("books do not balance: %+v", r)
	}
	return r, nil
}

// noServerConnections asserts that the server namespace holds no
// ESTABLISHED or CLOSE-WAIT socket (everything we opened was closed).
func noServerConnections(t *testing.T, l *lab.Lab) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := lab.SocketStates(l.ServerNS)
		if err != nil {
			t.Fatal(err)
		}
		if st[lab.StateEstablished] == 0 && st[lab.StateCloseWait] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still has %d ESTABLISHED, %d CLOSE-WAIT", st[lab.StateEstablished], st[lab.StateCloseWait])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// N connections in each close mode against the Linux listener: the
// listener's accept count equals established, and nothing stays open.
func TestRunCloseModesAgainstLinux(t *testing.T) {
	for _, mode := range []fastpath.CloseMode{fastpath.CloseRST, fastpath.CloseFIN, fastpath.CloseHold} {
		t.Run(mode.String(), func(t *testing.T) {
			l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, Hold: mode == fastpath.CloseHold})
			r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) { o.plan.Close = mode })
			if r.Established != 2000 || r.FailedTotal() != 0 || r.InFlight != 0 {
				t.Fatalf("report: %+v", r)
			}
			if acc := l.Listener.WaitAccepted(r.Established, time.Second, 10*time.Second); acc != r.Established {
				t.Fatalf("listener accepted %d, xdpconnect established %d", acc, r.Established)
			}
			if r.Closed != r.Established {
				t.Fatalf("closed %d of %d", r.Closed, r.Established)
			}
			noServerConnections(t, l)
		})
	}
}

// A port without listener: every attempt fails with ECONNREFUSED (Y4),
// over IPv4 and IPv6.
func TestRunClosedPort(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	for _, srv := range []netip.Addr{l.ServerAddr, l.ServerAddr6} {
		r := runIn(t, l, netip.AddrPortFrom(srv, 8081), func(o *runOpts) { o.plan.Count = 500 })
		if r.Failed["ECONNREFUSED"] != 500 || r.Established != 0 {
			t.Fatalf("%s: report %+v", srv, r)
		}
	}
}

// SYNs to an address the server silently drops end in ETIMEDOUT after the
// TCP_SYNCNT=1 schedule: SYNs at 0, 1, 2 s, failure at 3 s (R4), over
// IPv4 and IPv6.
func TestRunBlackholeTimesOut(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	for _, hole := range []netip.Addr{netip.MustParseAddr("198.18.0.99"), netip.MustParseAddr("2001:2::99")} {
		blackhole(t, l, hole)
		start := time.Now()
		r := runIn(t, l, netip.AddrPortFrom(hole, 8080), func(o *runOpts) {
			o.plan.Count = 100
			o.opts.SynRetries = 1
		})
		took := time.Since(start)
		if r.Failed["ETIMEDOUT"] != 100 || r.Retransmits != 200 {
			t.Fatalf("%s: report %+v", hole, r)
		}
		if took < 3*time.Second || took > 5*time.Second {
			t.Fatalf("%s: run took %v, want ETIMEDOUT at about 3 s", hole, took)
		}
	}
}

// blackhole makes the client send frames for addr to the server's MAC,
// which the server (not a router) drops without a word.
func blackhole(t *testing.T, l *lab.Lab, addr netip.Addr) {
	t.Helper()
	srv, err := lab.LinkByName(l.ServerNS, lab.ServerIf)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := lab.LinkByName(l.ClientNS, lab.ClientIf)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netns.GetFromName(l.ClientNS)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := netlink.NewHandleAt(h)
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	err = ch.NeighAdd(&netlink.Neigh{LinkIndex: cli.Attrs().Index, Family: fam, IP: net.IP(addr.AsSlice()),
		HardwareAddr: srv.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT})
	if err != nil {
		t.Fatal(err)
	}
}

// A two-queue veth with two workers: every attempt completes, whichever
// queue its SYN-ACK comes back on.
func TestRunMultiQueue(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, Queues: 2})
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) { o.opts.Workers = 2 })
	if r.Workers != 2 || r.Established != 2000 {
		t.Fatalf("report %+v", r)
	}
	if acc := l.Listener.WaitAccepted(r.Established, time.Second, 10*time.Second); acc != r.Established {
		t.Fatalf("listener accepted %d, established %d", acc, r.Established)
	}
}

// The asked rate is respected within 2 %.
func TestRunRate(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) {
		o.plan.Count = 0
		o.plan.Duration = 2 * time.Second
		o.plan.Rate = 10000
	})
	if r.AttemptRate < 9800 || r.AttemptRate > 10200 {
		t.Fatalf("attempt rate %.0f/s, asked 10000/s", r.AttemptRate)
	}
}

// Through a router: the next hop is the gateway, replies come back through it.
func TestRunViaRouter(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, Router: true})
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) { o.plan.Count = 500 })
	if r.Established != 500 {
		t.Fatalf("report %+v", r)
	}
}

// Dedicated source addresses (not owned by the client kernel): the Linux
// server ARPs for them, xdpconnect answers, handshakes complete from every
// source address.
func TestRunDedicatedSources(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr, 8080), func(o *runOpts) {
		o.opts.Sources = []netip.Addr{netip.MustParseAddr("198.18.128.10"), netip.MustParseAddr("198.18.128.11"), netip.MustParseAddr("198.18.128.12")}
		o.plan.Count = 3000
	})
	if r.Established != 3000 {
		t.Fatalf("report %+v", r)
	}
	if acc := l.Listener.WaitAccepted(3000, time.Second, 10*time.Second); acc != 3000 {
		t.Fatalf("listener accepted %d", acc)
	}
}
