package train

import (
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
)

// A run directory's log holds what its checkpoint holds: a resume from an
// older checkpoint drops the records written after it, the plot sees the
// whole curve (earlier runs included), and Run reports a finished run.
func TestRunDirResume(t *testing.T) {
	dir := t.TempDir()
	var plotted []int
	plot := func(steps []StepRecord, epochs []EpochRecord) error {
		plotted = append(plotted, len(steps))
		return nil
	}
	tr := toyTrainer(t, 5) // 12 steps per epoch, 3 epochs
	d, err := OpenRunDir(dir, tr, false)
	if err != nil {
		t.Fatal(err)
	}
	d.Attach(tr, plot)
	res, err := d.Run(tr, 24, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps, epochs, err := ReadLog(d.Log, 1<<62)
	if err != nil || len(steps) != 24 || len(epochs) != 2 || res.Finished || res.Steps != 24 {
		t.Fatalf("after 2 epochs: %d steps, %d epochs logged (%v); result %+v", len(steps), len(epochs), err, res)
	}
	// An older checkpoint, at the end of epoch 1.
	old := toyTrainer(t, 5)
	if err := old.Run(12); err != nil {
		t.Fatal(err)
	}
	oldPath := filepath.Join(t.TempDir(), "old.safetensors")
	if err := old.Save(oldPath); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Read(oldPath)
	if err != nil {
		t.Fatal(err)
	}
	re := toyTrainer(t, 5)
	if err := re.Restore(f, oldPath); err != nil {
		t.Fatal(err)
	}
	d.Close() // as the first run's process would have ended
	d2, err := OpenRunDir(dir, re, true)
	if err != nil {
		t.Fatal(err)
	}
	if steps, epochs, _ = ReadLog(d2.Log, 1<<62); len(steps) != 12 || len(epochs) != 1 || len(d2.Prev) != 12 || d2.ResumedFrom != 12 {
		t.Fatalf("resumed at 12: log has %d steps, %d epochs; Prev %d, ResumedFrom %d", len(steps), len(epochs), len(d2.Prev), d2.ResumedFrom)
	}
	d2.Attach(re, plot)
	if res, err = d2.Run(re, re.TotalSteps(), nil); err != nil {
		t.Fatal(err)
	}
	steps, epochs, _ = ReadLog(d2.Log, 1<<62)
	if !res.Finished || len(steps) != 36 || len(epochs) != 3 || res.ResumedFromStep != 12 || plotted[len(plotted)-1] != 36 {
		t.Fatalf("finished: %d steps, %d epochs logged, plots %v, result %+v", len(steps), len(epochs), plotted, res)
	}
	for i, s := range steps {
		if s.Step != int64(i+1) {
			t.Fatalf("log step %d is step %d: records out of order or repeated", i, s.Step)
		}
	}
}
