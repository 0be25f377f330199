package main

// Networks xdpconnect did not build, run as a user would: the binary with
// default flags, kernel defaults on every device (offloads on, allocated
// queues > active), and the server's own counters as the judge.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
)

// runBinary runs `xdpconnect run --netns NS ARGS --json -` and returns the
// report from stdout (which must be JSON and nothing else), stderr and the
// exit status.
func runBinary(t *testing.T, ns string, args ...string) (*report.Report, string, int) {
	t.Helper()
	out, errb, code := runCmd(t, append([]string{"run", "--netns", ns, "--json", "-", "--metrics-addr", ""}, args...)...)
	var r report.Report
	if out.Len() > 0 {
		dec := json.NewDecoder(out)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("stdout is not one JSON report: %v\n%s", err, out.String())
		}
		if dec.More() {
			t.Fatal("stdout holds more than the JSON report")
		}
		if r.Attempted != r.Established+r.FailedTotal()+r.InFlight {
			t.Fatalf("books do not balance: %+v", r)
		}
		withRequests := r.Established // a failed TLS handshake makes no request
		if r.TLS != nil {
			withRequests -= r.TLS.FailedTotal()
		}
		if q := r.Requests; q != nil && (q.Requests != q.Completed+q.FailedTotal()+q.InFlight ||
			q.Requests < withRequests || q.Requests > r.Established*uint64(q.PerConnection)) {
			t.Fatalf("request books do not balance: %d requests, %d established, %d complete, %v failed, %d in flight",
				q.Requests, r.Established, q.Completed, q.Failed, q.InFlight)
		}
		return &r, errb.String(), code
	}
	return nil, errb.String(), code
}

// runCmd runs the binary with args and returns its stdout, stderr and
// exit status; a binary that could not start fails the test.
func runCmd(t *testing.T, args ...string) (stdout, stderr *bytes.Buffer, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr, code
}

// The environment matrix: each case a real run with default flags and
// exact accounting against the server.
func TestWorldMatrix(t *testing.T) {
	const count = 2000
	cases := []struct {
		name string
		opts lab.Options
		// check looks at the report and stderr beyond the accounting.
		check func(t *testing.T, r *report.Report, stderr string)
	}{
		{"default-veth", lab.Options{}, func(t *testing.T, r *report.Report, _ string) {
			// The case of issue 11: 2 allocated, 1 active queue; the peer
			// sends partial checksums.
			if r.Path.AllocatedRxQueues <= r.Path.ActiveRxQueues || r.Workers != r.Path.ActiveRxQueues {
				t.Fatalf("workers %d, queues %+v: want one worker per active queue, allocated > active", r.Workers, r.Path)
			}
			if r.PartialChecksums == 0 || !r.Path.AcceptPartialChecksum || r.Path.XDPMode != "native" {
				t.Fatalf("partial checksums %d, path %+v", r.PartialChecksums, r.Path)
			}
		}},
		{"bridge", lab.Options{Bridge: true}, func(t *testing.T, r *report.Report, _ string) {
			if r.PartialChecksums == 0 {
				t.Fatal("container-like path: expected partial checksums from the bridged peer")
			}
		}},
		{"macvlan-generic", lab.Options{Macvlan: true}, func(t *testing.T, r *report.Report, stderr string) {
			if r.Path.XDPMode != "generic" || r.Path.Kind != "macvlan" || !strings.Contains(stderr, "attached in generic (SKB) mode") {
				t.Fatalf("path %+v, stderr %s", r.Path, stderr)
			}
		}},
		{"multiqueue-2-of-4", lab.Options{Queues: 4, ActiveQueues: 2}, func(t *testing.T, r *report.Report, _ string) {
			if r.Workers != 2 || r.Path.ActiveRxQueues != 2 || r.Path.AllocatedRxQueues != 4 {
				t.Fatalf("workers %d, path %+v", r.Workers, r.Path)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.ListenPorts = []int{8080}
			l := testutil.NewLab(t, c.opts)
			r, stderr, code := runBinary(t, l.ClientNS, "--dst", netip.AddrPortFrom(l.ServerAddr, 8080).String(), "--count", "2000", "--rate", "5000")
			if code != 0 || r == nil {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if r.Established != count || r.FailedTotal() != 0 || len(r.Diagnosis) != 0 {
				t.Fatalf("established %d of %d, failed %v, diagnosis %+v", r.Established, count, r.Failed, r.Diagnosis)
			}
			if acc := l.Listener.WaitAccepted(r.Established, time.Second, 10*time.Second); acc != r.Established {
				t.Fatalf("listener accepted %d, xdpconnect established %d", acc, r.Established)
			}
			c.check(t, r, stderr)
		})
	}
}

// nginx, a server nobody here wrote: its stub_status accept counter equals
// established, in rst and fin modes.
func TestWorldNginx(t *testing.T) {
	for _, mode := range []string{"rst", "fin"} {
		t.Run(mode, func(t *testing.T) {
			l := testutil.NewLab(t, lab.Options{})
			dst := netip.AddrPortFrom(l.ServerAddr, 80)
			ng := startNginx(t, l.ServerNS, dst)
			r, stderr, code := runBinary(t, l.ClientNS, "--dst", dst.String(), "--count", "3000", "--rate", "5000", "--close", mode)
			if code != 0 || r == nil {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if r.Established != 3000 || r.Closed != r.Established {
				t.Fatalf("established %d, closed %d, failed %v", r.Established, r.Closed, r.Failed)
			}
			if acc := ng.waitAccepts(t, r.Established); acc != r.Established {
				t.Fatalf("nginx accepted %d, xdpconnect established %d", acc, r.Established)
			}
		})
	}
}

// A run whose replies are all lost says why and what to do, in the report
// and the exit message, never as a Go map.
func TestWorldDiagnosis(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	dst := netip.AddrPortFrom(l.ServerAddr, 8080).String()
	// The chain of issue 11: replies dropped for checksums leave attempts in
	// flight, which then hold every port (EADDRNOTAVAIL). The cause comes
	// first, the consequence after it, pointing back.
	t.Run("checksums", func(t *testing.T) {
		r, stderr, code := runBinary(t, l.ClientNS, "--dst", dst, "--count", "100", "--rate", "2000",
			"--src-ports", "61000-61009", "--partial-checksum", "reject", "--drain", "300ms")
		if code != 1 || r == nil || r.Established != 0 || len(r.Diagnosis) < 2 {
			t.Fatalf("exit %d, report %+v, stderr %s", code, r, stderr)
		}
		if !strings.Contains(r.Diagnosis[0].Cause, "bad TCP checksums") || !strings.Contains(stderr, "--partial-checksum") {
			t.Fatalf("diagnosis %+v, stderr %s", r.Diagnosis, stderr)
		}
		if d := r.Diagnosis[1]; d.Count != r.Failed["EADDRNOTAVAIL"] || d.Count == 0 || !strings.Contains(d.Fix, "replies were lost") {
			t.Fatalf("second finding %+v, failed %v", d, r.Failed)
		}
		noGoInternals(t, stderr)
	})
	t.Run("queues-without-worker", func(t *testing.T) {
		l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}, Queues: 2, ActiveQueues: 2})
		r, stderr, code := runBinary(t, l.ClientNS, "--dst", dst, "--count", "400", "--workers", "1", "--drain", "500ms")
		if r == nil || r.XDP["pass_no_socket"] == 0 {
			t.Fatalf("exit %d, report %+v, stderr %s: expected replies on queue 1", code, r, stderr)
		}
		found := false
		for _, f := range r.Diagnosis {
			found = found || strings.Contains(f.Cause, "without an xdpconnect socket") && strings.Contains(f.Fix, "--workers 2")
		}
		if !found || !strings.Contains(stderr, "2 active RX queues and 1 worker(s)") {
			t.Fatalf("diagnosis %+v, stderr %s", r.Diagnosis, stderr)
		}
	})
	t.Run("silence", func(t *testing.T) {
		hole := netip.MustParseAddr("198.18.0.99")
		blackhole(t, l, hole)
		r, stderr, code := runBinary(t, l.ClientNS, "--dst", netip.AddrPortFrom(hole, 8080).String(), "--count", "50", "--drain", "300ms")
		if code != 1 || r == nil || len(r.Diagnosis) == 0 || !strings.Contains(r.Diagnosis[0].Cause, "no reply to any of 50 SYNs") {
			t.Fatalf("exit %d, report %+v, stderr %s", code, r, stderr)
		}
		noGoInternals(t, stderr)
	})
}

// noGoInternals fails when a message shows Go data structures or package
// prefixes instead of words.
func noGoInternals(t *testing.T, msg string) {
	t.Helper()
	for _, bad := range []string{"map[", "&{", "fastpath:", "lab:", "%!"} {
		if strings.Contains(msg, bad) {
			t.Fatalf("message shows Go internals (%q): %s", bad, msg)
		}
	}
}

// Every bad input: a message naming the flag, exit status 2, nothing sent
// (the server's TCP input counter does not move).
func TestWorldBadInput(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	dst := "198.18.0.2:8080"
	unwritable := filepath.Join(t.TempDir(), "no", "such", "dir", "r.json")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"negative duration", []string{"--dst", dst, "--duration", "-5s"}, "--duration -5s: must not be negative"},
		{"negative drain", []string{"--dst", dst, "--count", "1", "--drain", "-1s"}, "--drain -1s"},
		{"negative warmup", []string{"--dst", dst, "--duration", "1s", "--warmup", "-1s"}, "--warmup -1s"},
		{"rate NaN", []string{"--dst", dst, "--count", "1", "--rate", "NaN"}, "--rate NaN"},
		{"rate Inf", []string{"--dst", dst, "--count", "1", "--rate", "Inf"}, "--rate +Inf"},
		{"frames 0", []string{"--dst", dst, "--count", "1", "--frames", "0"}, "--frames 0"},
		{"frames not a power of two", []string{"--dst", dst, "--count", "1", "--frames", "1000"}, "--frames 1000: want a power of two"},
		{"workers -1", []string{"--dst", dst, "--count", "1", "--workers", "-1"}, "--workers -1"},
		{"workers beyond queues", []string{"--dst", dst, "--count", "1", "--workers", "3"}, "active RX queue"},
		{"hold-for without hold", []string{"--dst", dst, "--count", "1", "--hold-for", "1s"}, "--hold-for 1s: needs --close hold"},
		{"unbounded", []string{"--dst", dst}, "--count or --duration"},
		{"duplicate dst", []string{"--dst", dst, "--dst", dst, "--count", "1"}, "give each target once"},
		{"overlapping dst", []string{"--dst", dst, "--dst", "198.18.0.0/30:8080", "--count", "1"}, "give each target once"},
		{"json unwritable", []string{"--dst", dst, "--count", "1", "--json", unwritable}, "--json " + unwritable},
		{"src multicast", []string{"--dst", dst, "--count", "1", "--src", "224.0.0.1"}, "--src 224.0.0.1: a multicast"},
		{"src broadcast", []string{"--dst", dst, "--count", "1", "--src", "255.255.255.255"}, "--src 255.255.255.255"},
		{"src subnet broadcast", []string{"--dst", dst, "--count", "1", "--src", "198.18.255.255"}, "broadcast address of 198.18.0.0/16"},
		{"src is the target", []string{"--dst", dst, "--count", "1", "--src", "198.18.0.2"}, "target's own address"},
		{"src off-link", []string{"--dst", dst, "--count", "1", "--src", "198.19.200.1"}, "not in a subnet of xc0"},
		{"dst hostname loopback", []string{"--dst", "localhost:8080", "--count", "1"}, "loopback"},
		{"dst unknown host", []string{"--dst", "no-such-host.invalid:8080", "--count", "1"}, "neither an IP address nor a host name"},
		{"dst IPv6 own address", []string{"--dst", "[2001:2::1]:8080", "--count", "1"}, "an address of this host"},
		{"dst IPv6 without brackets", []string{"--dst", "2001:2::2:8080", "--count", "1"}, "an IPv6 address goes in brackets"},
		{"dst IPv6 link-local", []string{"--dst", "[fe80::1]:8080", "--count", "1"}, "link-local"},
		{"dst IPv6 multicast", []string{"--dst", "[ff02::1]:8080", "--count", "1"}, "multicast"},
		{"dst IPv6 mapped", []string{"--dst", "[::ffff:198.18.0.2]:8080", "--count", "1"}, "IPv4-mapped"},
		{"src IPv6 off-link", []string{"--dst", "[2001:2::2]:8080", "--count", "1", "--src", "2001:2:5::1"}, "not in a subnet of xc0"},
		{"dst multicast", []string{"--dst", "224.0.0.1:80", "--count", "1"}, "ENETUNREACH"},
		{"dst broadcast", []string{"--dst", "255.255.255.255:80", "--count", "1"}, "ENETUNREACH"},
		{"dst subnet broadcast", []string{"--dst", "198.18.255.255:80", "--count", "1"}, "broadcast or multicast"},
		{"dst unspecified", []string{"--dst", "0.0.0.0:80", "--count", "1"}, "0.0.0.0: the unspecified address means this host"},
		{"dst IPv6 unspecified", []string{"--dst", "[::]:80", "--count", "1"}, "the unspecified address"},
		{"dst own address", []string{"--dst", "198.18.0.1:80", "--count", "1"}, "an address of this host"},
		{"bad port", []string{"--dst", "198.18.0.2:0", "--count", "1"}, "bad port"},
		{"dst expands to billions", []string{"--dst", "198.18.0.0/16:1-65535", "--count", "1"}, "at most 65536 per run"},
		{"frames huge", []string{"--dst", dst, "--count", "1", "--frames", "1073741824"}, "--frames 1073741824"},
		{"src-ports too small", []string{"--dst", dst, "--count", "1", "--src-ports", "61000-61000"}, "too small for 1 worker(s)"},
		{"src-ports reversed", []string{"--dst", dst, "--count", "1", "--src-ports", "62000-61000"}, "--src-ports: \"62000-61000\": want LO-HI with 1 <= LO <= HI <= 65535"},
		{"no such netns", []string{"--dst", dst, "--count", "1", "--netns", "xdc-no-such-ns"}, "--netns xdc-no-such-ns: no such network namespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := lab.NetStat(l.ServerNS)
			if err != nil {
				t.Fatal(err)
			}
			r, stderr, code := runBinary(t, l.ClientNS, c.args...)
			if code != 2 || r != nil || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d (want 2), report %v, stderr: %s\nwant: %s", code, r != nil, stderr, c.want)
			}
			noGoInternals(t, stderr)
			after, err := lab.NetStat(l.ServerNS)
			if err != nil {
				t.Fatal(err)
			}
			if after["TcpInSegs"] != before["TcpInSegs"] {
				t.Fatalf("%d TCP segments reached the server", after["TcpInSegs"]-before["TcpInSegs"])
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(unwritable)); err == nil {
		t.Fatal("the --json check created directories")
	}
}

// -h exits 0 for every subcommand, and says nothing of Go's flag
// internals; --version works.
func TestWorldHelpAndVersion(t *testing.T) {
	testutil.RequirePrivileges(t)
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"run", "-h"}, {"doctor", "-h"}, {"demo", "-h"},
		{"lab", "-h"}, {"lab", "up", "-h"}, {"lab", "down", "-h"}, {"lab", "status", "-h"}, {"--version"}, {"version"}} {
		out, err := exec.Command(binary(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), "-netns xdpconnect lab up") {
			t.Fatalf("%v: flag help took a backquoted word for the argument name:\n%s", args, out)
		}
		if args[0] == "--version" && !strings.HasPrefix(string(out), "xdpconnect ") {
			t.Fatalf("--version: %s", out)
		}
	}
}

// Root without CAP_IPC_LOCK (a container, a bounding set) is told which
// capability is missing instead of the kernel's ENOBUFS; nothing attached.
func TestWorldRootWithoutIPCLock(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	setpriv := lookTool(t, "setpriv", "util-linux")
	cmd := exec.Command("ip", "netns", "exec", l.ClientNS, setpriv, "--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock",
		binary(t), "run", "--dst", "198.18.0.2:8080", "--count", "10", "--metrics-addr", "")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "missing CAP_IPC_LOCK") {
		t.Fatalf("err %v, output %s", err, out)
	}
	if xdpOn(t, l.ClientNS, lab.ClientIf) {
		t.Fatal("attached without CAP_IPC_LOCK")
	}
}

// The README's setcap line makes a binary that a user without root runs:
// 1000 connections established, the port reservation put back.
func TestWorldSetcapNonRoot(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	setcap := lookTool(t, "setcap", "libcap2-bin")
	setpriv := lookTool(t, "setpriv", "util-linux")
	dir, err := os.MkdirTemp("", "xdpc-cap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "xdpconnect")
	src, err := os.ReadFile(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(setcap, xdpconnect.SetcapCaps, bin).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v %s", err, out)
	}
	before := testutil.ReservedPorts(t, l.ClientNS)
	cmd := exec.Command("ip", "netns", "exec", l.ClientNS, setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups",
		bin, "run", "--dst", "198.18.0.2:8080", "--count", "1000", "--rate", "20000", "--json", "-", "--metrics-addr", "")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	if err := cmd.Run(); err != nil {
		t.Fatalf("as nobody: %v\n%s", err, stderr.String())
	}
	var r report.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Established != 1000 {
		t.Fatalf("report %+v (%v), stderr %s", r, err, stderr.String())
	}
	if acc := l.Listener.WaitAccepted(r.Established, time.Second, 10*time.Second); acc != r.Established {
		t.Fatalf("listener accepted %d, established %d", acc, r.Established)
	}
	if after := testutil.ReservedPorts(t, l.ClientNS); after != before {
		t.Fatalf("ip_local_reserved_ports %q after the run, %q before", after, before)
	}
}

// lookTool finds a command a test needs; CI must have it.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed: .ci/run must install %s", name, pkg)
		}
		t.Skipf("needs %s (apt-get install %s)", name, pkg)
	}
	return p
}

// Two concurrent --netns runs with the default metrics address: neither
// fails, each serves its metrics on a port of its own, and each says where
// (which namespace).
func TestWorldConcurrentMetrics(t *testing.T) {
	var runs [2]struct {
		cmd    *exec.Cmd
		stderr bytes.Buffer
	}
	for i := range runs {
		l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
		c := exec.Command(binary(t), "run", "--netns", l.ClientNS, "--dst", "198.18.0.2:8080", "--duration", "3s", "--rate", "1000")
		c.Stderr = &runs[i].stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		runs[i].cmd = c
	}
	addrs := map[string]bool{}
	for i := range runs {
		waitExit(t, runs[i].cmd, 20*time.Second)
		s := runs[i].stderr.String()
		if !runs[i].cmd.ProcessState.Success() {
			t.Fatalf("run %d: %v\n%s", i, runs[i].cmd.ProcessState, s)
		}
		j := strings.Index(s, "metrics: http://")
		if j < 0 || !strings.Contains(s[j:], "not --netns xdc-") {
			t.Fatalf("run %d does not say where its metrics are:\n%s", i, s)
		}
		addrs[strings.Fields(s[j:])[1]] = true
	}
	if len(addrs) != 2 {
		t.Fatalf("both runs served metrics at %v", addrs)
	}
}

// `lab up` on a machine where /run/netns is not a mount point yet (a fresh
// one), then another tool's `ip netns add`, which bind-mounts /run/netns
// over itself when it is not a shared mount point: `lab down` removes
// everything (it failed with EBUSY before `lab up` made it shared, as
// iproute2 does).
func TestWorldLabDownFreshNetnsDir(t *testing.T) {
	testutil.RequirePrivileges(t)
	unshare := lookTool(t, "unshare", "util-linux")
	name := fmt.Sprintf("fresh%d", os.Getpid())
	script := fmt.Sprintf(`umount -l /run/netns 2>/dev/null
if findmnt /run/netns >/dev/null; then echo "setup: /run/netns is still a mount point"; exit 3; fi
%[1]s lab up --name %[2]s >/dev/null || exit 4
ip netns add xdc-%[2]s-other || exit 5
%[1]s lab down --name %[2]s; rc=$?
ip netns del xdc-%[2]s-other
[ $rc = 0 ] || exit 6
ls /run/netns | grep -q xdc-%[2]s- && { echo leftovers; exit 7; }
exit 0`, binary(t), name)
	// A private mount namespace: the host's /run/netns stays as it is.
	out, err := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

// The interface is deleted mid-run: the run ends promptly with a message
// that says so, exit status 1, and the report's books balance.
func TestWorldInterfaceDeleted(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	cmd, stdout, stderr := startRun(t, l, "--duration", "30s", "--rate", "5000", "--json", "-")
	// Wait until connections are being made, then delete the interface.
	deadline := time.Now().Add(10 * time.Second)
	for l.Listener.Accepted() < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("no connections before the deletion: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	link, err := lab.LinkByName(l.ClientNS, lab.ClientIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Do(l.ClientNS, func() error { return netlink.LinkDel(link) }); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	waitExit(t, cmd, 10*time.Second)
	took := time.Since(deleted)
	if code := cmd.ProcessState.ExitCode(); code != 1 || took > 3*time.Second {
		t.Fatalf("exit %d after %v: %s", code, took, stderr.String())
	}
	if !strings.Contains(stderr.String(), "the interface is gone") {
		t.Fatalf("message does not say the interface is gone:\n%s", stderr.String())
	}
	var r report.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("no report: %v\n%s", err, stdout.String())
	}
	if r.Attempted != r.Established+r.FailedTotal()+r.InFlight || r.Established < 100 {
		t.Fatalf("report %+v", r)
	}
	if len(r.Diagnosis) == 0 || !strings.Contains(r.Diagnosis[0].Cause, "the run stopped early") {
		t.Fatalf("diagnosis %+v", r.Diagnosis)
	}
}

// In a container without privileges /proc/sys is read-only: the run goes
// on without the port reservation (the default range is outside the
// kernel's ephemeral range anyway) and says so.
func TestWorldReadOnlyProcSys(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	unshare := lookTool(t, "unshare", "util-linux")
	script := fmt.Sprintf(`mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys || exit 3
exec ip netns exec %s %s run --dst 198.18.0.2:8080 --count 500 --metrics-addr "" --json -`, l.ClientNS, binary(t))
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	var r report.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Established != 500 {
		t.Fatalf("report %+v (%v): %s", r, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "not reserved in ip_local_reserved_ports") {
		t.Fatalf("no note about the reservation: %s", stderr.String())
	}
}
