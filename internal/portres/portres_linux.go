// Package portres chooses and reserves the source ports of a run: a range
// outside the kernel's ephemeral range, added to ip_local_reserved_ports of
// the calling thread's network namespace for the run's lifetime, so the
// kernel never autobinds them, and put back afterwards (also after a crash:
// the next run undoes a reservation whose owner is gone). It also finds
// local listeners inside a range, whose traffic the XDP program would take.
package portres

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sysctls, as seen by the calling thread's network namespace.
const (
	SysPortRange = "/proc/sys/net/ipv4/ip_local_port_range"
	SysReserved  = "/proc/sys/net/ipv4/ip_local_reserved_ports"
)

// systemDir is where root keeps reservation records, shared by all users.
const systemDir = "/run/xdpconnect"

// StateDir is where reservation records are kept: /run/xdpconnect when
// this process may write there (root), else a directory of its own user,
// so a binary with file capabilities works for a user without root.
func StateDir() string {
	if os.MkdirAll(systemDir, 0o755) == nil && unix.Access(systemDir, unix.W_OK) == nil {
		return systemDir
	}
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	d := filepath.Join(base, fmt.Sprintf("xdpconnect-%d", os.Geteuid()))
	_ = os.MkdirAll(d, 0o700)
	return d
}

// DefaultRange picks a range outside the kernel's ephemeral range, so the
// kernel's own connections never take our ports.
func DefaultRange() (lo, hi uint16, err error) {
	b, err := os.ReadFile(SysPortRange)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("unexpected %s: %q", SysPortRange, b)
	}
	l, _ := strconv.Atoi(f[0])
	h, _ := strconv.Atoi(f[1])
	switch {
	case h <= 65535-1024:
		return uint16(h + 1), 65535, nil
	case l > 2048:
		return 1024, uint16(l - 1), nil
	}
	return 0, 0, fmt.Errorf("ip_local_port_range %d-%d leaves no room: give the source ports explicitly", l, h)
}

// netnsID names the calling thread's network namespace for state files.
func netnsID() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return "unknown"
	}
	return strconv.FormatUint(st.Ino, 10)
}

type record struct {
	PID      int    `json:"pid"`
	Original string `json:"original"`
}

// Reserve adds lo-hi to ip_local_reserved_ports of the calling thread's
// namespace and returns the function that restores the original value
// (call it on a thread of the same namespace). A reservation left by a
// killed run (its PID gone) is undone first; one of a live run is an
// error.
func Reserve(lo, hi uint16) (restore func(), err error) {
	state := filepath.Join(StateDir(), "reserved-"+netnsID()+".json")
	if b, err := os.ReadFile(state); err == nil {
		var r record
		if json.Unmarshal(b, &r) == nil && r.PID > 0 && syscall.Kill(r.PID, 0) == nil {
			return nil, fmt.Errorf("another xdpconnect (pid %d) is running in this network namespace", r.PID)
		}
		// Left by a run that was killed: put the original value back.
		_ = os.WriteFile(SysReserved, []byte(r.Original+"\n"), 0o644)
		_ = os.Remove(state)
	}
	orig, err := os.ReadFile(SysReserved)
	if err != nil {
		return nil, err
	}
	o := strings.TrimSpace(string(orig))
	nv := fmt.Sprintf("%d-%d", lo, hi)
	if o != "" {
		nv = o + "," + nv
	}
	b, _ := json.Marshal(record{PID: os.Getpid(), Original: o})
	if err := os.WriteFile(state, b, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(SysReserved, []byte(nv), 0o644); err != nil {
		_ = os.Remove(state)
		return nil, fmt.Errorf("reserve ports %d-%d: %w", lo, hi, err)
	}
	return func() {
		// A newline, not an empty write: writing nothing leaves a sysctl as
		// it is, and the original value is usually empty.
		_ = os.WriteFile(SysReserved, []byte(o+"\n"), 0o644)
		_ = os.Remove(state)
	}, nil
}

// ListenersIn returns the local TCP listening ports within lo-hi in the
// calling thread's namespace: the XDP program would steal their traffic.
func ListenersIn(lo, hi uint16) []int {
	var out []int
	for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan()
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 4 || fs[3] != "0A" {
				continue
			}
			i := strings.LastIndex(fs[1], ":")
			p, err := strconv.ParseUint(fs[1][i+1:], 16, 16)
			if err == nil && uint16(p) >= lo && uint16(p) <= hi {
				out = append(out, int(p))
			}
		}
		fh.Close()
	}
	return out
}
