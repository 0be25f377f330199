package main

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// The end-to-end behaviours of the IPv4 tests, over IPv6 in the lab's
// 2001:2::/48 addresses against the Linux listener: the listener's accept
// count, refusals, the timeout schedule, loss, a router, dedicated
// sources (neighbour discovery answered by xdpconnect), both families in
// one run, hostile frames.
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
	t.Run("refused", func(t *testing.T) {
		r := runIn(t, l, netip.AddrPortFrom(l.ServerAddr6, 8081), func(o *runOpts) { o.plan.Count = 500 })
		if r.Failed["ECONNREFUSED"] != 500 || r.Established != 0 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		hole := netip.MustParseAddr("2001:2::99")
		blackhole(t, l, hole)
		start := time.Now()
		r := runIn(t, l, netip.AddrPortFrom(hole, 8080), func(o *runOpts) {
			o.plan.Count = 100
			o.opts.SynRetries = 1
		})
		if took := time.Since(start); r.Failed["ETIMEDOUT"] != 100 || r.Retransmits != 200 || took < 3*time.Second || took > 5*time.Second {
			t.Fatalf("report %+v after %v, want ETIMEDOUT at 3 s", r, took)
		}
	})
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
	t.Run("hostile-frames", func(t *testing.T) {
		raw := testutil.NewRaw(t, l.ServerNS, lab.ServerIf)
		_, cmac, err := l.ClientLink()
		if err != nil {
			t.Fatal(err)
		}
		stop, sent := make(chan struct{}), make(chan int, 1)
		go func() {
			rng := rand.New(rand.NewPCG(6, 6))
			b := make([]byte, tcp.MaxReplyLen)
			params := tcp.DefaultParams(1500, true)
			n := 0
			for {
				select {
				case <-stop:
					sent <- n
					return
				default:
				}
				p := &tcp.Path{SrcMAC: [6]byte(raw.MAC), DstMAC: [6]byte(cmac), V6: true, Src6: l.ServerAddr6.As16(), Dst6: lab.ClientAddr6.As16(),
					SrcPort: 8080, DstPort: uint16(40000 + rng.IntN(10000))}
				r := tcp.Reply{Flags: tcp.Flags(rng.Uint32()), Seq: tcp.Seq(rng.Uint32()), Ack: tcp.Seq(rng.Uint32()), Window: uint16(rng.Uint32())}
				if rng.IntN(2) == 0 {
					r.SYNOpts, r.MSS, r.TSVal, r.TSEcr = &params, uint16(rng.Uint32()), rng.Uint32(), rng.Uint32()
				}
				f := b[:tcp.Build(b, p, &r)]
				if rng.IntN(2) == 0 {
					f[14+rng.IntN(len(f)-14)] ^= byte(1 + rng.IntN(255))
				} else {
					f = f[:14+rng.IntN(len(f)-14)]
				}
				_ = raw.Send(f)
				if n++; n%64 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		r := runIn(t, l, dst, func(o *runOpts) {
			o.plan.Count, o.plan.Duration, o.plan.Rate = 0, 2*time.Second, 5000
		})
		close(stop)
		n := <-sent
		var drops uint64
		for _, v := range r.Drops {
			drops += v
		}
		if r.InFlight != 0 || r.Established < r.Attempted*99/100 || drops == 0 {
			t.Fatalf("after %d hostile frames: report %+v", n, r)
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
