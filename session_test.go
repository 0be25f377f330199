package xdpconnect_test

import (
	"context"
	"errors"
	"net/netip"
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
	for _, o := range []xdpconnect.Options{
		{},
		{Targets: []netip.AddrPort{netip.MustParseAddrPort("224.0.0.1:80")}},
		{Targets: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:80"), netip.MustParseAddrPort("198.18.0.2:80")}},
		{Targets: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:80")}, Workers: -1},
		{Targets: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:80")}, Frames: 100},
		{Targets: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:80")}, Sources: []netip.Addr{netip.MustParseAddr("198.18.0.2")}},
		{Targets: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.2:80")}, Netns: "xdc-no-such-namespace"},
	} {
		_, err := xdpconnect.Open(context.Background(), o)
		var oe *xdpconnect.OptionError
		if !errors.As(err, &oe) {
			t.Errorf("Open(%+v): %v, want an *OptionError", o, err)
		}
	}
}

// A plan that cannot work is refused before anything is sent.
func TestRunPlanErrors(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	for _, p := range []xdpconnect.Plan{
		{},                               // unbounded
		{Count: 1, Rate: -1},             // negative rate
		{Count: 1, HoldFor: time.Second}, // hold-for without hold
		{Duration: time.Second, Warmup: 2 * time.Second},
	} {
		s, err := xdpconnect.Open(context.Background(), xdpconnect.Options{Netns: l.ClientNS, Targets: []netip.AddrPort{netip.AddrPortFrom(l.ServerAddr, 8080)}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Run(context.Background(), p, xdpconnect.RunHooks{})
		var oe *xdpconnect.OptionError
		if !errors.As(err, &oe) {
			t.Errorf("Run(%+v): %v, want an *OptionError", p, err)
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
