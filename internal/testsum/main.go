// Command testsum reads `go test -json` on stdin and prints what a person
// needs of it: each package's result line as go test prints it, the whole
// output of every failed test, every skipped test with its reason, and a
// closing line "N passed, N failed, N skipped". It exits 1 when a test or
// a package failed, so `make test` fails with it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// event is one line of test2json.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	out := map[string][]string{} // output by package/test, kept until the test ends
	var skips []string
	passed, failed, skipped := 0, 0, 0
	pkgFailed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text()) // not an event: the build's own words
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			out[key] = append(out[key], e.Output)
			if e.Test == "" && (strings.HasPrefix(e.Output, "ok ") || strings.HasPrefix(e.Output, "FAIL") || strings.HasPrefix(e.Output, "?")) {
				fmt.Print(e.Output)
			}
		case "pass":
			if e.Test != "" && !strings.Contains(e.Test, "/") {
				passed++
			}
			delete(out, key)
		case "skip":
			if e.Test != "" {
				skipped++
				skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason(out[key])))
			}
			delete(out, key)
		case "fail":
			if e.Test == "" {
				pkgFailed = true
				// A package that failed outside its tests (a build error,
				// a panic in init, a timeout): its output says why.
				fmt.Print(strings.Join(out[key], ""))
			} else {
				// A subtest's own output says why; its parent's failure
				// is counted once.
				if !strings.Contains(e.Test, "/") {
					failed++
				}
				fmt.Printf("--- FAIL: %s %s\n%s", e.Package, e.Test, strings.Join(out[key], ""))
			}
			delete(out, key)
		}
	}
	if len(skips) > 0 {
		sort.Strings(skips)
		fmt.Printf("skipped (%d):\n", len(skips))
		for _, s := range skips {
			fmt.Println("  " + s)
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || pkgFailed {
		os.Exit(1)
	}
}

// reason is the last line a skipped test wrote before "--- SKIP".
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "--- SKIP") && !strings.HasPrefix(l, "=== ") {
			return l
		}
	}
	return "(no reason given)"
}
