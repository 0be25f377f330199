package main

func cmdExtra(name string, args []string) error {
	return usageError("unknown command %q", name)
}
