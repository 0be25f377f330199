package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/xdpconnect/xdpconnect/report"
)

// cmdMerge prints one report for the JSON reports of a run's shards.
func cmdMerge(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	out := fs.String("json", "", "also write the merged report as JSON here (- for stdout alone)")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("merge needs the JSON reports of the shards (xdpconnect run --shard i/N --json FILE)")
	}
	m, err := report.MergeFiles(fs.Args())
	if err != nil {
		// The inputs are at fault (unreadable, not reports, shards that
		// do not belong together): nothing was merged.
		return usageErr{err.Error()}
	}
	if *out != "-" {
		fmt.Printf("run %s: %d shards merged\n", m.RunID, m.Shard.Count)
		m.WriteText(os.Stdout)
	}
	switch *out {
	case "":
		return nil
	case "-":
		return m.WriteJSON(os.Stdout)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	return m.WriteJSON(f)
}
