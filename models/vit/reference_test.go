package vit_test

// Whole-model agreement with our PyTorch reference
// (tools/reference/reference.py): a tiny DeiT-style model (img 14, patch 2
// -> 7x7 tokens, 3 channels, dim 16, depth 2, 2 heads, 10 classes, batch 4)
// in every norm x attention variant, loaded with the same realistic random
// state as PyTorch (perturbed norms, biases, positional encodings, running
// statistics), compared on eval logits, one training forward/backward
// (logits, loss, every parameter gradient, BN statistics and schedule
// counters after it) and five AdamW steps (train.AdamW).
//
// Tolerances (normwise, see package reftest): forward 1e-4 of the largest
// logit, gradients 1e-3 of the largest gradient of each tensor. The model
// chains ~20 float32 layers whose errors add up (each ~1e-6 normwise in the
// layer tests), and BatchNorm over only B*N = 196 tokens of a batch of 4
// divides by batch standard deviations that amplify the residual stream's
// rounding. After five AdamW steps the parameters differ from PyTorch's by
// far less than one step (lr 1e-3) only where a gradient is not tiny: Adam
// divides m by sqrt(v), so an element whose gradient is at the float32
// noise floor can take a full-size step of either sign. The final
// parameters are therefore checked with an absolute tolerance of 2e-5
// (2 % of one step) and the losses with 1e-5 relative.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
	"github.com/slabml/slab/train"
)

var (
	modelFwdTol   = reftest.Tol{Rel: 1e-4}
	modelGradTol  = reftest.Tol{Rel: 1e-3, Abs: 1e-8}
	adamParamTol  = reftest.Tol{Abs: 2e-5}
	adamLossTol   = reftest.Tol{Rel: 1e-5}
	modelStateTol = reftest.Tol{Rel: 1e-5}
)

// refConfig rebuilds the fixture's model configuration.
func refConfig(f *reftest.Fixture) vit.Config {
	c := f.Config
	return vit.Config{
		Name:    "ref_" + c["name"].(string),
		ImgSize: int(f.Num("img")), Patch: int(f.Num("patch")), InChans: int(f.Num("in_chans")),
		Classes: int(f.Num("classes")), Dim: int(f.Num("dim")), Depth: int(f.Num("depth")),
		Heads: int(f.Num("heads")), MLPRatio: int(f.Num("mlp_ratio")),
		Norm: c["norm"].(string), Attn: c["attn"].(string), ClsToken: c["cls"].(bool),
		LNEps: float32(f.Num("ln_eps")), Step: int64(f.Num("step")), Warm: int64(f.Num("warm")),
		DWCKernel: int(f.Num("kernel")),
	}
}

// loadRefState copies prefix+"param/NAME" and prefix+"buffer/NAME" into the
// model, failing on any name the fixture lacks (so a naming drift from the
// official layout is caught here too).
func loadRefState(t *testing.T, f *reftest.Fixture, m *vit.Model, prefix string) {
	t.Helper()
	for _, p := range m.Params() {
		w := f.T(prefix + "param/" + p.Name)
		if w.Size() != p.W.Size() {
			t.Fatalf("%s: shape %v, fixture %v", p.Name, p.W.Shape, w.Shape)
		}
		copy(p.W.Data, w.Data)
		p.G.Zero()
	}
	for _, b := range m.Buffers() {
		key := prefix + "buffer/" + b.Name
		if b.I != nil {
			*b.I = f.Ints(key)[0]
		} else {
			copy(b.F.Data, f.T(key).Data)
		}
	}
	// and the other way round: every fixture entry has a home in the model
	have := map[string]bool{}
	for _, p := range m.Params() {
		have["param/"+p.Name] = true
	}
	for _, b := range m.Buffers() {
		have["buffer/"+b.Name] = true
	}
	for _, n := range f.Names(prefix) {
		if !have[n] {
			t.Errorf("fixture entry %s%s has no counterpart in the model", prefix, n)
		}
	}
}

func checkRefBuffers(t *testing.T, f *reftest.Fixture, m *vit.Model, prefix string) {
	t.Helper()
	for _, b := range m.Buffers() {
		key := prefix + b.Name
		if b.I != nil {
			if got, want := *b.I, f.Ints(key)[0]; got != want {
				t.Errorf("%s = %d, want %d", b.Name, got, want)
			}
			continue
		}
		reftest.CloseT(t, b.Name, b.F, f.T(key), modelStateTol)
	}
}

func refFixtures(t *testing.T) []string {
	names, err := filepath.Glob(filepath.Join(reftest.Dir(t), "vit_*.safetensors"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no vit_*.safetensors fixtures in %s", reftest.Dir(t))
	}
	for i, n := range names {
		names[i] = strings.TrimSuffix(filepath.Base(n), ".safetensors")
	}
	return names
}

func newRefModel(t *testing.T, f *reftest.Fixture) *vit.Model {
	t.Helper()
	m, err := vit.New(refConfig(f), 1)
	if err != nil {
		t.Fatal(err)
	}
	loadRefState(t, f, m, "init/")
	return m
}

func TestReferenceModelEval(t *testing.T) {
	for _, name := range refFixtures(t) {
		t.Run(name, func(t *testing.T) {
			defer reftest.SkipUnimplemented(t)
			f := reftest.Load(t, name)
			m := newRefModel(t, f)
			logits, err := m.Forward(f.T("input"), false)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "eval logits", logits, f.T("eval/logits"), modelFwdTol)
			// eval must not touch running stats or counters
			checkRefBuffers(t, f, m, "init/buffer/")
		})
	}
}

func TestReferenceModelTrainStep(t *testing.T) {
	for _, name := range refFixtures(t) {
		t.Run(name, func(t *testing.T) {
			defer reftest.SkipUnimplemented(t)
			f := reftest.Load(t, name)
			m := newRefModel(t, f)
			if got, want := m.Lambda(), f.Config["adamw_lambdas"].([]any)[0].(float64); got != want {
				t.Errorf("Lambda() = %v, want %v", got, want)
			}
			logits, err := m.Forward(f.T("input"), true)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "train logits", logits, f.T("train/logits"), modelFwdTol)
			ce := &nn.CrossEntropy{Smoothing: float32(f.Num("smoothing"))}
			loss := ce.Forward(logits, f.Labels("labels"))
			reftest.Close(t, "loss", reftest.F32(loss), f.T("train/loss").Data, modelFwdTol)
			m.Backward(ce.Backward())
			for _, p := range m.Params() {
				reftest.CloseT(t, "d "+p.Name, p.G, f.T("train/grad/"+p.Name), modelGradTol)
			}
			checkRefBuffers(t, f, m, "train/buffer/")
		})
	}
}

func TestReferenceModelAdamW(t *testing.T) {
	for _, name := range refFixtures(t) {
		t.Run(name, func(t *testing.T) {
			defer reftest.SkipUnimplemented(t)
			f := reftest.Load(t, name)
			m := newRefModel(t, f)
			opt := train.NewAdamW(m.Params(), f.Num("weight_decay"))
			ce := &nn.CrossEntropy{Smoothing: float32(f.Num("smoothing"))}
			lambdas := f.Config["adamw_lambdas"].([]any)
			x, labels := f.T("input"), f.Labels("labels")
			var losses []float64
			for k := range int(f.Num("adamw_steps")) {
				if got, want := m.Lambda(), lambdas[k].(float64); got != want {
					t.Errorf("step %d: Lambda() = %v, want %v", k+1, got, want)
				}
				nn.ZeroGrads(m.Params())
				logits, err := m.Forward(x, true)
				if err != nil {
					t.Fatal(err)
				}
				losses = append(losses, ce.Forward(logits, labels))
				m.Backward(ce.Backward())
				opt.Step(f.Num("lr"))
			}
			reftest.Close(t, "losses", reftest.F32(losses...), f.T("adamw/losses").Data, adamLossTol)
			for _, p := range m.Params() {
				reftest.CloseT(t, p.Name, p.W, f.T("adamw/param/"+p.Name), adamParamTol)
			}
			checkRefBuffers(t, f, m, "adamw/buffer/")
		})
	}
}

// TestReferenceAdamWAlone drives train.AdamW with PyTorch's five fixed
// gradients (one decayed matrix, one undecayed vector, gradients shrinking
// by 10x per step so that eps and bias correction matter).
func TestReferenceAdamWAlone(t *testing.T) {
	f := reftest.Load(t, "adamw")
	w := &nn.Param{Name: "w", W: f.T("w0").Clone(), G: tensor.New(f.T("w0").Shape...)}
	b := &nn.Param{Name: "b", W: f.T("b0").Clone(), G: tensor.New(f.T("b0").Shape...), NoDecay: true}
	opt := train.NewAdamW([]*nn.Param{w, b}, f.Num("weight_decay_w"))
	for k := range 5 {
		p := fmt.Sprintf("step%d/", k)
		w.G.CopyFrom(f.T(p + "gw"))
		b.G.CopyFrom(f.T(p + "gb"))
		opt.Step(f.Num("lr"))
		reftest.CloseT(t, p+"w", w.W, f.T(p+"w"), reftest.Tol{Rel: 1e-6})
		reftest.CloseT(t, p+"b", b.W, f.T(p+"b"), reftest.Tol{Rel: 1e-6})
	}
}
