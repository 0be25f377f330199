package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/xdpconnect/xdpconnect"
)

// usageErr is a command-line mistake: exit 2, nothing was sent.
type usageErr struct{ msg string }

func (u usageErr) Error() string { return u.msg }

func usageError(f string, a ...any) error { return usageErr{fmt.Sprintf(f, a...)} }

// rateMissed is a run that did not deliver its asked rate because the
// generator could not keep up: exit 3, after the report.
type rateMissed struct{ msg string }

func (r rateMissed) Error() string { return r.msg }

// flagOf names the library's Options and Plan fields as run's flags, so
// that an *xdpconnect.OptionError reads in the words the user typed.
var flagOf = map[string]string{
	"Targets": "--dst", "Sources": "--src", "SourcesRouted": "--src-routed", "Ports": "--src-ports",
	"Iface": "--iface", "Netns": "--netns", "Workers": "--workers", "Frames": "--frames", "Batch": "--batch",
	"SynRetries": "--syn-retries", "TargetStats": "--target-stats", "Shard": "--shard", "ShardBy": "--shard-by",
	"XDPTX": "--xdp-tx", "Count": "--count", "Duration": "--duration", "Rate": "--rate", "Stages": "--stages", "ConcurrencyStages": "--concurrency-stages",
	"Concurrency": "--concurrency", "Close": "--close", "Warmup": "--warmup", "Drain": "--drain",
	"HoldFor": "--hold-for", "TimeWait": "--time-wait", "StartAt": "--start-at", "KernelSYNs": "--xdp-syn",
	"Request": "--http/--request", "RequestsPerConn": "--requests-per-conn", "ResponseTimeout": "--response-timeout",
}

// flagName is field's flag, or the field itself for one without a flag.
func flagName(field string) string {
	if f, ok := flagOf[field]; ok {
		return f
	}
	return field
}

// words is err as the command says it: an option error with flag names.
func words(err error) string {
	if oe, ok := errors.AsType[*xdpconnect.OptionError](err); ok {
		return oe.Words(flagName)
	}
	return err.Error()
}

// parseFlags parses args into fs and turns the flag package's complaints
// into one line naming the flag and what it takes; -h prints the flags
// to stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "usage: xdpconnect %s [flags]\n", fs.Name())
		fs.PrintDefaults()
		return err
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return usageError("--%s: no such flag for %s (xdpconnect %s -h lists them)", name, fs.Name(), fs.Name())
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return usageError("--%s needs a value: %s", name, takes(fs.Lookup(name)))
	}
	// invalid value "abc" for flag -count: parse error
	// invalid boolean value "maybe" for -pin: parse error
	var value, name string
	_, e := fmt.Sscanf(msg, "invalid value %q for flag -%s", &value, &name)
	if e != nil {
		_, e = fmt.Sscanf(msg, "invalid boolean value %q for -%s", &value, &name)
	}
	if e == nil {
		name = strings.TrimSuffix(name, ":")
		if f := fs.Lookup(name); f != nil {
			return usageError("--%s %s: want %s", name, value, takes(f))
		}
	}
	return usageError("%s", msg)
}

// takes says what a flag's value must be, from its type.
func takes(f *flag.Flag) string {
	if f == nil {
		return "a value"
	}
	switch reflect.TypeOf(f.Value).String() {
	case "*flag.uint64Value", "*flag.uintValue":
		return "a whole number, 0 or more"
	case "*flag.intValue", "*flag.int64Value":
		return "a whole number"
	case "*flag.float64Value":
		return "a number (1000, 2.5e4)"
	case "*flag.durationValue":
		return "a duration with its unit (500ms, 5s, 2m)"
	case "*flag.boolValue":
		return "true or false (or the flag alone)"
	}
	return "a value: " + f.Usage
}
