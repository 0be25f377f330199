package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
		cmds = append(cmds, startShard(t, i, cmd))
	}
	waitShards(t, cmds, 30*time.Second)
	m := mergeShards(t, files)
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

// Three request-mode shards against nginx over both families, merged:
// every section the shards have is in the merged report and adds up
// (requests, statuses, per-family counts, the TTFB/TTLB histograms bucket
// by bucket, IPv6's TCP settings), and nginx's own request counters equal
// the merged complete count. Before the report package, merge dropped the
// request section, the families and tcp6.
func TestShardMergeRequestsNginx(t *testing.T) {
	const shards, count = 3, 1800
	l := testutil.NewLab(t, lab.Options{Bridge: true, Clients: shards})
	dst4, dst6 := netip.AddrPortFrom(l.ServerAddr, 80), netip.AddrPortFrom(l.ServerAddr6, 80)
	ng4, ng6 := startNginx(t, l.ServerNS, dst4), startNginx(t, l.ServerNS, dst6)
	_, before4, err := ng4.stats()
	if err != nil {
		t.Fatal(err)
	}
	_, before6, err := ng6.stats()
	if err != nil {
		t.Fatal(err)
	}
	nss := append([]string{l.ClientNS}, l.MoreClients...)
	dir := t.TempDir()
	start := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	var cmds []*exec.Cmd
	var files []string
	for i, ns := range nss {
		file := filepath.Join(dir, fmt.Sprintf("shard%d.json", i))
		files = append(files, file)
		cmd := exec.Command(binary(t), "run", "--netns", ns, "--dst", dst4.String(), "--dst", dst6.String(), "--http", "GET /1k",
			"--count", fmt.Sprint(count), "--rate", "3000", "--start-at", start, "--shard", fmt.Sprintf("%d/%d", i, shards),
			"--json", file, "--metrics-addr", "", "--quiet")
		cmds = append(cmds, startShard(t, i, cmd))
	}
	waitShards(t, cmds, 30*time.Second)
	m := mergeShards(t, files)
	var sum report.Report
	sum.Requests = &report.RequestReport{Status: map[string]uint64{}}
	fam := map[string][3]uint64{}
	ttfb, ttlb := map[float64]uint64{}, map[float64]uint64{}
	perSecond := map[int][2]uint64{} // attempts and 2xx responses, second by second
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r report.Report
		if err := json.Unmarshal(b, &r); err != nil || r.Requests == nil || r.TCP6 == nil || len(r.Families) != 2 {
			t.Fatalf("shard %d report lacks a part: %v %+v", i, err, r)
		}
		sum.Established += r.Established
		sum.Requests.Completed += r.Requests.Completed
		for k, v := range r.Requests.Status {
			sum.Requests.Status[k] += v
		}
		for _, fr := range r.Families {
			x := fam[fr.Family]
			fam[fr.Family] = [3]uint64{x[0] + fr.Attempted, x[1] + fr.Established, x[2] + fr.Failed}
		}
		for _, b := range r.Requests.TTFBHist {
			ttfb[b.UpperSeconds] += b.Count
		}
		for _, s := range r.Timeline {
			x := perSecond[s.T]
			perSecond[s.T] = [2]uint64{x[0] + s.Attempted, x[1] + s.Responses["2xx"]}
		}
		for _, b := range r.Requests.TTLBHist {
			ttlb[b.UpperSeconds] += b.Count
		}
	}
	q := m.Requests
	if q == nil || m.TCP6 == nil || len(m.Families) != 2 {
		t.Fatalf("merged report lacks a part: requests %v, tcp6 %v, families %v", q, m.TCP6, m.Families)
	}
	if m.Attempted != count || m.Established != sum.Established || q.Completed != sum.Requests.Completed || q.Completed != count ||
		!maps.Equal(q.Status, sum.Requests.Status) || q.Status["200"] != count {
		t.Fatalf("merged: attempted %d, established %d (shards %d), complete %d (shards %d), status %v (shards %v)",
			m.Attempted, m.Established, sum.Established, q.Completed, sum.Requests.Completed, q.Status, sum.Requests.Status)
	}
	for _, f := range m.Families {
		if got := [3]uint64{f.Attempted, f.Established, f.Failed}; got != fam[f.Family] || f.Attempted == 0 {
			t.Fatalf("family %s: merged %v, shards %v", f.Family, got, fam[f.Family])
		}
	}
	for name, h := range map[string]struct {
		merged []report.Bucket
		shards map[float64]uint64
	}{"ttfb": {q.TTFBHist, ttfb}, "ttlb": {q.TTLBHist, ttlb}} {
		var n uint64
		for _, b := range h.merged {
			if b.Count != h.shards[b.UpperSeconds] {
				t.Fatalf("%s bucket %v: merged %d, shards %d", name, b.UpperSeconds, b.Count, h.shards[b.UpperSeconds])
			}
			n += b.Count
		}
		if n != q.Completed || len(h.merged) != len(h.shards) {
			t.Fatalf("%s: %d samples in %d buckets, want %d in %d", name, n, len(h.merged), q.Completed, len(h.shards))
		}
	}
	// The timeline merges second by second (the shards started together).
	if len(m.Timeline) != len(perSecond) || len(m.Timeline) == 0 {
		t.Fatalf("merged timeline of %d seconds, the shards' of %d", len(m.Timeline), len(perSecond))
	}
	for _, s := range m.Timeline {
		if got := [2]uint64{s.Attempted, s.Responses["2xx"]}; got != perSecond[s.T] {
			t.Fatalf("second %d: merged %v, shards %v", s.T, got, perSecond[s.T])
		}
	}
	if q.TTLB.P50 <= 0 || q.TTLB.P99 < q.TTLB.P50 || q.TTLB.Max < q.TTLB.P99 {
		t.Fatalf("merged TTLB quantiles %+v", q.TTLB)
	}
	// nginx's counters: each counts its own family's requests (a status
	// read counts itself, before and after alike).
	waitNginxRequests(t, ng4, before4, fam["ipv4"][1])
	waitNginxRequests(t, ng6, before6, fam["ipv6"][1])
	t.Logf("merged: %d requests complete (ipv4 %d, ipv6 %d), TTLB p50 %v p99 %v", q.Completed, fam["ipv4"][1], fam["ipv6"][1],
		time.Duration(q.TTLB.P50*1e9), time.Duration(q.TTLB.P99*1e9))
}

// startProcess starts cmd, keeping its stderr, and kills it when the test
// ends if it still runs.
func startProcess(t *testing.T, cmd *exec.Cmd) *bytes.Buffer {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return &stderr
}

// startShard starts cmd as shard i (startProcess), and puts its stderr in
// the log if the test fails.
func startShard(t *testing.T, i int, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	stderr := startProcess(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shard %d stderr: %s", i, stderr.String())
		}
	})
	return cmd
}

// waitShards waits up to d for each shard and fails the test on one that
// did not succeed.
func waitShards(t *testing.T, cmds []*exec.Cmd, d time.Duration) {
	t.Helper()
	for i, c := range cmds {
		waitExit(t, c, d)
		if !c.ProcessState.Success() {
			t.Fatalf("shard %d failed: %v", i, c.ProcessState)
		}
	}
}

// mergeShards runs `merge --json -` on the shards' reports and returns the
// merged report.
func mergeShards(t *testing.T, files []string) report.Report {
	t.Helper()
	out, err := exec.Command(binary(t), append([]string{"merge", "--json", "-"}, files...)...).Output()
	if err != nil {
		t.Fatalf("merge: %v %s", err, out)
	}
	var m report.Report
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
