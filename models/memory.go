package models

import (
	"fmt"
	"runtime"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/sysmem"
	"github.com/slabml/slab/tensor"
)

// ActivationCounter is implemented by configs that count their activation
// memory. Activations is the number of float32 values a forward keeps per
// input (an image for classifiers, a token at full context for language
// models) in the layers' own buffers: outputs kept for backward,
// attention maps, im2col and MLP hidden states, rounded up.
type ActivationCounter interface {
	Activations() int64
}

// SeqActivationCounter is implemented by language-model configs whose
// activations per token depend on the sequence length (attention scores):
// ActivationsAt is Activations for sequences of seq tokens.
type SeqActivationCounter interface {
	ActivationsAt(seq int) int64
}

// Footprint is what a model needs in memory, in bytes, rounded up: a
// guard against requests that cannot fit, not a measurement.
type Footprint struct {
	// Weights is parameters and their gradients (Build allocates both),
	// and in training AdamW's two moments.
	Weights int64
	// Activations is the layer buffers of a forward (and in training its
	// backward) of the inputs asked for.
	Activations int64
}

// Total is Weights + Activations.
func (f Footprint) Total() int64 { return f.Weights + f.Activations }

// Estimate is the memory a model of cfg needs to run n inputs at once (n
// images for classifiers, n tokens for language models; 0 for the weights
// alone), for training when train is set. Configs that do not implement
// ActivationCounter are charged one float per 16 FLOPs per input, which
// is generous for narrow models. Products are computed in float64 and
// capped, so no config in bounds overflows.
func Estimate(cfg Config, n int, train bool) Footprint {
	const f32 = 4
	params := float64(cfg.ParamCount())
	w := params * f32 * 2 // value and gradient (a checkpoint being loaded is already in memory)
	if train {
		w += params * f32 * 2
	}
	per := float64(cfg.FLOPs()) / 16
	if ac, ok := cfg.(ActivationCounter); ok {
		per = float64(ac.Activations())
	}
	a := per * float64(max(n, 0)) * f32
	if train {
		a *= 2 // gradients of the activations
	}
	return Footprint{Weights: capBytes(w), Activations: capBytes(a)}
}

// EstimateLM is Estimate for a language model running batch sequences
// of seq tokens, with attention charged for seq tokens rather than the
// full context when the config implements SeqActivationCounter.
func EstimateLM(cfg Config, batch, seq int, train bool) Footprint {
	f := Estimate(cfg, batch*seq, train)
	if sc, ok := cfg.(SeqActivationCounter); ok {
		a := float64(sc.ActivationsAt(seq)) * float64(max(batch*seq, 0)) * 4
		if train {
			a *= 2
		}
		f.Activations = capBytes(a)
	}
	return f
}

func capBytes(b float64) int64 {
	const most = 1 << 62
	if b > most || b != b {
		return most
	}
	return int64(b)
}

// MemoryError says a request would need more memory than is available.
type MemoryError struct {
	// What describes the request ("slab_deit_mini_28 at batch 1000000").
	What      string
	Need      Footprint
	Available sysmem.Memory
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("%s needs about %s (weights %s, activations %s) but %s is available",
		e.What, sysmem.Bytes(e.Need.Total()), sysmem.Bytes(e.Need.Weights), sysmem.Bytes(e.Need.Activations), e.Available)
}

// CheckFits refuses need when it exceeds the memory available
// (sysmem.Available; the check is skipped where that is unknown). what
// describes the request for the message.
func CheckFits(what string, need Footprint) error {
	avail, err := sysmem.Available()
	if err != nil {
		return err
	}
	if avail.Known && need.Total() > avail.Bytes {
		return &MemoryError{What: what, Need: need, Available: avail}
	}
	return nil
}

// CheckMemory refuses to run a model of cfg on n inputs at once (see
// Estimate) when that would not fit in the memory available, with an error
// saying what was asked (what, e.g. "batch 1000000"), what it needs and
// what is available.
func CheckMemory(what string, cfg Config, n int, train bool) error {
	name := ConfigName(cfg)
	if what != "" {
		name += " at " + what
	}
	return CheckFits(name, Estimate(cfg, n, train))
}

// ActivationBytes measures, rather than estimates, the memory an
// evaluation-mode forward of m keeps per image: the live heap after a
// forward of one image and after one of two (zeros), each collected,
// differ by one image's layer buffers and input. Estimate charges the
// buffers training keeps as well and, for the hierarchical models, runs
// 2-3x above this; callers that have built the model can check a large
// batch against this figure instead. It runs two small forwards, so call
// it after checking that two images fit (Estimate).
func ActivationBytes(m Classifier) (int64, error) {
	c, h, w := m.InputShape()
	live := func(n int) (uint64, error) {
		if _, err := m.Forward(tensor.New(n, c, h, w), nn.Eval); err != nil {
			return 0, err
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, nil
	}
	one, err := live(1)
	if err != nil {
		return 0, err
	}
	two, err := live(2)
	if err != nil || two < one {
		return 0, err
	}
	return int64(two - one), nil
}
