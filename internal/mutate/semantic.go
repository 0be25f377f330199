package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A semanticMutant is a hand-written bug of the kind a competent engineer
// writes (the wrong one of two fields, a rare path forgotten, a unit
// error): lines of one file replaced by others. Operator mutants cannot
// make most of these.
type semanticMutant struct {
	file, why  string
	equivalent string // why no test can tell it apart; "" for a real bug
	old, new   []string
	line       int // of the list, for messages
}

// pkg is the package whose tests judge the mutant: the file's directory.
// A C file of the XDP program belongs to its loader's package.
func (m *semanticMutant) pkg() string {
	if d := filepath.Dir(m.file); d != "." {
		return d
	}
	return "."
}

// readSemantic reads the list. Each mutant is a header line
//
//	== file | the bug in words [| equivalent: why]
//
// followed by "- " lines (the original lines, compared without their
// indentation, found exactly once in the file) and "+ " lines (their
// replacement, indented like the first original line). # starts a
// comment outside a mutant.
func readSemantic(r io.Reader, name string) ([]semanticMutant, error) {
	var ms []semanticMutant
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "== "):
			parts := strings.Split(strings.TrimPrefix(line, "== "), " | ")
			if len(parts) < 2 || len(parts) > 3 || strings.TrimSpace(parts[1]) == "" {
				return nil, fmt.Errorf("%s:%d: want \"== file | bug [| equivalent: why]\"", name, n)
			}
			m := semanticMutant{file: strings.TrimSpace(parts[0]), why: strings.TrimSpace(parts[1]), line: n}
			if len(parts) == 3 {
				eq, ok := strings.CutPrefix(strings.TrimSpace(parts[2]), "equivalent:")
				if !ok || strings.TrimSpace(eq) == "" {
					return nil, fmt.Errorf("%s:%d: the third field is \"equivalent: why\"", name, n)
				}
				m.equivalent = strings.TrimSpace(eq)
			}
			ms = append(ms, m)
		case strings.HasPrefix(line, "- ") || line == "-":
			if len(ms) == 0 || len(ms[len(ms)-1].new) > 0 {
				return nil, fmt.Errorf("%s:%d: a \"-\" line belongs after a header and before the \"+\" lines", name, n)
			}
			m := &ms[len(ms)-1]
			m.old = append(m.old, strings.TrimSpace(strings.TrimPrefix(line, "-")))
		case strings.HasPrefix(line, "+ ") || line == "+":
			if len(ms) == 0 || len(ms[len(ms)-1].old) == 0 {
				return nil, fmt.Errorf("%s:%d: a \"+\" line needs the \"-\" lines it replaces", name, n)
			}
			m := &ms[len(ms)-1]
			m.new = append(m.new, strings.TrimPrefix(strings.TrimPrefix(line, "+"), " "))
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		default:
			return nil, fmt.Errorf("%s:%d: not a header, a -/+ line or a comment", name, n)
		}
	}
	for _, m := range ms {
		if len(m.old) == 0 {
			return nil, fmt.Errorf("%s:%d: the mutant changes nothing", name, m.line)
		}
	}
	return ms, sc.Err()
}

// apply is src with the mutant's lines replaced; an error when the
// original lines are not found exactly once (the list has rotted).
func (m *semanticMutant) apply(src []byte) ([]byte, error) {
	lines := strings.Split(string(src), "\n")
	at := -1
	for i := 0; i+len(m.old) <= len(lines); i++ {
		match := true
		for j, o := range m.old {
			if strings.TrimSpace(lines[i+j]) != o {
				match = false
				break
			}
		}
		if match {
			if at >= 0 {
				return nil, fmt.Errorf("%s: the lines of %q are there twice", m.file, m.why)
			}
			at = i
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%s: the lines of %q are not there (changed since it was written?)", m.file, m.why)
	}
	first := lines[at]
	indent := first[:len(first)-len(strings.TrimLeft(first, " \t"))]
	var out []string
	out = append(out, lines[:at]...)
	for _, l := range m.new {
		out = append(out, indent+l)
	}
	out = append(out, lines[at+len(m.old):]...)
	return []byte(strings.Join(out, "\n")), nil
}

// semanticResult is one mutant's verdict: caught (the tests failed or
// timed out), lived, not viable (it did not build) or equivalent.
type semanticResult struct {
	m       *semanticMutant
	verdict string
	detail  string // the first failing test, or the build error
	took    time.Duration
}

// runSemantic applies each mutant in turn to a copy of the module at root,
// runs its package's tests there and restores the file. A mutant of a C
// file regenerates the BPF objects first (and restores them after).
func runSemantic(ctx context.Context, root string, ms []semanticMutant, timeout time.Duration, log io.Writer) ([]semanticResult, error) {
	work, err := os.MkdirTemp("", "xdpconnect-mutate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := copyModule(root, work); err != nil {
		return nil, err
	}
	var res []semanticResult
	for i := range ms {
		m := &ms[i]
		if m.equivalent != "" {
			res = append(res, semanticResult{m: m, verdict: "equivalent", detail: m.equivalent})
			continue
		}
		r, err := runOne(ctx, work, m, timeout)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "%-10s %6.1fs %s: %s", r.verdict, r.took.Seconds(), m.file, m.why)
		if r.detail != "" {
			fmt.Fprintf(log, " [%s]", r.detail)
		}
		fmt.Fprintln(log)
		res = append(res, r)
	}
	return res, nil
}

func runOne(ctx context.Context, work string, m *semanticMutant, timeout time.Duration) (semanticResult, error) {
	path := filepath.Join(work, m.file)
	orig, err := os.ReadFile(path)
	if err != nil {
		return semanticResult{}, err
	}
	mutated, err := m.apply(orig)
	if err != nil {
		return semanticResult{}, err
	}
	var generated map[string][]byte
	if strings.HasSuffix(m.file, ".c") {
		if generated, err = readGenerated(filepath.Join(work, m.pkg())); err != nil {
			return semanticResult{}, err
		}
	}
	defer func() {
		os.WriteFile(path, orig, 0o644)
		for p, b := range generated {
			os.WriteFile(p, b, 0o644)
		}
	}()
	if err := os.WriteFile(path, mutated, 0o644); err != nil {
		return semanticResult{}, err
	}
	start := time.Now()
	if generated != nil {
		gen := exec.CommandContext(ctx, "go", "generate", "./"+m.pkg())
		gen.Dir = work
		if out, err := gen.CombinedOutput(); err != nil {
			return semanticResult{m: m, verdict: "not viable", detail: firstLine(out), took: time.Since(start)}, nil
		}
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, "go", "test", "-count=1", "-failfast", "-timeout", timeout.String(), "./"+m.pkg())
	cmd.Dir = work
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	r := semanticResult{m: m, took: time.Since(start)}
	switch {
	case err == nil:
		r.verdict = "lived"
	case bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")):
		r.verdict, r.detail = "not viable", firstLine(out)
	case tctx.Err() != nil:
		r.verdict, r.detail = "caught", "timed out"
	default:
		r.verdict, r.detail = "caught", failingTest(out)
	}
	return r, ctx.Err()
}

// readGenerated is the package's committed bpf2go output, to restore after
// a mutant of the C program.
func readGenerated(dir string) (map[string][]byte, error) {
	m := map[string][]byte{}
	for _, pat := range []string{"*_bpfel.*", "*_bpfeb.*"} {
		ps, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, p := range ps {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			m[p] = b
		}
	}
	return m, nil
}

// copyModule copies the files git knows of (committed, or new and not
// ignored) from root to dst, so a mutant never touches the checkout.
func copyModule(root, dst string) error {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if err != nil {
			continue // deleted in the work tree
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		p := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func firstLine(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

// failingTest names the first test that failed in go test's output.
func failingTest(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "--- FAIL: "); ok {
			return rest
		}
	}
	if strings.Contains(string(out), "panic:") {
		return "a panic"
	}
	return firstLine(out)
}

// scoreSemantic prints per package the caught share of the mutants that a
// test could catch, then every survivor with its bug; false when a
// package is under min.
func scoreSemantic(w io.Writer, res []semanticResult, min float64) bool {
	type tally struct{ caught, lived, equivalent, notViable int }
	by := map[string]*tally{}
	for _, r := range res {
		p := r.m.pkg()
		if by[p] == nil {
			by[p] = &tally{}
		}
		switch r.verdict {
		case "caught":
			by[p].caught++
		case "lived":
			by[p].lived++
		case "equivalent":
			by[p].equivalent++
		default:
			by[p].notViable++
		}
	}
	ok := true
	for _, p := range slices.Sorted(maps.Keys(by)) {
		t := by[p]
		total := t.caught + t.lived
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(t.caught) / float64(total)
		}
		fmt.Fprintf(w, "%s: semantic score %.1f%% (%d of %d caught); equivalent %d, not viable %d\n", p, pct, t.caught, total, t.equivalent, t.notViable)
		for _, r := range res {
			if r.m.pkg() == p && r.verdict != "caught" {
				fmt.Fprintf(w, "  %-10s %s (list line %d): %s", r.verdict, r.m.file, r.m.line, r.m.why)
				if r.detail != "" {
					fmt.Fprintf(w, " [%s]", r.detail)
				}
				fmt.Fprintln(w)
			}
		}
		if pct < min || t.notViable > 0 {
			ok = false // a mutant that does not build is a list to mend
		}
	}
	return ok
}
