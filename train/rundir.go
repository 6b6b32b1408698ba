package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

// RunDir is the directory of a vision training run: the checkpoint
// (ckpt.safetensors), the JSON-lines curve log (log.jsonl, steps and
// epochs) and the plot (curves.png). The log always holds what the
// checkpoint holds.
type RunDir struct {
	Dir, Checkpoint, Log, Plot string
	// Prev are the step records of the runs before a resume (for a plot
	// of the whole curve).
	Prev    []StepRecord
	flushed int
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
		Plot: filepath.Join(dir, "curves.png")}
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
