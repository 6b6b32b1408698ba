package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

var errCrash = errors.New("simulated kill")

// The toy classifier as a registered family, so that its checkpoints
// read back through ReadResume as any family's do.
func init() {
	models.Register(&models.Family{Name: "toy", Task: models.TaskClassify, Doc: "the trainer tests' toy classifier",
		NewConfig: func() models.Config { return &toyConfig{} },
		Build: func(c models.Config, seed uint64, _ bool) (models.Model, error) {
			tc := c.(*toyConfig)
			return newToy(tc.In, tc.Out, seed), nil
		}}, nil)
}

// fault is one injected stop: at the n-th time a training passes point,
// either a signal (the context is cancelled as NotifySignals does) or a
// crash (the training aborts there without any cleanup, as a kill -9
// would; a crash before the rename leaves its temporary behind).
type fault struct {
	point string
	n     int
	sig   syscall.Signal // 0: crash
}

func (f fault) String() string {
	if f.sig == 0 {
		return "crash at " + f.point
	}
	return signalName(f.sig) + " at " + f.point
}

// inject installs the hook for f on a training in dir and returns the
// context to give it and a report of whether it fired.
func inject(t *testing.T, f fault, dir string) (context.Context, *bool) {
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil); SetTestHook(nil) })
	seen, fired := 0, new(bool)
	SetTestHook(func(point string) error {
		if point != f.point || *fired {
			return nil
		}
		if seen++; seen < f.n {
			return nil
		}
		*fired = true
		if f.sig != 0 {
			cancel(signalCause{f.sig})
			return nil
		}
		if point == HookBeforeRename {
			os.WriteFile(filepath.Join(dir, ".ckpt.safetensors.tmp4242"), []byte("half a checkpoint"), 0o644)
		}
		return errCrash
	})
	return ctx, fired
}

// temporaries lists the *.tmp* files left in dir.
func temporaries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			out = append(out, e.Name())
		}
	}
	return out
}

var visionFaults = []fault{
	{HookMidEpoch, 5, syscall.SIGINT}, {HookMidEpoch, 17, syscall.SIGTERM}, {HookBeforeLog, 2, syscall.SIGINT},
	{HookBeforeTemp, 1, syscall.SIGTERM}, {HookBeforeRename, 2, syscall.SIGINT}, {HookAfterRename, 2, syscall.SIGTERM},
	{HookBeforeRecal, 1, syscall.SIGINT},
	{HookMidEpoch, 15, 0}, {HookBeforeLog, 2, 0}, {HookBeforeTemp, 2, 0}, {HookBeforeRename, 2, 0}, {HookAfterRename, 1, 0},
	{HookBeforeRecal, 1, 0},
}

// visionRun trains a toy run into dir (resumed from its checkpoint when
// resume is set) under ctx.
func visionRun(t *testing.T, dir string, resume bool, ctx context.Context) (*Result, *Trainer, error) {
	t.Helper()
	tr := toyTrainer(t, 5) // 12 steps per epoch, 3 epochs, 1 re-calibration pass
	tr.Meta = map[string]string{"data": `{"train_images":"200"}`}
	if resume {
		path := filepath.Join(dir, CheckpointFile)
		f, err := checkpoint.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Restore(f, path); err != nil {
			t.Fatal(err)
		}
	}
	tr.Context = ctx
	d, err := OpenRunDir(dir, tr, resume)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close() // a crash ends the process, and its lock with it
	d.Attach(tr, nil)
	r, err := d.Run(tr, tr.TotalSteps(), nil)
	return r, tr, err
}

// checkConsistent: no temporaries, and the log holds exactly the steps
// and epochs of the checkpoint, each once and in order.
func checkConsistent(t *testing.T, label, dir string, total int64) int64 {
	t.Helper()
	if tmp := temporaries(t, dir); len(tmp) > 0 {
		t.Errorf("%s: temporaries left: %v", label, tmp)
	}
	rs, err := ReadResume(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	steps, epochs, err := ReadLog(filepath.Join(dir, LogFile), 1<<62)
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	if int64(len(steps)) != rs.Step || len(epochs) != len(rs.Epochs) {
		t.Errorf("%s: checkpoint at step %d with %d epochs, log %d steps %d epochs", label, rs.Step, len(rs.Epochs), len(steps), len(epochs))
	}
	for i, s := range steps {
		if s.Step != int64(i+1) {
			t.Fatalf("%s: log line %d is step %d", label, i, s.Step)
		}
	}
	for i, e := range epochs {
		if e != rs.Epochs[i] {
			t.Errorf("%s: log epoch %+v, checkpoint %+v", label, e, rs.Epochs[i])
		}
	}
	return rs.Step
}

// TestInterruptVision stops a vision run with a signal or a crash at each
// point of the step loop and of a save, resumes it, and requires what an
// uninterrupted run gives: no temporaries, the log equal to the
// checkpoint's records, the epoch records and every weight bit-identical.
func TestInterruptVision(t *testing.T) {
	ref := t.TempDir()
	want, wantTr, err := visionRun(t, ref, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantW := models.StateDict(wantTr.Model)
	_, wantEpochs, _ := ReadLog(filepath.Join(ref, LogFile), 1<<62)
	for _, f := range visionFaults {
		dir := t.TempDir()
		ctx, fired := inject(t, f, dir)
		_, _, err := visionRun(t, dir, false, ctx)
		SetTestHook(nil)
		if !*fired {
			t.Fatalf("%v: never reached", f)
		}
		var ie *Interrupted
		switch {
		case f.sig != 0 && (!errors.As(err, &ie) || ie.Signal != f.sig || ie.ExitCode() != 128+int(f.sig)):
			t.Fatalf("%v: Run returned %v, want an *Interrupted by it", f, err)
		case f.sig == 0 && !errors.Is(err, errCrash):
			t.Fatalf("%v: Run returned %v", f, err)
		}
		at := int64(-1)
		if rs, err := ReadResume(filepath.Join(dir, CheckpointFile)); err == nil {
			at = rs.Step
		}
		if f.sig != 0 {
			at = checkConsistent(t, f.String(), dir, wantTr.TotalSteps())
			if ie.Checkpoint == "" || ie.Step != at {
				t.Errorf("%v: %v (checkpoint at %d)", f, ie, at)
			}
		}
		r, tr, err := visionRun(t, dir, true, nil)
		if err != nil {
			t.Fatalf("%v: resume: %v", f, err)
		}
		checkConsistent(t, f.String()+", resumed", dir, tr.TotalSteps())
		_, epochs, _ := ReadLog(filepath.Join(dir, LogFile), 1<<62)
		for i := range epochs {
			epochs[i].ImgPerSec, epochs[i].Seconds = 0, 0
			wantEpochs[i].ImgPerSec, wantEpochs[i].Seconds = 0, 0
		}
		if !slices.Equal(epochs, wantEpochs) || r.TestAcc != want.TestAcc || r.TestAccBefore != want.TestAccBefore {
			t.Errorf("%v: resumed epochs %+v (acc %g/%g), uninterrupted %+v (acc %g/%g)", f, epochs, r.TestAccBefore, r.TestAcc, wantEpochs, want.TestAccBefore, want.TestAcc)
		}
		got := models.StateDict(tr.Model)
		for k, e := range wantW {
			if !slices.Equal(e.F32, got[k].F32) || !slices.Equal(e.I64, got[k].I64) {
				t.Errorf("%v: %s differs from the uninterrupted run", f, k)
			}
		}
		t.Logf("%-26v stopped at step %3d; resumed to %d: log = checkpoint, %d tensors bit-identical", f, at, tr.Step, len(got))
	}
}

// TestResumeFinishedWritesNothing: resuming a finished run (vision
// through RunDir, LM through RunLM) reports it and changes no file.
func TestResumeFinishedWritesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := visionRun(t, dir, false, nil); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	rs, err := ReadResume(filepath.Join(dir, CheckpointFile))
	if err != nil || !rs.Finished() || rs.Final == nil {
		t.Fatalf("finished checkpoint: finished %v (%v)", rs != nil && rs.Finished(), err)
	}
	r, _, err := visionRun(t, dir, true, nil)
	if err != nil || !r.NothingToDo || !r.Finished || r.TestAcc != rs.Final.TestAcc {
		t.Fatalf("resume of a finished run: %+v, %v", r, err)
	}
	if after := snapshot(t, dir); !equalSnap(before, after) {
		t.Errorf("resuming a finished run changed the directory")
	}

	ldir := t.TempDir()
	tr := lmToy(t)
	if _, err := RunLM(tr, LMRun{Validation: lmStream[:600], Dir: ldir}); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, ldir)
	tr2 := lmToy(t)
	restoreLM(t, tr2, ldir)
	res, err := RunLM(tr2, LMRun{Validation: lmStream[:600], Dir: ldir, Resumed: true})
	if err != nil || !res.NothingToDo || res.Tokens != 0 || res.TokensPerSec != 0 || len(res.Curve) != tr.Cfg.Steps {
		t.Fatalf("resume of a finished LM run: %+v, %v", res, err)
	}
	if after := snapshot(t, ldir); !equalSnap(before, after) {
		t.Errorf("resuming a finished LM run changed the directory")
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := e.Info()
		out[e.Name()] = string(b) + st.ModTime().String()
	}
	return out
}

func equalSnap(a, b map[string]string) bool {
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

// lmStream is a toy token stream for the LM runs.
var lmStream = func() []int {
	s := make([]int, 4000)
	for i := range s {
		s[i] = (i*i + 7*i) % 61
	}
	return s
}()

func lmToy(t *testing.T) *LMTrainer {
	t.Helper()
	cfg := DefaultLMConfig()
	cfg.Steps, cfg.Batch, cfg.Seq, cfg.PRepBNWarm, cfg.PRepBNDecay = 9, 2, 16, 0.2, 0.5
	m, err := models.New("lm_test_prepbn", 5)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewLMTrainer(cfg, m.(models.LM), lmStream)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func restoreLM(t *testing.T, tr *LMTrainer, dir string) {
	t.Helper()
	path := filepath.Join(dir, CheckpointFile)
	f, err := checkpoint.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Restore(f, path); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptLM is TestInterruptVision for RunLM (saving every 3 steps;
// the first atomic write of a run is its log's, the checkpoints' follow).
func TestInterruptLM(t *testing.T) {
	run := func(dir string, resume bool, ctx context.Context) (*LMResult, *LMTrainer, error) {
		tr := lmToy(t)
		if resume {
			restoreLM(t, tr, dir)
		}
		res, err := RunLM(tr, LMRun{Validation: lmStream[:600], EvalBatches: 1, Dir: dir, SaveEvery: 3, Resumed: resume, Context: ctx})
		return res, tr, err
	}
	ref := t.TempDir()
	want, wantTr, err := run(ref, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantW := models.StateDict(wantTr.Model)
	faults := []fault{
		{HookMidEpoch, 4, syscall.SIGINT}, {HookMidEpoch, 2, syscall.SIGTERM}, {HookBeforeLog, 2, syscall.SIGTERM},
		{HookBeforeTemp, 3, syscall.SIGINT}, {HookBeforeRename, 2, syscall.SIGTERM}, {HookAfterRename, 2, syscall.SIGINT},
		{HookMidEpoch, 4, 0}, {HookBeforeLog, 2, 0}, {HookBeforeTemp, 3, 0}, {HookBeforeRename, 3, 0}, {HookAfterRename, 2, 0},
	}
	for _, f := range faults {
		dir := t.TempDir()
		ctx, fired := inject(t, f, dir)
		_, _, err := run(dir, false, ctx)
		SetTestHook(nil)
		if !*fired {
			t.Fatalf("%v: never reached", f)
		}
		var ie *Interrupted
		switch {
		case f.sig != 0 && (!errors.As(err, &ie) || ie.Signal != f.sig):
			t.Fatalf("%v: RunLM returned %v, want an *Interrupted by it", f, err)
		case f.sig == 0 && !errors.Is(err, errCrash):
			t.Fatalf("%v: RunLM returned %v", f, err)
		}
		at, _ := LMStepOf(filepath.Join(dir, CheckpointFile))
		if f.sig != 0 {
			at = checkLMConsistent(t, f.String(), dir)
			if ie.Checkpoint == "" || ie.Step != at {
				t.Errorf("%v: %v (checkpoint at %d)", f, ie, at)
			}
		}
		res, tr, err := run(dir, true, nil)
		if err != nil {
			t.Fatalf("%v: resume: %v", f, err)
		}
		checkLMConsistent(t, f.String()+", resumed", dir)
		if res.ValLoss != want.ValLoss {
			t.Errorf("%v: validation loss %v, uninterrupted %v", f, res.ValLoss, want.ValLoss)
		}
		got := models.StateDict(tr.Model)
		for k, e := range wantW {
			if !slices.Equal(e.F32, got[k].F32) || !slices.Equal(e.I64, got[k].I64) {
				t.Errorf("%v: %s differs from the uninterrupted run", f, k)
			}
		}
		for i, p := range res.Curve {
			if q := want.Curve[i]; p.Step != q.Step || p.Loss != q.Loss {
				t.Errorf("%v: curve point %d is %+v, uninterrupted %+v", f, i, p, q)
			}
		}
		t.Logf("%-26v stopped at step %2d; resumed to %d: log = checkpoint, %d tensors bit-identical", f, at, tr.Step, len(got))
	}
}

// checkLMConsistent: no temporaries, and the log holds steps 1..S of the
// checkpoint at step S, once each.
func checkLMConsistent(t *testing.T, label, dir string) int64 {
	t.Helper()
	if tmp := temporaries(t, dir); len(tmp) > 0 {
		t.Errorf("%s: temporaries left: %v", label, tmp)
	}
	st, err := LMStepOf(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	pts, err := ReadLMLog(filepath.Join(dir, LogFile))
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	if int64(len(pts)) != st {
		t.Errorf("%s: checkpoint at step %d, log %d points", label, st, len(pts))
	}
	for i, p := range pts {
		if p.Step != i+1 {
			t.Fatalf("%s: log line %d is step %d", label, i, p.Step)
		}
	}
	return st
}
