package xdpconnect_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// Dial through the library: a handshake with the Linux listener (which
// accepts it), ECONNREFUSED from a closed port, and the port reservation
// gone after Close.
func TestSessionDial(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	open := netip.AddrPortFrom(l.ServerAddr, 8080)
	closed := netip.AddrPortFrom(l.ServerAddr, 8081)
	s, err := xdpconnect.Open(context.Background(), xdpconnect.Options{Netns: l.ClientNS, Targets: []netip.AddrPort{open, closed}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.Dial(ctx, open)
	if err != nil {
		t.Fatalf("dial %s: %v", open, err)
	}
	if acc := l.Listener.WaitAccepted(1, 500*time.Millisecond, 5*time.Second); acc != 1 {
		t.Fatalf("listener accepted %d", acc)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dial(ctx, closed); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want ECONNREFUSED", closed, err)
	}
	if _, err := s.Dial(ctx, netip.MustParseAddrPort("198.18.0.2:9999")); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("dial to a non-target: %v, want EINVAL", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ReservedPorts(t, l.ClientNS); v != "" {
		t.Fatalf("ip_local_reserved_ports after Close: %q", v)
	}
}

// Option errors are typed, name the field, and need no system.
func TestOpenOptionErrors(t *testing.T) {
	dst := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:80")}
	// Each refusal is the check's own (its words), not a later failure
	// of the same options (a route lookup) that happens to name the field.
	for _, c := range []struct {
		o           xdpconnect.Options
		field, want string
	}{
		{xdpconnect.Options{}, "Targets", "no target"},
		{xdpconnect.Options{Targets: []netip.AddrPort{netip.MustParseAddrPort("224.0.0.1:80")}}, "Targets", "a multicast address: TCP cannot"},
		{xdpconnect.Options{Targets: []netip.AddrPort{netip.MustParseAddrPort("255.255.255.255:80")}}, "Targets", "broadcast"},
		{xdpconnect.Options{Targets: []netip.AddrPort{netip.MustParseAddrPort("[::ffff:198.18.0.2]:80")}}, "Targets", "IPv4-mapped"},
		{xdpconnect.Options{Targets: []netip.AddrPort{netip.MustParseAddrPort("[fe80::1]:80")}}, "Targets", "link-local"},
		{xdpconnect.Options{Targets: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:80")}}, "Targets", "unspecified"},
		{xdpconnect.Options{Targets: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:80")}}, "Targets", "loopback"},
		{xdpconnect.Options{Targets: []netip.AddrPort{dst[0], dst[0]}}, "Targets", "given twice"},
		{xdpconnect.Options{Targets: dst, Workers: -1}, "Workers", "want 1 or more"},
		{xdpconnect.Options{Targets: dst, Frames: 100}, "Frames", "power of two"},
		{xdpconnect.Options{Targets: dst, Sources: []netip.Addr{netip.MustParseAddr("198.18.0.2")}}, "Sources", "target's own address"},
		{xdpconnect.Options{Targets: dst, Sources: []netip.Addr{netip.MustParseAddr("224.0.0.9")}}, "Sources", "multicast or broadcast"},
		{xdpconnect.Options{Targets: dst, Sources: []netip.Addr{netip.MustParseAddr("::1")}}, "Sources", "loopback"},
		{xdpconnect.Options{Targets: dst, Netns: "xdc-no-such-namespace"}, "Netns", ""},
		{xdpconnect.Options{Targets: dst, PortLo: 2000, PortHi: 1000}, "Ports", ""},
		{xdpconnect.Options{Targets: dst, Shard: xdpconnect.Shard{Index: 3, Count: 2}}, "Shard", ""},
	} {
		_, err := xdpconnect.Open(context.Background(), c.o)
		checkOptionError(t, err, c.field)
		if err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want the reason %q", err, c.want)
		}
	}
}

// checkOptionError fails unless err is an *OptionError of field whose
// message names no command-line flag: a library speaks its own words.
func checkOptionError(t *testing.T, err error, field string) {
	t.Helper()
	var oe *xdpconnect.OptionError
	if !errors.As(err, &oe) || oe.Field != field || strings.Contains(err.Error(), "--") {
		t.Errorf("%v: want an *OptionError of %s that names no flag", err, field)
	}
}

// A plan that cannot work is refused before anything is sent.
func TestRunPlanErrors(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	for _, c := range []struct {
		p     xdpconnect.Plan
		field string
	}{
		{xdpconnect.Plan{}, ""}, // unbounded
		{xdpconnect.Plan{Count: 1, Rate: -1}, "Rate"},
		{xdpconnect.Plan{Count: 1, HoldFor: time.Second}, "HoldFor"},
		{xdpconnect.Plan{Duration: time.Second, Warmup: 2 * time.Second}, "Warmup"},
		{xdpconnect.Plan{Count: 1, RequestsPerConn: 2}, "RequestsPerConn"},
		{xdpconnect.Plan{Count: 1, Drain: -time.Second}, "Drain"},
	} {
		s, err := xdpconnect.Open(context.Background(), xdpconnect.Options{Netns: l.ClientNS, Targets: []netip.AddrPort{netip.AddrPortFrom(l.ServerAddr, 8080)}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(context.Background(), c.p, xdpconnect.RunHooks{})
		checkOptionError(t, err, c.field)
		if c.field == "" && !errors.Is(err, xdpconnect.ErrUnbounded) {
			t.Errorf("an unbounded plan: %v, want ErrUnbounded", err)
		}
		s.Close()
	}
	if l.Listener.Accepted() != 0 {
		t.Fatal("a refused plan reached the server")
	}
}

// Many first Dials at once share one dial-only engine: all connect.
func TestSessionConcurrentDial(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	dst := netip.AddrPortFrom(l.ServerAddr, 8080)
	s, err := xdpconnect.Open(context.Background(), xdpconnect.Options{Netns: l.ClientNS, Targets: []netip.AddrPort{dst}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			c, err := s.Dial(ctx, dst)
			if err == nil {
				err = c.Close()
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("dial: %v", err)
		}
	}
	if acc := l.Listener.WaitAccepted(n, 500*time.Millisecond, 5*time.Second); acc != n {
		t.Fatalf("listener accepted %d of %d", acc, n)
	}
}

// A session serves one engine: a Dial after its Run has ended, and a Run
// after Dial, are refused with ErrSessionUsed (not ENETDOWN from sockets
// nobody reads), and a new session does what the old one refused.
func TestSessionSequences(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	dst := netip.AddrPortFrom(l.ServerAddr, 8080)
	open := func() *xdpconnect.Session {
		s, err := xdpconnect.Open(context.Background(), xdpconnect.Options{Netns: l.ClientNS, Targets: []netip.AddrPort{dst}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := open()
	r, err := s.Run(ctx, xdpconnect.Plan{Count: 100, Drain: 2 * time.Second}, xdpconnect.RunHooks{})
	if err != nil || r.Established != 100 {
		t.Fatalf("run: %v, %+v", err, r)
	}
	if _, err := s.Dial(ctx, dst); !errors.Is(err, xdpconnect.ErrSessionUsed) {
		t.Fatalf("Dial after Run: %v, want ErrSessionUsed", err)
	}
	if _, err := s.Run(ctx, xdpconnect.Plan{Count: 1}, xdpconnect.RunHooks{}); !errors.Is(err, xdpconnect.ErrSessionUsed) {
		t.Fatalf("Run after Run: %v, want ErrSessionUsed", err)
	}
	s.Close()
	s = open()
	defer s.Close()
	c, err := s.Dial(ctx, dst)
	if err != nil {
		t.Fatalf("Dial on a new session: %v", err)
	}
	defer c.Close()
	if _, err := s.Run(ctx, xdpconnect.Plan{Count: 1}, xdpconnect.RunHooks{}); !errors.Is(err, xdpconnect.ErrSessionUsed) {
		t.Fatalf("Run after Dial: %v, want ErrSessionUsed", err)
	}
}
