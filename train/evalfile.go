package train

import (
	"fmt"
	"time"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// EvalOptions says what EvalClassifier evaluates.
type EvalOptions struct {
	Weights       string // slab checkpoint or weights file of a classifier
	Fuse          bool   // fold the norms first
	Dtype         string // Linear weights: f32, bf16 or int8
	Data, DataDir string // test split of this data set (OpenImages)
	Batch, Limit  int    // images per forward; first Limit images (0 = all)
	// Warn receives the checkpoint's load warnings (nil: dropped).
	Warn func([]string)
}

// EvalClassifier loads a classifier, folds and quantizes it as o asks, and
// measures its test-split accuracy. Errors about an input are
// *models.InputError values named as slab eval's flags (weights, fuse,
// dtype, data, data-dir, batch, limit).
func EvalClassifier(o EvalOptions) (*EvalResult, error) {
	switch {
	case o.Batch < 1 || o.Batch > MaxBatch:
		return nil, inputErr("batch", "must be in [1, %d], got %d", MaxBatch, o.Batch)
	case o.Limit < 0:
		return nil, inputErr("limit", "must be >= 0, got %d", o.Limit)
	}
	mm, _, warns, err := models.Load(o.Weights)
	if err != nil {
		return nil, inputErr("weights", "%v", err)
	}
	if o.Warn != nil {
		o.Warn(warns)
	}
	m, ok := mm.(models.Classifier)
	if !ok {
		return nil, inputErr("weights", "%s holds %s, a %s model, not an image classifier", o.Weights, models.ConfigName(mm.Config()), mm.Family())
	}
	if o.Fuse {
		d, err := fuse.Copy(m)
		if err != nil {
			return nil, inputErr("fuse", "%v", err)
		}
		m = d.(models.Classifier)
	}
	dt, err := Quantize(m, o.Dtype)
	if err != nil {
		return nil, err
	}
	nn.Prepack(m) // evaluation only: the weights are final
	test, err := OpenImages(o.Data, o.DataDir, "test", o.Limit)
	if err != nil {
		return nil, err
	}
	if err := CheckFits(test, m, o.Data); err != nil {
		return nil, inputErr("data", "%v", err)
	}
	if n := min(o.Batch, test.Len()); n > 0 {
		if err := models.CheckMemory(fmt.Sprintf("batch %d", n), m.Config(), n, false); err != nil {
			return nil, inputErr("batch", "%v", err)
		}
	}
	t0 := time.Now()
	loss, acc, err := Evaluate(m, test, o.Batch, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	norm := m.Config().NormSpec().Kind
	return &EvalResult{Weights: o.Weights, Model: models.ConfigName(m.Config()), Norm: norm, Fused: norm == nn.NormNone, Dtype: dt.String(), Data: o.Data,
		Images: test.Len(), Accuracy: acc, Loss: loss, Seconds: secs, ImagesPerSec: float64(test.Len()) / secs,
		Params: models.NumParams(m), FLOPs: m.Config().FLOPs(), Threads: kernels.Threads()}, nil
}
