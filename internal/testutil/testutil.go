// Package testutil holds helpers for the project's privileged tests. It is
// imported only by _test.go files.
package testutil

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"golang.org/x/sys/unix"
)

// RequirePrivileges skips the test when the process lacks the capabilities
// the lab needs, naming them, and fails instead when running in CI, where
// skipping would hide a regression.
func RequirePrivileges(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil {
		need := []uint{unix.CAP_NET_ADMIN, unix.CAP_SYS_ADMIN, unix.CAP_BPF, unix.CAP_NET_RAW}
		ok := true
		for _, c := range need {
			if data[c/32].Effective&(1<<(c%32)) == 0 {
				ok = false
			}
		}
		if ok {
			return
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("privileged test in CI without root: CI must run as root")
	}
	tb.Skip("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF, CAP_NET_RAW): run `sudo make test`")
}

// NewLab creates a lab topology that is removed when the test ends, whether
// it passed or not.
func NewLab(tb testing.TB, o lab.Options) *lab.Lab {
	tb.Helper()
	RequirePrivileges(tb)
	l, err := lab.Up(o)
	if err != nil {
		tb.Fatalf("lab up: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("lab close: %v", err)
		}
	})
	return l
}

// ReservedPorts is ip_local_reserved_ports of namespace ns.
func ReservedPorts(tb testing.TB, ns string) string {
	tb.Helper()
	var v string
	err := lab.Do(ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_reserved_ports")
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// SkipIfNotSupported skips the test when err (a feature probe's answer,
// such as bpf.LiveFrames) says the kernel lacks the feature, naming the
// kernel and its answer; any other error fails the test. A run needing the
// feature is refused up front on such a kernel, and a test of that refusal
// runs everywhere.
func SkipIfNotSupported(tb testing.TB, err error) {
	tb.Helper()
	switch {
	case err == nil:
	case errors.Is(err, ebpf.ErrNotSupported):
		var u unix.Utsname
		_ = unix.Uname(&u)
		tb.Skipf("kernel %s: %v", unix.ByteSliceToString(u.Release[:]), err)
	default:
		tb.Fatal(err)
	}
}

// Await receives from ch, failing the test with what it waited for when
// nothing comes within d: a regression that never sends fails with a
// message instead of hanging the package until its timeout.
func Await[T any](tb testing.TB, ch <-chan T, d time.Duration, what string) T {
	tb.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v := <-ch:
		return v
	case <-t.C:
		tb.Fatalf("waited %v for %s", d, what)
		panic("unreachable")
	}
}

// Nginx starts Debian's nginx for a test with start (given a fresh
// directory for its files) and stops it when the test ends. Without
// nginx the test is skipped, except in CI, whose .ci/run must install it.
func Nginx(tb testing.TB, start func(dir string) (*lab.Nginx, error)) *lab.Nginx {
	tb.Helper()
	n, err := start(tb.TempDir())
	if errors.Is(err, lab.ErrNoNginx) {
		if os.Getenv("CI") != "" {
			tb.Fatal("nginx is not installed: .ci/run must install it")
		}
		tb.Skip("needs nginx (apt-get install nginx-light)")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Stop)
	return n
}

// ListenIn listens on addr in namespace ns (the socket is made there)
// until the test ends.
func ListenIn(tb testing.TB, ns string, addr netip.AddrPort, lc net.ListenConfig) net.Listener {
	tb.Helper()
	var ln net.Listener
	if err := lab.Do(ns, func() (err error) { ln, err = lc.Listen(context.Background(), "tcp", addr.String()); return err }); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// ServeIn runs handle for every connection to addr, a listener in ns
// (Linux's TCP), until the test ends; each connection is closed when
// handle returns.
func ServeIn(tb testing.TB, ns string, addr netip.AddrPort, lc net.ListenConfig, handle func(*net.TCPConn)) {
	tb.Helper()
	ln := ListenIn(tb, ns, addr, lc)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
}
