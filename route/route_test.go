package route_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/route"
)

func resolverIn(t *testing.T, ns string) *route.Resolver {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nh.Close)
	return &route.Resolver{Handle: nh, NeighTimeout: 1500 * time.Millisecond}
}

func macOf(t *testing.T, ns, ifname string) []byte {
	t.Helper()
	l, err := lab.LinkByName(ns, ifname)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr
}

func TestResolveDirect(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	r := resolverIn(t, l.ClientNS)
	nh, err := r.Resolve(context.Background(), l.ServerAddr)
	if err != nil {
		t.Fatal(err)
	}
	if nh.IfName != lab.ClientIf || nh.Src != lab.ClientAddr || nh.Gateway.IsValid() || nh.MTU != 1500 {
		t.Fatalf("next hop %+v", nh)
	}
	if want := macOf(t, l.ServerNS, lab.ServerIf); !bytes.Equal(nh.DstMAC, want) {
		t.Fatalf("dst MAC %v, want server's %v", nh.DstMAC, want)
	}
	if want := macOf(t, l.ClientNS, lab.ClientIf); !bytes.Equal(nh.IfMAC, want) {
		t.Fatalf("src MAC %v, want %v", nh.IfMAC, want)
	}
}

func TestResolveViaGateway(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{Router: true})
	r := resolverIn(t, l.ClientNS)
	nh, err := r.Resolve(context.Background(), l.ServerAddr)
	if err != nil {
		t.Fatal(err)
	}
	if nh.Gateway != lab.RouterClientAddr || nh.Neighbour() != lab.RouterClientAddr {
		t.Fatalf("gateway %v", nh.Gateway)
	}
	// The Ethernet destination is the router, not the server.
	if want := macOf(t, l.RouterNS, lab.RouterClientIf); !bytes.Equal(nh.DstMAC, want) {
		t.Fatalf("dst MAC %v, want router's %v", nh.DstMAC, want)
	}
}

func TestResolveErrors(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	r := resolverIn(t, l.ClientNS)
	cases := []struct {
		dst  string
		want syscall.Errno
	}{
		{"203.0.113.9", syscall.ENETUNREACH},     // no route (the client has no default route)
		{"224.0.0.1", syscall.ENETUNREACH},       // multicast (tcp_v4_connect: RTCF_MULTICAST)
		{"198.18.255.255", syscall.ENETUNREACH},  // subnet broadcast of the lab client's /16 (RTCF_BROADCAST)
		{"255.255.255.255", syscall.ENETUNREACH}, // limited broadcast
	}
	for _, c := range cases {
		_, err := r.Resolve(context.Background(), netip.MustParseAddr(c.dst))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.dst, err, c.want)
		}
	}
}

func TestResolveUnresolvableNeighbour(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	r := resolverIn(t, l.ClientNS)
	start := time.Now()
	_, err := r.Resolve(context.Background(), netip.MustParseAddr("198.18.0.77")) // on-link, nobody there
	took := time.Since(start)
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("err %v, want EHOSTUNREACH", err)
	}
	if took > r.NeighTimeout+500*time.Millisecond {
		t.Fatalf("took %v, timeout %v", took, r.NeighTimeout)
	}
}
