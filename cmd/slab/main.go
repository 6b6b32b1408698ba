// Command slab trains, re-parameterizes, evaluates and benchmarks SLAB
// Transformers. Each subcommand lives in its own file and registers itself
// with register; errors reach the user as one line and a non-zero exit.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"sort"
)

// command is one subcommand of slab.
type command struct {
	Name    string
	Summary string
	// Run parses its own flags from args (the words after the subcommand).
	Run func(args []string) error
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
	if err := run(c, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "slab %s: %v\n", c.Name, err)
		os.Exit(1)
	}
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
