// Package sysctl reads the TCP settings of a network namespace from
// /proc/sys, as Linux applies them to connect() (tcp.Sysctls): the SYNs a
// session makes are the namespace's.
package sysctl

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xdpconnect/xdpconnect/tcp"
)

// ReadTCP reads the TCP settings of the calling thread's network
// namespace from dir (/proc/sys). A file that is missing or unreadable (an
// older kernel, a container's masked /proc) leaves its field tcp.Unset.
func ReadTCP(dir string) tcp.Sysctls {
	s := tcp.UnsetSysctls()
	for _, f := range []struct {
		path string
		to   []*int
	}{
		{"net/ipv4/tcp_timestamps", []*int{&s.Timestamps}},
		{"net/ipv4/tcp_sack", []*int{&s.SACK}},
		{"net/ipv4/tcp_window_scaling", []*int{&s.WindowScaling}},
		{"net/ipv4/tcp_ecn", []*int{&s.ECN}},
		{"net/ipv4/ip_default_ttl", []*int{&s.DefaultTTL}},
		{"net/ipv4/tcp_syn_retries", []*int{&s.SynRetries}},
		{"net/ipv4/tcp_syn_linear_timeouts", []*int{&s.SynLinearTimeouts}},
		{"net/ipv4/tcp_rmem", []*int{&s.RMem[0], &s.RMem[1], &s.RMem[2]}},
		{"net/core/rmem_max", []*int{&s.RMemMax}},
		{"net/ipv4/tcp_rto_max_ms", []*int{&s.RTOMaxMs}},
		{"net/ipv4/tcp_rto_min_us", []*int{&s.RTOMinUs}},
	} {
		b, err := os.ReadFile(filepath.Join(dir, f.path))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b))
		if len(fields) != len(f.to) {
			continue
		}
		vals := make([]int, len(fields))
		for i, x := range fields {
			if vals[i], err = strconv.Atoi(x); err != nil {
				break
			}
		}
		if err != nil {
			continue
		}
		for i, p := range f.to {
			*p = vals[i]
		}
	}
	return s
}
