package metrics_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/xdpconnect/xdpconnect/metrics"
	"github.com/xdpconnect/xdpconnect/xsk"
)

// The recording rules and the Grafana dashboard in deploy/ use only
// metrics the collector exports (a renamed metric would leave a dashboard
// silently empty), and promtool accepts the rules and the scrape config.
func TestDeployFiles(t *testing.T) {
	reg, err := metrics.NewRegistry(metrics.Sources{Engine: engine(t), Sockets: []*xsk.Socket{}, XDP: func() ([]metrics.XDPCounter, error) {
		return []metrics.XDPCounter{{Action: "redirect", Reason: "redirect_tcp", Value: 1}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		exported[n] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			exported[n+suffix] = true
		}
	}
	name := regexp.MustCompile(`xdpconnect_[a-z0-9_]+`)
	for _, f := range []string{"../deploy/xdpconnect.rules.yml", "../deploy/grafana-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		used := name.FindAllString(string(b), -1)
		if len(used) == 0 {
			t.Fatalf("%s uses no xdpconnect metric", f)
		}
		for _, m := range used {
			// The xsk_* series exist per socket; a registry without
			// sockets does not export them.
			if !exported[m] && !strings.HasPrefix(m, "xdpconnect_xsk_") {
				t.Errorf("%s uses %s, which the collector does not export", f, m)
			}
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed: .ci/run must install prometheus")
		}
		t.Skip("needs promtool (apt-get install prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "../deploy/xdpconnect.rules.yml"}, {"check", "config", "../deploy/prometheus.yml"}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
