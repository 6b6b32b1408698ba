package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/train"
)

// TestSlabChild is not a test of its own: the tests below run the test
// binary as slab with SLAB_CHILD_ARGS set (words separated by \x1f), and
// this function then is main. SLAB_CHILD_SIGNAL="point,n,SIG[,again]"
// makes the child send itself a real SIGINT or SIGTERM the n-th time the
// training passes the point (train.SetTestHook) and wait until the signal
// handler has seen it (with "again": send a second one, which exits at
// once); SLAB_CHILD_PAUSE="point,n,file" makes it wait there until file
// exists.
func TestSlabChild(t *testing.T) {
	args := os.Getenv("SLAB_CHILD_ARGS")
	if args == "" {
		return
	}
	os.Args = append([]string{"slab"}, strings.Split(args, "\x1f")...)
	var ctx context.Context
	notify := trainContext
	trainContext = func() (context.Context, func()) {
		c, stop := notify()
		ctx = c
		return c, stop
	}
	at := func(env string) (point string, n int, rest []string) {
		f := strings.Split(os.Getenv(env), ",")
		if len(f) < 3 {
			return "", 0, nil
		}
		n, _ = strconv.Atoi(f[1])
		return f[0], n, f[2:]
	}
	seen := map[string]int{}
	train.SetTestHook(func(p string) error {
		seen[p]++
		if point, n, rest := at("SLAB_CHILD_SIGNAL"); p == point && seen[p] == n {
			sig := map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM}[rest[0]]
			syscall.Kill(os.Getpid(), sig)
			for t0 := time.Now(); ctx == nil || ctx.Err() == nil; time.Sleep(time.Millisecond) {
				if time.Since(t0) > 10*time.Second {
					return fmt.Errorf("the signal handler never saw %s", rest[0])
				}
			}
			if len(rest) > 1 && rest[1] == "again" {
				syscall.Kill(os.Getpid(), sig)
				time.Sleep(10 * time.Second) // the handler exits the process
				return fmt.Errorf("a second %s did not exit", rest[0])
			}
		}
		if point, n, rest := at("SLAB_CHILD_PAUSE"); p == point && seen[p] == n {
			for _, err := os.Stat(rest[0]); err != nil; _, err = os.Stat(rest[0]) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	})
	main()
	os.Exit(0)
}

// child starts the test binary as slab with args and extra environment.
func child(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSlabChild$")
	cmd.Env = append(append(os.Environ(), "SLAB_CHILD_ARGS="+strings.Join(args, "\x1f"), "SLAB_TEST_MAIN="), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	return cmd, &out
}

// runChild runs slab in a child process and returns its exit code and
// output.
func runChild(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd, out := child(t, env, args...)
	cmd.Wait()
	return cmd.ProcessState.ExitCode(), out.String()
}

// sameTensors requires two checkpoints to hold the same tensors, bit for
// bit (weights, buffers and AdamW moments).
func sameTensors(t *testing.T, label, a, b string) int {
	t.Helper()
	fa, err := checkpoint.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := checkpoint.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(fa.Tensors) != len(fb.Tensors) {
		t.Fatalf("%s: %d tensors vs %d", label, len(fa.Tensors), len(fb.Tensors))
	}
	for k, ea := range fa.Tensors {
		eb := fb.Tensors[k]
		if eb == nil || !slices.Equal(ea.F32, eb.F32) || !slices.Equal(ea.I64, eb.I64) {
			t.Errorf("%s: %s differs from the uninterrupted run", label, k)
		}
	}
	return len(fa.Tensors)
}

// noTemporaries fails on any *.tmp* file left in dir.
func noTemporaries(t *testing.T, label, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("%s: temporary %s left", label, e.Name())
		}
	}
}

// visionData writes a tiny synthetic Fashion-MNIST into a new directory.
func visionData(t *testing.T) string {
	dir := t.TempDir()
	writeIDX(t, dir, "train", 96, 1)
	writeIDX(t, dir, "t10k", 40, 2)
	return dir
}

// toyTrain is slab train of the toy family: 6 steps an epoch, 2 epochs.
func toyTrain(data, out string, more ...string) []string {
	return append([]string{"train", "--model", "toy_28", "--data-dir", data, "--epochs", "2", "--batch", "16", "--eval-batch", "32",
		"--lr", "1e-2", "--threads", "1", "--out", out}, more...)
}

// lmCorpus writes a small text corpus.
func lmCorpus(t *testing.T, n int) string {
	p := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(p, []byte(strings.Repeat("We the People of the United States, in Order to form a more perfect Union. ", n)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lmTrain(corpus, out string, more ...string) []string {
	return append([]string{"train-lm", "--model", "lm_test_prepbn", "--data", corpus, "--steps", "8", "--batch", "2", "--seq", "16",
		"--eval-every", "0", "--eval-batches", "2", "--save-every", "2", "--threads", "1", "--out", out}, more...)
}

// TestSignals sends real SIGINT and SIGTERM to slab train and slab
// train-lm (child processes) at fixed points: each exits 130 or 143 with
// one line naming the checkpoint, leaves no temporary and a log that
// holds what the checkpoint holds, and a resume ends bit-identical to an
// uninterrupted run. A second signal while stopping exits at once, still
// without temporaries.
func TestSignals(t *testing.T) {
	data := visionData(t)
	corpus := lmCorpus(t, 60)
	ref := t.TempDir()
	refV, refL := filepath.Join(ref, "v"), filepath.Join(ref, "l")
	if code, out := runChild(t, nil, toyTrain(data, refV)...); code != 0 {
		t.Fatalf("uninterrupted vision run: exit %d: %s", code, out)
	}
	if code, out := runChild(t, nil, lmTrain(corpus, refL)...); code != 0 {
		t.Fatalf("uninterrupted LM run: exit %d: %s", code, out)
	}
	for _, c := range []struct {
		lm     bool
		signal string
		code   int
	}{
		{false, "mid-epoch,3,SIGINT", 130},
		{false, "after-rename,1,SIGTERM", 143},
		{false, "before-temp,1,SIGINT", 130},
		{false, "before-rename,2,SIGINT,again", 130},
		{true, "mid-epoch,3,SIGTERM", 143},
		{true, "before-log,2,SIGINT", 130},
		{true, "before-rename,3,SIGTERM,again", 143},
	} {
		label := map[bool]string{false: "train", true: "train-lm"}[c.lm] + " " + c.signal
		out := filepath.Join(t.TempDir(), "run")
		args, refDir := toyTrain(data, out), refV
		if c.lm {
			args, refDir = lmTrain(corpus, out), refL
		}
		t0 := time.Now()
		code, msg := runChild(t, []string{"SLAB_CHILD_SIGNAL=" + c.signal}, args...)
		if code != c.code {
			t.Fatalf("%s: exit %d, want %d: %s", label, code, c.code, msg)
		}
		noTemporaries(t, label, out)
		again := strings.HasSuffix(c.signal, "again")
		if !again && !strings.Contains(msg, "continue with --resume "+filepath.Join(out, "ckpt.safetensors")) {
			t.Errorf("%s: the error does not say how to continue: %s", label, msg)
		}
		ck := filepath.Join(out, "ckpt.safetensors")
		// An immediate exit may leave the log ahead of the checkpoint (it
		// is appended first); the resume cuts it back.
		step := int64(-1)
		if !again {
			step = logMatchesCheckpoint(t, label, out, c.lm)
		}
		resume := append(args, "--resume", ck)
		if code, msg := runChild(t, nil, resume...); code != 0 {
			t.Fatalf("%s: resume: exit %d: %s", label, code, msg)
		}
		noTemporaries(t, label+", resumed", out)
		logMatchesCheckpoint(t, label+", resumed", out, c.lm)
		n := sameTensors(t, label, filepath.Join(refDir, "ckpt.safetensors"), ck)
		t.Logf("%-36s exit %d after %v at checkpoint step %d; resumed: %d tensors bit-identical", label, code, time.Since(t0).Round(time.Millisecond), step, n)
	}
}

// logMatchesCheckpoint requires the run's log to hold exactly the steps
// of its checkpoint (and, for a vision run, its epochs), and returns the
// step.
func logMatchesCheckpoint(t *testing.T, label, dir string, lm bool) int64 {
	t.Helper()
	ck, lg := filepath.Join(dir, "ckpt.safetensors"), filepath.Join(dir, "log.jsonl")
	if lm {
		st, err := train.LMStepOf(ck)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		pts, err := train.ReadLMLog(lg)
		if err != nil || int64(len(pts)) != st || (st > 0 && int64(pts[len(pts)-1].Step) != st) {
			t.Errorf("%s: checkpoint at step %d, log %d points (%v)", label, st, len(pts), err)
		}
		return st
	}
	rs, err := train.ReadResume(ck)
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	steps, epochs, err := train.ReadLog(lg, 1<<62)
	if err != nil || int64(len(steps)) != rs.Step || len(epochs) != len(rs.Epochs) {
		t.Errorf("%s: checkpoint at step %d with %d epochs, log %d steps %d epochs (%v)", label, rs.Step, len(rs.Epochs), len(steps), len(epochs), err)
	}
	return rs.Step
}

// TestConcurrentTraining: a second training into the --out of a running
// one fails at once naming --out and the other process, and the first
// finishes intact.
func TestConcurrentTraining(t *testing.T) {
	data := visionData(t)
	dir := t.TempDir()
	out, gate := filepath.Join(dir, "run"), filepath.Join(dir, "go")
	first, firstOut := child(t, []string{"SLAB_CHILD_PAUSE=mid-epoch,2," + gate}, toyTrain(data, out, "--json")...)
	// Wait for the first run to hold the lock and pass its first step.
	for t0 := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(out, ".slab.lock")); err == nil && time.Since(t0) > 300*time.Millisecond {
			break
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("the first training never started: %s", firstOut)
		}
	}
	for _, args := range [][]string{toyTrain(data, out), toyTrain(data, out, "--force"),
		lmTrain(lmCorpus(t, 60), out, "--force")} {
		t0 := time.Now()
		_, err := runIn(t, args...)
		took := time.Since(t0)
		if err == nil || !strings.Contains(err.Error(), "--out") || !strings.Contains(err.Error(), out) || !strings.Contains(err.Error(), "another slab process holds it") {
			t.Errorf("second %s into a running run's --out: %v", args[0], err)
		}
		if took > time.Second {
			t.Errorf("second %s took %v to fail", args[0], took)
		}
		t.Logf("second %s: %v (after %v)", args[0], err, took.Round(time.Millisecond))
	}
	os.WriteFile(gate, nil, 0o644)
	if err := first.Wait(); err != nil {
		t.Fatalf("first training: %v: %s", err, firstOut)
	}
	var r trainResult
	oneJSON(t, []byte(lastLine(firstOut.String())), &r)
	if !r.Finished || r.Steps != 12 {
		t.Errorf("first training: %+v", r)
	}
	logMatchesCheckpoint(t, "first training", out, false)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestOutHoldsRun: train and train-lm refuse an --out that holds a run
// (before loading anything, changing nothing) unless --resume continues it
// or --force replaces it (saying what it replaces); an --out that cannot
// be written is refused before training; resuming a finished run exits 0,
// says so and writes nothing.
func TestOutHoldsRun(t *testing.T) {
	data := visionData(t)
	corpus := lmCorpus(t, 60)
	for _, lm := range []bool{false, true} {
		name, cmdArgs := "train", func(out string, more ...string) []string { return toyTrain(data, out, more...) }
		if lm {
			name, cmdArgs = "train-lm", func(out string, more ...string) []string { return lmTrain(corpus, out, more...) }
		}
		out := filepath.Join(t.TempDir(), "run")
		runOK(t, cmdArgs(out)...)
		before := dirSnapshot(t, out)
		_, err := runIn(t, cmdArgs(out)...)
		if err == nil || !strings.Contains(err.Error(), "--out") || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), "--resume") {
			t.Errorf("%s into a finished run: %v", name, err)
		}
		// Data that fails to load shows the check comes first.
		junk := t.TempDir()
		for _, f := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
			os.WriteFile(filepath.Join(junk, f), []byte("not an IDX file"), 0o644)
		}
		os.WriteFile(filepath.Join(junk, "tiny.txt"), []byte("ab"), 0o644)
		bad := toyTrain(junk, out)
		if lm {
			bad = lmTrain(filepath.Join(junk, "tiny.txt"), out)
		}
		if _, err := runIn(t, bad...); err == nil || !strings.Contains(err.Error(), "already holds a run") {
			t.Errorf("%s: --out checked after the data: %v", name, err)
		}
		if !sameSnapshot(before, dirSnapshot(t, out)) {
			t.Errorf("%s: a refused run changed --out", name)
		}
		// Resuming the finished run: exit 0, says so, writes nothing.
		var errb bytes.Buffer
		stdout, stderr = &errb, &errb
		err = commands[name].Run(append(cmdArgs(out), "--resume", filepath.Join(out, "ckpt.safetensors"))[1:])
		stdout, stderr = os.Stdout, os.Stderr
		if err != nil || !strings.Contains(errb.String(), "nothing to do") || strings.Contains(errb.String(), "final:") {
			t.Errorf("%s: resuming a finished run: %v: %s", name, err, errb.String())
		}
		if !sameSnapshot(before, dirSnapshot(t, out)) {
			t.Errorf("%s: resuming a finished run changed --out", name)
		}
		// --force replaces it and says so.
		stdout, stderr = &errb, &errb
		errb.Reset()
		err = commands[name].Run(cmdArgs(out, "--force")[1:])
		stdout, stderr = os.Stdout, os.Stderr
		if err != nil || !strings.Contains(errb.String(), "replacing the run in "+out+" (ckpt.safetensors, log.jsonl") {
			t.Errorf("%s --force: %v: %s", name, err, errb.String())
		}
		logMatchesCheckpoint(t, name+" --force", out, lm)
		// An --out that is a file, or lies under one, is refused at once.
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, []byte("x"), 0o644)
		for _, o := range []string{file, filepath.Join(file, "sub")} {
			if _, err := runIn(t, cmdArgs(o)...); err == nil || !strings.Contains(err.Error(), "--out") {
				t.Errorf("%s --out %s: %v", name, o, err)
			}
		}
	}
	// train-lm: a corpus too short for one validation batch fails before
	// the first step, writing no checkpoint.
	out := filepath.Join(t.TempDir(), "short")
	_, err := runIn(t, lmTrain(lmCorpus(t, 4), out)...)
	if err == nil || !strings.Contains(err.Error(), "validation") {
		t.Errorf("train-lm on a corpus too short for validation: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(out, "ckpt.safetensors")); serr == nil {
		t.Error("train-lm on a too-short corpus wrote a checkpoint")
	}
	t.Logf("too-short corpus: %v", err)
}

func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		st, _ := e.Info()
		m[e.Name()] = string(b) + st.ModTime().String()
	}
	return m
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
