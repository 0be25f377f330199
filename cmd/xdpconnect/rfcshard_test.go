package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect"
)

// Every node computes the same procedure ID from the same settings and
// targets, whatever the order of --dst; another target or setting is
// another procedure.
func TestProcedureID(t *testing.T) {
	a, b := netip.MustParseAddrPort("198.18.0.2:80"), netip.MustParseAddrPort("[2001:2::2]:80")
	set := []string{"cps", "target=1000", "sizes=1k"}
	id := procedureID(set, []netip.AddrPort{a, b})
	if procedureID(set, []netip.AddrPort{b, a}) != id {
		t.Error("the order of the targets changed the ID")
	}
	if procedureID(set, []netip.AddrPort{a}) == id || procedureID([]string{"cps", "target=2000", "sizes=1k"}, []netip.AddrPort{a, b}) == id {
		t.Error("another procedure has the same ID")
	}
}

// Two shards meet at each run: both get the same start, the last ready
// time plus the lead; a missing shard ends the wait with its index named;
// a directory that holds this shard's files of an earlier procedure is
// refused.
func TestExchangeStart(t *testing.T) {
	dir := t.TempDir()
	var xs [2]*exchange
	for i := range xs {
		x, err := newExchange(exchange{dir: dir, shard: xdpconnect.Shard{Index: i, Count: 2}, timeout: 5 * time.Second}, "p1")
		if err != nil {
			t.Fatal(err)
		}
		xs[i] = x
	}
	var wg sync.WaitGroup
	var starts [2]time.Time
	var errs [2]error
	before := time.Now()
	for i, x := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(300 * time.Millisecond) // the later shard sets the start
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			starts[i], errs[i] = x.start(ctx, "000")
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if !starts[0].Equal(starts[1]) {
		t.Fatalf("shards start at %v and %v", starts[0], starts[1])
	}
	if lead := starts[0].Sub(before); lead < exchangeLead+300*time.Millisecond || lead > exchangeLead+2*time.Second {
		t.Fatalf("start %v after the first ready: want the later shard's ready plus %v", lead, exchangeLead)
	}
	// Shard 1 never comes to run 001.
	xs[0].timeout = 200 * time.Millisecond
	if _, err := xs[0].start(context.Background(), "001"); err == nil || !strings.Contains(err.Error(), "shard(s) 1 gave no ready") {
		t.Fatalf("a missing shard: %v", err)
	}
	if _, err := newExchange(exchange{dir: dir, shard: xdpconnect.Shard{Index: 0, Count: 2}, timeout: time.Second}, "p1"); err == nil {
		t.Fatal("a directory with this shard's files of an earlier procedure was taken")
	}
	if _, err := os.Stat(filepath.Join(dir, "p1", "000", "ready-1")); err != nil {
		t.Fatal(err)
	}
}
