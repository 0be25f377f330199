package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"golang.org/x/sys/unix"
)

// stateDir keeps what `lab up` started, so `lab down` ends only its own
// processes, by PID. Labs need root; runs use [runStateDir].
const stateDir = "/run/xdpconnect"

// runStateDir is where a run records its port reservation: stateDir when
// this process may write there (root), else a directory of its own user,
// so a binary with file capabilities runs for a user without root.
func runStateDir() string {
	if os.MkdirAll(stateDir, 0o755) == nil && unix.Access(stateDir, unix.W_OK) == nil {
		return stateDir
	}
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	d := filepath.Join(base, fmt.Sprintf("xdpconnect-%d", os.Geteuid()))
	_ = os.MkdirAll(d, 0o700)
	return d
}

type labState struct {
	Name     string `json:"name"`
	ServePID int    `json:"serve_pid"`
	Ports    []int  `json:"ports"`
}

func statePath(name string) string { return filepath.Join(stateDir, "lab-"+name+".json") }
func countPath(name string) string { return filepath.Join(stateDir, "lab-"+name+".accepted") }

func cmdLab(args []string) error {
	if len(args) == 0 {
		return usageError("lab needs a subcommand: up, down, status")
	}
	switch args[0] {
	case "up":
		return labUp(args[1:])
	case "down":
		return labDown(args[1:])
	case "status":
		return labStatus(args[1:])
	case "serve":
		return labServe(args[1:])
	case "-h", "--help", "help":
		fmt.Print("usage: xdpconnect lab up|down|status [flags] (each takes -h)\n" +
			"  up      create client and server namespaces, a veth pair (kernel defaults) and a Linux listener\n" +
			"  down    remove the lab --name (default lab); --all removes labs whose owner has ended\n" +
			"  status  list the labs on this machine\n")
		return nil
	}
	return usageError("unknown lab subcommand %q", args[0])
}

func parsePorts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad port %q", f)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("bad port %q", f)
			}
		}
		if a < 1 || b > 65535 || a > b {
			return nil, fmt.Errorf("bad port range %q", f)
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	return out, nil
}

func labUp(args []string) error {
	fs := flag.NewFlagSet("lab up", flag.ContinueOnError)
	name := fs.String("name", "lab", "lab name (namespaces are xdc-NAME-cli, -srv, -rtr)")
	router := fs.Bool("router", false, "put a router namespace between client and server")
	queues := fs.Int("queues", 0, "RX/TX queues allocated on the client veth (0: the kernel's default, as 'ip link add')")
	ports := fs.String("ports", "8080", "listener ports, e.g. 8080,9000-9003")
	hold := fs.Bool("hold", false, "keep accepted connections open instead of closing with FIN")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pl, err := parsePorts(*ports)
	if err != nil {
		return err
	}
	l, err := lab.Up(lab.Options{Name: *name, Router: *router, Queues: *queues})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		_ = l.Close()
		return err
	}
	self, _ := os.Executable()
	sargs := []string{"lab", "serve", "--name", *name, "--ports", *ports}
	if *hold {
		sargs = append(sargs, "--hold")
	}
	cmd := exec.Command(self, sargs...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		_ = l.Close()
		return fmt.Errorf("start listener: %w", err)
	}
	st := labState{Name: *name, ServePID: cmd.Process.Pid, Ports: pl}
	// The listener process owns the lab from now on: while it lives, no
	// other invocation's `lab down --all` removes the lab.
	if err := l.SetOwner(st.ServePID); err != nil {
		_ = cmd.Process.Kill()
		_ = l.Close()
		return err
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(statePath(*name), b, 0o644); err != nil {
		_ = cmd.Process.Kill()
		_ = l.Close()
		return err
	}
	_ = cmd.Process.Release()
	fmt.Print(l.String())
	fmt.Printf("  listener %s ports %s (pid %d)\n", l.ServerAddr, *ports, st.ServePID)
	fmt.Printf("\ntry:  ip netns exec %s xdpconnect run --dst %s:%d --count 10000\n", l.ClientNS, l.ServerAddr, pl[0])
	return nil
}

// labServe is the listener process `lab up` leaves running.
func labServe(args []string) error {
	fs := flag.NewFlagSet("lab serve", flag.ContinueOnError)
	name := fs.String("name", "lab", "lab name")
	ports := fs.String("ports", "8080", "ports")
	hold := fs.Bool("hold", false, "hold connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pl, err := parsePorts(*ports)
	if err != nil {
		return err
	}
	l, err := lab.Open(*name)
	if err != nil {
		return err
	}
	ln, err := lab.Listen(l.ServerNS, l.ServerAddr, pl, *hold)
	if err != nil {
		return err
	}
	defer ln.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last uint64 = ^uint64(0)
	for {
		select {
		case <-sig:
			return os.WriteFile(countPath(*name), []byte(strconv.FormatUint(ln.Accepted(), 10)), 0o644)
		case <-t.C:
			if n := ln.Accepted(); n != last {
				last = n
				_ = os.WriteFile(countPath(*name), []byte(strconv.FormatUint(n, 10)), 0o644)
			}
			if !l.Exists() {
				return nil // lab removed under us
			}
		}
	}
}

func readState(name string) (labState, error) {
	var st labState
	b, err := os.ReadFile(statePath(name))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// stopServe ends the listener process recorded for the lab, checking first
// that the PID is still our `lab serve` and not a recycled PID.
func stopServe(st labState) {
	if st.ServePID <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.ServePID))
	if err != nil || !strings.Contains(string(cmdline), "lab\x00serve\x00--name\x00"+st.Name+"\x00") {
		return
	}
	_ = syscall.Kill(st.ServePID, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(st.ServePID, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(st.ServePID, syscall.SIGKILL)
}

func labDown(args []string) error {
	fs := flag.NewFlagSet("lab down", flag.ContinueOnError)
	name := fs.String("name", "lab", "lab name")
	all := fs.Bool("all", false, "remove every lab whose owner has ended: leftovers of crashed runs, tests and demos (labs of live processes stay)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *all {
		removed, err := lab.DownStale()
		for _, r := range removed {
			fmt.Printf("removed leftover namespace %s\n", r)
		}
		// State of `lab up` labs that are gone now.
		ents, _ := filepath.Glob(filepath.Join(stateDir, "lab-*.json"))
		for _, e := range ents {
			n := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(e), "lab-"), ".json")
			if _, err := lab.Open(n); err != nil {
				_ = os.Remove(statePath(n))
				_ = os.Remove(countPath(n))
			}
		}
		return err
	}
	st, stErr := readState(*name)
	if pid, live := lab.Owned(*name); live && (stErr != nil || pid != st.ServePID) {
		return fmt.Errorf("lab %s is in use by process %d (a test, demo or run); it is removed when that process ends", *name, pid)
	}
	if stErr == nil {
		stopServe(st)
	}
	_ = os.Remove(statePath(*name))
	_ = os.Remove(countPath(*name))
	l, err := lab.Open(*name)
	if err != nil {
		return fmt.Errorf("no lab named %s ('xdpconnect lab status' lists them)", *name)
	}
	if err := l.Close(); err != nil {
		return err
	}
	fmt.Printf("removed lab %s\n", *name)
	return nil
}

func labStatus(args []string) error {
	fs := flag.NewFlagSet("lab status", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	names, err := lab.Names()
	if err != nil {
		return err
	}
	if len(names) == 0 {
		fmt.Println("no lab is up (xdpconnect lab up creates one)")
		return nil
	}
	for _, n := range names {
		l, err := lab.Open(n)
		if err != nil {
			fmt.Printf("lab %s: incomplete (%v); `xdpconnect lab down --all` removes it\n", n, err)
			continue
		}
		fmt.Print(l.String())
		st, err := readState(n)
		if err != nil {
			fmt.Println("  listener: none recorded")
			continue
		}
		alive := syscall.Kill(st.ServePID, 0) == nil
		cnt, _ := os.ReadFile(countPath(n))
		fmt.Printf("  listener %s ports %v pid %d alive=%v accepted=%s\n", l.ServerAddr, st.Ports, st.ServePID, alive, strings.TrimSpace(orDash(string(cnt))))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
