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
	}
	return usageError("unknown command %q", name)
}
