package main

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

const (
	sysPortRange = "/proc/sys/net/ipv4/ip_local_port_range"
	sysReserved  = "/proc/sys/net/ipv4/ip_local_reserved_ports"
)

// defaultSrcPorts picks a range outside the kernel's ephemeral range, so the
// kernel's own connections never take our ports.
func defaultSrcPorts() (uint16, uint16, error) {
	b, err := os.ReadFile(sysPortRange)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("unexpected %s: %q", sysPortRange, b)
	}
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	switch {
	case hi <= 65535-1024:
		return uint16(hi + 1), 65535, nil
	case lo > 2048:
		return 1024, uint16(lo - 1), nil
	}
	return 0, 0, fmt.Errorf("ip_local_port_range %d-%d leaves no room: give --src-ports", lo, hi)
}

// netnsID names the calling thread's network namespace for state files.
func netnsID() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return "unknown"
	}
	return strconv.FormatUint(st.Ino, 10)
}

type reservation struct {
	PID      int    `json:"pid"`
	Original string `json:"original"`
}

// reservePorts adds lo-hi to ip_local_reserved_ports of the calling
// thread's namespace, so the kernel does not autobind them, and returns the
// function that restores the original value. A reservation left by a killed
// run (its PID gone) is undone first.
func reservePorts(lo, hi uint16) (func(), error) {
	dir := runStateDir()
	state := filepath.Join(dir, "reserved-"+netnsID()+".json")
	if b, err := os.ReadFile(state); err == nil {
		var r reservation
		if json.Unmarshal(b, &r) == nil && r.PID > 0 && syscall.Kill(r.PID, 0) == nil {
			return nil, fmt.Errorf("another xdpconnect (pid %d) is running in this network namespace", r.PID)
		}
		// Left by a run that was killed: put the original value back.
		_ = os.WriteFile(sysReserved, []byte(r.Original+"\n"), 0o644)
		_ = os.Remove(state)
	}
	orig, err := os.ReadFile(sysReserved)
	if err != nil {
		return nil, err
	}
	o := strings.TrimSpace(string(orig))
	nv := fmt.Sprintf("%d-%d", lo, hi)
	if o != "" {
		nv = o + "," + nv
	}
	b, _ := json.Marshal(reservation{PID: os.Getpid(), Original: o})
	if err := os.WriteFile(state, b, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(sysReserved, []byte(nv), 0o644); err != nil {
		_ = os.Remove(state)
		return nil, fmt.Errorf("reserve ports %d-%d: %w", lo, hi, err)
	}
	return func() {
		// A newline, not an empty write: writing nothing leaves a sysctl as
		// it is, and the original value is usually empty.
		_ = os.WriteFile(sysReserved, []byte(o+"\n"), 0o644)
		_ = os.Remove(state)
	}, nil
}

// listenersIn returns local TCP listening ports within lo-hi in the calling
// thread's namespace: our XDP program would steal their traffic.
func listenersIn(lo, hi uint16) []int {
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
