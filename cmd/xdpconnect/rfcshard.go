package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/report"
)

// exchange coordinates the shards of an RFC 9411 procedure through a
// directory every node can read and write (a shared volume): before each
// run every shard says it is ready and all start together; after it every
// shard leaves its report and reads the others'. Each shard then judges
// the merged run, so every shard reaches the same verdict and picks the
// same next objective: no coordinator process, and no shard's view alone
// decides.
type exchange struct {
	dir     string // DIR/RUN-ID
	shard   xdpconnect.Shard
	timeout time.Duration
	// first is the first run's start (--start-at); zero: when all shards
	// are ready.
	first time.Time
}

// exchangeLead is the time between the last shard's ready and the run's
// start: each shard opens its session (XDP program, sockets, neighbour
// lookups) in it.
const exchangeLead = 3 * time.Second

// newExchange is x's exchange in x.dir's subdirectory id. A directory
// that already holds this shard's files is a previous procedure's with
// the same ID: reading its reports as this one's would mix two
// procedures, so it is refused.
func newExchange(x exchange, id string) (*exchange, error) {
	dir, s := x.dir, x.shard
	x.dir = filepath.Join(dir, id)
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		return nil, usageError("--exchange %s: %v", dir, errors.Unwrap(err))
	}
	if _, err := os.Stat(x.file("000", "ready")); err == nil {
		return nil, usageError("--exchange %s: %s already holds shard %s's files (a finished procedure with the same --run-id): remove it or give another --run-id", dir, x.dir, s)
	}
	return &x, nil
}

// procedureID names a procedure across its shards: the procedure's own
// settings (the test and the flags that define it, as parsed) and its
// targets give the same ID on every node; what differs between nodes
// (--shard, the node's namespace, interface, sources, output files) is
// not part of it.
func procedureID(settings []string, targets []netip.AddrPort) string {
	h := sha256.New()
	for _, s := range settings {
		fmt.Fprintf(h, "%q ", s)
	}
	ts := make([]string, len(targets))
	for i, t := range targets {
		ts[i] = t.String()
	}
	sort.Strings(ts)
	fmt.Fprintf(h, "%q", ts)
	return "rfc9411-" + hex.EncodeToString(h.Sum(nil)[:6])
}

func (x *exchange) file(run, kind string) string {
	return filepath.Join(x.dir, run, fmt.Sprintf("%s-%d", kind, x.shard.Index))
}

// put writes b as this shard's kind file of run, whole or not at all
// (a rename), so a reader never sees half of it.
func (x *exchange) put(run, kind string, b []byte) error {
	p := x.file(run, kind)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// all waits for every shard's kind file of run and returns their paths in
// shard order.
func (x *exchange) all(ctx context.Context, run, kind string) ([]string, error) {
	deadline := time.Now().Add(x.timeout)
	paths := make([]string, x.shard.Count)
	for i := range paths {
		paths[i] = filepath.Join(x.dir, run, fmt.Sprintf("%s-%d", kind, i))
	}
	for {
		var missing []string
		for i, p := range paths {
			if _, err := os.Stat(p); err != nil {
				missing = append(missing, strconv.Itoa(i))
			}
		}
		if len(missing) == 0 {
			return paths, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rfc9411 --exchange: shard(s) %s gave no %s for run %s within %v (%s): are they running, with the same arguments and --exchange?",
				strings.Join(missing, ", "), kind, run, x.timeout, filepath.Join(x.dir, run))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// start is run's shared start time: the latest shard's ready time plus the
// lead (or, for the first run, --start-at when given).
func (x *exchange) start(ctx context.Context, run string) (time.Time, error) {
	if err := x.put(run, "ready", []byte(strconv.FormatInt(time.Now().UnixNano(), 10))); err != nil {
		return time.Time{}, err
	}
	paths, err := x.all(ctx, run, "ready")
	if err != nil {
		return time.Time{}, err
	}
	if run == "000" && !x.first.IsZero() {
		return x.first, nil
	}
	var last int64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return time.Time{}, err
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %q is not a time", p, b)
		}
		last = max(last, ns)
	}
	return time.Unix(0, last).Add(exchangeLead), nil
}

// merged leaves this shard's report of run and returns the merged report
// of all shards, and the saturation reasons of every shard (a shard that
// was the limit makes the whole run's equipment the limit, even when the
// merged counters dilute it).
func (x *exchange) merged(ctx context.Context, run string, r *report.Report) (*report.Report, []string, error) {
	var b strings.Builder
	if err := r.WriteJSON(&b); err != nil {
		return nil, nil, err
	}
	if err := x.put(run, "report", []byte(b.String())); err != nil {
		return nil, nil, err
	}
	paths, err := x.all(ctx, run, "report")
	if err != nil {
		return nil, nil, err
	}
	// Each report read once: its own saturation, then the merge.
	rs := make([]*report.Report, len(paths))
	var limits []string
	for i, p := range paths {
		if rs[i], err = report.ReadFile(p); err != nil {
			return nil, nil, err
		}
		if s := rs[i].Saturation; s != nil && s.Saturated {
			for _, l := range s.Limits {
				limits = append(limits, fmt.Sprintf("shard %d: %s", i, l.Detail))
			}
		}
	}
	m, err := report.Merge(rs)
	if err != nil {
		return nil, nil, err
	}
	if s := m.Saturation; s != nil && s.Saturated {
		for _, l := range s.Limits {
			limits = append(limits, "merged: "+l.Detail)
		}
	}
	return m, limits, nil
}
