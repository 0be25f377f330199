package arch

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/xdpconnect/xdpconnect/"

// allowed lists, per package, the non-standard imports it may have
// (prefixes). Standard library imports are always allowed, except the ones
// in forbiddenStd.
var allowed = map[string][]string{
	"tcp":             {},
	"xsk":             {"golang.org/x/sys/unix"},
	"route":           {"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "golang.org/x/sys/unix"},
	"bpf":             {"github.com/cilium/ebpf", "golang.org/x/sys/unix"},
	"fastpath":        {mod + "tcp", mod + "xsk", mod + "internal/cpu"},
	"metrics":         {mod + "fastpath", mod + "xsk", mod + "tcp", "github.com/prometheus/"},
	"internal/lab":    {"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "golang.org/x/sys/unix", mod + "internal/netdev"},
	"internal/netdev": {"github.com/vishvananda/netlink", "golang.org/x/sys/unix"},
	"internal/cpu":    {"golang.org/x/sys/unix"},
}

// forbiddenStd: packages that may not use these standard packages.
var forbiddenStd = map[string][]string{
	"tcp":      {"unsafe", "time", "math/rand", "crypto/rand", "net", "os", "syscall/js", "sync"},
	"fastpath": {"unsafe"},
	"metrics":  {"unsafe"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

func TestImportBoundaries(t *testing.T) {
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
		rules, ok := allowed[rel]
		if !ok {
			continue
		}
		seen++
		for _, imp := range p.Imports {
			std := !strings.Contains(strings.Split(imp, "/")[0], ".")
			if std {
				for _, f := range forbiddenStd[rel] {
					if imp == f {
						t.Errorf("%s imports %s", rel, imp)
					}
				}
				continue
			}
			ok := false
			for _, a := range rules {
				if strings.HasPrefix(imp, a) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: not allowed by DESIGN.md", rel, imp)
			}
		}
	}
	if seen != len(allowed) {
		t.Fatalf("checked %d packages, expected %d", seen, len(allowed))
	}
}
