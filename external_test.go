package xdpconnect_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpconnect/xdpconnect/internal/lab"
	"github.com/xdpconnect/xdpconnect/internal/testutil"
)

// readmePrograms are the complete Go programs in the README (```go blocks
// that start with "package main").
func readmePrograms(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if !strings.HasPrefix(m[1], "package main\n") {
			t.Fatalf("a Go snippet in the README is not a whole program (package main): every snippet is compiled and run:\n%s", m[1])
		}
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("no Go program in the README")
	}
	return out
}

// Every Go program in the README is built as a module of its own (the
// library through a replace directive, so only the public API is there to
// use), imports nothing of this module but the root package, and runs
// against a lab: the README's namespace and target are this lab's, and
// what its "// want:" comment says it prints, it prints.
func TestREADMEPrograms(t *testing.T) {
	testutil.RequirePrivileges(t)
	if testing.Short() {
		t.Skip("builds separate modules")
	}
	progs := readmePrograms(t)
	l := testutil.NewLab(t, lab.Options{ListenPorts: []int{8080}})
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`// want: (.*)`)
	for i, src := range progs {
		f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("program %d: %v", i+1, err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/xdpconnect/xdpconnect/") {
				t.Fatalf("program %d imports %s: a user needs the root package only", i+1, p)
			}
		}
		w := want.FindStringSubmatch(src)
		if w == nil {
			t.Fatalf("program %d has no // want: line", i+1)
		}
		if l.ServerAddr.String() != "198.18.0.2" {
			t.Fatalf("the lab's server is %s, the README's 198.18.0.2", l.ServerAddr)
		}
		src = strings.ReplaceAll(src, `"xdc-lab-cli"`, strconv.Quote(l.ClientNS))
		dir := t.TempDir()
		gomod := "module example.com/readme\n\ngo 1.26\n\nrequire github.com/xdpconnect/xdpconnect v0.0.0\n\nreplace github.com/xdpconnect/xdpconnect => " + repo + "\n"
		for name, body := range map[string]string{"go.mod": gomod, "go.sum": string(sum), "main.go": src} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		build := exec.Command("go", "build", "-o", "prog", ".")
		build.Dir = dir
		build.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("program %d does not build: %v\n%s", i+1, err, out)
		}
		before := l.Listener.Accepted()
		out, err := exec.Command(filepath.Join(dir, "prog")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), w[1]) {
			t.Fatalf("program %d: %v, printed %q, want %q", i+1, err, out, w[1])
		}
		if l.Listener.WaitAccepted(before+1, 200*time.Millisecond, 5*time.Second) <= before {
			t.Fatalf("program %d: the listener accepted nothing", i+1)
		}
		t.Logf("program %d: %s", i+1, strings.TrimSpace(string(out)))
	}
}
