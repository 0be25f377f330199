// Command xdpconnect-bench is the benchmark harness: it runs the xdpconnect
// binary (the tool under test) and its peers (Go dialer, C epoll, masscan,
// zmap, asavie/xdp) in the same lab, and writes the result tables and plots.
// It is a binary of its own so that the product links none of it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/xdpconnect/xdpconnect/bench"
)

func main() {
	var err error
	args := os.Args[1:]
	switch {
	case len(args) > 0 && args[0] == "baseline-go":
		err = cmdBaselineGo(args[1:])
	case len(args) > 0 && args[0] == "bench-xsk":
		err = cmdBenchXSK(args[1:])
	case len(args) > 0 && args[0] == "tcpinfo-rtt":
		err = cmdTCPInfoRTT(args[1:])
	case len(args) > 0 && args[0] == "tls-ceiling":
		err = cmdTLSCeiling(args[1:])
	default:
		err = cmdBench(args)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpconnect-bench: %v\n", err)
		os.Exit(1)
	}
}

// toolPath finds the xdpconnect binary under test: --tool, else the one
// next to this binary, else the one on PATH.
func toolPath(flagValue, self string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if p := filepath.Join(filepath.Dir(self), "xdpconnect"); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath("xdpconnect"); err == nil {
		return p, nil
	}
	return "", errors.New("xdpconnect binary not found: build it (make build) and give --tool bin/xdpconnect")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// cmdBench runs the benchmark harness and prints the table.
func cmdBench(args []string) error {
	fs := flag.NewFlagSet("xdpconnect-bench", flag.ContinueOnError)
	tool := fs.String("tool", "", "the xdpconnect binary under test (default: next to this binary, else on PATH)")
	runs := fs.Int("runs", 3, "runs per tool; the median is reported")
	dur := fs.Duration("duration", 5*time.Second, "duration of each run")
	sc := fs.String("scenario", strings.Join(bench.DefaultScenarios, ","), "comma-separated scenarios: "+strings.Join(bench.DefaultScenarios, ", ")+", soak")
	out := fs.String("out", "bench/results", "directory for results.json and results.md")
	hold := fs.Int("hold", 1000000, "connections held by the hold-memory scenario (a multiple of 62,500 uses every table slot)")
	soak := fs.Duration("soak-duration", 10*time.Minute, "length of the soak scenario")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	exe, err := toolPath(*tool, self)
	if err != nil {
		return err
	}
	start := time.Now()
	rows, err := bench.Run(bench.Options{Tool: exe, Self: self, Runs: *runs, Duration: *dur, Scenarios: strings.Split(*sc, ","),
		OutDir: *out, Log: os.Stderr, HoldConns: *hold, Soak: *soak})
	if len(rows) > 0 {
		fmt.Print(bench.Markdown(rows))
		if h := bench.HTTPMarkdown(rows); strings.Count(h, "\n") > 2 {
			fmt.Print("\n" + h)
		}
		if werr := bench.Write(*out, rows); werr != nil {
			return werr
		}
		fmt.Printf("\n%d rows in %s; results in %s/results.{json,md}\n", len(rows), time.Since(start).Round(time.Second), *out)
	}
	return err
}

// cmdBaselineGo is the Go net.Dialer baseline the harness runs in the
// client namespace.
func cmdBaselineGo(args []string) error {
	fs := flag.NewFlagSet("baseline-go", flag.ContinueOnError)
	dst := fs.String("dst", "", "IP:PORT")
	conns := fs.Int("conns", 256, "goroutines")
	dur := fs.Duration("duration", 5*time.Second, "duration")
	path := fs.String("http", "", "GET this path on each connection (net/http, keep-alive off)")
	version := fs.String("tls", "", "crypto/tls instead: this version (1.2 or 1.3), a GET / with Connection: close on each connection")
	resume := fs.Bool("tls-resume", false, "with --tls: resume sessions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version != "" {
		return bench.GoTLS(*dst, *conns, *dur, *version, *resume, os.Stdout)
	}
	return bench.GoDial(*dst, *conns, *dur, *path, os.Stdout)
}

// cmdTLSCeiling prints crypto/tls's in-memory handshakes per second.
func cmdTLSCeiling(args []string) error {
	fs := flag.NewFlagSet("tls-ceiling", flag.ContinueOnError)
	kind := fs.String("cert", "ecdsa", "server certificate: ecdsa (P-256) or rsa (2048)")
	version := fs.String("tls", "1.3", "version: 1.2 or 1.3")
	dur := fs.Duration("duration", 5*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := bench.TLSCeiling(*kind, *version, *dur)
	if err != nil {
		return err
	}
	fmt.Printf("%.0f\n", v)
	return nil
}

// cmdBenchXSK is one measurement of the xsk scenario, in its own process.
func cmdBenchXSK(args []string) error {
	fs := flag.NewFlagSet("bench-xsk", flag.ContinueOnError)
	lib := fs.String("lib", "ours", "ours or asavie")
	mode := fs.String("mode", "tx", "tx or rx")
	ns := fs.String("netns", "", "namespace")
	ifindex := fs.Int("ifindex", 0, "interface index")
	dur := fs.Duration("duration", 5*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := bench.XSKChild(*lib, *mode, *ns, *ifindex, *dur)
	if err != nil {
		return err
	}
	fmt.Printf("%.0f\n", v)
	return nil
}

// cmdTCPInfoRTT is the rtt scenario's kernel client: n connect()s one
// after the other, each one's tcpi_rtt printed.
func cmdTCPInfoRTT(args []string) error {
	fs := flag.NewFlagSet("tcpinfo-rtt", flag.ContinueOnError)
	dst := fs.String("dst", "", "IP:PORT")
	n := fs.Int("count", 2000, "connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.TCPInfoRTT(*dst, *n, os.Stdout)
}
