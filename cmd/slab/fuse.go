package main

import (
	"github.com/slabml/slab/fuse"
)

func init() {
	register(&command{Name: "fuse", Summary: "fold every RepBN/BN into the following Linear (deploy model)", Run: runCmd(cmdFuse)})
}

// fuseResult is the JSON of slab fuse.
type fuseResult = fuse.FileSummary

func cmdFuse(args []string) error {
	fs := newFlags("fuse", "fuse --weights IN --out OUT [--force] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	in := fs.String("weights", "", "checkpoint or weights file to fold (written by slab train)")
	out := fs.String("out", "", "where to write the folded weights (safetensors)")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return flagErr("weights", "is required")
	}
	if *out == "" {
		return flagErr("out", "is required")
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if err := checkOutput(*out, "--out", *force); err != nil {
		return err
	}
	rep, err := fuse.FoldFile(*in, *out)
	if err != nil {
		return flagErr("weights", "%v", err)
	}
	warn(rep.Warnings)
	r := rep.Summary(*in, *out)
	if *jsonOut {
		return emitJSON(r)
	}
	r.WriteText(stdout)
	return nil
}
