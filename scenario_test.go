package xdpconnect_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/fastpath/linktest"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
	"github.com/xdpconnect/xdpconnect/tcp"
)

// runPair runs the same plan against a listening and a closed port, over
// the in-memory link and fake server (real=false) or through the library
// on a real veth against a Linux listener (real=true), and returns the
// report and the server's accept count.
func runPair(t *testing.T, real bool, plan xdpconnect.Plan) (*report.Report, uint64) {
	t.Helper()
	if !real {
		srv := linktest.NewServer()
		dst := netip.MustParseAddr("198.18.0.2")
		cfg := fastpath.Config{
			Targets: []fastpath.Target{{Addr: netip.AddrPortFrom(dst, linktest.ListenPort)}, {Addr: netip.AddrPortFrom(dst, linktest.ClosedPort)}},
			Sources: []fastpath.Source{{Addr: netip.MustParseAddr("198.18.0.1")}}, PortLo: 40000, PortHi: 49999,
			Params: tcp.DefaultParams(1500, false), Count: plan.Count, Rate: plan.Rate, Drain: plan.Drain, Close: plan.Close,
		}
		e, err := fastpath.New(cfg, []fastpath.Link{linktest.NewLink(srv.Handle)})
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.Run(context.Background(), time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r, srv.Accepted()
	}
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{linktest.ListenPort}})
	s, err := xdpconnect.Open(context.Background(), xdpconnect.Options{Netns: l.ClientNS, Targets: []netip.AddrPort{
		netip.AddrPortFrom(l.ServerAddr, linktest.ListenPort), netip.AddrPortFrom(l.ServerAddr, linktest.ClosedPort)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Run(context.Background(), plan, xdpconnect.RunHooks{})
	if err != nil {
		t.Fatal(err)
	}
	return r, l.Listener.WaitAccepted(r.Established, time.Second, 10*time.Second)
}

// The same scenario, the same assertions, over the fake and over a real
// veth: half the attempts established (and accepted by the server, and
// closed), half refused (Y4), nothing left in flight.
func TestScenarioFakeAndVeth(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := map[bool]string{false: "fake", true: "veth"}[real]
		t.Run(name, func(t *testing.T) {
			if real {
				testutil.RequirePrivileges(t)
			}
			plan := xdpconnect.Plan{Count: 1000, Rate: 20000, Drain: 5 * time.Second, Close: fastpath.CloseRST}
			r, accepted := runPair(t, real, plan)
			if r.Attempted != 1000 || r.Established != 500 || r.Failed["ECONNREFUSED"] != 500 || r.InFlight != 0 {
				t.Fatalf("report %+v", r)
			}
			if accepted != r.Established || r.Closed != r.Established {
				t.Fatalf("server accepted %d, closed %d, established %d", accepted, r.Closed, r.Established)
			}
		})
	}
}
