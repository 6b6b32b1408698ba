// Package familytest holds the checks every vision family's tests run on
// its small variants (gradients against finite differences, fold
// exactness, state-dict round trips, allocation-free passes, training
// bit-identical across thread counts), so that each family's tests name
// their models and tolerances only.
package familytest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
	"github.com/slabml/slab/train"
)

// Build builds a registered model by name with one option changed (norm
// "" keeps the registered norm).
func Build(tb testing.TB, name, norm string, seed uint64) models.Classifier {
	tb.Helper()
	e, c, err := models.Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	if norm != "" {
		if err := c.Set("norm", norm); err != nil {
			tb.Fatal(err)
		}
	}
	m, err := models.Build(e.Family, c, seed)
	if err != nil {
		tb.Fatal(err)
	}
	return m.(models.Classifier)
}

// Images returns b random c x s x s images.
func Images(seed uint64, b, c, s int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 2))
	x := tensor.New(b, c, s, s)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	return x
}

// Input returns b random images of m's input shape.
func Input(m models.Classifier, seed uint64, b int) *tensor.Tensor {
	c, h, _ := m.InputShape()
	return Images(seed, b, c, h)
}

// Randomize gives norm parameters, BN statistics, alphas, biases and
// encodings the spread of trained values, so that a fold or load error
// cannot hide behind 0 or 1.
func Randomize(m models.Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params() {
		switch {
		case strings.HasSuffix(p.Name, ".alpha"):
			for i := range p.W.Data {
				p.W.Data[i] = 0.5 + r.Float32()
			}
		case strings.HasSuffix(p.Name, "bn.weight"), strings.HasSuffix(p.Name, "norm1.weight"), strings.HasSuffix(p.Name, "norm.weight"),
			strings.HasSuffix(p.Name, ".2.weight"):
			for i := range p.W.Data {
				p.W.Data[i] = 1 + 0.2*float32(r.NormFloat64())
			}
		case strings.HasSuffix(p.Name, "bias"), strings.HasSuffix(p.Name, "positional_encoding"):
			for i := range p.W.Data {
				p.W.Data[i] = 0.1 * float32(r.NormFloat64())
			}
		}
		p.MarkChanged()
	}
	for _, b := range m.Buffers() {
		switch {
		case b.F != nil && strings.HasSuffix(b.Name, "running_mean"):
			for i := range b.F.Data {
				b.F.Data[i] = 0.3 * float32(r.NormFloat64())
			}
		case b.F != nil && strings.HasSuffix(b.Name, "running_var"):
			for i := range b.F.Data {
				b.F.Data[i] = 0.5 + 1.5*r.Float32()
			}
		}
	}
}

// GradCheck compares the gradient of L = Σ r ⊙ logits (a Train-mode pass)
// with central differences in float64 of the float32 model, along the
// gradient's own direction v = G/|G| of every stride-th parameter tensor:
// (L(w + h·v) - L(w - h·v)) / 2h must equal G·v = |G|. A whole-tensor
// direction moves L by h·|G|, far above float32 rounding, where a single
// element's step is lost in it; a wrong gradient (scale, sign, a missing
// path) changes G·v against the measured slope. The model must be
// deterministic in Train mode (no drop path, no LinearNorm: its schedule
// would move between the passes). Steps h, h/3 and h/10 are tried and the
// closest counts: SLA's normaliser and ReLUs curve sharply (its q slope
// moves by 20 % between steps 1e-2 and 3e-3 and converges to |G| as the
// step shrinks) while float32 rounding swamps the smallest steps of the
// flattest tensors; a wiring error (a missing path, a wrong scale or
// sign) is off at every step.
func GradCheck(t *testing.T, m models.Classifier, x *tensor.Tensor, stride int, h, tol float64) {
	t.Helper()
	b := x.Shape[0]
	r := tensor.New(b, m.Classes())
	rr := rand.New(rand.NewPCG(7, 7))
	for i := range r.Data {
		r.Data[i] = float32(rr.NormFloat64())
	}
	loss := func() float64 {
		y, err := m.Forward(x, nn.Train)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for i, v := range y.Data {
			s += float64(v) * float64(r.Data[i])
		}
		return s
	}
	ps := m.Params()
	nn.ZeroGrads(ps)
	loss()
	m.Backward(r)
	worst, n := 0.0, 0
	for k := 0; k < len(ps); k += stride {
		p := ps[k]
		var norm float64
		for _, g := range p.G.Data {
			norm += float64(g) * float64(g)
		}
		norm = math.Sqrt(norm)
		if norm == 0 {
			continue // unused (CSwin's scale)
		}
		w0 := append([]float32(nil), p.W.Data...)
		g0 := append([]float32(nil), p.G.Data...)
		at := func(s float64) float64 {
			for i, g := range g0 {
				p.W.Data[i] = float32(float64(w0[i]) + s*float64(g)/norm)
			}
			p.MarkChanged()
			return loss()
		}
		e, fd := math.Inf(1), 0.0
		for _, s := range []float64{h, h / 3, h / 10} {
			f := (at(s) - at(-s)) / (2 * s)
			// relative to |G|, or to 1e-3 for the smallest gradients
			// (RepBN's scalar alpha: a sum of cancelling terms, 2e-4)
			if d := math.Abs(f-norm) / max(norm, 1e-3); d < e {
				e, fd = d, f
			}
		}
		copy(p.W.Data, w0)
		p.MarkChanged()
		worst = max(worst, e)
		n++
		if e > tol {
			t.Errorf("%s: |G| %.6g, finite differences along G %.6g (rel %.2g)", p.Name, norm, fd, e)
		}
	}
	t.Logf("%d parameter tensors checked, worst relative difference %.3g (h %g)", n, worst, h)
}

// FoldExact folds a randomized copy of m and compares eval logits (1e-5 of
// the largest), then reloads the folded layout from its state dict.
func FoldExact(t *testing.T, m models.Classifier) {
	t.Helper()
	Randomize(m, 9)
	x := Input(m, 3, 3)
	y, err := m.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	y = y.Clone()
	d, err := fuse.Copy(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range d.Norms() {
		if _, ok := (*s.Norm).(nn.Identity); !ok {
			t.Errorf("%s after folding: %T", s.Name, *s.Norm)
		}
	}
	yf, err := d.(models.Classifier).Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "folded vs unfolded logits", yf, y, reftest.Tol{Rel: 1e-5})
	if got, want := models.NumParams(d), d.Config().ParamCount(); got != want {
		t.Errorf("folded: %d parameters, ParamCount %d", got, want)
	}
	re, err := models.Clone(d)
	if err != nil {
		t.Fatalf("reloading the folded model: %v", err)
	}
	yr, err := re.(models.Classifier).Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "reloaded folded logits", yr, yf, reftest.Tol{})
}

// RoundTrip loads m's state dict into a model built with another seed and
// requires identical eval logits; want lists official keys and shapes
// the state dict must hold.
func RoundTrip(t *testing.T, m, other models.Classifier, want map[string][]int) {
	t.Helper()
	Randomize(m, 4)
	sd := models.StateDict(m)
	for k, shape := range want {
		e, ok := sd[k]
		if !ok {
			t.Errorf("state dict has no %s", k)
			continue
		}
		if fmt.Sprint(e.Shape) != fmt.Sprint(shape) {
			t.Errorf("%s: shape %v, official %v", k, e.Shape, shape)
		}
	}
	if _, err := models.LoadState(other, sd); err != nil {
		t.Fatal(err)
	}
	x := Input(m, 5, 2)
	y, err := m.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	y = y.Clone()
	y2, err := other.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "reloaded logits", y2, y, reftest.Tol{})
	delete(sd, want0(want))
	if _, err := models.LoadState(other, sd); err == nil {
		t.Errorf("a state dict without %s loaded", want0(want))
	} else {
		t.Logf("missing key: %v", err)
	}
}

func want0(w map[string][]int) string {
	best := ""
	for k := range w {
		if best == "" || k < best {
			best = k
		}
	}
	return best
}

// NoAllocs: after a first pass, an eval Forward and a Train Forward +
// Backward allocate nothing.
func NoAllocs(t *testing.T, m models.Classifier) {
	t.Helper()
	x := Input(m, 2, 4)
	dl := tensor.New(4, m.Classes())
	for i := range dl.Data {
		dl.Data[i] = 0.01 * float32(i%7)
	}
	step := func() {
		if _, err := m.Forward(x, nn.Train); err != nil {
			t.Fatal(err)
		}
		m.Backward(dl)
	}
	eval := func() {
		if _, err := m.Forward(x, nn.Eval); err != nil {
			t.Fatal(err)
		}
	}
	step()
	eval()
	if n := testing.AllocsPerRun(3, eval); n != 0 {
		t.Errorf("eval Forward: %v allocations", n)
	}
	if n := testing.AllocsPerRun(3, step); n != 0 {
		t.Errorf("train Forward + Backward: %v allocations", n)
	}
}

// noiseData is n random images labelled by index.
type noiseData struct {
	n, c, s, classes int
	seed             uint64
}

func (d noiseData) Len() int             { return d.n }
func (d noiseData) Shape() (c, h, w int) { return d.c, d.s, d.s }
func (d noiseData) Batch(idx []int, augment bool, rng *rand.Rand, x []float32, labels []int) error {
	sz := d.c * d.s * d.s
	for j, i := range idx {
		r := rand.New(rand.NewPCG(d.seed, uint64(i)))
		for p := range x[j*sz : (j+1)*sz] {
			x[j*sz+p] = float32(r.NormFloat64())
		}
		labels[j] = i % d.classes
	}
	return nil
}

// trainRun trains a fresh model a few steps at the given thread count,
// re-calibrates BN statistics, and returns every parameter, gradient,
// AdamW moment and buffer, and the losses.
func trainRun(t *testing.T, build func() models.Classifier, threads, batch, steps int) (map[string][]float32, []float64) {
	t.Helper()
	old := kernels.Threads()
	kernels.SetThreads(threads)
	defer kernels.SetThreads(old)
	m := build()
	c, s, _ := m.InputShape()
	tc := train.DefaultConfig()
	tc.Epochs, tc.Batch, tc.EvalBatch, tc.LR, tc.Seed = 1, batch, 2*batch, 2e-3, 5
	tc.WarmupEpoch, tc.ScheduleT = 0, int64(2*steps) // lambda between 0 and 1: both branches train
	tr, err := train.NewTrainer(tc, m, noiseData{batch * steps, c, s, m.Classes(), 1}, noiseData{batch, c, s, m.Classes(), 2})
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	for range steps {
		rec, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, rec.Loss)
	}
	if err := tr.Recalibrate(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for i, p := range tr.Opt.Params() {
		out[p.Name] = append([]float32(nil), p.W.Data...)
		out["grad:"+p.Name] = append([]float32(nil), p.G.Data...)
		out["adam.m:"+p.Name] = append([]float32(nil), tr.Opt.M[i]...)
		out["adam.v:"+p.Name] = append([]float32(nil), tr.Opt.V[i]...)
	}
	for _, b := range m.Buffers() {
		if b.F != nil {
			out[b.Name] = append([]float32(nil), b.F.Data...)
		}
		if b.I != nil {
			out[b.Name] = []float32{float32(*b.I)}
		}
	}
	return out, losses
}

// ThreadInvariant trains build()'s model a few steps (and a BN
// re-calibration) at 1 and 2 threads and requires every tensor bitwise
// equal and every loss finite.
func ThreadInvariant(t *testing.T, build func() models.Classifier) {
	t.Helper()
	ref, refLoss := trainRun(t, build, 1, 4, 2)
	got, loss := trainRun(t, build, 2, 4, 2)
	n := 0
	for name, w := range ref {
		g := got[name]
		if len(g) != len(w) {
			t.Errorf("%s: missing or resized at 2 threads", name)
			continue
		}
		for i := range w {
			if w[i] != g[i] && !(math.IsNaN(float64(w[i])) && math.IsNaN(float64(g[i]))) {
				if n < 20 {
					t.Errorf("%s[%d]: %g at 1 thread, %g at 2", name, i, w[i], g[i])
				}
				n++
				break
			}
		}
	}
	t.Logf("%d tensors compared, %d differ; losses %v (1 thread) %v (2 threads)", len(ref), n, refLoss, loss)
	for _, l := range append(refLoss, loss...) {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Errorf("loss %v", l)
		}
	}
}

// Shapes maps every parameter and buffer name of m to its shape (a state
// dict's keys without copying the values; counters are 0-d).
func Shapes(m nn.Module) map[string][]int {
	out := map[string][]int{}
	for _, p := range m.Params() {
		out[p.Name] = p.W.Shape
	}
	for _, b := range m.Buffers() {
		if b.F != nil {
			out[b.Name] = b.F.Shape
		} else {
			out[b.Name] = []int{}
		}
	}
	return out
}
