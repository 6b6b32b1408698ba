package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/slabml/slab/kernels"
)

// Small CLI helpers of the language-model commands. They are kept apart
// from the vision commands' helpers so that the LM commands build on their
// own; lmStdout/lmStderr may be swapped by tests.
var (
	lmStdout io.Writer = os.Stdout
	lmStderr io.Writer = os.Stderr
)

var lmErrHelp = errors.New("help requested")

// lmFlagSet returns a flag set that reports errors as values.
func lmFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(lmStderr, "usage: slab %s\n\nflags:\n", usage)
		fs.SetOutput(lmStderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// lmParse parses args; positional words are an error naming the word.
func lmParse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return lmErrHelp
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all options are --flags)", fs.Arg(0))
	}
	return nil
}

// lmRun turns -h into a clean exit.
func lmRun(f func(args []string) error) func(args []string) error {
	return func(args []string) error {
		if err := f(args); !errors.Is(err, lmErrHelp) {
			return err
		}
		return nil
	}
}

// lmFlagErr names the flag at fault.
func lmFlagErr(name, format string, a ...any) error {
	return fmt.Errorf("flag --%s: "+format, append([]any{name}, a...)...)
}

func lmSetThreads(n int) error {
	if n < 0 {
		return lmFlagErr("threads", "must be >= 0, got %d", n)
	}
	kernels.SetThreads(n)
	return nil
}

// lmEmitJSON writes v as the one JSON object on stdout.
func lmEmitJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(lmStdout, "%s\n", b)
	return err
}

// lmInfo is where human-readable lines go: stderr under --json.
func lmInfo(jsonOut bool) io.Writer {
	if jsonOut {
		return lmStderr
	}
	return lmStdout
}
