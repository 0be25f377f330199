package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The score counts killed and timed-out mutants as caught, lived and not
// covered as survivors, leaves out listed equivalents and constants, and
// a later report of a package replaces the files it covers.
func TestScore(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "p")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package p\n\nconst (\n\tn = 1 + 2\n)\n\nfunc f(a int) bool {\n\treturn a > 0\n}\n\nfunc g(a int) int { return a + 1 }\n"
	if err := os.WriteFile(filepath.Join(pkg, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := write("a.json", `{"files":[{"file_name":"p.go","mutations":[
		{"type":"ARITHMETIC_BASE","status":"NOT COVERED","line":4,"column":8},
		{"type":"CONDITIONALS_BOUNDARY","status":"LIVED","line":8,"column":11},
		{"type":"CONDITIONALS_NEGATION","status":"KILLED","line":8,"column":11},
		{"type":"ARITHMETIC_BASE","status":"LIVED","line":11,"column":30},
		{"type":"ARITHMETIC_BASE","status":"TIMED OUT","line":11,"column":30},
		{"type":"ARITHMETIC_BASE","status":"NOT VIABLE","line":11,"column":30}]}]}`)
	eqFile := write("eq.txt", "# comment\np/p.go | CONDITIONALS_BOUNDARY | return a > 0 | 10 | a is never 0 here\n")
	eq, err := readEquivalents(eqFile)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := load(pkg, first)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ms {
		ms[i].file = strings.TrimPrefix(ms[i].file, dir+"/")
	}
	var out bytes.Buffer
	if ok := score(&out, "p", ms, eq, map[key]bool{}, 70); ok {
		t.Errorf("2 of 3 caught passed a 70 %% bar:\n%s", out.String())
	}
	head := strings.SplitN(out.String(), "\n", 2)[0]
	for _, want := range []string{"score 66.7% (2 of 3 caught)", "killed 1, timed out 1, lived 1, not covered 0", "equivalent 1, not viable 1, constants not run 1"} {
		if !strings.Contains(head, want) {
			t.Errorf("summary %q lacks %q", head, want)
		}
	}
	if !strings.Contains(out.String(), "LIVED       p/p.go:11:30 ARITHMETIC_BASE  func g(a int) int { return a + 1 }") {
		t.Errorf("survivor not listed with its line:\n%s", out.String())
	}
	if _, err := readEquivalents(write("bad.txt", "p/p.go | X | y | 3 |  \n")); err == nil {
		t.Error("an equivalent without a reason accepted")
	}
}
