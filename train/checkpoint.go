package train

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

// Checkpoint layout (safetensors, package checkpoint):
//
//   - every parameter and buffer under its official state-dict name
//     (docs/method.md 4.6), so a training checkpoint is also a weights file;
//     integer buffers (iter, total_step, warm, num_batches_tracked) as I64;
//   - AdamW moments as "optim.exp_avg.<name>" and "optim.exp_avg_sq.<name>";
//   - metadata: "format", "model_config" (the model's JSON config, opaque
//     here), "train_config" (Config), "state" (trainState) and "epochs"
//     (the per-epoch curve).
const (
	// FormatTrain marks a checkpoint written by Trainer.Save.
	FormatTrain = "slab-train/1"
	// FormatWeights marks a weights-only file (e.g. a folded model).
	FormatWeights = models.FormatWeights
	optimPrefix   = models.OptimPrefix
)

// trainState is the scalar state of a run, stored as JSON metadata.
type trainState struct {
	Step         int64    `json:"step"`
	Epoch        int      `json:"epoch"` // completed epochs
	OptimSteps   int64    `json:"optim_steps"`
	ScheduleT    int64    `json:"schedule_t"`
	Sched        Schedule `json:"lr_schedule"`
	RNG          string   `json:"rng"` // base64 of the PCG's MarshalBinary
	TrainSeconds float64  `json:"train_seconds"`
	TrainImages  int64    `json:"train_images"`
	// The running sums of the epoch in progress, so that a run saved
	// mid-epoch (an interrupt) logs the same epoch record when resumed.
	EpochLoss   float64 `json:"epoch_loss,omitempty"`
	EpochHits   int64   `json:"epoch_hits,omitempty"`
	EpochImages int64   `json:"epoch_images,omitempty"`
	// Final is set once the run is complete (re-calibrated and evaluated);
	// a resume of it has nothing to do. Always written (null until then):
	// a checkpoint without the key predates it.
	Final *FinalEval `json:"final"`
}

// FinalEval is the last evaluation of a finished vision run.
type FinalEval struct {
	TestLoss      float64 `json:"test_loss"`
	TestAcc       float64 `json:"test_acc"`
	TestAccBefore float64 `json:"test_acc_before_recalibration"`
}

// Save writes the complete training state to path atomically (temp file and
// rename); the model's family and config are stored as metadata so that the
// checkpoint alone rebuilds the model (models.Load).
func (t *Trainer) Save(path string) error {
	rng, err := t.RNG.MarshalBinary()
	if err != nil {
		return fmt.Errorf("saving %s: rng state: %w", path, err)
	}
	st := trainState{
		Step: t.Step, Epoch: int(t.Step / t.ItersPerEpoch), OptimSteps: t.Opt.Steps,
		ScheduleT: t.ScheduleT, Sched: t.Sched, RNG: base64.StdEncoding.EncodeToString(rng),
		TrainSeconds: t.TrainSeconds, TrainImages: t.TrainImages,
		EpochLoss: t.epLoss, EpochHits: t.epHits, EpochImages: t.epImages, Final: t.final,
	}
	return saveTraining(path, t.Model, t.Opt, t.Meta, map[string]any{"train_config": t.Cfg, "state": st, "epochs": t.Epochs})
}

// saveTraining is the one checkpoint writer of both trainers: the model
// (models.WeightsFile: every parameter and buffer, family and config), the
// AdamW moments, and the given metadata, each value JSON-encoded.
func saveTraining(path string, m models.Model, opt *AdamW, meta map[string]string, js map[string]any) error {
	all := map[string]string{}
	for k, v := range meta {
		all[k] = v
	}
	for k, v := range js {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("saving %s: %s: %w", path, k, err)
		}
		all[k] = string(b)
	}
	f, err := models.WeightsFile(m, all)
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	f.Metadata["format"] = FormatTrain
	for i, p := range opt.Params() {
		f.Tensors[optimPrefix+"exp_avg."+p.Name] = &checkpoint.Entry{DType: "F32", Shape: append([]int{}, p.W.Shape...), F32: append([]float32(nil), opt.M[i]...)}
		f.Tensors[optimPrefix+"exp_avg_sq."+p.Name] = &checkpoint.Entry{DType: "F32", Shape: append([]int{}, p.W.Shape...), F32: append([]float32(nil), opt.V[i]...)}
	}
	return writeCheckpoint(path, f)
}

// restoreTraining is the one checkpoint reader of both trainers: it checks
// the format, decodes the "state" metadata into state, and loads the model
// weights and the AdamW moments (after every check has passed).
func restoreTraining(f *checkpoint.File, path string, m models.Model, opt *AdamW, state any) error {
	if f.Metadata["format"] != FormatTrain {
		return fmt.Errorf("%s: not a slab training checkpoint (format %q)", path, f.Metadata["format"])
	}
	if err := json.Unmarshal([]byte(f.Metadata["state"]), state); err != nil {
		return fmt.Errorf("%s: damaged state metadata: %w", path, err)
	}
	for i, p := range opt.Params() {
		for _, part := range []struct {
			key string
			dst []float32
		}{{"exp_avg.", opt.M[i]}, {"exp_avg_sq.", opt.V[i]}} {
			e, ok := f.Tensors[optimPrefix+part.key+p.Name]
			if !ok || len(e.F32) != len(part.dst) {
				return fmt.Errorf("%s: missing or mis-shaped optimizer state %q", path, optimPrefix+part.key+p.Name)
			}
		}
	}
	if err := loadExact(f, path, m); err != nil {
		return err
	}
	for i, p := range opt.Params() {
		copy(opt.M[i], f.Tensors[optimPrefix+"exp_avg."+p.Name].F32)
		copy(opt.V[i], f.Tensors[optimPrefix+"exp_avg_sq."+p.Name].F32)
	}
	if err := opt.checkState(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// TrainConfigOf returns the training recipe stored in a training checkpoint.
func TrainConfigOf(f *checkpoint.File, path string) (Config, error) {
	var c Config
	if f.Metadata["format"] != FormatTrain {
		return c, fmt.Errorf("%s: not a slab training checkpoint (format %q)", path, f.Metadata["format"])
	}
	if err := json.Unmarshal([]byte(f.Metadata["train_config"]), &c); err != nil {
		return c, fmt.Errorf("%s: damaged train_config metadata: %w", path, err)
	}
	return c, nil
}

// Restore loads the state written by Save into a Trainer built by
// NewTrainer for the same model and recipe, so that training continues bit
// for bit as if it had never stopped.
func (t *Trainer) Restore(f *checkpoint.File, path string) error {
	var st trainState
	var eps []EpochRecord
	if s := f.Metadata["epochs"]; s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &eps); err != nil {
			return fmt.Errorf("%s: damaged epochs metadata: %w", path, err)
		}
	}
	if f.Metadata["format"] == FormatTrain {
		if err := json.Unmarshal([]byte(f.Metadata["state"]), &st); err != nil {
			return fmt.Errorf("%s: damaged state metadata: %w", path, err)
		}
		if st.Step < 0 || st.Step > t.TotalSteps() {
			return fmt.Errorf("%s: step %d outside this run's %d steps", path, st.Step, t.TotalSteps())
		}
	}
	rng, err := base64.StdEncoding.DecodeString(st.RNG)
	var probe rand.PCG
	if err == nil && f.Metadata["format"] == FormatTrain {
		err = probe.UnmarshalBinary(rng)
	}
	if err != nil {
		return fmt.Errorf("%s: damaged rng state: %w", path, err)
	}
	if err := restoreTraining(f, path, t.Model, t.Opt, &st); err != nil {
		return err
	}
	if err := t.RNG.UnmarshalBinary(rng); err != nil {
		return fmt.Errorf("%s: damaged rng state: %w", path, err)
	}
	t.Step, t.Opt.Steps, t.ScheduleT, t.Sched = st.Step, st.OptimSteps, st.ScheduleT, st.Sched
	t.TrainSeconds, t.TrainImages = st.TrainSeconds, st.TrainImages
	t.epLoss, t.epHits, t.epImages = st.EpochLoss, st.EpochHits, st.EpochImages
	t.Epochs = eps
	t.final = st.Final
	if t.final == nil && st.Step == t.TotalSteps() && !strings.Contains(f.Metadata["state"], `"final"`) && len(eps) > 0 {
		// Written before runs were marked finished: its last save came
		// after the re-calibration, so it is complete.
		e := eps[len(eps)-1]
		t.final = &FinalEval{TestLoss: e.TestLoss, TestAcc: e.TestAcc, TestAccBefore: e.TestAcc}
	}
	t.permEp = -1
	return nil
}

// loadExact loads a training checkpoint's weights into m: every parameter
// and buffer under its own name, nothing else but optimizer state (a
// resume must continue the very run that was saved, so no layout aliases
// apply).
func loadExact(f *checkpoint.File, path string, m models.Model) error {
	want := map[string]bool{}
	for _, p := range m.Params() {
		want[p.Name] = true
	}
	for _, b := range m.Buffers() {
		want[b.Name] = true
	}
	state := map[string]*checkpoint.Entry{}
	for k, e := range f.Tensors {
		if strings.HasPrefix(k, optimPrefix) {
			continue
		}
		if !want[k] {
			return fmt.Errorf("%s: tensor %q is not part of this model (was the file written for another model or norm?)", path, k)
		}
		state[k] = e
	}
	if len(state) != len(want) {
		for k := range want {
			if _, ok := state[k]; !ok {
				return fmt.Errorf("%s: missing %q", path, k)
			}
		}
	}
	if _, err := models.LoadState(m, state); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
