package main

import (
	"errors"
	"flag"
	"fmt"
)

// The language-model commands share the vision commands' helpers
// (common.go: newFlags, runCmd, flagErr, setThreads, emitJSON, info,
// stdout/stderr) and differ only in refusing positional words.

// lmParse parses args; positional words are an error naming the word.
func lmParse(fs *flag.FlagSet, args []string) error {
	usage := quietUsage(fs)
	defer func() { fs.Usage = usage }()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return errHelp
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all options are --flags)", fs.Arg(0))
	}
	return nil
}
