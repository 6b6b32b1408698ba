package main

import (
	"flag"
	"fmt"
)

// The language-model commands share the vision commands' helpers
// (common.go: newFlags, runCmd, flagErr, setThreads, emitJSON, info,
// stdout/stderr) and differ only in refusing positional words.

// lmParse parses args; positional words are an error naming the word.
func lmParse(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q (all options are --flags)", pos[0])
	}
	return err
}
