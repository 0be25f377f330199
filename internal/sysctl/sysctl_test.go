package sysctl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/xdpconnect/xdpconnect/tcp"
)

// The settings are read from the files Linux has, one value or three; a
// missing or garbled file leaves its setting unset (the default applies).
func TestReadSysctls(t *testing.T) {
	dir := t.TempDir()
	write := func(path, v string) {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("net/ipv4/tcp_timestamps", "0\n")
	write("net/ipv4/tcp_sack", "1\n")
	write("net/ipv4/tcp_window_scaling", "1\n")
	write("net/ipv4/tcp_ecn", "2\n")
	write("net/ipv4/ip_default_ttl", "32\n")
	write("net/ipv4/tcp_syn_retries", "3\n")
	write("net/ipv4/tcp_rmem", "4096\t131072\t33554432\n")
	write("net/core/rmem_max", "x\n")
	write("net/ipv4/tcp_rto_max_ms", "1 2\n")
	s := ReadTCP(dir)
	want := tcp.UnsetSysctls()
	want.Timestamps, want.SACK, want.WindowScaling, want.ECN, want.DefaultTTL, want.SynRetries = 0, 1, 1, 2, 32, 3
	want.RMem = [3]int{4096, 131072, 33554432}
	if s != want {
		t.Fatalf("read %+v, want %+v", s, want)
	}
}

// This machine's own namespace reads whole (every file this kernel has):
// the settings the issue names are all there on Linux 6.x.
func TestReadSysctlsHere(t *testing.T) {
	s := ReadTCP("/proc/sys")
	if s.Timestamps == tcp.Unset || s.SACK == tcp.Unset || s.WindowScaling == tcp.Unset || s.ECN == tcp.Unset ||
		s.DefaultTTL == tcp.Unset || s.SynRetries == tcp.Unset || s.RMem[2] == tcp.Unset || s.RMemMax == tcp.Unset {
		t.Fatalf("read %+v", s)
	}
}
