package train

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
)

// RunDir is the directory of a vision training run: the checkpoint
// (ckpt.safetensors), the JSON-lines curve log (log.jsonl, steps and
// epochs) and the plot (curves.png). The log always holds what the
// checkpoint holds.
type RunDir struct {
	Dir, Checkpoint, Log, Plot string
	// Prev are the step records of the runs before a resume (for a plot
	// of the whole curve); ResumedFrom the step the run resumed at.
	Prev        []StepRecord
	ResumedFrom int64
	flushed     int
}

// OpenRunDir creates dir if needed for t's run. A resumed run cuts the
// curve log back to t.Step (dropping what was written after its
// checkpoint: a crash between checkpoint and log, or a resume from an
// older checkpoint); a fresh run starts without a log.
func OpenRunDir(dir string, t *Trainer, resumed bool) (*RunDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d := &RunDir{Dir: dir, Checkpoint: filepath.Join(dir, "ckpt.safetensors"), Log: filepath.Join(dir, "log.jsonl"),
		Plot: filepath.Join(dir, "curves.png"), ResumedFrom: t.Step}
	if !resumed {
		os.Remove(d.Log)
		return d, nil
	}
	steps, epochs, err := ReadLog(d.Log, t.Step)
	if err != nil {
		return nil, err
	}
	d.Prev = steps
	tmp := d.Log + ".tmp"
	os.Remove(tmp)
	if err := AppendLog(tmp, steps, epochs); err != nil {
		return nil, err
	}
	return d, os.Rename(tmp, d.Log)
}

// Attach makes t save into d after every epoch: the checkpoint, the
// epoch's records appended to the log, then plot (if not nil) with the
// whole curve so far, earlier runs included.
func (d *RunDir) Attach(t *Trainer, plot func(steps []StepRecord, epochs []EpochRecord) error) {
	t.OnEpoch = func(t *Trainer, rec EpochRecord) error {
		if err := t.Save(d.Checkpoint); err != nil {
			return err
		}
		if err := AppendLog(d.Log, t.Steps[d.flushed:], []EpochRecord{rec}); err != nil {
			return err
		}
		d.flushed = len(t.Steps)
		if plot == nil {
			return nil
		}
		return plot(append(d.Prev[:len(d.Prev):len(d.Prev)], t.Steps...), t.Epochs)
	}
}

// Resumed is what a training checkpoint says about its run.
type Resumed struct {
	File   *checkpoint.File
	Family *models.Family
	Model  models.Config
	Train  Config
	// Data is the JSON object of strings saved as the "data" metadata
	// (which data set, where, how much of it).
	Data map[string]string
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
}

// Run trains t (attached to d) up to step stop. A finished run is then
// re-calibrated (Cfg.Recalibrate BN passes), evaluated on the test set and
// saved again; progress lines go to w (nil: none).
func (d *RunDir) Run(t *Trainer, stop int64, w io.Writer) (*Result, error) {
	if w == nil {
		w = io.Discard
	}
	if err := t.Run(stop); err != nil {
		return nil, err
	}
	cfg := t.Model.Config()
	r := &Result{Model: models.ConfigName(cfg), Norm: cfg.NormSpec().Kind, Attn: cfg.Get("attn"), Epochs: t.Cfg.Epochs, Steps: t.Step,
		Batch: t.Cfg.Batch, ScheduleT: t.ScheduleT, Params: models.NumParams(t.Model), FLOPs: cfg.FLOPs(), Recalibrate: t.Cfg.Recalibrate,
		Checkpoint: d.Checkpoint, Log: d.Log, Plot: d.Plot, Threads: kernels.Threads(), Seed: t.Cfg.Seed, ResumedFromStep: d.ResumedFrom,
		Finished: t.Step == t.TotalSteps()}
	if n := len(t.Epochs); n > 0 {
		r.TestAcc, r.TestLoss = t.Epochs[n-1].TestAcc, t.Epochs[n-1].TestLoss
	}
	r.TestAccBefore = r.TestAcc
	if !r.Finished {
		fmt.Fprintf(w, "stopped after epoch %d of %d (--stop-epoch); continue with --resume %s\n", t.Step/t.ItersPerEpoch, t.Cfg.Epochs, d.Checkpoint)
	}
	if r.Finished && t.Cfg.Recalibrate > 0 {
		if err := t.Recalibrate(); err != nil {
			return nil, err
		}
		var err error
		if r.TestLoss, r.TestAcc, err = t.Evaluate(t.Test); err != nil {
			return nil, err
		}
		if err := t.Save(d.Checkpoint); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "after %d BN re-calibration pass(es): test accuracy %.2f%% (was %.2f%%)\n", t.Cfg.Recalibrate, 100*r.TestAcc, 100*r.TestAccBefore)
	}
	r.Lambda = models.Lambda(t.Model)
	r.TrainImgPerSec = t.ImagesPerSecond()
	r.TrainGFLOPPerS = 3 * float64(r.FLOPs) * r.TrainImgPerSec / 1e9
	r.TrainSeconds = t.TrainSeconds
	return r, nil
}
