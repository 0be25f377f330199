package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// The end-to-end behaviours of the IPv4 tests, over IPv6 in the lab's
// 2001:2::/48 addresses against the Linux listener: the listener's accept
// count, loss, a router, dedicated sources (neighbour discovery answered
// by xdpconnect), both families in one run. Refusals, the timeout
// schedule and hostile frames run for both families where their IPv4
// tests are.
func TestIPv6AgainstLinux(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	dst := netip.AddrPortFrom(l.ServerAddr6, 8080)
	accepted := uint64(0)
	expectAccepted := func(t *testing.T, est uint64) {
		t.Helper()
		accepted += est
		if acc := l.Listener.WaitAccepted(accepted, time.Second, 10*time.Second); acc != accepted {
			t.Fatalf("listener accepted %d in all, want %d", acc, accepted)
		}
	}
	for _, mode := range []fastpath.CloseMode{fastpath.CloseRST, fastpath.CloseFIN} {
		t.Run("close-"+mode.String(), func(t *testing.T) {
			r := runIn(t, l, dst, func(o *runOpts) { o.plan.Close = mode })
			if r.Established != 2000 || r.FailedTotal() != 0 || r.Closed != 2000 || r.TCP6 == nil || r.TCP6.MSS != 1440 {
				t.Fatalf("report %+v", r)
			}
			if len(r.Families) != 2 || r.Families[1].Established != 2000 || r.Families[0].Attempted != 0 {
				t.Fatalf("families %+v", r.Families)
			}
			expectAccepted(t, r.Established)
			noServerConnections(t, l)
		})
	}
	t.Run("dedicated-sources", func(t *testing.T) {
		r := runIn(t, l, dst, func(o *runOpts) {
			o.opts.Sources = []netip.Addr{netip.MustParseAddr("2001:2::1:10"), netip.MustParseAddr("2001:2::1:11")}
			o.plan.Count = 2000
		})
		if r.Established != 2000 {
			t.Fatalf("report %+v", r)
		}
		expectAccepted(t, r.Established)
	})
	t.Run("both-families", func(t *testing.T) {
		r := runIn(t, l, dst, func(o *runOpts) {
			o.opts.Targets = append(o.opts.Targets, netip.AddrPortFrom(l.ServerAddr, 8080))
			o.plan.Count = 2000
		})
		if r.Established != 2000 || len(r.Families) != 2 || r.Families[0].Established != 1000 || r.Families[1].Established != 1000 {
			t.Fatalf("report %+v, families %+v", r, r.Families)
		}
		expectAccepted(t, r.Established)
	})
}

// Loss over IPv6 (nftables' inet table drops 20 % both ways) and a router
// between client and server: every attempt ends once, the server never
// accepts more than we established.
func TestIPv6LossAndRouter(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, Router: true})
	testutil.Nft(t, l.ServerNS, `table inet loss {
  chain in { type filter hook input priority 0; tcp dport 8080 numgen random mod 100 < 20 drop; }
  chain out { type filter hook output priority 0; tcp sport 8080 numgen random mod 100 < 20 drop; }
}`)
	r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr6, 8080), func(o *runOpts) {
		o.plan.Count = 1000
		o.opts.SynRetries = 2
		o.plan.Drain = 10 * time.Second
	})
	if r.InFlight != 0 || r.Established+r.Failed["ETIMEDOUT"] != 1000 || r.Established < 900 || r.Retransmits == 0 {
		t.Fatalf("report %+v", r)
	}
	if acc := l.Listener.WaitAccepted(r.Established, time.Second, 5*time.Second); acc > r.Established {
		t.Fatalf("server accepted %d > established %d", acc, r.Established)
	}
}
