package main

func cmdExtra(name string, args []string) error {
	switch name {
	case "run":
		return cmdRun(args)
	case "demo":
		return cmdDemo(args)
	}
	return usageError("unknown command %q", name)
}
