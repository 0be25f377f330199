package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/tcp"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds xdpconnect once for the process tests.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xdpc-bin")
		if err != nil {
			binErr = err
			return
		}
		_ = os.Chmod(dir, 0o755) // the unprivileged test runs it as nobody
		binPath = filepath.Join(dir, "xdpconnect")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func startRun(t *testing.T, l *lab.Lab, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	a := append([]string{"run", "--netns", l.ClientNS, "--dst", netip.AddrPortFrom(l.ServerAddr, 8080).String(), "--metrics-addr", ""}, args...)
	cmd := exec.Command(binary(t), a...)
	var out bytes.Buffer
	cmd.Stdout = &out
	errb := startProcess(t, cmd)
	return cmd, &out, errb
}

func xdpOn(t *testing.T, ns, ifname string) bool {
	link, err := lab.LinkByName(ns, ifname)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Xdp != nil && link.Attrs().Xdp.Attached
}

// Fault: SIGINT mid-run. Invariant: the report is printed, exit status 0,
// every connection closed on the server, the XDP program detached and the
// reserved ports released.
func TestProcessSIGINT(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	cmd, out, errb := startRun(t, l, "--duration", "60s", "--rate", "5000")
	waitLoad(t, l)
	if !xdpOn(t, l.ClientNS, lab.ClientIf) || testutil.ReservedPorts(t, l.ClientNS) == "" {
		t.Fatal("program not attached or ports not reserved while running")
	}
	_ = cmd.Process.Signal(os.Interrupt)
	waitExit(t, cmd, 10*time.Second)
	if !cmd.ProcessState.Success() || !strings.Contains(out.String(), "established") {
		t.Fatalf("exit %v\nstdout: %s\nstderr: %s", cmd.ProcessState, out, errb)
	}
	if xdpOn(t, l.ClientNS, lab.ClientIf) {
		t.Fatal("XDP program left attached")
	}
	if r := testutil.ReservedPorts(t, l.ClientNS); r != "" {
		t.Fatalf("port reservation left behind: %q\nstderr: %s", r, errb)
	}
	noServerConnections(t, l)
}

// waitLoad returns once the run is under way: the lab's listener has
// accepted connections from it.
func waitLoad(t *testing.T, l *lab.Lab) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); l.Listener.Accepted() < 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no load from the run: the listener accepted %d", l.Listener.Accepted())
		}
	}
}

func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		t.Fatalf("process did not exit within %v", d)
	}
}

// Fault: SIGKILL mid-run. Invariant: no XDP program stays attached (bpf_link
// dies with the process); the next run releases the reserved ports the
// killed one left.
func TestProcessSIGKILL(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	cmd, _, _ := startRun(t, l, "--duration", "60s", "--rate", "5000")
	waitLoad(t, l)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	waitExit(t, cmd, 5*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for xdpOn(t, l.ClientNS, lab.ClientIf) {
		if time.Now().After(deadline) {
			t.Fatal("XDP program still attached after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if testutil.ReservedPorts(t, l.ClientNS) == "" {
		t.Fatal("expected the killed run's reservation to be left (nothing ran its cleanup)")
	}
	next, out, errb := startRun(t, l, "--count", "100", "--rate", "5000")
	waitExit(t, next, 20*time.Second)
	if !next.ProcessState.Success() {
		t.Fatalf("next run failed: %s %s", out, errb)
	}
	if r := testutil.ReservedPorts(t, l.ClientNS); r != "" {
		t.Fatalf("reserved ports after the next run: %q", r)
	}
}

// Fault: two instances on one interface. Invariant: the second refuses at
// once with a message that says why; the first is unaffected.
func TestProcessTwoInstances(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	first, out1, _ := startRun(t, l, "--duration", "60s", "--rate", "2000")
	waitLoad(t, l)
	second, _, errb := startRun(t, l, "--count", "10")
	waitExit(t, second, 10*time.Second)
	if second.ProcessState.Success() || !strings.Contains(errb.String(), "another xdpconnect") {
		t.Fatalf("second instance: %v: %s", second.ProcessState, errb)
	}
	_ = first.Process.Signal(os.Interrupt)
	waitExit(t, first, 10*time.Second)
	if !first.ProcessState.Success() {
		t.Fatalf("first instance: %v %s", first.ProcessState, out1)
	}
}

// Fault: insufficient privileges. Invariant: a clear message naming the
// capability, exit status 1, nothing attached.
func TestProcessUnprivileged(t *testing.T) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	cmd := exec.Command(binary(t), "run", "--netns", l.ClientNS, "--dst", "198.18.0.2:8080", "--count", "1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CAP_NET_ADMIN") || !strings.Contains(string(out), "insufficient privileges") {
		t.Fatalf("err %v, output %s", err, out)
	}
	if xdpOn(t, l.ClientNS, lab.ClientIf) {
		t.Fatal("attached without privileges")
	}
}

// Hostile frames: random and mutated frames sent into the client's
// interface during a run. Invariant: no panic, books balance, real
// handshakes unaffected, dropped frames counted by reason.
func TestHostileFrames(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) { hostileFrames(t, v6) })
	}
}

func hostileFrames(t *testing.T, v6 bool) {
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	raw := testutil.NewRaw(t, l.ServerNS, lab.ServerIf)
	_, cmac, err := l.ClientLink()
	if err != nil {
		t.Fatal(err)
	}
	srv := l.ServerAddr
	path := tcp.Path{SrcMAC: [6]byte(raw.MAC), DstMAC: [6]byte(cmac), Src: l.ServerAddr.As4(), Dst: lab.ClientAddr.As4(), SrcPort: 8080}
	if v6 {
		srv = l.ServerAddr6
		path = tcp.Path{SrcMAC: [6]byte(raw.MAC), DstMAC: [6]byte(cmac), V6: true, Src6: l.ServerAddr6.As16(), Dst6: lab.ClientAddr6.As16(), SrcPort: 8080}
	}
	l4 := tcp.EthHdrLen + tcp.IPv4HdrLen
	if v6 {
		l4 = tcp.EthHdrLen + tcp.IPv6HdrLen
	}
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		rng := rand.New(rand.NewPCG(1, 1))
		n := 0
		base := make([]byte, tcp.MaxReplyLen)
		params := tcp.DefaultParams(1500, v6)
		for {
			select {
			case <-stop:
				sent <- n
				return
			default:
			}
			p := path
			p.DstPort = uint16(40000 + rng.IntN(10000))
			r := tcp.Reply{Flags: tcp.Flags(rng.Uint32()), Seq: tcp.Seq(rng.Uint32()), Ack: tcp.Seq(rng.Uint32()), Window: uint16(rng.Uint32())}
			if rng.IntN(2) == 0 {
				r.SYNOpts, r.MSS, r.TSVal, r.TSEcr = &params, uint16(rng.Uint32()), rng.Uint32(), rng.Uint32()
			}
			f := base[:tcp.Build(base, &p, &r)]
			switch rng.IntN(4) {
			case 0: // flip a byte after the Ethernet header: bad checksum, bad header ...
				f[14+rng.IntN(len(f)-14)] ^= byte(1 + rng.IntN(255))
			case 1: // truncate
				f = f[:14+rng.IntN(len(f)-14)]
			case 2: // garbage options (checksums kept valid)
				for i := l4 + tcp.TCPHdrLen; i < len(f); i++ {
					f[i] = byte(rng.Uint32())
				}
				if v6 {
					tcp.TCP(f[l4:]).SetChecksum6(&p.Src6, &p.Dst6)
				} else {
					tcp.TCP(f[l4:]).SetChecksum4(p.Src, p.Dst)
				}
			}
			_ = raw.Send(f)
			n++
			if n%64 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	r := runIn(t, l, netip.AddrPortFrom(srv, 8080), func(o *runOpts) {
		o.plan.Count = 0
		o.plan.Duration = 2 * time.Second
		o.plan.Rate = 5000
	})
	close(stop)
	n := testutil.Await(t, sent, 10*time.Second, "the hostile frames' sender to stop")
	if r.InFlight != 0 || r.Established+r.FailedTotal() != r.Attempted || r.Established < r.Attempted*99/100 {
		t.Fatalf("report %+v", r)
	}
	var drops uint64
	for _, v := range r.Drops {
		drops += v
	}
	if drops == 0 {
		t.Fatalf("no dropped frame counted after %d hostile frames: %+v", n, r.Drops)
	}
	t.Logf("%d hostile frames; drops by reason %v; established %d of %d", n, r.Drops, r.Established, r.Attempted)
}

// `lab up` then `lab status` prints the topology and the listener; `lab
// down` leaves no namespace and no listener process.
func TestLabCLI(t *testing.T) {
	testutil.RequirePrivileges(t)
	name := fmt.Sprintf("cli%d", os.Getpid())
	t.Cleanup(func() { _ = exec.Command(binary(t), "lab", "down", "--name", name).Run() })
	out, err := exec.Command(binary(t), "lab", "up", "--name", name, "--router").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "router") {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	st, err := lab.ReadServer(name)
	if err != nil || !st.Alive() {
		t.Fatalf("listener process not running: %v %+v", err, st)
	}
	out, err = exec.Command(binary(t), "lab", "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "xdc-"+name+"-cli") || !strings.Contains(string(out), "alive=true") {
		t.Fatalf("lab status: %v\n%s", err, out)
	}
	// status takes --name as up and down do: that lab only.
	out, err = exec.Command(binary(t), "lab", "status", "--name", name).CombinedOutput()
	if err != nil || strings.Count(string(out), "alive=") != 1 || !strings.Contains(string(out), "xdc-"+name+"-cli") {
		t.Fatalf("lab status --name: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary(t), "lab", "status", "--name", name+"x").CombinedOutput(); err == nil || !strings.Contains(string(out), "no lab named") {
		t.Fatalf("lab status --name of no lab: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary(t), "lab", "down", "--name", name).CombinedOutput(); err != nil {
		t.Fatalf("lab down: %v\n%s", err, out)
	}
	for _, suffix := range []string{"-cli", "-srv", "-rtr"} {
		if _, err := os.Stat("/var/run/netns/xdc-" + name + suffix); err == nil {
			t.Errorf("namespace %s left", name+suffix)
		}
	}
	// lab down waits for the listener to exit (SIGTERM, then SIGKILL).
	if st.Alive() {
		t.Errorf("listener process %d left", st.PID)
	}
}
