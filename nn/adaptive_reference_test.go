package nn_test

// Agreement of the adaptive input and softmax with PyTorch
// (tools/reference/adaptive_reference.py: torch.nn.AdaptiveLogSoftmaxWithLoss
// itself, rewired to the adaptive input's tensors for the tied variants, and
// our adaptive input written from the equations; float64, stored as
// float32). Tolerances are reference_test.go's: outputs 1e-5 and gradients
// 1e-4 of the tensor's largest value.

import (
	"testing"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tools/reference/reftest"
)

// cutoffs reads the config's cut-off list.
func cutoffs(t *testing.T, f *reftest.Fixture) []int {
	t.Helper()
	raw, ok := f.Config["cutoffs"].([]any)
	if !ok {
		t.Fatalf("%s: config has no cutoffs", f.Path)
	}
	c := make([]int, len(raw))
	for i, v := range raw {
		c[i] = int(v.(float64))
	}
	return c
}

// loadParams copies param/NAME into every parameter of ps (NAME as slab
// names it, with prefix removed) and zeroes the gradients.
func loadParams(t *testing.T, f *reftest.Fixture, prefix string, ps []*nn.Param) {
	t.Helper()
	for _, p := range ps {
		want := f.T("param/" + p.Name[len(prefix):])
		if want.Size() != p.W.Size() {
			t.Fatalf("%s: shape %v, fixture %v", p.Name, p.W.Shape, want.Shape)
		}
		copy(p.W.Data, want.Data)
		p.G.Zero()
	}
}

func compareGrads(t *testing.T, f *reftest.Fixture, prefix string, ps []*nn.Param) {
	t.Helper()
	for _, p := range ps {
		name := p.Name[len(prefix):]
		reftest.CloseT(t, "d"+name, p.G, f.T("grad/"+name), gradTol)
	}
}

func TestReferenceAdaptiveInput(t *testing.T) {
	f := reftest.Load(t, "adaptive_input")
	ai, err := nn.NewAdaptiveInput("L", int(f.Num("vocab")), int(f.Num("initial_dim")), f.Num("factor"), int(f.Num("dim")), cutoffs(t, f))
	if err != nil {
		t.Fatal(err)
	}
	loadParams(t, f, "L.", ai.Params())
	ids := f.T("ids")
	y, err := ai.Forward(f.Labels("ids"), ids.Shape...)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "y", y, f.T("y"), fwdTol)
	ai.Backward(f.T("dy"))
	compareGrads(t, f, "L.", ai.Params())
}

// checkAdaptiveOutputs compares loss, per-row target log-probabilities and
// the full log-distribution.
func checkAdaptiveOutputs(t *testing.T, f *reftest.Fixture, loss float64, lp []float64) {
	t.Helper()
	reftest.Close(t, "loss", reftest.F32(loss), f.T("loss").Data, fwdTol)
	reftest.Close(t, "output (target log-probs)", reftest.F32(lp...), f.T("output").Data, fwdTol)
}

func TestReferenceAdaptiveSoftmax(t *testing.T) {
	for _, name := range []string{"adaptive_softmax", "adaptive_softmax_nobias"} {
		t.Run(name, func(t *testing.T) {
			f := reftest.Load(t, name)
			bias, _ := f.Config["head_bias"].(bool)
			s, err := nn.NewAdaptiveSoftmax("L", int(f.Num("in")), int(f.Num("vocab")), cutoffs(t, f), f.Num("factor"), bias)
			if err != nil {
				t.Fatal(err)
			}
			loadParams(t, f, "L.", s.Params())
			x := f.T("x")
			loss, err := s.Forward(x, f.Labels("targets"))
			if err != nil {
				t.Fatal(err)
			}
			checkAdaptiveOutputs(t, f, loss, s.TargetLogProbs())
			reftest.CloseT(t, "dx", s.Backward(), f.T("dx"), gradTol)
			compareGrads(t, f, "L.", s.Params())
			full, err := s.LogProb(x)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "log_prob", full, f.T("log_prob"), fwdTol)
		})
	}
}

// TestReferenceAdaptiveTied: the adaptive input feeds the tied softmax; the
// shared tensors' gradients are the sum of both uses.
func TestReferenceAdaptiveTied(t *testing.T) {
	for _, name := range []string{"adaptive_tied", "adaptive_tied_wordproj"} {
		t.Run(name, func(t *testing.T) {
			f := reftest.Load(t, name)
			dim := int(f.Num("dim"))
			ai, err := nn.NewAdaptiveInput("input", int(f.Num("vocab")), int(f.Num("initial_dim")), f.Num("factor"), dim, cutoffs(t, f))
			if err != nil {
				t.Fatal(err)
			}
			tieProj, _ := f.Config["tie_proj"].(bool)
			s, err := nn.NewTiedAdaptiveSoftmax("softmax", dim, ai, tieProj)
			if err != nil {
				t.Fatal(err)
			}
			loadParams(t, f, "", ai.Params())
			loadParams(t, f, "", s.Params())
			x, err := ai.Forward(f.Labels("ids"))
			if err != nil {
				t.Fatal(err)
			}
			loss, err := s.Forward(x, f.Labels("targets"))
			if err != nil {
				t.Fatal(err)
			}
			checkAdaptiveOutputs(t, f, loss, s.TargetLogProbs())
			ai.Backward(s.Backward())
			compareGrads(t, f, "", ai.Params())
			compareGrads(t, f, "", s.Params())
			full, err := s.LogProb(x)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "log_prob", full, f.T("log_prob"), fwdTol)
		})
	}
}
