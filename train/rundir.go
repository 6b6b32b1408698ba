package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
)

// RunDir is the directory of a vision training run: the checkpoint
// (ckpt.safetensors), the JSON-lines curve log (log.jsonl, steps and
// epochs) and the plot (curves.png). The log always holds what the
// checkpoint holds: it is appended before the checkpoint is replaced, so a
// process killed in between leaves it ahead, and the resume cuts it back.
type RunDir struct {
	Dir, Checkpoint, Log, Plot string
	// Prev are the step records of the runs before a resume (for a plot
	// of the whole curve); ResumedFrom the step the run resumed at.
	Prev        []StepRecord
	ResumedFrom int64
	flushed     int
	saved       int64 // step of the checkpoint on disk, -1 if none
	claim       *Claim
}

// OpenRunDir claims dir for t's run (ClaimRunDir: created if needed,
// locked, and refused if it holds a run a fresh run would overwrite) and
// opens it. Call Close when the run is over.
func OpenRunDir(dir string, t *Trainer, resumed bool) (*RunDir, error) {
	mode := Fresh
	if resumed {
		mode = Resume
	}
	c, err := ClaimRunDir(dir, mode, "")
	if err != nil {
		return nil, err
	}
	d, err := c.Open(t, resumed)
	if err != nil {
		c.Release()
		return nil, err
	}
	return d, nil
}

// Open starts t's run in the claimed directory. A Force claim first
// removes the run it replaces. A resumed run cuts the curve log back to
// t.Step (dropping what was written after its checkpoint: a crash between
// log and checkpoint, or a resume from an older checkpoint); a fresh run
// starts without a log.
func (c *Claim) Open(t *Trainer, resumed bool) (*RunDir, error) {
	dir := c.Dir
	hadCkpt := c.has(CheckpointFile)
	if err := c.Clear(); err != nil {
		return nil, err
	}
	d := &RunDir{Dir: dir, Checkpoint: filepath.Join(dir, CheckpointFile), Log: filepath.Join(dir, LogFile),
		Plot: filepath.Join(dir, PlotFile), ResumedFrom: t.Step, saved: -1, claim: c}
	if !resumed {
		if err := os.Remove(d.Log); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		return d, nil
	}
	if hadCkpt && c.Mode != Force {
		d.saved = t.Step // the directory's own checkpoint is the one resumed
	}
	steps, epochs, err := ReadLog(d.Log, t.Step)
	if err != nil {
		return nil, err
	}
	d.Prev = steps
	if t.final != nil {
		return d, nil // finished: Run writes nothing
	}
	err = writeAtomic(d.Log, func(w io.Writer) error { return encodeLog(w, steps, epochs) })
	return d, err
}

// Close releases the directory's lock.
func (d *RunDir) Close() { d.claim.Release() }

// save appends the records since the last save to the log (with epochs),
// then replaces the checkpoint.
func (d *RunDir) save(t *Trainer, epochs []EpochRecord) error {
	if err := hook(HookBeforeLog); err != nil {
		return err
	}
	if err := AppendLog(d.Log, t.Steps[d.flushed:], epochs); err != nil {
		return err
	}
	d.flushed = len(t.Steps)
	if err := t.Save(d.Checkpoint); err != nil {
		return err
	}
	d.saved = t.Step
	return nil
}

// Attach makes t save into d after every epoch: the epoch's records
// appended to the log, the checkpoint, then plot (if not nil) with the
// whole curve so far, earlier runs included.
func (d *RunDir) Attach(t *Trainer, plot func(steps []StepRecord, epochs []EpochRecord) error) {
	t.OnEpoch = func(t *Trainer, rec EpochRecord) error {
		if t.Step == t.TotalSteps() && t.Cfg.Recalibrate == 0 {
			t.final = &FinalEval{TestLoss: rec.TestLoss, TestAcc: rec.TestAcc, TestAccBefore: rec.TestAcc}
		}
		if err := d.save(t, []EpochRecord{rec}); err != nil {
			return err
		}
		if plot == nil {
			return nil
		}
		return plot(append(d.Prev[:len(d.Prev):len(d.Prev)], t.Steps...), t.Epochs)
	}
}

// Finished reports whether t's run is complete: trained, re-calibrated,
// evaluated and saved.
func (t *Trainer) Finished() bool { return t.final != nil && t.Step == t.TotalSteps() }

// Resumed is what a training checkpoint says about its run.
type Resumed struct {
	File   *checkpoint.File
	Family *models.Family
	Model  models.Config
	Train  Config
	// Data is the JSON object of strings saved as the "data" metadata
	// (which data set, where, how much of it).
	Data map[string]string
	// Step is the checkpoint's step, Epochs its epoch records, Final set
	// when it is a finished run.
	Step   int64
	Epochs []EpochRecord
	Final  *FinalEval
	legacy bool // no "final" key: written before runs were marked finished
}

// Finished reports whether the checkpoint is a finished run, which a
// resume leaves alone.
func (r *Resumed) Finished() bool {
	if r.Final != nil {
		return true
	}
	var n int64
	if _, err := fmt.Sscan(r.Data["train_images"], &n); err != nil || !r.legacy || r.Train.Batch < 1 || len(r.Epochs) == 0 {
		return false
	}
	return r.Step == n/int64(r.Train.Batch)*int64(r.Train.Epochs)
}

// FinishedResult is the Result of a finished run's checkpoint at path,
// what a resume of it reports without training.
func (r *Resumed) FinishedResult(path string) *Result {
	c := r.Model
	dir := filepath.Dir(path)
	res := &Result{Model: models.ConfigName(c), Norm: c.NormSpec().Kind, Attn: c.Get("attn"), Data: r.Data["data"],
		Epochs: r.Train.Epochs, Steps: r.Step, Batch: r.Train.Batch, Recalibrate: r.Train.Recalibrate, Seed: r.Train.Seed,
		FLOPs: c.FLOPs(), Finished: true, NothingToDo: true, Checkpoint: path, ResumedFromStep: r.Step,
		Log: filepath.Join(dir, LogFile), Plot: filepath.Join(dir, PlotFile), Threads: kernels.Threads()}
	if f := r.Final; f != nil {
		res.TestLoss, res.TestAcc, res.TestAccBefore = f.TestLoss, f.TestAcc, f.TestAccBefore
	} else if n := len(r.Epochs); n > 0 {
		res.TestLoss, res.TestAcc, res.TestAccBefore = r.Epochs[n-1].TestLoss, r.Epochs[n-1].TestAcc, r.Epochs[n-1].TestAcc
	}
	return res
}

// ReadResume reads a training checkpoint to resume its run.
func ReadResume(path string) (*Resumed, error) {
	f, err := checkpoint.Read(path)
	if err != nil {
		return nil, err
	}
	r := &Resumed{File: f, Data: map[string]string{}}
	if r.Family, r.Model, err = models.ConfigOf(f, path); err != nil {
		return nil, err
	}
	if r.Train, err = TrainConfigOf(f, path); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(f.Metadata["data"]), &r.Data); err != nil {
		return nil, fmt.Errorf("%s: damaged data metadata: %v", path, err)
	}
	var st trainState
	if err := json.Unmarshal([]byte(f.Metadata["state"]), &st); err != nil {
		return nil, fmt.Errorf("%s: damaged state metadata: %v", path, err)
	}
	if s := f.Metadata["epochs"]; s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &r.Epochs); err != nil {
			return nil, fmt.Errorf("%s: damaged epochs metadata: %w", path, err)
		}
	}
	r.Step, r.Final, r.legacy = st.Step, st.Final, !strings.Contains(f.Metadata["state"], `"final"`)
	return r, nil
}

// Result summarises a vision training run: the JSON of slab train. Run
// fills everything but Data and WallSeconds.
type Result struct {
	Model           string  `json:"model"`
	Norm            string  `json:"norm"`
	Attn            string  `json:"attn"`
	Data            string  `json:"data"`
	Epochs          int     `json:"epochs"`
	Steps           int64   `json:"steps"`
	Batch           int     `json:"batch"`
	ScheduleT       int64   `json:"schedule_t"`
	Params          int64   `json:"params"`
	FLOPs           int64   `json:"flops_per_image"`
	TestAcc         float64 `json:"test_acc"`
	TestLoss        float64 `json:"test_loss"`
	TestAccBefore   float64 `json:"test_acc_before_recalibration"`
	Finished        bool    `json:"finished"`
	Recalibrate     int     `json:"recalibrate_passes"`
	Lambda          float64 `json:"lambda_final"`
	TrainImgPerSec  float64 `json:"train_images_per_s"`
	TrainGFLOPPerS  float64 `json:"train_gflop_per_s"`
	TrainSeconds    float64 `json:"train_seconds"`
	WallSeconds     float64 `json:"wall_seconds"`
	Checkpoint      string  `json:"checkpoint"`
	Log             string  `json:"log"`
	Plot            string  `json:"plot"`
	Threads         int     `json:"threads"`
	Seed            uint64  `json:"seed"`
	ResumedFromStep int64   `json:"resumed_from_step"`
	// NothingToDo is set when the run was already finished: a resume of
	// it trains and writes nothing.
	NothingToDo bool `json:"nothing_to_do,omitempty"`
}

// Run trains t (attached to d) up to step stop. A finished run is then
// re-calibrated (Cfg.Recalibrate BN passes), evaluated on the test set and
// saved again, marked finished; progress lines go to w (nil: none). A run
// that was finished already is left alone (Result.NothingToDo). When
// t.Context is cancelled, Run saves the run at the step it stopped at
// (log, then checkpoint) and returns an *Interrupted naming the
// checkpoint.
func (d *RunDir) Run(t *Trainer, stop int64, w io.Writer) (*Result, error) {
	if w == nil {
		w = io.Discard
	}
	r := d.result(t)
	if t.Finished() {
		fmt.Fprintf(w, "%s is a finished run (%d epochs, test accuracy %.2f%%): nothing to do\n", d.Checkpoint, t.Cfg.Epochs, 100*t.final.TestAcc)
		r.TestLoss, r.TestAcc, r.TestAccBefore, r.NothingToDo = t.final.TestLoss, t.final.TestAcc, t.final.TestAccBefore, true
		return r, nil
	}
	if err := t.Run(stop); err != nil {
		if errors.Is(err, ErrInterrupted) {
			return nil, d.interrupted(t, err)
		}
		return nil, err
	}
	r = d.result(t)
	if !r.Finished {
		fmt.Fprintf(w, "stopped after epoch %d of %d (--stop-epoch); continue with --resume %s\n", t.Step/t.ItersPerEpoch, t.Cfg.Epochs, d.Checkpoint)
	}
	if r.Finished && t.final == nil {
		if err := hook(HookBeforeRecal); err != nil {
			return nil, err
		}
		if err := interrupted(t.Context, t.Step, d.Checkpoint); err != nil {
			return nil, err
		}
		if t.Cfg.Recalibrate > 0 {
			if err := t.Recalibrate(); err != nil {
				return nil, err
			}
		}
		var err error
		if r.TestLoss, r.TestAcc, err = t.Evaluate(t.Test); err != nil {
			return nil, err
		}
		// Interrupted during the re-calibration: the checkpoint is the
		// trained, un-re-calibrated run, which a resume re-calibrates alike.
		if err := interrupted(t.Context, t.Step, d.Checkpoint); err != nil {
			return nil, err
		}
		t.final = &FinalEval{TestLoss: r.TestLoss, TestAcc: r.TestAcc, TestAccBefore: r.TestAccBefore}
		if err := t.Save(d.Checkpoint); err != nil {
			return nil, err
		}
		d.saved = t.Step
		if t.Cfg.Recalibrate > 0 {
			fmt.Fprintf(w, "after %d BN re-calibration pass(es): test accuracy %.2f%% (was %.2f%%)\n", t.Cfg.Recalibrate, 100*r.TestAcc, 100*r.TestAccBefore)
		}
	} else if t.final != nil {
		r.TestLoss, r.TestAcc, r.TestAccBefore = t.final.TestLoss, t.final.TestAcc, t.final.TestAccBefore
	}
	return r, nil
}

// interrupted saves a run stopped by its context at a step not yet saved
// (records since the last save to the log, then the checkpoint) and
// returns the *Interrupted that names the checkpoint.
func (d *RunDir) interrupted(t *Trainer, err error) error {
	var ie *Interrupted
	if !errors.As(err, &ie) {
		return err
	}
	ie.Step = t.Step
	if t.Step != d.saved && t.Step > 0 {
		if serr := d.save(t, nil); serr != nil {
			return fmt.Errorf("%v; saving the run at step %d failed: %w", ie, t.Step, serr)
		}
	}
	if d.saved >= 0 {
		ie.Checkpoint = d.Checkpoint
	}
	return ie
}

// result is what Run reports of t so far.
func (d *RunDir) result(t *Trainer) *Result {
	cfg := t.Model.Config()
	r := &Result{Model: models.ConfigName(cfg), Norm: cfg.NormSpec().Kind, Attn: cfg.Get("attn"), Epochs: t.Cfg.Epochs, Steps: t.Step,
		Batch: t.Cfg.Batch, ScheduleT: t.ScheduleT, Params: models.NumParams(t.Model), FLOPs: cfg.FLOPs(), Recalibrate: t.Cfg.Recalibrate,
		Checkpoint: d.Checkpoint, Log: d.Log, Plot: d.Plot, Threads: kernels.Threads(), Seed: t.Cfg.Seed, ResumedFromStep: d.ResumedFrom,
		Finished: t.Step == t.TotalSteps()}
	if n := len(t.Epochs); n > 0 {
		r.TestAcc, r.TestLoss = t.Epochs[n-1].TestAcc, t.Epochs[n-1].TestLoss
	}
	r.TestAccBefore = r.TestAcc
	r.Lambda = models.Lambda(t.Model)
	r.TrainImgPerSec = t.ImagesPerSecond()
	r.TrainGFLOPPerS = 3 * float64(r.FLOPs) * r.TrainImgPerSec / 1e9
	r.TrainSeconds = t.TrainSeconds
	return r
}
