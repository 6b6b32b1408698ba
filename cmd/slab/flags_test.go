package main

// Every flag of every command, given a bad value, is refused the same way:
// exit code 1, one line on stderr naming the flag, no stack trace, nothing
// written, well within a second. The flags are found by walking each
// registered command's FlagSet (flagsOnly), so a flag added later is
// covered or makes this test fail until it is given bad values or a
// reason it has none.

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/png"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/tensor"
)

// commandFlags returns the flag set command name registers, without
// running it.
func commandFlags(t *testing.T, name string) *flag.FlagSet {
	t.Helper()
	var fs *flag.FlagSet
	flagsOnly = func(f *flag.FlagSet) { fs = f }
	defer func() { flagsOnly = nil }()
	if err := commands[name].Run(nil); err != errFlagsOnly || fs == nil {
		t.Fatalf("slab %s does not parse its flags through parseFlags (got %v): the flag test cannot see them", name, err)
	}
	return fs
}

// noBadValue lists the flags that accept any value, with the reason.
var noBadValue = map[string]string{
	"eval-lm.prompt": "any text is a prompt (only --fold-check uses it)",
}

// flagFixtures are the files the flag cases read (never write).
type flagFixtures struct {
	dir, idx, emptyIdx, corpus, vis, pth, lm, png, input, rand, exists, json, badJSON string
}

func makeFlagFixtures(t *testing.T) flagFixtures {
	d := t.TempDir()
	f := flagFixtures{dir: d, idx: filepath.Join(d, "idx"), emptyIdx: filepath.Join(d, "empty-idx"), corpus: filepath.Join(d, "corpus.txt"),
		vis: filepath.Join(d, "vis.safetensors"), pth: filepath.Join(d, "vis.pth"), png: filepath.Join(d, "img.png"),
		input: filepath.Join(d, "in.safetensors"), rand: filepath.Join(d, "rand.pth"), exists: filepath.Join(d, "exists.safetensors"),
		json: filepath.Join(d, "empty.json"), badJSON: filepath.Join(d, "bad.json")}
	for _, p := range []string{f.idx, f.emptyIdx} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeIDX(t, f.idx, "train", 16, 1)
	writeIDX(t, f.idx, "t10k", 8, 2)
	writeIDX(t, f.emptyIdx, "train", 16, 1)
	writeIDX(t, f.emptyIdx, "t10k", 0, 2)
	rnd := make([]byte, 4096)
	for i := range rnd {
		rnd[i] = byte(i*7919 + i>>3)
	}
	var pngb bytes.Buffer
	png.Encode(&pngb, image.NewGray(image.Rect(0, 0, 28, 28)))
	for p, b := range map[string][]byte{f.corpus: []byte(strings.Repeat("We the People of the United States, in Order to form a more perfect Union. ", 40)),
		f.rand: rnd, f.exists: []byte("x"), f.json: []byte("{}"), f.badJSON: []byte("{"), f.png: pngb.Bytes()} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, cfg, err := models.Resolve("deit_mini_28", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Build(e.Family, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	mustWriteWeights(t, f.vis, m)
	in := checkpoint.NewFile()
	in.Set("input", tensor.New(1, 1, 28, 28))
	if err := checkpoint.Write(f.input, in); err != nil {
		t.Fatal(err)
	}
	runOK(t, "export", "--weights", f.vis, "--out", f.pth)
	run := filepath.Join(d, "lmrun")
	runOK(t, "train-lm", "--model", "lm_test", "--data", f.corpus, "--steps", "1", "--batch", "1", "--eval-batches", "1", "--threads", "1", "--out", run)
	f.lm = filepath.Join(run, "ckpt.safetensors")
	return f
}

// flagCase is one command line that must be refused, naming flag.
type flagCase struct {
	cmd, flag string
	args      []string
}

func TestEveryFlagRefusesBadValues(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few hundred short processes")
	}
	fx := makeFlagFixtures(t)
	missing := filepath.Join(fx.dir, "missing")
	underFile := filepath.Join(fx.exists, "run") // a directory inside a regular file
	// base holds each command's arguments that make it runnable; outputs are
	// relative, inside the case's empty working directory.
	base := map[string][]string{
		"train":    {"--out", "run", "--model", "slab_deit_mini_28", "--data-dir", fx.idx, "--epochs", "1", "--batch", "4", "--eval-batch", "4", "--threads", "1"},
		"train-lm": {"--model", "lm_test", "--data", fx.corpus, "--steps", "1", "--batch", "1", "--eval-batches", "1", "--out", "run", "--threads", "1"},
		"eval-lm":  {"--ckpt", fx.lm, "--data", fx.corpus, "--batch", "1", "--threads", "1"},
		"generate": {"--ckpt", fx.lm, "--n", "2", "--threads", "1"},
		"bench-lm": {"--models", "lm_test", "--prompt", "2", "--generate", "2", "--rounds", "1", "--threads", "1"},
		"bench":    {"--models", "deit_mini_28", "--rounds", "1", "--warmup", "0", "--threads", "1"},
		"classify": {"--weights", fx.vis, "--threads", "1", fx.png},
		"eval":     {"--weights", fx.vis, "--data-dir", fx.idx, "--limit", "8", "--threads", "1"},
		"export":   {"--weights", fx.vis, "--out", "out.safetensors"},
		"fuse":     {"--weights", fx.vis, "--out", "fused.safetensors", "--threads", "1"},
		"import":   {fx.pth, "out.safetensors", "--model", "deit_mini_28", "--threads", "1"},
		"info":     {"deit_mini_28"},
		"run":      {"--weights", fx.vis, "--input", fx.input, "--output", "out.safetensors", "--threads", "1"},
		"quantize": {"--weights", fx.vis, "--dtype", "bf16", "--out", "out.safetensors", "--threads", "1"},
		"models":   {},
		"report":   {},
	}
	reportFlags := []string{"slab-train", "twin-train", "slab-eval", "slab-fused-eval", "twin-eval", "bench"}
	for _, n := range reportFlags {
		base["report"] = append(base["report"], "--"+n, fx.json)
	}
	// Bad values of string flags by name ("command.flag" first): a wrong
	// name, a missing or wrong file, and values that conflict with
	// another input (a checkpoint's own config, an existing output).
	lmConflict := map[string][]string{"model": {"lm_tiny"}, "norm": {"prepbn", "groupnorm"}, "attn": {"sla"}, "tokenizer": {"gpt2"},
		"repbn-init": {"official"}, "state": {fx.lm}, "ckpt": {missing, fx.rand, fx.dir}}
	strBad := map[string][]string{
		"model": {"nope"}, "norm": {"groupnorm"}, "attn": {"flash"}, "repbn-init": {"nope"}, "tokenizer": {"nope"},
		"data": {"nope"}, "data-dir": {missing}, "weights": {missing, fx.rand, fx.dir}, "resume": {missing, fx.rand},
		"cpuprofile": {filepath.Join(missing, "cpu.prof")}, "dtype": {"f16"}, "models": {"nope", ""}, "split": {"train"},
		"input": {missing, fx.rand}, "tensor": {"nope"}, "output": {fx.exists}, "key": {"nope"}, "prompt": {""},
		"train.norm": {"groupnorm", "none"}, "train.out": {underFile},
		// lm_test is rmsnorm: --repbn-init official would be dropped.
		"train-lm.data": {missing}, "train-lm.repbn-init": {"nope", "official"}, "train-lm.ckpt": {fx.lm}, "train-lm.state": {fx.lm}, "train-lm.out": {underFile},
		"eval-lm.data": {missing}, "bench-lm.dtype": {"f32,f16"},
		"export.out": {fx.exists}, "export.wrap": {"model"}, "fuse.out": {fx.exists},
		"quantize.dtype": {"f16", "f32"}, "quantize.out": {fx.exists},
	}
	for k, v := range lmConflict {
		strBad["eval-lm."+k], strBad["generate."+k] = v, v
	}
	for _, n := range reportFlags {
		strBad["report."+n] = []string{missing, fx.badJSON}
	}
	// Required flags left out, and combinations each valid alone.
	extra := []flagCase{
		{"train", "out", without(base["train"], "out")},
		{"train", "min-lr", append(without(base["train"], "lr"), "--lr", "1e-3", "--min-lr", "1e-2")},
		{"train", "data", append(without(base["train"], "data-dir"), "--data-dir", fx.emptyIdx)},
		{"train-lm", "min-lr", append(base["train-lm"], "--lr", "1e-3", "--min-lr", "1e-2")},
		{"train-lm", "seq", append(base["train-lm"], "--seq", "33")}, // lm_test has 32 positions
		{"eval-lm", "ckpt", without(base["eval-lm"], "ckpt")},
		{"eval-lm", "fold-check", append(base["eval-lm"], "--fold", "--fold-check")},
		{"eval-lm", "seq", append(base["eval-lm"], "--seq", "33")},
		{"eval-lm", "seed", append(base["eval-lm"], "--seed", "7")}, // would be ignored
		{"generate", "ckpt", without(base["generate"], "ckpt")},
		{"bench-lm", "generate", append(without(base["bench-lm"], "generate"), "--generate", "40")},
		{"classify", "weights", without(base["classify"], "weights")},
		{"classify", "top", append(base["classify"], "--top", "11")},
		{"eval", "weights", without(base["eval"], "weights")},
		{"eval", "data", append(without(base["eval"], "data-dir"), "--data-dir", fx.emptyIdx)},
		{"export", "weights", without(base["export"], "weights")},
		{"export", "out", without(base["export"], "out")},
		{"fuse", "weights", without(base["fuse"], "weights")},
		{"fuse", "out", without(base["fuse"], "out")},
		{"bench", "models", without(base["bench"], "models")},
		{"bench", "size", append(base["bench"], "--size", "30")}, // not a multiple of the patch
		{"quantize", "weights", without(base["quantize"], "weights")},
		{"quantize", "out", without(base["quantize"], "out")},
		{"quantize", "dtype", without(base["quantize"], "dtype")},
		{"quantize", "group", append(base["quantize"], "--group", "32")}, // bf16 has no groups
		{"run", "weights", without(base["run"], "weights")},
		{"run", "input", without(base["run"], "input")},
		{"run", "output", without(base["run"], "output")},
	}
	for _, n := range reportFlags {
		extra = append(extra, flagCase{"report", n, without(base["report"], n)})
	}

	names := slices.Sorted(maps.Keys(commands))
	var cases []flagCase
	flags := 0
	for _, cmd := range names {
		b, ok := base[cmd]
		if !ok {
			t.Errorf("slab %s: no base arguments in this test: add the command to base", cmd)
			continue
		}
		commandFlags(t, cmd).VisitAll(func(fl *flag.Flag) {
			flags++
			vals, err := badValues(cmd, fl, strBad)
			if err != nil {
				t.Errorf("slab %s --%s: %v", cmd, fl.Name, err)
			}
			for _, v := range vals {
				cases = append(cases, flagCase{cmd, fl.Name, append(without(b, fl.Name), "--"+fl.Name+"="+v)})
			}
		})
	}
	cases = append(cases, extra...)
	before := snapshot(t, fx.dir)
	// Every case in-process, the way main runs a command (run, then
	// exitCode and one "slab CMD: error" line), one after another.
	t0 := time.Now()
	var maxCPU time.Duration
	var slowest string
	for _, c := range cases {
		o := inProcess(t, c)
		check(t, c, o)
		if o.cpu > maxCPU {
			maxCPU, slowest = o.cpu, c.cmd+" "+strings.Join(c.args, " ")
		}
	}
	inTime := time.Since(t0)
	// The first case of each command again through the real process
	// (this test binary running main): exit status, stderr, working dir.
	t1 := time.Now()
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for _, c := range cases {
		if !seen[c.cmd] {
			seen[c.cmd] = true
			wg.Go(func() { check(t, c, subprocess(t, c)) })
		}
	}
	wg.Wait()
	if after := snapshot(t, fx.dir); after != before {
		t.Errorf("the fixtures changed:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("%d commands, %d flags, %d refused command lines in-process in %.1f s (most CPU: %v, slab %s); %d of them as processes in %.1f s",
		len(names), flags, len(cases), inTime.Seconds(), maxCPU.Round(time.Millisecond), slowest, len(seen), time.Since(t1).Seconds())
}

// outcome is what a refused command line did.
type outcome struct {
	code           int
	stdout, stderr string
	left           string // first file left in the working directory
	wall, cpu      time.Duration
}

// inProcess runs c as main would, in an empty working directory.
func inProcess(t *testing.T, c flagCase) outcome {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	stdout, stderr = &out, &errb
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	cpu0, t0 := cpuTime(), time.Now()
	done := make(chan error, 1)
	go func() { done <- run(commands[c.cmd], c.args) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("slab %s %s: still running after a minute", c.cmd, strings.Join(c.args, " "))
	}
	o := outcome{wall: time.Since(t0), cpu: cpuTime() - cpu0}
	if err != nil {
		o.code = exitCode(err)
		fmt.Fprintf(&errb, "slab %s: %v\n", c.cmd, err)
	}
	o.stdout, o.stderr, o.left = out.String(), errb.String(), leftovers(dir)
	return o
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// subprocess runs c through the test binary standing in for slab.
func subprocess(t *testing.T, c flagCase) outcome {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], append([]string{c.cmd}, c.args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "SLAB_TEST_MAIN=1", "SLAB_TRACE=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return outcome{code: -1}
	}
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	cmd.Wait()
	timer.Stop()
	ps := cmd.ProcessState
	return outcome{code: ps.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), left: leftovers(dir),
		wall: time.Since(t0), cpu: ps.UserTime() + ps.SystemTime()}
}

// badValues chooses a flag's bad values from its type and declared range,
// or from strBad for a string flag.
func badValues(cmd string, fl *flag.Flag, strBad map[string][]string) ([]string, error) {
	if why := noBadValue[cmd+"."+fl.Name]; why != "" {
		return nil, nil
	}
	if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
		return []string{"maybe"}, nil
	}
	if r, ok := fl.Value.(*ranged); ok {
		// Garbage, just outside each end (the end itself when open), and
		// for a float NaN and Inf.
		num := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
		below, above := r.lo-1, r.hi+1
		if r.openLo {
			below = r.lo
		}
		if r.openHi {
			above = r.hi
		}
		vals := []string{"x", num(below)}
		if !math.IsInf(r.hi, 1) {
			vals = append(vals, num(above))
		}
		if _, isFloat := r.Get().(float64); isFloat {
			vals = append(vals, "NaN", "Inf")
		}
		return vals, nil
	}
	switch fl.Value.(flag.Getter).Get().(type) {
	case uint64, uint:
		return []string{"-1", "x"}, nil
	case string:
		for _, k := range []string{cmd + "." + fl.Name, fl.Name} {
			if v, ok := strBad[k]; ok {
				return v, nil
			}
		}
		return nil, fmt.Errorf("no bad values: give it some in strBad, or a reason in noBadValue")
	}
	return nil, fmt.Errorf("a %T flag without a declared range (flagRange) or bad values", fl.Value)
}

// check asserts that c was refused: exit code 1, one stderr line naming
// the flag, no trace, nothing on stdout, nothing written, and cheaply.
func check(t *testing.T, c flagCase, o outcome) {
	t.Helper()
	line, msg := fmt.Sprintf("slab %s %s", c.cmd, strings.Join(c.args, " ")), o.stderr
	switch {
	case o.code != 1:
		t.Errorf("%s: exit code %d, want 1 (stderr %q)", line, o.code, msg)
	case strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n"):
		t.Errorf("%s: stderr has %d lines, want one:\n%s", line, strings.Count(msg, "\n"), msg)
	case !strings.Contains(msg, "--"+c.flag):
		t.Errorf("%s: stderr does not name --%s: %q", line, c.flag, msg)
	case strings.Contains(msg, "goroutine ") || strings.Contains(msg, "internal error") || strings.Contains(msg, ".go:"):
		t.Errorf("%s: a panic or trace reached stderr: %q", line, msg)
	}
	if o.stdout != "" {
		t.Errorf("%s: wrote %q on stdout", line, o.stdout)
	}
	// Refusals found after --out is claimed (train-lm --seq above the
	// context is known once the model is built) leave nothing either: the
	// claim removes a directory it made when the run wrote nothing.
	if o.left != "" {
		t.Errorf("%s: left %s in its working directory", line, o.left)
	}
	// CPU time is what a refusal costs; on a shared machine wall time
	// mostly measures the other processes.
	if o.cpu > time.Second {
		t.Errorf("%s: refused after %v of CPU (%v wall), want well within a second", line, o.cpu.Round(time.Millisecond), o.wall.Round(time.Millisecond))
	}
}

// leftovers names the first file under dir, "" if there is none.
func leftovers(dir string) string {
	first := ""
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && first == "" {
			first, _ = filepath.Rel(dir, p)
		} else if err == nil && d.IsDir() && p != dir && first == "" {
			if ents, _ := os.ReadDir(p); len(ents) == 0 {
				first, _ = filepath.Rel(dir, p)
			}
		}
		return nil
	})
	return first
}

// without returns args with --name and its value removed.
func without(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--"+name {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// snapshot lists the files under dir with their sizes and times.
func snapshot(t *testing.T, dir string) string {
	var s []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			s = append(s, fmt.Sprintf("%s:%d:%d", p, fi.Size(), fi.ModTime().UnixNano()))
		}
		return nil
	})
	sort.Strings(s)
	return strings.Join(s, " ")
}

// TestClassifyNamesWhatItGot: a directory given as an image, and a file
// named .pth that is no PyTorch checkpoint, are told as such (issue 14,
// item 12), not "unknown format" or "not a safetensors file?".
func TestClassifyNamesWhatItGot(t *testing.T) {
	d := t.TempDir()
	e, cfg, err := models.Resolve("deit_mini_28", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.Build(e.Family, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	vis, rnd := filepath.Join(d, "vis.safetensors"), filepath.Join(d, "random.pth")
	mustWriteWeights(t, vis, m)
	if err := os.WriteFile(rnd, bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 256), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--weights", vis, d}, d + " is a directory, not an image file"},
		{[]string{"--weights", rnd, d}, "random.pth is not a PyTorch checkpoint: neither a zip archive"},
		{[]string{"--weights", d, vis}, d + " is a directory, not a checkpoint file"},
	} {
		_, err := runIn(t, append([]string{"classify"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("classify %v: %v, want %q", c.args, err, c.want)
		}
	}
}
