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
	src := "package p\n\nconst (\n\tn = 1 + 2\n)\n\nfunc f(a int) bool {\n\treturn a > 0\n}\n\nfunc g(a int) int { return a + 1 }\n\nfunc h(a int) int {\n\tswitch {\n\tcase a > 1:\n\t\treturn 1\n\t}\n\treturn 0\n}\n"
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
		{"type":"ARITHMETIC_BASE","status":"NOT VIABLE","line":11,"column":30},
		{"type":"CONDITIONALS_BOUNDARY","status":"NOT COVERED","line":15,"column":9}]}]}`)
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
	for _, want := range []string{"score 66.7% (2 of 3 caught)", "killed 1, timed out 1, lived 1, not covered 0", "equivalent 1, not viable 1, constants not run 1, case expressions not run 1"} {
		if !strings.Contains(head, want) {
			t.Errorf("summary %q lacks %q", head, want)
		}
	}
	if !strings.Contains(out.String(), "LIVED       p/p.go:11:30 ARITHMETIC_BASE  func g(a int) int { return a + 1 }") {
		t.Errorf("survivor not listed with its line:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "NOT RUN     p/p.go:15:8 CONDITIONALS_BOUNDARY  case a > 1:") {
		t.Errorf("case expression not listed:\n%s", out.String())
	}
	if _, err := readEquivalents(write("bad.txt", "p/p.go | X | y | 3 |  \n")); err == nil {
		t.Error("an equivalent without a reason accepted")
	}
	// A run over the lines changed since a commit (--diff): the mutants
	// outside them are SKIPPED, neither caught nor missed, and a listed
	// equivalent among them is not stale.
	diffRun := write("d.json", `{"files":[{"file_name":"p.go","mutations":[
		{"type":"CONDITIONALS_BOUNDARY","status":"SKIPPED","line":8,"column":11},
		{"type":"CONDITIONALS_NEGATION","status":"KILLED","line":8,"column":11},
		{"type":"ARITHMETIC_BASE","status":"SKIPPED","line":11,"column":30}]}]}`)
	if ms, err = load(pkg, diffRun); err != nil {
		t.Fatal(err)
	}
	for i := range ms {
		ms[i].file = strings.TrimPrefix(ms[i].file, dir+"/")
	}
	out.Reset()
	used := map[key]bool{}
	if ok := score(&out, "p", ms, eq, used, 90); !ok || len(used) != 1 ||
		!strings.Contains(out.String(), "score 100.0% (1 of 1 caught)") || !strings.Contains(out.String(), "; 2 outside the diff") {
		t.Errorf("a diff run: ok %v, equivalents used %v:\n%s", ok, used, out.String())
	}
}

// A semantic mutant replaces lines found once, whatever their indentation,
// keeps the first line's indentation, and refuses lines found twice or
// not at all; the score leaves out equivalents and fails on a mutant that
// does not build.
func TestSemantic(t *testing.T) {
	list := `# tcp
== p/p.go | the wrong field
- return a.x
+ return a.y
== p/p.go | two lines into one
- if a.ok {
- n++
+ n += 2
== p/p.go | same thing | equivalent: a never holds it
- return a.x
+ return a.x
`
	ms, err := readSemantic(strings.NewReader(list), "list")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[1].line != 5 || ms[2].equivalent != "a never holds it" || len(ms[1].old) != 2 || ms[1].new[0] != "n += 2" {
		t.Fatalf("read %+v", ms)
	}
	src := "func f() {\n\t\tif a.ok {\n\t\t\tn++\n\t\t}\n\treturn a.x\n}\n"
	got, err := ms[1].apply([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := "func f() {\n\t\tn += 2\n\t\t}\n\treturn a.x\n}\n"; string(got) != want {
		t.Errorf("applied:\n%q\nwant\n%q", got, want)
	}
	if _, err := ms[0].apply([]byte(src + src)); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("lines found twice: %v", err)
	}
	if _, err := ms[0].apply([]byte("return a.z\n")); err == nil || !strings.Contains(err.Error(), "not there") {
		t.Errorf("lines not found: %v", err)
	}
	for _, bad := range []string{"== p.go\n- a\n+ b\n", "== p.go | x | why\n- a\n", "- a\n+ b\n", "== p.go | x\n+ b\n", "== p.go | x\n"} {
		if _, err := readSemantic(strings.NewReader(bad), "bad"); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	res := []semanticResult{{m: &ms[0], verdict: "caught"}, {m: &ms[1], verdict: "lived"}, {m: &ms[2], verdict: "equivalent"}}
	var out bytes.Buffer
	if scoreSemantic(&out, res, 50) != true {
		t.Errorf("1 of 2 failed a 50 %% bar:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "p: semantic score 50.0% (1 of 2 caught); equivalent 1, not viable 0") ||
		!strings.Contains(out.String(), "lived      p/p.go (list line 5): two lines into one") {
		t.Errorf("score:\n%s", out.String())
	}
	res[0].verdict = "not viable"
	if scoreSemantic(&out, res, 0) {
		t.Error("a mutant that does not build passed")
	}
}
