package main

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestParseShard(t *testing.T) {
	t.Setenv("JOB_COMPLETION_INDEX", "2")
	for s, want := range map[string]xdpconnect.Shard{"0/3": {Index: 0, Count: 3}, "2/3": {Index: 2, Count: 3}, "auto/4": {Index: 2, Count: 4}} {
		if got, err := parseShard(s); err != nil || got != want {
			t.Fatalf("%s: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"3/3", "-1/3", "1/0", "x/3", "1", "auto/2"} {
		if _, err := parseShard(s); err == nil {
			t.Fatalf("%s accepted", s)
		}
	}
}

// A mistake on the command line exits 2 with a line or two that name the
// flag and what it takes (never the 90 lines of usage, never Go's
// internals), and sends nothing: the lab's listener sees no connection.
func TestFlagErrors(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	dst := netip.AddrPortFrom(l.ServerAddr, 8080).String()
	dir := t.TempDir()
	fifo, big := filepath.Join(dir, "fifo"), filepath.Join(dir, "big")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, 64<<10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args  []string
		names string // what stderr must say
	}{
		{[]string{"--count", "abc"}, "--count abc: want a whole number"},
		{[]string{"--count", "-5"}, "--count -5: want a whole number, 0 or more"},
		{[]string{"--duration", "5"}, "--duration 5: want a duration with its unit"},
		{[]string{"--count", "10", "--rate", "fast"}, "--rate fast: want a number"},
		{[]string{"--count", "10", "--rate", "-1"}, "--rate -1"},
		{[]string{"--count", "10", "--nosuch"}, "--nosuch: no such flag"},
		{[]string{"--count"}, "--count needs a value"},
		{[]string{"--count", "10", "--concurrency", "x"}, "--concurrency x: want a whole number"},
		{[]string{"--count", "10", "--pin=maybe"}, "--pin maybe: want true or false"},
		{[]string{"--count", "10", "--close", "linger"}, "--close"},
		{[]string{"--count", "10", "--src-ports", "61000-70000"}, "--src-ports: \"61000-70000\": want LO-HI with 1 <= LO <= HI <= 65535"},
		{[]string{"--count", "10", "--src-ports", "2000-1000"}, "--src-ports"},
		{[]string{"--count", "10", "--shard", "7/3"}, "--shard"},
		{[]string{"--count", "10", "--shard", "1/0"}, "--shard"},
		{[]string{"--count", "10", "--frames", "100"}, "--frames 100"},
		{[]string{"--count", "10", "--hold-for", "1s"}, "--hold-for 1s: needs --close hold"},
		{[]string{"--concurrency-stages", "1s:100"}, "--concurrency-stages: ramps the connections held open: needs --close hold"},
		{[]string{"--close", "hold", "--concurrency-stages", "1s:100", "--concurrency", "5"}, "--concurrency-stages: is the concurrency bound, ramped: no --concurrency"},
		{[]string{"--close", "hold", "--concurrency-stages", "1s:x"}, "--concurrency-stages \"1s:x\""},
		{[]string{"--count", "10", "--warmup", "-1s"}, "--warmup -1s: must not be negative"},
		{[]string{"--count", "10", "--start-at", "tomorrow"}, "--start-at"},
		{[]string{"--count", "10", "--xdp-mode", "fast"}, "--xdp-mode"},
		{[]string{"--count", "10", "--dst", "198.18.0.300:80"}, "--dst"},
		{[]string{"--count", "10", "--requests-per-conn", "2"}, "--requests-per-conn"},
		{[]string{}, "a run needs --count or --duration"},
		{[]string{"--count", "10", "stray"}, "unexpected argument \"stray\""},
		// Request flags are checked before anything is sent.
		{[]string{"--count", "10", "--http", ""}, "--http '': empty"},
		{[]string{"--count", "10", "--request", ""}, "--request '': empty"},
		{[]string{"--count", "10", "--http", "GET /", "--host", "a\r\nX: y"}, "HTTP host"},
		{[]string{"--count", "10", "--http", "G(T /"}, "HTTP method \"G(T\": want a token"},
		{[]string{"--count", "10", "--http", "GE\x7fT /"}, "want a token"},
		{[]string{"--count", "10", "--http", "GET /a\x01b"}, "without spaces or control bytes"},
		{[]string{"--count", "10", "--http", "GET /", "--max-response", "0"}, "--max-response 0: not a valid value"},
		{[]string{"--count", "10", "--http", "GET /", "--response-timeout", "0s"}, "--response-timeout 0: not a valid value"},
		{[]string{"--count", "10", "--request-file", "/dev/zero"}, "/dev/zero: not a regular file"},
		{[]string{"--count", "10", "--request-file", fifo}, "not a regular file"},
		{[]string{"--count", "10", "--request-file", big}, "larger than 64 KiB"},
		{[]string{"--count", "10", "--request-file", "/nonexistent"}, "no such file or directory"},
		// Input the user meant otherwise: each named, with its range or fix.
		{[]string{"--count", "10", "--rate", "1e-9"}, "--rate 1e-09: 10 attempts at this rate take"},
		{[]string{"--count", "10", "--iface", "nosuch"}, "--iface nosuch: no such interface"},
		{[]string{"--count", "10", "--dst", "[2001:2::2%eth1]:80"}, "a global address with a zone (%eth1)"},
	} {
		_, stderr, code := runBinary(t, l.ClientNS, append([]string{"--dst", dst}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) > 3 || !strings.Contains(stderr, c.names) || strings.Contains(stderr, "Go struct") || strings.Contains(stderr, "fastpath.") {
			t.Errorf("%v: exit %d, %d lines, want 2 and at most 3 naming %q:\n%s", c.args, code, len(lines), c.names, stderr)
		}
	}
	if n := l.Listener.Accepted(); n != 0 {
		t.Fatalf("a refused command line sent SYNs: %d accepted", n)
	}
}

// merge refuses bad reports with exit 2, naming the file and the field, in
// a line or two: never a panic (report.TestReadBadReports has every case).
func TestMergeBadInputExit(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"shard-7-of-3.json": `{"format": 2, "run_id": "r", "shard": {"index": 7, "count": 3}}`,
		"count-0.json":      `{"format": 2, "run_id": "r", "shard": {"index": 0, "count": 0}}`,
		"count-1e11.json":   `{"format": 2, "run_id": "r", "shard": {"index": 0, "count": 100000000000}}`,
		"unbalanced.json":   `{"format": 2, "attempted": 205, "established": 1000199, "run_id": "r", "shard": {"index": 0, "count": 1}}`,
		"cut.json":          `{"format": 2, "attem`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary(t), "merge", p)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), p) || strings.Contains(string(out), "goroutine") ||
			len(strings.Split(strings.TrimSpace(string(out)), "\n")) > 2 {
			t.Errorf("merge %s: %v\n%s", name, err, out)
		}
	}
}

// Ctrl-C while the neighbour of the target is being resolved (an on-link
// address nobody answers ARP for: the lookup would wait 3 s) ends the run
// with "interrupted" and exit 130, not a missing ARP reply.
func TestInterruptDuringSetup(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	silent := netip.AddrFrom4([4]byte{198, 18, 0, 77}) // on the lab's link, no host
	cmd := exec.Command(binary(t), "run", "--netns", l.ClientNS, "--dst", netip.AddrPortFrom(silent, 8080).String(), "--count", "10",
		"--metrics-addr", "")
	stderr := startProcess(t, cmd)
	time.Sleep(700 * time.Millisecond)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, 5*time.Second)
	if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(stderr.String(), "interrupted") || strings.Contains(stderr.String(), "no ARP") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// A host name stands for every address it has, IPv4 first, each once.
func TestResolveHostEveryAddress(t *testing.T) {
	addrs, err := resolveHost("localhost")
	if err != nil {
		t.Skipf("no localhost in this resolver: %v", err)
	}
	seen := map[netip.Addr]bool{}
	for i, a := range addrs {
		if seen[a] || !a.IsLoopback() || i > 0 && a.Is4() && addrs[i-1].Is6() {
			t.Fatalf("localhost: %v", addrs)
		}
		seen[a] = true
	}
}
