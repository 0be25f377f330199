package arch

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const mod = "github.com/xdpconnect/xdpconnect/"

// rule is one row of docs/architecture.md's import table.
type rule struct {
	allowed   []string // module packages by path, other modules by prefix
	forbidden []string // standard packages the package may not use
}

var code = regexp.MustCompile("`([^`]+)`")

// readTable parses the table under "Packages and who may import whom":
// | `pkg` | owns | `imp` `imp` ... | `std` ... |
func readTable(t *testing.T) map[string]rule {
	f, err := os.Open("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules := map[string]rule{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.Contains(line, "who may import whom")
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 6 {
			t.Fatalf("table row with %d cells: %s", len(cells), line)
		}
		name := code.FindStringSubmatch(cells[1])[1]
		var r rule
		for _, m := range code.FindAllStringSubmatch(cells[3], -1) {
			imp := m[1]
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				imp = mod + imp // a package of this module
			}
			r.allowed = append(r.allowed, imp)
		}
		for _, m := range code.FindAllStringSubmatch(cells[4], -1) {
			r.forbidden = append(r.forbidden, m[1])
		}
		rules[name] = r
	}
	if len(rules) == 0 {
		t.Fatal("no import table found in docs/architecture.md")
	}
	return rules
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// TestImportBoundaries checks every package of the table against the
// imports Go reports, and that every library package has a row.
func TestImportBoundaries(t *testing.T) {
	rules := readTable(t)
	out, err := exec.Command("go", "list", "-json", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, mod)
		if p.ImportPath+"/" == mod {
			rel = "xdpconnect"
		}
		r, ok := rules[rel]
		if !ok {
			switch {
			case strings.HasPrefix(rel, "cmd/"), strings.HasPrefix(rel, "bench"), rel == "internal/arch", rel == "internal/testutil":
				continue // the tools and test helpers sit on top
			}
			t.Errorf("package %s has no row in docs/architecture.md", rel)
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				for _, f := range r.forbidden {
					if imp == f {
						t.Errorf("%s imports %s, which docs/architecture.md forbids", rel, imp)
					}
				}
				continue
			}
			allowed := false
			for _, a := range r.allowed {
				if imp == a || strings.HasPrefix(imp, a+"/") || strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a) {
					allowed = true
				}
			}
			if !allowed {
				t.Errorf("%s imports %s: not allowed by docs/architecture.md", rel, imp)
			}
		}
	}
	if seen != len(rules) {
		t.Fatalf("checked %d packages, the table has %d rows", seen, len(rules))
	}
}

// The product binary links neither the benchmark harness nor what only the
// harness needs (asavie/xdp, gonum/plot): those are cmd/xdpconnect-bench's.
func TestProductDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", mod+"cmd/xdpconnect").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, dep := range strings.Fields(string(out)) {
		n++
		if strings.HasPrefix(dep, mod+"bench") || strings.Contains(dep, "asavie") || strings.Contains(dep, "gonum") {
			t.Errorf("cmd/xdpconnect depends on %s", dep)
		}
	}
	if n < 10 {
		t.Fatalf("go list -deps listed %d packages", n)
	}
}
