// Command xdpconnect is a kernel-bypass TCP connection load generator: it
// opens TCP connections through AF_XDP with the Linux connect() semantics,
// at rates a kernel connect() loop cannot reach, and reports connections per
// second, errors by errno and handshake latency.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/xdpconnect/xdpconnect"
)

const usage = `xdpconnect: kernel-bypass TCP connection load generator

usage:
  xdpconnect run    --dst IP:PORT [flags]   open connections and report (see run -h)
  xdpconnect doctor --dst IP:PORT | --iface IF
                                            check what a run depends on, with fixes
  xdpconnect merge  REPORT.json ...          merge the JSON reports of a run's shards (--json FILE)
  xdpconnect rfc9411 cps|tps|latency|concurrent --target N --dst IP:PORT [run flags]
                                            RFC 9411's procedure: phases, validation criteria, search
  xdpconnect demo                           lab up, run against a Linux listener, report, lab down
  xdpconnect lab up|down|status [flags]     network-namespace lab for trying the tool
  xdpconnect version

exit status: 0 success, 1 runtime failure (nothing established, setup failed),
2 usage error (bad flag or address; nothing was sent), 3 the asked --rate was not
delivered (the generator saturated: the report says why), 130 interrupted during setup
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "lab":
		err = cmdLab(os.Args[2:])
	case "version", "--version", "-version":
		fmt.Println("xdpconnect", version)
	case "-h", "--help", "help":
		fmt.Print(usage)
	case "run":
		err = cmdRun(os.Args[2:])
	case "doctor":
		err = cmdDoctor(os.Args[2:])
	case "demo":
		err = cmdDemo(os.Args[2:])
	case "merge":
		err = cmdMerge(os.Args[2:])
	case "rfc9411":
		err = cmdRFC9411(os.Args[2:])
	default:
		err = usageError("unknown command %q", os.Args[1])
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // -h: the flag package has printed the help
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpconnect: %s\n", words(err))
		os.Exit(exitCode(err))
	}
}

const version = "0.1.0"

// exitCode is 2 for what the user typed (a flag, an option or a plan that
// cannot work: nothing was sent), 3 for a run that did not deliver its
// asked rate because the generator could not keep up, 130 for an
// interrupt before the run began (as a shell reports SIGINT), 1 for
// everything else.
func exitCode(err error) int {
	var u usageErr
	var oe *xdpconnect.OptionError
	var rm rateMissed
	switch {
	case errors.As(err, &u) || errors.As(err, &oe):
		return 2
	case errors.As(err, &rm):
		return 3
	case errors.Is(err, context.Canceled):
		return 130
	}
	return 1
}
