package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"

	"github.com/xdpconnect/xdpconnect"
)

// cmdDoctor prints xdpconnect.Doctor's checks, line by line, and fails
// when any check fails.
func cmdDoctor(args []string) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	iface := fs.String("iface", "", "interface to check (default: the route's to --dst)")
	dst := fs.String("dst", "", "target IP:PORT: checks the route and the neighbour too")
	ns := fs.String("netns", "", "check inside this named network namespace")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("doctor: unexpected argument %q", fs.Arg(0))
	}
	if *iface == "" && *dst == "" {
		return usageError("doctor needs --iface IF or --dst IP:PORT")
	}
	var target netip.AddrPort
	if *dst != "" {
		d, err := parseTargets(*dst)
		if err != nil {
			return usageErr{err.Error()}
		}
		if len(d) != 1 {
			return usageError("doctor: --dst %s names %d targets: give one", *dst, len(d))
		}
		target = d[0]
	}
	checks, err := xdpconnect.Doctor(context.Background(), *iface, target, *ns)
	if err != nil {
		return err
	}
	failed := 0
	for _, c := range checks {
		fmt.Println(c)
		if c.Status == "FAIL" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", failed)
	}
	return nil
}
