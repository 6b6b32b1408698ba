package familytest

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tools/reference/reftest"
)

// Tolerances against the float64 PyTorch reference: the model runs in
// float32 through a dozen layers (logits), gradients reach back through
// all of them.
var (
	ModelTol = reftest.Tol{Rel: 1e-4}
	GradTol  = reftest.Tol{Rel: 1e-4, Abs: 1e-7}
)

// Reference checks a tiny whole model against a fixture written by
// tools/reference/pvt_cswin_models.py: the Go config is the fixture's
// "model_config" metadata (decoded into cfg, then built by build), the
// weights its official-layout .pth loaded through models.LoadState; eval
// logits, folded eval logits, Train logits (LinearNorm half way, batch
// statistics) and every parameter gradient must match.
func Reference(t *testing.T, stem string, cfg models.Config, build func(models.Config) (models.Classifier, error)) {
	t.Helper()
	f := reftest.Load(t, stem)
	if err := json.Unmarshal([]byte(f.File.Metadata["model_config"]), cfg); err != nil {
		t.Fatalf("%s: model_config: %v", stem, err)
	}
	m, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pth, err := checkpoint.ReadPTH(filepath.Join(reftest.Dir(t), stem+".pth"))
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := models.LoadState(m, pth.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Logf("LoadState: %s", w)
	}
	Compare(t, m, f)
}

// Compare checks a model holding a fixture's weights against the
// fixture's PyTorch tensors: eval logits, folded eval logits when the
// model's norms fold (against PyTorch and within 1e-5 of unfolded), Train
// logits (LinearNorm half way, batch statistics) and every parameter
// gradient, which the fixture must list exactly.
func Compare(t *testing.T, m models.Classifier, f *reftest.Fixture) {
	t.Helper()
	x := f.T("input")
	logits, err := m.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "eval logits", logits, f.T("logits_eval"), ModelTol)
	if m.Config().NormSpec().Foldable() {
		logits = logits.Clone()
		d, err := fuse.Copy(m)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := d.(models.Classifier).Forward(x, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		reftest.CloseT(t, "folded eval logits vs PyTorch", fl, f.T("logits_eval"), ModelTol)
		reftest.CloseT(t, "folded vs unfolded eval logits", fl, logits, reftest.Tol{Rel: 1e-5})
	}
	nn.ZeroGrads(m.Params())
	lt, err := m.Forward(x, nn.Train)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "train logits", lt, f.T("logits_train"), ModelTol)
	m.Backward(f.T("dlogits"))
	seen := 0
	for _, p := range m.Params() {
		if !f.Has("grad/" + p.Name) {
			t.Errorf("the reference has no parameter %s", p.Name)
			continue
		}
		reftest.CloseT(t, "d"+p.Name, p.G, f.T("grad/"+p.Name), GradTol)
		seen++
	}
	if n := len(f.Names("grad/")); n != seen {
		t.Errorf("the reference has %d parameters, the model %d", n, seen)
	}
}
