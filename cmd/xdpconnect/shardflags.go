package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect"
)

// parseShard parses "i/N" (0 <= i < N) or "auto/N", which takes i from
// JOB_COMPLETION_INDEX, the index a Kubernetes Indexed Job gives each pod.
func parseShard(s string) (xdpconnect.Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(b)
	if !ok || err != nil || n < 1 {
		return xdpconnect.Shard{}, fmt.Errorf("--shard %q: want i/N or auto/N", s)
	}
	if a == "auto" {
		a = os.Getenv("JOB_COMPLETION_INDEX")
		if a == "" {
			return xdpconnect.Shard{}, fmt.Errorf("--shard %s: JOB_COMPLETION_INDEX is not set (it is in a Kubernetes Indexed Job)", s)
		}
	}
	i, err := strconv.Atoi(a)
	if err != nil || i < 0 || i >= n {
		return xdpconnect.Shard{}, fmt.Errorf("--shard %q: the index must be 0..%d", s, n-1)
	}
	return xdpconnect.Shard{Index: i, Count: n}, nil
}

// parseStartAt parses --start-at: RFC 3339 ("2026-11-25T18:00:00Z") or
// Unix seconds. Shards given the same time start together.
func parseStartAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("--start-at %q: want RFC 3339 (2026-11-25T18:00:00Z) or Unix seconds", s)
}

// parseStages parses --stages: DURATION:RATE legs separated by commas.
func parseStages(s string) ([]xdpconnect.Stage, error) {
	var out []xdpconnect.Stage
	for _, leg := range strings.Split(s, ",") {
		d, r, ok := strings.Cut(leg, ":")
		dur, err := time.ParseDuration(d)
		if !ok || err != nil || dur <= 0 {
			return nil, fmt.Errorf("stage %q: want DURATION:RATE, e.g. 30s:50000", leg)
		}
		rate, err := strconv.ParseFloat(r, 64)
		if err != nil || rate < 0 || rate != rate {
			return nil, fmt.Errorf("stage %q: the rate is attempts per second, a number >= 0", leg)
		}
		out = append(out, xdpconnect.Stage{Duration: dur, Rate: rate})
	}
	return out, nil
}
