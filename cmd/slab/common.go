package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/train"
)

// stdout and stderr are where the vision commands write; tests swap them to
// run commands in-process. With --json, stdout carries exactly one JSON
// object and everything else (progress, tables) goes to stderr.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// errHelp is returned after -h printed the usage: not a failure.
var errHelp = errors.New("help requested")

// newFlags returns a flag set that reports errors as values (one line,
// naming the flag) instead of printing usage and exiting.
func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: slab %s\n\nflags:\n", usage)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args, allowing positional words between flags
// (slab info MODEL --json), and returns the positional words.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	usage := quietUsage(fs)
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, errHelp
			}
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// noArgs parses args and refuses positional words.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err == nil && len(pos) != 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	return err
}

// quietUsage silences fs.Usage for the duration of a parse and returns the
// original: the flag package prints the usage on every parse error, but a
// bad flag must reach the user as one error line; only -h shows the usage.
func quietUsage(fs *flag.FlagSet) func() {
	usage := fs.Usage
	fs.Usage = func() {}
	return usage
}

// runCmd wraps a command body so that -h exits cleanly.
func runCmd(f func(args []string) error) func(args []string) error {
	return func(args []string) error {
		err := f(args)
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
}

// flagErr names the flag at fault in a value error.
func flagErr(name, format string, a ...any) error {
	return fmt.Errorf("flag --%s: "+format, append([]any{name}, a...)...)
}

// setThreads applies --threads (0 = all cores).
func setThreads(n int) error {
	if n < 0 {
		return flagErr("threads", "must be >= 0, got %d", n)
	}
	kernels.SetThreads(n)
	return nil
}

// metric is a float64 that encodes as JSON null when it is not finite.
type metric = train.Metric

// emitJSON writes v as one JSON object line on stdout.
func emitJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// jsonOr returns err if set, else emits v when jsonOut is set.
func jsonOr(v any, err error, jsonOut bool) error {
	if err != nil || !jsonOut {
		return err
	}
	return emitJSON(v)
}

// warn prints a loader's warnings to stderr, one line each.
func warn(ws []string) {
	for _, w := range ws {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
}

// info is where human-readable output goes: stdout normally, stderr under
// --json so that stdout holds only the JSON object.
func info(jsonOut bool) io.Writer {
	if jsonOut {
		return stderr
	}
	return stdout
}
