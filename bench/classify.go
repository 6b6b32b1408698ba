package bench

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Classifier is one model variant of Classify.
type Classifier struct {
	Name  string
	Model models.Classifier
	Fused bool
	// Dtype names the Linear weights' dtype of this variant ("" = f32) and
	// Quant is the model's state for it (ClassifiersWithDtypes), installed
	// before each of its runs.
	Dtype string
	Quant nn.QuantSet
	// ActBytes is the model's measured buffers per image
	// (models.ActivationBytes; 0 = not measured: the memory check
	// estimates them).
	ActBytes int64
}

// ClassifyOptions say what Classify times.
type ClassifyOptions struct {
	Batch int // images per forward
	// Size is the input side the models were built for (0 = their own);
	// it is only recorded in the result.
	Size           int
	Rounds, Warmup int // timed and untimed rounds
	Seed           uint64
}

// ClassifyRow is one model variant of slab bench.
type ClassifyRow struct {
	Model        string  `json:"model"`
	Batch        int     `json:"batch"`
	MedianMS     float64 `json:"median_ms"`
	P90MS        float64 `json:"p90_ms"`
	ImagesPerSec float64 `json:"images_per_s"`
	// TimeRatio is median_ms over the first model's median_ms (< 1:
	// faster than the first); SpeedRatio its inverse, in images/s.
	TimeRatio  float64 `json:"time_ratio_to_first"`
	SpeedRatio float64 `json:"speed_ratio_to_first"`
	GFLOPs     float64 `json:"gflop_per_s"`
	Fused      bool    `json:"fused"`
	Dtype      string  `json:"dtype"` // of the Linear weights: f32, bf16 or int8
}

// ClassifyResult is the JSON of slab bench.
type ClassifyResult struct {
	Batch   int           `json:"batch"`
	Size    int           `json:"size"`
	Rounds  int           `json:"rounds"`
	Threads int           `json:"threads"`
	Results []ClassifyRow `json:"results"`
}

// Classify times eval-mode forwards of every classifier on one random
// batch per input shape, interleaved: each round runs every model once,
// in order. Ratios are to the first model.
func Classify(cs []Classifier, o ClassifyOptions) (*ClassifyResult, error) {
	if len(cs) == 0 || o.Batch < 1 || o.Rounds < 1 || o.Warmup < 0 {
		return nil, fmt.Errorf("bench: %d models, batch %d, %d rounds, %d warm-up rounds", len(cs), o.Batch, o.Rounds, o.Warmup)
	}
	if err := checkMemory(cs, o.Batch); err != nil {
		return nil, err
	}
	inputs := map[[3]int]*tensor.Tensor{}
	for _, v := range cs {
		c, h, w := v.Model.InputShape()
		key := [3]int{c, h, w}
		if inputs[key] == nil {
			x := tensor.New(o.Batch, c, h, w)
			r := rand.New(rand.NewPCG(o.Seed, 3))
			for i := range x.Data {
				x.Data[i] = float32(r.NormFloat64())
			}
			inputs[key] = x
		}
	}
	times := make([][]float64, len(cs))
	for round := 0; round < o.Warmup+o.Rounds; round++ {
		for i, v := range cs {
			c, h, w := v.Model.InputShape()
			x := inputs[[3]int{c, h, w}]
			if v.Quant != nil {
				nn.SetQuant(v.Model, v.Quant)
			}
			t0 := time.Now()
			if _, err := v.Model.Forward(x, nn.Eval); err != nil {
				return nil, fmt.Errorf("bench: %s: %w", v.Name, err)
			}
			if round >= o.Warmup {
				times[i] = append(times[i], float64(time.Since(t0).Nanoseconds())/1e6)
			}
		}
	}
	res := &ClassifyResult{Batch: o.Batch, Size: o.Size, Rounds: o.Rounds, Threads: kernels.Threads()}
	for i, v := range cs {
		slices.Sort(times[i])
		med := Quantile(times[i], 0.5)
		res.Results = append(res.Results, ClassifyRow{Model: v.Name, Batch: o.Batch, MedianMS: med, P90MS: Quantile(times[i], 0.9),
			ImagesPerSec: float64(o.Batch) / (med / 1e3), Fused: v.Fused, Dtype: cmp.Or(v.Dtype, "f32"),
			GFLOPs: float64(v.Model.Config().FLOPs()) * float64(o.Batch) / (med / 1e3) / 1e9})
	}
	for i := range res.Results {
		res.Results[i].TimeRatio = res.Results[i].MedianMS / res.Results[0].MedianMS
		res.Results[i].SpeedRatio = res.Results[0].MedianMS / res.Results[i].MedianMS
	}
	return res, nil
}

// RandomizeBuffers gives BatchNorm running statistics and RepBN scalars
// plausible non-trivial values (mean ~N(0, 0.1), var in [0.5, 1.5]), as in
// a trained model, so that folding them is not trivial.
func RandomizeBuffers(m models.Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 4))
	for _, b := range m.Buffers() {
		if b.F == nil {
			continue
		}
		isVar := strings.HasSuffix(b.Name, "running_var")
		for i := range b.F.Data {
			if isVar {
				b.F.Data[i] = float32(0.5 + r.Float64())
			} else {
				b.F.Data[i] = float32(0.1 * r.NormFloat64())
			}
		}
	}
}

// checkMemory refuses a batch whose activations, over every model timed
// (each holds its own buffers; dtype variants share their model's), would
// not fit in the memory available: measured buffers where Classifiers
// measured them (the weights are then in memory already), the estimate
// otherwise.
func checkMemory(cs []Classifier, batch int) error {
	var need models.Footprint
	seen := map[models.Classifier]bool{}
	for _, v := range cs {
		if seen[v.Model] {
			continue
		}
		seen[v.Model] = true
		if v.ActBytes > 0 {
			need.Activations += v.ActBytes * int64(batch)
			continue
		}
		f := models.Estimate(v.Model.Config(), batch, false)
		need.Weights += f.Weights
		need.Activations += f.Activations
	}
	c, h, w := cs[0].Model.InputShape()
	return models.CheckFits(fmt.Sprintf("timing %d models (folded copies included) at batch %d of %dx%dx%d images", len(cs), batch, c, h, w), need)
}
