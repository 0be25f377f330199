package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// nginx is lab.Nginx for a test: started in ns, stopped when it ends.
type nginx struct{ *lab.Nginx }

// startNginx runs nginx in ns on addr until the test ends (ended by PID).
func startNginx(t *testing.T, ns string, addr netip.AddrPort) *nginx {
	t.Helper()
	return startNginxLimited(t, ns, addr, 0)
}

// startNginxLimited is startNginx serving at most perSecond requests a
// second (503 past it; 0: no limit).
func startNginxLimited(t *testing.T, ns string, addr netip.AddrPort, perSecond int) *nginx {
	t.Helper()
	return &nginx{testutil.Nginx(t, func(dir string) (*lab.Nginx, error) {
		return lab.StartNginxRateLimited(ns, addr, dir, "", perSecond)
	})}
}

// stats are nginx's accepted-connections and requests counters.
func (n *nginx) stats() (accepts, requests uint64, err error) { return n.Stats() }

// accepts is nginx's accepted-connections counter.
func (n *nginx) accepts() (uint64, error) {
	a, _, err := n.Stats()
	return a, err
}

// waitAccepts polls until nginx has accepted want connections or the count
// stops moving for settle.
func (n *nginx) waitAccepts(t *testing.T, want uint64) uint64 {
	t.Helper()
	var last uint64
	since := time.Now()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		v, err := n.accepts()
		if err != nil {
			t.Fatal(err)
		}
		if v >= want {
			return v
		}
		if v != last {
			last, since = v, time.Now()
		} else if time.Since(since) > 2*time.Second {
			return v
		}
	}
	return last
}
