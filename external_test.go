package xdpconnect_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// externalMain is a program outside this module: it can use only the
// public API.
const externalMain = `package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"time"

	"github.com/xdpconnect/xdpconnect"
)

func main() {
	ctx := context.Background()
	s, err := xdpconnect.Open(ctx, xdpconnect.Options{Netns: os.Args[1], Targets: []netip.AddrPort{netip.MustParseAddrPort(os.Args[2])}})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	r, err := s.Run(ctx, xdpconnect.Plan{Count: 1000, Rate: 20000, Drain: 5 * time.Second}, xdpconnect.RunHooks{})
	if err != nil {
		panic(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]uint64{"established": r.Established, "attempted": r.Attempted})
}
`

// The library is usable from another module: a program that imports the
// public package (through a replace directive) opens 1000 connections in
// the lab, and the Linux listener accepts them all.
func TestExternalModule(t *testing.T) {
	testutil.RequirePrivileges(t)
	if testing.Short() {
		t.Skip("builds a separate module")
	}
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/loadtest\n\ngo 1.26\n\nrequire github.com/xdpconnect/xdpconnect v0.0.0\n\nreplace github.com/xdpconnect/xdpconnect => " + repo + "\n"
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": gomod, "go.sum": string(sum), "main.go": externalMain} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) []byte {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	run("build", "-o", "loadtest", ".")
	cmd := exec.Command(filepath.Join(dir, "loadtest"), l.ClientNS, l.ServerAddr.String()+":8080")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	var r map[string]uint64
	if err := json.Unmarshal(out, &r); err != nil || r["established"] != 1000 || r["attempted"] != 1000 {
		t.Fatalf("loadtest printed %s (%v)", out, err)
	}
	if acc := l.Listener.WaitAccepted(1000, time.Second, 10*time.Second); acc != 1000 {
		t.Fatalf("listener accepted %d of 1000", acc)
	}
}
