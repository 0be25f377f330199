// Command mutate scores a mutation run: it reads the JSON reports that
// gremlins (github.com/go-gremlins/gremlins) writes for each package, takes
// out the mutants listed as equivalent (with the reason), and prints per
// package the score (mutants caught over mutants that a test could catch)
// and every survivor with its source line. It exits 1 when a package
// scores under -min. `make mutate` runs it.
//
// A mutant is caught when the package's tests fail (KILLED) or hang
// (TIMED OUT) with it; it survives when they pass (LIVED) or never run the
// mutated line (NOT COVERED). Mutants that do not compile (NOT VIABLE)
// are not counted.
//
// With -semantic it also applies the hand-written bugs of a list (see
// readSemantic) one at a time to a copy of the module, runs the package's
// tests on each and scores them the same way.
//
// Usage: mutate [-min 90] [-equivalents file] [-semantic list [-only pkg,...]] [pkgdir=report.json ...]
//
// A package named twice takes each file's results from the last report
// that has the file.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

type report struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// key identifies a mutant independently of line numbers, so the list of
// equivalents survives edits elsewhere in the file: the file, the
// operator, the mutated line's text without indentation and the column
// within that text.
type key struct {
	file, typ, text string
	col             int
}

type mutant struct {
	key
	line    int
	status  string
	isConst bool // in a constant declaration
	isCase  bool // in a switch case's expression
}

func main() {
	minScore := flag.Float64("min", 90, "lowest acceptable score per package, in percent")
	eqFile := flag.String("equivalents", "", "file of equivalent mutants: file | operator | line text | column | reason")
	semFile := flag.String("semantic", "", "list of hand-written mutants to apply and score")
	only := flag.String("only", "", "with -semantic: the packages (directories) whose mutants to run, comma-separated")
	timeout := flag.Duration("timeout", 10*time.Minute, "with -semantic: a package's test time limit under one mutant")
	check := flag.Bool("check", false, "with -semantic: only check that every mutant's lines are found once, run no test")
	flag.Parse()
	ok := true
	if *semFile != "" {
		if !semantic(*semFile, *only, *timeout, *minScore, *check) {
			ok = false
		}
	}
	eq := map[key]string{}
	if *eqFile != "" {
		var err error
		if eq, err = readEquivalents(*eqFile); err != nil {
			fatal(err)
		}
	}
	used := map[key]bool{}
	var dirs []string
	byDir := map[string]map[string][]mutant{} // dir -> file -> mutants
	for _, arg := range flag.Args() {
		dir, path, found := strings.Cut(arg, "=")
		if !found {
			fmt.Fprintln(os.Stderr, "mutate: arguments are pkgdir=report.json")
			os.Exit(2)
		}
		ms, err := load(dir, path)
		if err != nil {
			fatal(err)
		}
		if byDir[dir] == nil {
			byDir[dir] = map[string][]mutant{}
			dirs = append(dirs, dir)
		}
		// A later report of the same package replaces the files it covers
		// (a run over some files after a fix).
		files := map[string][]mutant{}
		for _, m := range ms {
			files[m.file] = append(files[m.file], m)
		}
		for f, fm := range files {
			byDir[dir][f] = fm
		}
	}
	for i, dir := range dirs {
		var ms []mutant
		for _, fm := range byDir[dir] {
			ms = append(ms, fm...)
		}
		if !score(os.Stdout, dir, ms, eq, used, *minScore) {
			ok = false
		}
		dirs[i] = dir + "/"
	}
	for k, why := range eq {
		for _, d := range dirs {
			if !used[k] && strings.HasPrefix(k.file, d) {
				fmt.Printf("note: listed as equivalent but not a survivor now (remove it): %s %s %q col %d (%s)\n", k.file, k.typ, k.text, k.col, why)
			}
		}
	}
	if !ok {
		os.Exit(1)
	}
}

func load(dir, path string) ([]mutant, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var ms []mutant
	for _, f := range r.Files {
		file := filepath.ToSlash(filepath.Join(dir, f.Name))
		lines, err := readLines(file)
		if err != nil {
			return nil, err
		}
		consts := constLines(lines)
		for _, m := range f.Mutations {
			text, col := "", m.Column
			if m.Line >= 1 && m.Line <= len(lines) {
				raw := lines[m.Line-1]
				text = strings.TrimLeft(raw, " \t")
				col -= len(raw) - len(text)
			}
			text = strings.TrimSpace(text)
			ms = append(ms, mutant{key: key{file, m.Type, text, col}, line: m.Line, status: m.Status, isConst: consts[m.Line],
				isCase: strings.HasPrefix(text, "case ")})
		}
	}
	return ms, nil
}

// constLines marks the lines (1-based) of constant declarations: a
// single-line const and the lines of a const ( ... ) block.
func constLines(lines []string) map[int]bool {
	m := map[int]bool{}
	in := false
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "const ("):
			in = true
		case in && strings.HasPrefix(l, ")"):
			in = false
		case in || strings.HasPrefix(l, "const "):
			m[i+1] = true
		}
	}
	return m
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(b), "\n"), nil
}

// score prints one package's figures and survivors; false when it is
// under min.
func score(w io.Writer, dir string, ms []mutant, eq map[key]string, used map[key]bool, min float64) bool {
	counts := map[string]int{}
	var survivors []mutant
	equivalent, constants := 0, 0
	var cases []mutant
	skipped := 0
	for _, m := range ms {
		if m.status == "SKIPPED" {
			// Outside the lines a --diff run mutates (make mutate
			// MUTATE_DIFF=REF): neither caught nor missed, and an
			// equivalent listed there is not stale.
			if _, isEq := eq[m.key]; isEq {
				used[m.key] = true
			}
			skipped++
			continue
		}
		if m.status == "NOT COVERED" && m.isConst {
			// gremlins mutates constant declarations but never runs them
			// (a declaration has no coverage block): not a test's miss.
			constants++
			continue
		}
		if m.status == "NOT COVERED" && m.isCase {
			// Nor a case's expression: Go's coverage blocks start after
			// the colon, so gremlins calls it not covered whatever the
			// tests run. Listed below; the semantic list checks them.
			cases = append(cases, m)
			continue
		}
		if _, isEq := eq[m.key]; isEq && (m.status == "LIVED" || m.status == "NOT COVERED") {
			used[m.key] = true
			equivalent++
			continue
		}
		counts[m.status]++
		if m.status == "LIVED" || m.status == "NOT COVERED" {
			survivors = append(survivors, m)
		}
	}
	caught := counts["KILLED"] + counts["TIMED OUT"]
	total := caught + len(survivors)
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(caught) / float64(total)
	}
	fmt.Fprintf(w, "%s: score %.1f%% (%d of %d caught): killed %d, timed out %d, lived %d, not covered %d; equivalent %d, not viable %d, constants not run %d, case expressions not run %d",
		dir, pct, caught, total, counts["KILLED"], counts["TIMED OUT"], counts["LIVED"], counts["NOT COVERED"], equivalent, counts["NOT VIABLE"], constants, len(cases))
	if skipped > 0 {
		fmt.Fprintf(w, "; %d outside the diff", skipped)
	}
	fmt.Fprintln(w)
	sort.Slice(survivors, func(i, j int) bool {
		if survivors[i].file != survivors[j].file {
			return survivors[i].file < survivors[j].file
		}
		return survivors[i].line < survivors[j].line
	})
	for _, m := range survivors {
		fmt.Fprintf(w, "  %-11s %s:%d:%d %s  %s\n", m.status, m.file, m.line, m.col, m.typ, m.text)
	}
	for _, m := range cases {
		fmt.Fprintf(w, "  %-11s %s:%d:%d %s  %s\n", "NOT RUN", m.file, m.line, m.col, m.typ, m.text)
	}
	return pct >= min
}

// readEquivalents reads lines "file | operator | line text | column |
// reason"; # starts a comment.
func readEquivalents(path string) (map[key]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	eq := map[key]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, " | ")
		if len(parts) != 5 {
			return nil, fmt.Errorf("%s:%d: want 5 fields separated by \" | \"", path, n)
		}
		col, err := strconv.Atoi(parts[3])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: column: %w", path, n, err)
		}
		if strings.TrimSpace(parts[4]) == "" {
			return nil, fmt.Errorf("%s:%d: an equivalent mutant needs its reason", path, n)
		}
		eq[key{parts[0], parts[1], parts[2], col}] = parts[4]
	}
	return eq, sc.Err()
}

// semantic runs and scores the hand-written mutants of the list at path.
func semantic(path, only string, timeout time.Duration, min float64, check bool) bool {
	f, err := os.Open(path)
	if err != nil {
		fatal(err)
	}
	ms, err := readSemantic(f, path)
	f.Close()
	if err != nil {
		fatal(err)
	}
	if only != "" {
		keep := strings.Split(only, ",")
		ms = slices.DeleteFunc(ms, func(m semanticMutant) bool { return !slices.Contains(keep, m.pkg()) })
	}
	root, err := os.Getwd()
	if err != nil {
		fatal(err)
	}
	if check {
		ok := true
		for i := range ms {
			src, err := os.ReadFile(filepath.Join(root, ms[i].file))
			if err == nil {
				_, err = ms[i].apply(src)
			}
			if err != nil {
				fmt.Println(err)
				ok = false
			}
		}
		fmt.Printf("%d mutants checked\n", len(ms))
		return ok
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := runSemantic(ctx, root, ms, timeout, os.Stdout)
	if err != nil {
		fatal(err)
	}
	return scoreSemantic(os.Stdout, res, min)
}

// fatal ends the run on an error of its inputs (exit 2: not a score).
func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutate:", err)
	os.Exit(2)
}
