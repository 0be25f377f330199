package netdev

import (
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Outage is a time an interface was down (administratively, or without
// carrier), from the watch's start.
type Outage struct {
	Start, End time.Duration
}

// WatchLink follows interface ifindex of the calling thread's namespace
// (netlink link events) until stop, which returns its outages; one still
// going ends at stop. changed, if not nil, is told each change of state
// as it is seen.
func WatchLink(ifindex int, changed func(up bool)) (stop func() []Outage, err error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(ch, done); err != nil {
		return nil, err
	}
	start := time.Now()
	var mu sync.Mutex
	var out []Outage
	down := false
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for u := range ch {
			if int(u.Index) != ifindex {
				continue
			}
			up := u.Flags&unix.IFF_UP != 0 && u.Flags&unix.IFF_RUNNING != 0
			mu.Lock()
			switch {
			case !up && !down:
				out = append(out, Outage{Start: time.Since(start), End: -1})
			case up && down:
				out[len(out)-1].End = time.Since(start)
			}
			if changed != nil && up == down {
				changed(up)
			}
			down = !up
			mu.Unlock()
		}
	}()
	return func() []Outage {
		close(done)
		<-ended
		mu.Lock()
		defer mu.Unlock()
		if down {
			out[len(out)-1].End = time.Since(start)
		}
		return out
	}, nil
}
