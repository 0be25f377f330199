package lab_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// DownStale removes a lab whose owner died (as after a crash) and keeps the
// lab of a live owner (another test, another user's demo).
func TestDownStaleKeepsLiveLabs(t *testing.T) {
	testutil.RequirePrivileges(t)
	live := testutil.NewLab(t, lab.Options{})
	dead, err := lab.Up(lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dead.Close() })
	// A process that has exited owns the second lab.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := dead.SetOwner(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if err := overwriteOwnerPID(dead.Name, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	removed, err := lab.DownStale()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, n := range removed {
		switch n {
		case dead.ClientNS, dead.ServerNS:
			found++
		case live.ClientNS, live.ServerNS:
			t.Errorf("DownStale removed %s of a live owner", n)
		}
	}
	if found != 2 || dead.Exists() {
		t.Fatalf("DownStale removed %v; dead owner's lab still exists: %v", removed, dead.Exists())
	}
	if !live.Exists() {
		t.Fatal("live lab removed")
	}
	if pid, ok := lab.Owned(live.Name); !ok || pid != os.Getpid() {
		t.Fatalf("live lab's owner %d %v", pid, ok)
	}
}

// overwriteOwnerPID points lab name's owner record at pid, keeping the
// recorded start time: a PID that is dead, or reused by another process.
func overwriteOwnerPID(name string, pid int) error {
	p := "/run/xdpconnect/labs/" + name
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	f := strings.Fields(string(b))
	return os.WriteFile(p, []byte(strconv.Itoa(pid)+" "+f[1]+"\n"), 0o644)
}

func TestSameNameRefused(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{})
	if _, err := lab.Up(lab.Options{Name: l.Name}); err == nil {
		t.Fatal("second lab with the same name was created")
	}
}
