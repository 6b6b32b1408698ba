// Command slab trains, re-parameterizes, evaluates and benchmarks SLAB
// Transformers. Each subcommand lives in its own file and registers itself
// with register; errors reach the user as one line and a non-zero exit.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/slabml/slab/train"
)

// command is one subcommand of slab.
type command struct {
	Name    string
	Summary string
	// Run parses its own flags from args (the words after the subcommand).
	Run func(args []string) error
	// OwnSignals: the command handles SIGINT/SIGTERM itself (a training
	// stops at a step boundary); others quit at once, removing the
	// temporaries of any write in flight (quitOnSignal).
	OwnSignals bool
}

var commands = map[string]*command{}

// register adds a subcommand; called from init functions.
func register(c *command) { commands[c.Name] = c }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: slab COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].Summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "slab: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if !c.OwnSignals {
		quitOnSignal()
	}
	if err := run(c, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "slab %s: %v\n", c.Name, err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 1 for a failure, 128 + the signal's number for a training
// stopped by SIGINT (130) or SIGTERM (143).
func exitCode(err error) int {
	var ie *train.Interrupted
	if errors.As(err, &ie) {
		return ie.ExitCode()
	}
	return 1
}

// quitOnSignal makes SIGINT and SIGTERM end the process at once with 130
// or 143 after removing the temporaries of atomic writes in flight
// (train.Quit), so that an interrupted fuse, quantize, import
// or export leaves the file it was writing as it was and no *.tmp beside
// it.
func quitOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() { train.Quit(<-ch) }()
}

// trainContext is the context a training command runs under: the first
// SIGINT or SIGTERM stops it at the next step boundary (train.NotifySignals).
// Tests replace it.
var trainContext = func() (context.Context, func()) {
	return train.NotifySignals(context.Background(), stderr)
}

// claimOut claims a training's --out before anything is loaded
// (train.ClaimRunDir: created, writable, locked for the run, and a run it
// holds refused unless --resume continues it or --force replaces it).
func claimOut(cmd, out, resume string, force bool) (*train.Claim, error) {
	mode := train.Fresh
	switch {
	case force:
		mode = train.Force
	case resume != "":
		mode = train.Resume
	}
	c, err := train.ClaimRunDir(out, mode, resume)
	if err != nil {
		return nil, flagErr("out", "%v", err)
	}
	if len(c.Stale) > 0 {
		fmt.Fprintf(stderr, "slab %s: removed %s in %s (left by a killed write)\n", cmd, strings.Join(c.Stale, ", "), out)
	}
	if r := c.Replacing(); len(r) > 0 {
		fmt.Fprintf(stderr, "slab %s: --force: replacing the run in %s (%s)\n", cmd, out, strings.Join(r, ", "))
	}
	return c, nil
}

// run turns a panic escaping a command into an error line: no stack trace
// reaches a user.
func run(c *command, args []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
			// A bug report needs the stack; users never see it unless they ask.
			if os.Getenv("SLAB_TRACE") != "" {
				err = fmt.Errorf("%w\n%s", err, debug.Stack())
			}
		}
	}()
	return c.Run(args)
}
