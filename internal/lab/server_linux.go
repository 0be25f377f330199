package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stateDir keeps what `xdpconnect lab up` started, so `lab down` ends only
// its own listener process, by PID.
const stateDir = "/run/xdpconnect"

// Server records the listener process `xdpconnect lab up` leaves running.
type Server struct {
	Name  string `json:"name"`
	PID   int    `json:"serve_pid"`
	Ports []int  `json:"ports"`
}

func serverPath(name string) string { return filepath.Join(stateDir, "lab-"+name+".json") }
func countPath(name string) string  { return filepath.Join(stateDir, "lab-"+name+".accepted") }

// Save records s.
func (s Server) Save() error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	return os.WriteFile(serverPath(s.Name), b, 0o644)
}

// ReadServer returns the listener process recorded for lab name.
func ReadServer(name string) (Server, error) {
	var s Server
	b, err := os.ReadFile(serverPath(name))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// Stop ends the recorded listener process, checking first that the PID is
// still a `lab serve` of this lab and not a recycled PID, and removes its
// records.
func (s Server) Stop() {
	defer func() {
		_ = os.Remove(serverPath(s.Name))
		_ = os.Remove(countPath(s.Name))
	}()
	if s.PID <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.PID))
	if err != nil || !strings.Contains(string(cmdline), "lab\x00serve\x00--name\x00"+s.Name+"\x00") {
		return
	}
	_ = syscall.Kill(s.PID, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(s.PID, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(s.PID, syscall.SIGKILL)
}

// Alive reports whether the listener process runs.
func (s Server) Alive() bool { return s.PID > 0 && syscall.Kill(s.PID, 0) == nil }

// Accepted is the last accept count the listener process wrote ("0" when
// none).
func (s Server) Accepted() string {
	b, _ := os.ReadFile(countPath(s.Name))
	if v := strings.TrimSpace(string(b)); v != "" {
		return v
	}
	return "0"
}

// ForgetGoneServers removes the records of labs that no longer exist.
func ForgetGoneServers() {
	ents, _ := filepath.Glob(filepath.Join(stateDir, "lab-*.json"))
	for _, e := range ents {
		n := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(e), "lab-"), ".json")
		if _, err := Open(n); err != nil {
			_ = os.Remove(serverPath(n))
			_ = os.Remove(countPath(n))
		}
	}
}

// Serve is the body of the listener process: a Linux listener on the lab's
// server address until SIGTERM/SIGINT or until the lab disappears, writing
// its accept count for `lab status`.
func Serve(name string, ports []int, hold bool) error {
	l, err := Open(name)
	if err != nil {
		return err
	}
	ln, err := Listen(l.ServerNS, []netip.Addr{l.ServerAddr, l.ServerAddr6}, ports, hold)
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
			return os.WriteFile(countPath(name), []byte(strconv.FormatUint(ln.Accepted(), 10)), 0o644)
		case <-t.C:
			if n := ln.Accepted(); n != last {
				last = n
				_ = os.WriteFile(countPath(name), []byte(strconv.FormatUint(n, 10)), 0o644)
			}
			if !l.Exists() {
				return nil // lab removed under us
			}
		}
	}
}
