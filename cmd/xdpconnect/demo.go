package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/xdpconnect/xdpconnect"
	"github.com/xdpconnect/xdpconnect/fastpath"
	"github.com/xdpconnect/xdpconnect/internal/lab"
)

// cmdDemo builds a lab, runs a few seconds of load at full speed against the
// Linux listener, prints the report and the listener's accept count, and
// removes the lab.
func cmdDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dur := fs.Duration("duration", 3*time.Second, "load duration")
	closeMode := fs.String("close", "rst", "close mode: rst, fin, hold")
	rate := fs.Float64("rate", 0, "attempts per second (0: as fast as possible)")
	router := fs.Bool("router", false, "reach the server through a router namespace")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	mode, err := fastpath.ParseCloseMode(*closeMode)
	if err != nil {
		return err
	}
	fmt.Println("== creating the lab (client and server network namespaces, veth, Linux listener on :8080)")
	l, err := lab.Up(lab.Options{Name: fmt.Sprintf("demo%d", os.Getpid()), Router: *router, ListenPorts: []int{8080}, Hold: mode == fastpath.CloseHold})
	if err != nil {
		return err
	}
	defer func() {
		_ = l.Close()
		fmt.Println("== lab removed")
	}()
	fmt.Print(l.String())
	o := &runOpts{progress: time.Second, opts: xdpconnect.DefaultOptions(), plan: xdpconnect.DefaultPlan()}
	o.opts.Netns = l.ClientNS
	o.opts.Targets = []netip.AddrPort{netip.AddrPortFrom(l.ServerAddr, 8080)}
	o.plan.Duration, o.plan.Rate, o.plan.Close, o.plan.Drain = *dur, *rate, mode, 3*time.Second
	fmt.Printf("== xdpconnect run --netns %s --dst %s:8080 --duration %s --close %s\n", l.ClientNS, l.ServerAddr, *dur, mode)
	r, err := execute(context.Background(), o, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	// The listener's accept loop shares the two cores: let it catch up.
	acc := l.Listener.WaitAccepted(r.Established, 500*time.Millisecond, 10*time.Second)
	fmt.Printf("== Linux listener accepted %d connections (xdpconnect established %d)\n", acc, r.Established)
	if ns, err := lab.NetStat(l.ServerNS); err == nil && (ns["ListenOverflows"] > 0 || ns["ListenDrops"] > 0) {
		fmt.Printf("   server accept queue overflows %d, listen drops %d\n", ns["ListenOverflows"], ns["ListenDrops"])
	}
	if r.Established == 0 {
		return errors.New("demo: nothing was established")
	}
	return nil
}
