// Package netns runs code inside a named network namespace (one made by
// `ip netns add` or xdpconnect's lab) on a thread of its own, so the switch
// never leaks into other goroutines.
package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// Dir is where iproute2 (and vishvananda/netns's NewNamed) bind-mount
// named namespaces.
const Dir = "/var/run/netns"

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(filepath.Join(Dir, name))
	return err == nil
}

// Do runs fn on a fresh OS thread whose network namespace is the named one.
// The thread is thrown away afterwards, so the namespace switch cannot leak
// to other goroutines even if fn panics or fails half-way. An empty name
// runs fn here.
func Do(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the runtime terminates a thread that is still
		// locked when its goroutine exits, which is what we want after setns.
		h, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("panic in network namespace %s: %v", name, r)
			}
		}()
		errc <- fn()
	}()
	return <-errc
}
