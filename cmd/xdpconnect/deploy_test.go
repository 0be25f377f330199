package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Kubernetes Jobs in deploy/kubernetes run xdpconnect with flags this
// binary takes: a renamed or misspelled flag fails here, not in a cluster.
func TestDeployJobArgs(t *testing.T) {
	files, err := filepath.Glob("../../deploy/kubernetes/*job.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("job manifests: %v %v", files, err)
	}
	t.Setenv("JOB_COMPLETION_INDEX", "0") // the Job controller sets it
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		args := manifestArgs(string(b))
		if len(args) == 0 {
			continue // the merge Job runs a shell command
		}
		sub := strings.NewReplacer("$(JOB_COMPLETION_INDEX)", "0", "$(START_AT)", "2026-11-25T18:00:00Z")
		for i := range args {
			args[i] = sub.Replace(args[i])
		}
		// Output files and the exchange go to a writable place here.
		dir := t.TempDir()
		for i, a := range args {
			for _, fl := range []string{"--json=", "--html=", "--exchange="} {
				if strings.HasPrefix(a, fl) {
					args[i] = fl + filepath.Join(dir, filepath.Base(strings.TrimPrefix(a, fl)))
				}
			}
		}
		seen[args[0]] = true
		switch args[0] {
		case "run":
			_, err = parseRun(args[1:], io.Discard)
		case "rfc9411":
			_, err = parseRFC9411(args[1:])
		default:
			t.Fatalf("%s: runs %q", f, args[0])
		}
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
	if !seen["run"] || !seen["rfc9411"] {
		t.Fatalf("manifests run %v: want a run Job and an rfc9411 Job", seen)
	}
}

// manifestArgs are the items of the first container's args list.
func manifestArgs(y string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(y, "\n") {
		tl := strings.TrimSpace(l)
		switch {
		case tl == "args:":
			in = true
		case in && strings.HasPrefix(tl, "- "):
			out = append(out, strings.Trim(strings.TrimPrefix(tl, "- "), `"`))
		case in:
			return out
		}
	}
	return out
}
