package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	xnetns "github.com/xdpconnect/xdpconnect/internal/netns"
	"golang.org/x/sys/unix"
)

// nsDir is where named namespaces are bind-mounted, so `ip netns exec`
// works on a lab namespace.
const nsDir = xnetns.Dir

// Do runs fn in the named namespace on a thread of its own (see
// internal/netns).
func Do(ns string, fn func() error) error { return xnetns.Do(ns, fn) }

// sharedNSDir makes nsDir a shared mount point, as iproute2 does before it
// creates a namespace: otherwise a namespace's bind mount is copied into
// every mount namespace created afterwards (`ip netns exec`, container
// runtimes), and removing its file later fails with EBUSY.
func sharedNSDir() error {
	if err := os.MkdirAll(nsDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", nsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err = unix.Mount(nsDir, nsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", nsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	if err != nil {
		return fmt.Errorf("lab: make %s a shared mount point: %w", nsDir, err)
	}
	return nil
}

// createNS makes a named namespace without moving the caller into it.
func createNS(name string) error {
	if err := sharedNSDir(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.NewNamed(name) // also switches this (discarded) thread
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("lab: create namespace %s: %w", name, err)
	}
	return nil
}

func deleteNS(name string) error {
	path := filepath.Join(nsDir, name)
	// EINVAL: not (or no longer) mounted, as after a crash between creating
	// the file and mounting it; the file still goes.
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) {
		err = os.Remove(path)
	}
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("lab: delete namespace %s: %w", name, err)
	}
	return nil
}

// listNS returns the named namespaces whose names start with prefix.
func listNS(prefix string) ([]string, error) {
	ents, err := os.ReadDir(nsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if m, _ := filepath.Match(prefix+"*", e.Name()); m {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// writeSysctl writes a /proc/sys value in the calling thread's namespace.
func writeSysctl(path, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", path), []byte(value), 0o644)
}

// Sysctl sets /proc/sys/<key> (e.g. "net/ipv4/icmp_ratelimit") in namespace ns.
func Sysctl(ns, key, value string) error {
	return Do(ns, func() error { return writeSysctl(key, value) })
}
