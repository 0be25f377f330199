package report

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad input to merge is an *InputError naming the file and the field
// at fault: never a panic, never an allocation sized by a number in the
// file (a shard count of 1e11 is refused before anything is made for it).
func TestReadBadReports(t *testing.T) {
	good := func() map[string]any {
		r := Report{Format: FormatVersion, Attempted: 10, Established: 9, Failed: map[string]uint64{"ETIMEDOUT": 1}, RunID: "r",
			Shard: &ShardInfo{Index: 0, Count: 3, PlanCount: 30}, Requests: &RequestReport{Requests: 9, Completed: 9}}
		b, _ := json.Marshal(r)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	with := func(f func(m map[string]any)) string {
		m := good()
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	shard := func(i, n any) string {
		return with(func(m map[string]any) { m["shard"] = map[string]any{"index": i, "count": n, "plan_count": 30} })
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name, body, field, words string
	}{
		{"cut", `{"attempted": 1`, "", "cut short"},
		{"not json", `attempted=1`, "", "not JSON at byte"},
		{"empty", ``, "", "empty"},
		{"two values", with(func(map[string]any) {}) + "{}", "", "more than one JSON value"},
		{"wrong type", with(func(m map[string]any) { m["attempted"] = "many" }), "attempted", "a JSON string where a uint64 belongs"},
		{"wrong nested type", with(func(m map[string]any) { m["requests"] = map[string]any{"status": []int{1}} }), "requests.status", "belongs"},
		{"index 7 of 3", shard(7, 3), "shard.index", "want 0..2"},
		{"index -1", shard(-1, 3), "shard.index", "want 0..2"},
		{"count 0", shard(0, 0), "shard.count", "want 1..4096"},
		{"count -3", shard(0, -3), "shard.count", "want 1..4096"},
		{"count 1e11", shard(0, 1e11), "shard.count", "want 1..4096"},
		{"count not a whole number", shard(0, 2.5), "shard.count", "belongs"},
		{"older format", with(func(m map[string]any) { delete(m, "format") }), "format", "format 0, want 2"},
		{"unbalanced", with(func(m map[string]any) { m["attempted"], m["established"] = 205, 1000199 }), "attempted", "do not balance"},
		{"wrapping counts", with(func(m map[string]any) {
			m["attempted"], m["established"], m["failed"] = 9, 9, map[string]any{"ETIMEDOUT": uint64(1 << 63), "ECONNREFUSED": uint64(1 << 63)}
		}), "attempted", "do not balance"},
		{"more closed than established", with(func(m map[string]any) { m["closed"] = 10 }), "closed", "more than established"},
		{"requests unbalanced", with(func(m map[string]any) { m["requests"].(map[string]any)["completed"] = 3 }), "requests.requests", "is not complete"},
		{"not a shard", with(func(m map[string]any) { delete(m, "shard") }), "shard", "not a shard's report"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := MergeFiles([]string{p})
			var ie *InputError
			if !errors.As(err, &ie) || ie.File != p || ie.Field != c.field || !strings.Contains(err.Error(), c.words) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("got %v (%#v), want an input error of %s, field %q, saying %q", err, ie, p, c.field, c.words)
			}
		})
	}
	for _, p := range []string{dir, filepath.Join(dir, "missing.json")} {
		var ie *InputError
		if _, err := MergeFiles([]string{p}); !errors.As(err, &ie) || ie.File != p {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// A report file of exactly MaxFileBytes is read; one byte more is refused
// for its size (not read in part and refused as broken JSON).
func TestReadFileSizeLimit(t *testing.T) {
	r := &Report{Format: FormatVersion, Attempted: 1, Established: 1}
	var b strings.Builder
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	body := b.String()
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact.json")
	if err := os.WriteFile(exact, []byte(body+strings.Repeat(" ", MaxFileBytes-len(body))), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(exact); err != nil || got.Attempted != 1 {
		t.Fatalf("a report of exactly %d bytes: %v", MaxFileBytes, err)
	}
	over := filepath.Join(dir, "over.json")
	if err := os.WriteFile(over, []byte(body+strings.Repeat(" ", MaxFileBytes-len(body)+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(over); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("a report one byte over: %v", err)
	}
}

// MergeFiles takes shards' reports and refuses a report that is no
// shard's, naming its file.
func TestMergeFilesShardsOnly(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r *Report) string {
		p := filepath.Join(dir, name)
		var b strings.Builder
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shard := func(i int) *Report {
		return &Report{Format: FormatVersion, Attempted: 2, Established: 2, RunID: "files", Shard: &ShardInfo{Index: i, Count: 2}}
	}
	a, b := write("a.json", shard(0)), write("b.json", shard(1))
	if m, err := MergeFiles([]string{a, b}); err != nil || m.Attempted != 4 {
		t.Fatalf("two shards: %+v %v", m, err)
	}
	plain := write("plain.json", &Report{Format: FormatVersion, Attempted: 1, Established: 1})
	if _, err := MergeFiles([]string{a, plain}); err == nil || !strings.Contains(err.Error(), plain+": field shard: no run ID and shard") {
		t.Fatalf("a report of no shard: %v", err)
	}
}
