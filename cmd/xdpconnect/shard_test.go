package main

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

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
	"github.com/xdpconnect/xdpconnect/report"
)

// A run on three "nodes" (client namespaces on one bridge) against one
// server: each runs --shard i/3 (one auto/3 with JOB_COMPLETION_INDEX, as in
// a Kubernetes Indexed Job), all start together (--start-at), and `merge`
// gives one report: attempted = the plan's count exactly, established = the
// server's accept count, no (source address, port) used by two shards. A
// missing shard is named.
func TestShardSimulation(t *testing.T) {
	const shards, count = 3, 3001
	l := testutil.NewLab(t, lab.Options{Bridge: true, Clients: shards, ListenPorts: []int{8080}})
	nss := append([]string{l.ClientNS}, l.MoreClients...)
	dir := t.TempDir()
	start := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	var cmds []*exec.Cmd
	var files []string
	for i, ns := range nss {
		file := filepath.Join(dir, fmt.Sprintf("shard%d.json", i))
		files = append(files, file)
		shard := fmt.Sprintf("%d/%d", i, shards)
		cmd := exec.Command(binary(t), "run", "--netns", ns, "--dst", netip.AddrPortFrom(l.ServerAddr, 8080).String(),
			"--count", fmt.Sprint(count), "--rate", "15000", "--start-at", start, "--json", file, "--metrics-addr", "", "--quiet")
		if i == shards-1 {
			shard = "auto/3"
			cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
		}
		cmd.Args = append(cmd.Args, "--shard", shard)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		defer func() {
			if t.Failed() {
				t.Logf("shard %d stderr: %s", i, stderr.String())
			}
		}()
	}
	for _, c := range cmds {
		waitExit(t, c, 30*time.Second)
		if !c.ProcessState.Success() {
			t.Fatalf("shard failed: %v", c.ProcessState)
		}
	}
	out, err := exec.Command(binary(t), append([]string{"merge", "--json", "-"}, files...)...).Output()
	if err != nil {
		t.Fatalf("merge: %v %s", err, out)
	}
	var m report.Report
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.Attempted != count || m.Shard.PlanCount != count || m.InFlight != 0 {
		t.Fatalf("merged: attempted %d of the plan's %d, in flight %d", m.Attempted, count, m.InFlight)
	}
	if acc := l.Listener.WaitAccepted(m.Established, time.Second, 10*time.Second); acc != m.Established || m.Established != count {
		t.Fatalf("server accepted %d, merged established %d", acc, m.Established)
	}
	// Each shard's share differs from the others by at most one, and no
	// (source, port) is used by two shards.
	var rs []report.Report
	used := map[string][2]uint16{}
	for i, f := range files {
		var r report.Report
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &r); err != nil || r.Shard == nil || r.Shard.Index != i || r.RunID != m.RunID {
			t.Fatalf("shard %d report: %v %+v", i, err, r.Shard)
		}
		if r.Attempted != count/shards && r.Attempted != count/shards+1 {
			t.Fatalf("shard %d attempted %d", i, r.Attempted)
		}
		for _, s := range r.Path.Sources {
			if p, dup := used[s]; dup && !(r.Path.PortHi < p[0] || r.Path.PortLo > p[1]) {
				t.Fatalf("source %s ports %d-%d used by two shards", s, r.Path.PortLo, r.Path.PortHi)
			}
			used[s] = [2]uint16{r.Path.PortLo, r.Path.PortHi}
		}
		rs = append(rs, r)
	}
	t.Logf("merged: %d established at %.0f/s; shards %.0f, %.0f, %.0f /s", m.Established, m.CPS, rs[0].CPS, rs[1].CPS, rs[2].CPS)
	// Shard 1 is killed in a second run of the same plan: it leaves no
	// report, and merge names it.
	killed := filepath.Join(dir, "killed.json")
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), "run", "--netns", nss[1], "--dst", netip.AddrPortFrom(l.ServerAddr, 8080).String(),
		"--count", fmt.Sprint(count), "--rate", "100", "--shard", "1/3", "--json", killed, "--metrics-addr", "", "--quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.Listener.Accepted() < m.Established+10; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second shard 1 made no connection")
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := os.Stat(killed); err == nil {
		t.Fatal("a killed shard wrote a report")
	}
	msg, err := exec.Command(binary(t), "merge", files[0], files[2]).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(msg), "shard(s) 1/3 of run "+m.RunID+" missing") {
		t.Fatalf("merge without shard 1: %v %s", err, msg)
	}
}
