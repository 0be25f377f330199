package lab_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// dialFrom connects with the kernel from inside ns, as a real client would.
func dialFrom(t *testing.T, ns string, dst netip.AddrPort) {
	t.Helper()
	err := lab.Do(ns, func() error {
		c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(context.Background(), "tcp4", dst.String())
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Fatalf("dial %s from %s: %v", dst, ns, err)
	}
}

func waitAccepted(t *testing.T, l *lab.Listener, n uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for l.Accepted() < n {
		if time.Now().After(deadline) {
			t.Fatalf("listener accepted %d, want %d", l.Accepted(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLabDirectAndRouted(t *testing.T) {
	for _, router := range []bool{false, true} {
		name := "direct"
		if router {
			name = "routed"
		}
		t.Run(name, func(t *testing.T) {
			l := testutil.NewLab(t, lab.Options{Router: router, ListenPorts: []int{8080, 8081}})
			if !l.Exists() {
				t.Fatal("namespaces missing after Up")
			}
			dialFrom(t, l.ClientNS, netip.AddrPortFrom(l.ServerAddr, 8080))
			dialFrom(t, l.ClientNS, netip.AddrPortFrom(l.ServerAddr, 8081))
			waitAccepted(t, l.Listener, 2)
			if router && l.Gateway != lab.RouterClientAddr {
				t.Fatalf("gateway = %v", l.Gateway)
			}
		})
	}
}

func TestLabCloseRemovesEverything(t *testing.T) {
	testutil.RequirePrivileges(t)
	l, err := lab.Up(lab.Options{Router: true, ListenPorts: []int{9000}, Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	nss := []string{l.ClientNS, l.ServerNS, l.RouterNS}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if _, err := os.Stat("/var/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists after Close", ns)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDownAllRemovesLeftovers(t *testing.T) {
	testutil.RequirePrivileges(t)
	// A lab that is never closed, as after a crash. DownAll must remove it;
	// the cleanup only guards against DownAll itself being broken.
	l, err := lab.Up(lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	removed, err := lab.DownAll()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, n := range removed {
		if n == l.ClientNS || n == l.ServerNS {
			found++
		}
	}
	if found != 2 || l.Exists() {
		t.Fatalf("DownAll removed %v; lab still exists: %v", removed, l.Exists())
	}
}

func TestSameNameRefused(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	if _, err := lab.Up(lab.Options{Name: l.Name}); err == nil {
		t.Fatal("second lab with the same name was created")
	}
}
