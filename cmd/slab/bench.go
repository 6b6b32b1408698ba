package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

func init() {
	register(&command{Name: "bench", Summary: "inference latency of several models, interleaved round by round", Run: runCmd(cmdBench)})
}

// benchRow is one model variant of slab bench.
type benchRow struct {
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
}

// benchResult is the JSON of slab bench.
type benchResult struct {
	Batch   int        `json:"batch"`
	Size    int        `json:"size"`
	Rounds  int        `json:"rounds"`
	Threads int        `json:"threads"`
	Results []benchRow `json:"results"`
}

type benchVariant struct {
	name  string
	m     models.Classifier
	fused bool
	times []float64
}

func cmdBench(args []string) error {
	fs := newFlags("bench", "bench --models a,b,... [--batch N] [--size S] [--rounds R] [--warmup W] [--threads T] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	names := fs.String("models", "", "comma-separated registry names (see slab models); ratios are relative to the first")
	batch := fs.Int("batch", 1, "images per forward")
	size := fs.Int("size", 0, "input side (0 = each model's own)")
	rounds := fs.Int("rounds", 30, "timed rounds; each round runs every model once, in order")
	warmup := fs.Int("warmup", 3, "untimed rounds first")
	threads := fs.Int("threads", 0, "threads (0 = all cores)")
	seed := fs.Uint64("seed", 0, "seed of the random weights and input")
	prepack := fs.Bool("prepack", true, "pack Linear weights once (nn.Prepack), as slab eval and classify do")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	switch {
	case *names == "":
		return flagErr("models", "is required (e.g. --models slab_deit_tiny,deit_tiny)")
	case *batch < 1:
		return flagErr("batch", "must be >= 1, got %d", *batch)
	case *size < 0:
		return flagErr("size", "must be >= 0, got %d", *size)
	case *rounds < 1:
		return flagErr("rounds", "must be >= 1, got %d", *rounds)
	case *warmup < 0:
		return flagErr("warmup", "must be >= 0, got %d", *warmup)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	var vs []*benchVariant
	for _, name := range strings.Split(*names, ",") {
		name = strings.TrimSpace(name)
		sz := ""
		if *size > 0 {
			sz = fmt.Sprint(*size)
		}
		e, cfg, err := resolveModel(name, map[string]string{"size": sz})
		if err != nil {
			if strings.HasPrefix(err.Error(), "flag --model") {
				return flagErr("models", "%v", errors.Unwrap(err))
			}
			return err
		}
		if e.Family.Task != models.TaskClassify {
			return flagErr("models", "%s is a %s model; slab bench times image classifiers (see slab bench-lm)", name, e.Family.Task)
		}
		mm, err := models.Build(e.Family, cfg, *seed)
		if err != nil {
			return err
		}
		m := mm.(models.Classifier)
		if !foldable(cfg) {
			vs = append(vs, &benchVariant{name: name, m: m})
			continue
		}
		// Running statistics other than 0/1 make the fold non-trivial, as
		// in a trained model.
		randomizeBuffers(m, *seed)
		d, err := foldCopy(m)
		if err != nil {
			return err
		}
		vs = append(vs, &benchVariant{name: name, m: d, fused: true}, &benchVariant{name: name + "/unfused", m: m})
	}
	if *prepack {
		for _, v := range vs {
			nn.Prepack(v.m)
		}
	}
	inputs := map[[3]int]*tensor.Tensor{}
	for _, v := range vs {
		c, h, w := v.m.InputShape()
		key := [3]int{c, h, w}
		if inputs[key] == nil {
			x := tensor.New(*batch, c, h, w)
			r := rand.New(rand.NewPCG(*seed, 3))
			for i := range x.Data {
				x.Data[i] = float32(r.NormFloat64())
			}
			inputs[key] = x
		}
	}
	for round := 0; round < *warmup+*rounds; round++ {
		for _, v := range vs {
			c, h, w := v.m.InputShape()
			x := inputs[[3]int{c, h, w}]
			t0 := time.Now()
			if _, err := v.m.Forward(x, nn.Eval); err != nil {
				return err
			}
			if round >= *warmup {
				v.times = append(v.times, float64(time.Since(t0).Nanoseconds())/1e6)
			}
		}
	}
	res := benchResult{Batch: *batch, Size: *size, Rounds: *rounds, Threads: kernels.Threads()}
	for _, v := range vs {
		slices.Sort(v.times)
		med := quantile(v.times, 0.5)
		row := benchRow{Model: v.name, Batch: *batch, MedianMS: med, P90MS: quantile(v.times, 0.9),
			ImagesPerSec: float64(*batch) / (med / 1e3), Fused: v.fused,
			GFLOPs: float64(v.m.Config().FLOPs()) * float64(*batch) / (med / 1e3) / 1e9}
		res.Results = append(res.Results, row)
	}
	for i := range res.Results {
		res.Results[i].TimeRatio = res.Results[i].MedianMS / res.Results[0].MedianMS
		res.Results[i].SpeedRatio = res.Results[0].MedianMS / res.Results[i].MedianMS
	}
	if *jsonOut {
		return emitJSON(res)
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "batch %d, %d rounds interleaved (+%d warm-up), %d threads\n", *batch, *rounds, *warmup, res.Threads)
	fmt.Fprintln(w, "model\tmedian ms\tp90 ms\timages/s\tGFLOP/s\ttime / first\t")
	for _, r := range res.Results {
		fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.1f\t%.1f\t%.3f\t\n", r.Model, r.MedianMS, r.P90MS, r.ImagesPerSec, r.GFLOPs, r.TimeRatio)
	}
	return w.Flush()
}

// quantile of sorted xs by linear interpolation.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	p := q * float64(len(xs)-1)
	i := int(p)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (p-float64(i))*(xs[i+1]-xs[i])
}

// randomizeBuffers gives BatchNorm running statistics and RepBN scalars
// plausible non-trivial values (mean ~N(0, 0.1), var in [0.5, 1.5]).
func randomizeBuffers(m models.Model, seed uint64) {
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
