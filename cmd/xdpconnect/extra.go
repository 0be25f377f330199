package main

import "os"

func cmdExtra(name string, args []string) error {
	switch name {
	case "run":
		return cmdRun(args)
	case "doctor":
		return cmdDoctor(args, os.Stdout)
	case "demo":
		return cmdDemo(args)
	case "bench":
		return cmdBench(args)
	case "bench-xsk":
		return cmdBenchXSK(args)
	case "baseline-go":
		return cmdBaselineGo(args)
	}
	return usageError("unknown command %q", name)
}
