package route_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	xnetns "github.com/xdpconnect/xdpconnect/internal/netns"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/route"
	"golang.org/x/sys/unix"
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

// IPv6: the neighbour is looked up in the IPv6 table (neighbour
// discovery), the source is the client's IPv6 address.
func TestResolveDirectIPv6(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	r := resolverIn(t, l.ClientNS)
	nh, err := r.Resolve(context.Background(), l.ServerAddr6)
	if err != nil {
		t.Fatal(err)
	}
	if nh.IfName != lab.ClientIf || nh.Src != lab.ClientAddr6 || nh.Gateway.IsValid() {
		t.Fatalf("next hop %+v", nh)
	}
	if want := macOf(t, l.ServerNS, lab.ServerIf); !bytes.Equal(nh.DstMAC, want) {
		t.Fatalf("dst MAC %v, want server's %v", nh.DstMAC, want)
	}
}

// A Resolver without a neighbour timeout waits the default (3 s), not
// none: a neighbour not yet known (a fresh namespace) is resolved.
func TestResolveDefaultNeighTimeout(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	r := resolverIn(t, l.ClientNS)
	r.NeighTimeout = 0
	nh, err := r.Resolve(context.Background(), l.ServerAddr6)
	if err != nil {
		t.Fatal(err)
	}
	if want := macOf(t, l.ServerNS, lab.ServerIf); !bytes.Equal(nh.DstMAC, want) {
		t.Fatalf("dst MAC %v, want server's %v", nh.DstMAC, want)
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

// When the kernel gives up on a neighbour (INCOMPLETE, then FAILED after
// its solicitations), Resolve says EHOSTUNREACH then, as connect() would,
// not at its own deadline: one solicitation 100 ms apart here, against
// a 5 s deadline.
func TestResolveNeighbourFailedEarly(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	for _, kv := range [][2]string{{"mcast_solicit", "1"}, {"ucast_solicit", "1"}, {"app_solicit", "0"}, {"retrans_time_ms", "100"}} {
		if err := lab.Sysctl(l.ClientNS, "net/ipv4/neigh/"+lab.ClientIf+"/"+kv[0], kv[1]); err != nil {
			t.Fatalf("sysctl %s: %v", kv[0], err)
		}
	}
	r := resolverIn(t, l.ClientNS)
	r.NeighTimeout = 5 * time.Second
	start := time.Now()
	_, err := r.Resolve(context.Background(), netip.MustParseAddr("198.18.0.78")) // on-link, nobody there
	took := time.Since(start)
	if !errors.Is(err, syscall.EHOSTUNREACH) || took > 2*time.Second {
		t.Fatalf("err %v after %v, want EHOSTUNREACH when the kernel gives up (about 100 ms), well before the 5 s deadline", err, took)
	}
}

// A5 with the kernel as the oracle: for unreachable, prohibit and
// blackhole routes, in both families, and the host's own address, Resolve
// fails with the errno the namespace's own connect() gets (a family whose
// route types map otherwise would differ here). A route's own MTU is the
// next hop's, not the link's.
func TestResolveRouteTypesAgainstKernel(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	for _, c := range [][]string{
		{"-4", "route", "add", "unreachable", "198.18.77.0/24"},
		{"-4", "route", "add", "prohibit", "198.18.78.0/24"},
		{"-4", "route", "add", "blackhole", "198.18.79.0/24"},
		{"-6", "route", "add", "unreachable", "2001:2:0:77::/64"},
		{"-6", "route", "add", "prohibit", "2001:2:0:78::/64"},
		{"-6", "route", "add", "blackhole", "2001:2:0:79::/64"},
		{"-4", "route", "add", l.ServerAddr.String() + "/32", "dev", lab.ClientIf, "mtu", "1400"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", l.ClientNS}, c...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	r := resolverIn(t, l.ClientNS)
	for _, dst := range []string{"198.18.77.5", "198.18.78.5", "198.18.79.5", "2001:2:0:77::5", "2001:2:0:78::5", "2001:2:0:79::5", lab.ClientAddr.String()} {
		a := netip.MustParseAddr(dst)
		// The kernel connects to itself through loopback, which no
		// Ethernet frame of ours can reach: refused as a local address.
		want := syscall.EADDRNOTAVAIL
		if a != lab.ClientAddr {
			if want = kernelConnectErrno(t, l.ClientNS, a); want == 0 {
				t.Fatalf("%s: the kernel's connect() did not fail: the route is not what the test meant", dst)
			}
		}
		_, err := r.Resolve(context.Background(), a)
		if !errors.Is(err, want) {
			t.Errorf("%s: Resolve %v, the kernel's connect() %v", dst, err, want)
		}
	}
	nh, err := r.Resolve(context.Background(), l.ServerAddr)
	if err != nil || nh.MTU != 1400 {
		t.Fatalf("next hop %+v (%v): want the route's MTU 1400, not the link's", nh, err)
	}
}

// kernelConnectErrno is what a kernel socket's connect() to dst:80 fails
// with in namespace ns (0: it did not fail at once).
func kernelConnectErrno(t *testing.T, ns string, dst netip.Addr) syscall.Errno {
	t.Helper()
	var errno syscall.Errno
	err := xnetns.Do(ns, func() error {
		fam, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: 80, Addr: dst.As16()})
		if dst.Is4() {
			fam, sa = unix.AF_INET, &unix.SockaddrInet4{Port: 80, Addr: dst.As4()}
		}
		fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			errors.As(err, &errno)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return errno
}
