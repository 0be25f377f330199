package lab

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is a Linux TCP listener in a lab namespace. It accepts, counts, and
// closes every connection with FIN (or keeps it, in hold mode), so tests can
// compare the server's view with the client's.
type Listener struct {
	ns       string
	accepted atomic.Uint64
	hold     bool

	mu    sync.Mutex
	ls    []net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

// Listen opens TCP listeners on each address (IPv4 or IPv6) for each port,
// inside namespace ns. Accepted counts them all.
func Listen(ns string, addrs []netip.Addr, ports []int, hold bool) (*Listener, error) {
	l := &Listener{ns: ns, hold: hold}
	err := Do(ns, func() error {
		for _, a := range addrs {
			for _, p := range ports {
				// The socket belongs to the namespace it was created in, so
				// the accept loop may run on any thread afterwards.
				ln, err := listenBacklog(a, p, 65535)
				if err != nil {
					return fmt.Errorf("lab: listen on %s [%s]:%d: %w", ns, a, p, err)
				}
				l.ls = append(l.ls, ln)
			}
		}
		return nil
	})
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	for _, ln := range l.ls {
		l.wg.Add(1)
		go l.serve(ln)
	}
	return l, nil
}

func (l *Listener) serve(ln net.Listener) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNABORTED and friends: the listener lives on
		}
		l.accepted.Add(1)
		if !l.hold {
			// A plain close sends FIN; an RST close would make clients see
			// ECONNRESET after a completed handshake.
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
}

// Accepted is the number of connections accepted so far.
func (l *Listener) Accepted() uint64 { return l.accepted.Load() }

// Close stops accepting and closes held connections with FIN.
func (l *Listener) Close() error {
	l.mu.Lock()
	for _, ln := range l.ls {
		_ = ln.Close()
	}
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// TCP states as numbered in /proc/net/tcp (include/net/tcp_states.h).
const (
	StateEstablished = 1
	StateSynRecv     = 3
	StateTimeWait    = 6
	StateCloseWait   = 8
	StateLastAck     = 9
)

// SocketStates counts the TCP sockets of namespace ns by state, from
// /proc/thread-self/net/tcp (the namespace of the reading thread).
func SocketStates(ns string) (map[int]int, error) {
	counts := map[int]int{}
	err := Do(ns, func() error {
		f, err := os.Open("/proc/thread-self/net/tcp")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 {
				continue
			}
			st, err := strconv.ParseInt(fields[3], 16, 32)
			if err != nil {
				continue
			}
			counts[int(st)]++
		}
		return sc.Err()
	})
	return counts, err
}

// listenBacklog listens with a large backlog (capped by the namespace's
// somaxconn, which the lab raises): Go's net.Listen takes the backlog from
// the somaxconn it read once, in whatever namespace it ran first, and a
// small accept queue drops final ACKs under load.
func listenBacklog(addr netip.Addr, port, backlog int) (net.Listener, error) {
	family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: port, Addr: addr.As16()})
	if addr.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: addr.As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	return net.FileListener(f)
}

// WaitAccepted waits until the listener has accepted want connections or its
// count stopped growing for settle, and returns the count.
func (l *Listener) WaitAccepted(want uint64, settle, limit time.Duration) uint64 {
	deadline := time.Now().Add(limit)
	last, since := l.Accepted(), time.Now()
	for time.Now().Before(deadline) {
		n := l.Accepted()
		if n >= want {
			return n
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= settle {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
	return l.Accepted()
}

// NetStat returns the TcpExt counters (ListenOverflows, ListenDrops, ...)
// and, prefixed with their section, the SNMP counters (TcpInSegs ...) of
// namespace ns.
func NetStat(ns string) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := Do(ns, func() error {
		for _, f := range []string{"netstat", "snmp"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			lines := strings.Split(string(b), "\n")
			for i := 0; i+1 < len(lines); i += 2 {
				names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
				if len(names) != len(vals) || len(names) == 0 {
					continue
				}
				// TcpExt counters by bare name (ListenOverflows), the
				// others with their section (TcpInSegs, IpInReceives).
				prefix := strings.TrimSuffix(names[0], ":")
				if prefix == "TcpExt" {
					prefix = ""
				}
				for j := 1; j < len(names); j++ {
					v, _ := strconv.ParseUint(vals[j], 10, 64)
					out[prefix+names[j]] = v
				}
			}
		}
		return nil
	})
	return out, err
}
