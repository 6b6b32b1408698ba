package swin_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/swin"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

func build(t testing.TB, name string, seed uint64) *swin.Model {
	t.Helper()
	m, err := models.New(name, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*swin.Model)
}

func lookup(t testing.TB, name string) *swin.Config {
	t.Helper()
	_, c, err := models.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*swin.Config)
}

// TestParamCounts: ParamCount equals the built model's parameter count,
// and the official models' counts are the official code's
// (docs/method.md 4.3; PyTorch's sum of numel over parameters).
func TestParamCounts(t *testing.T) {
	official := map[string]float64{ // millions, as the paper and the official code print them
		"slab_swin_tiny": 29.22, "slab_swin_small": 50.55, "slab_swin_base": 89.03,
		"swin_tiny_prepbn": 28.29, "flatten_swin_tiny": 29.19, "swin_tiny": 28.29,
	}
	for name, want := range official {
		got := lookup(t, name).ParamCount()
		t.Logf("%-18s %d parameters (%.2f M; official %.2f M)", name, got, float64(got)/1e6, want)
		if math.Abs(float64(got)/1e6-want) >= 0.005 {
			t.Errorf("%s: %d parameters, the official code's model has %.2f M", name, got, want)
		}
	}
	// The 224 layouts are built at width 6 (heads still divide every
	// stage): every shape the formula counts (56x56 SLA encodings, 7x7
	// windows, 4C merges) at a fraction of the initialisation time.
	for _, name := range []string{"slab_swin_tiny", "swin_tiny_prepbn", "flatten_swin_tiny", "swin_tiny", "slab_swin_small",
		"slab_swin_mini_32", "swin_mini_32", "flatten_swin_mini_32", "swin_mini_prepbn_32"} {
		c := *lookup(t, name)
		if c.ImgSize == 224 {
			c.Dim = 6
		}
		m, err := swin.New(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := models.NumParams(m), m.Cfg.ParamCount(); got != want {
			t.Errorf("%s (dim %d): built %d parameters, ParamCount %d", name, c.Dim, got, want)
		}
	}
	// folded: norms gone, reductions with bias
	m := build(t, "slab_swin_mini_32", 1)
	if err := fuse.Fold(m); err != nil {
		t.Fatal(err)
	}
	if got, want := models.NumParams(m), m.Cfg.ParamCount(); got != want {
		t.Errorf("folded slab_swin_mini_32: %d parameters, ParamCount %d", got, want)
	}
}

// TestFLOPs: the total is the sum by layer and the 224 models land near
// the papers' multiply-add counts doubled (Swin-T 4.5 G, SLAB-Swin-T 4.5 G
// and FLatten-Swin-T 4.5 G multiply-adds).
func TestFLOPs(t *testing.T) {
	for _, name := range []string{"swin_tiny", "swin_tiny_prepbn", "slab_swin_tiny", "flatten_swin_tiny", "slab_swin_mini_32"} {
		c := lookup(t, name)
		by := c.FLOPsByLayer()
		var s int64
		for _, v := range by {
			s += v
		}
		if s != c.FLOPs() {
			t.Errorf("%s: FLOPs %d, sum by layer %d", name, c.FLOPs(), s)
		}
		t.Logf("%-18s %.3f GFLOP (multiply-add = 2) %v", name, float64(c.FLOPs())/1e9, by)
		if c.ImgSize == 224 && (c.FLOPs() < 8.6e9 || c.FLOPs() > 9.6e9) {
			t.Errorf("%s: %.2f GFLOP, want about 2 x 4.5 G multiply-adds", name, float64(c.FLOPs())/1e9)
		}
	}
}

// randomize gives BN statistics, affine parameters and alphas values that
// trained models have, so that a fold error cannot hide behind 0 or 1.
func randomize(m models.Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params() {
		switch {
		case hasSuffix(p.Name, ".alpha"):
			for i := range p.W.Data {
				p.W.Data[i] = 0.5 + r.Float32()
			}
		case hasSuffix(p.Name, "bn.weight"), hasSuffix(p.Name, "norm1.weight"):
			for i := range p.W.Data {
				p.W.Data[i] = 1 + 0.2*float32(r.NormFloat64())
			}
		case hasSuffix(p.Name, "bias"), hasSuffix(p.Name, "positional_encoding"), hasSuffix(p.Name, "relative_position_bias_table"):
			for i := range p.W.Data {
				p.W.Data[i] = 0.1 * float32(r.NormFloat64())
			}
		}
		p.MarkChanged()
	}
	for _, b := range m.Buffers() {
		switch {
		case b.F != nil && hasSuffix(b.Name, "running_mean"):
			for i := range b.F.Data {
				b.F.Data[i] = 0.3 * float32(r.NormFloat64())
			}
		case b.F != nil && hasSuffix(b.Name, "running_var"):
			for i := range b.F.Data {
				b.F.Data[i] = 0.5 + 1.5*r.Float32()
			}
		}
	}
}

func hasSuffix(s, x string) bool { return len(s) >= len(x) && s[len(s)-len(x):] == x }

func images(seed uint64, b, c, s int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 2))
	x := tensor.New(b, c, s, s)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	return x
}

// TestFoldExact: folded and unfolded logits of the BN-based variants
// agree to 1e-5 of the largest logit (the patch-embedding fold is exact,
// alpha times the conv bias included), and LayerNorm variants refuse to
// fold.
func TestFoldExact(t *testing.T) {
	for _, v := range []struct{ name, base, norm string }{
		{"slab_swin_mini_32", "slab_swin_mini_32", ""},
		{"swin_mini_prepbn_32", "swin_mini_prepbn_32", ""},
		{"swin_mini_repbn_32", "swin_mini_prepbn_32", nn.NormRepBN}, // the official swin_tiny_repbn's bare RepBN
	} {
		t.Run(v.name, func(t *testing.T) {
			c := *lookup(t, v.base)
			if v.norm != "" {
				c.Norm = v.norm
			}
			m, err := swin.New(c, 5)
			if err != nil {
				t.Fatal(err)
			}
			randomize(m, 9)
			x := images(3, 4, 1, 28)
			y, err := m.Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			y = y.Clone()
			d, err := fuse.Copy(m)
			if err != nil {
				t.Fatal(err)
			}
			yf, err := d.(models.Classifier).Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "folded vs unfolded logits", yf, y, reftest.Tol{Rel: 1e-5})
			// the folded checkpoint rebuilds: reductions with bias, no norms
			dm := d.(*swin.Model)
			if dm.Merges[0].Reduction.Bias == nil {
				t.Fatal("folded reduction has no bias")
			}
			if _, ok := dm.PatchNorm.(nn.Identity); !ok {
				t.Fatalf("patch_embed.norm after folding: %T", dm.PatchNorm)
			}
			r, err := models.Clone(d)
			if err != nil {
				t.Fatalf("reloading the folded model: %v", err)
			}
			yr, err := r.(models.Classifier).Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "reloaded folded logits", yr, yf, reftest.Tol{})
		})
	}
	for _, name := range []string{"swin_mini_32", "flatten_swin_mini_32"} {
		err := fuse.Fold(build(t, name, 1))
		if !errors.Is(err, fuse.ErrNotFoldable) {
			t.Errorf("%s: fuse.Fold = %v, want ErrNotFoldable", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestLoadStatePRepBNLayouts: Swin-T-PRepBN checkpoints come with bare
// RepBN norms (swin_transformer.py) or LinearNorm ones (the MindSpore
// port): both load into either kind of model, and the eval logits (pure
// RepBN) agree.
func TestLoadStatePRepBNLayouts(t *testing.T) {
	c := *lookup(t, "swin_mini_prepbn_32")
	bare := c
	bare.Norm = nn.NormRepBN
	lin, err := swin.New(c, 5)
	if err != nil {
		t.Fatal(err)
	}
	randomize(lin, 11)
	x := images(4, 3, 1, 28)
	want, err := lin.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	want = want.Clone()
	models.SetSchedule(lin, 0, 0)

	b, err := swin.New(bare, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.LoadState(b, models.StateDict(lin)); err != nil {
		t.Fatalf("LinearNorm layout into bare RepBN: %v", err)
	}
	got, err := b.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "bare RepBN model, LinearNorm checkpoint", got, want, reftest.Tol{})

	l2, err := swin.New(c, 7)
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := models.LoadState(l2, models.StateDict(b))
	if err != nil {
		t.Fatalf("bare RepBN layout into LinearNorm: %v", err)
	}
	if len(warnings) == 0 {
		t.Error("loading bare RepBN keys into LinearNorms gave no warning")
	} else {
		t.Logf("warning: %s", warnings[0])
	}
	if l := models.Lambda(l2); l != 0 {
		t.Errorf("schedule after a bare RepBN load: lambda %g, want 0", l)
	}
	got, err = l2.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "LinearNorm model, bare RepBN checkpoint", got, want, reftest.Tol{})
}

// TestInputChecks: the classification models take their own size only.
func TestInputChecks(t *testing.T) {
	m := build(t, "slab_swin_mini_32", 1)
	if _, err := m.Forward(images(1, 1, 1, 32), nn.Eval); err == nil {
		t.Error("a 32x32 image went into a 28x28 model")
	} else {
		t.Log(err)
	}
	c := lookup(t, "slab_swin_tiny")
	if err := c.Set("size", "256"); err == nil {
		t.Error("slab_swin_tiny accepted size 256")
	} else {
		t.Log(err)
	}
	if err := c.Set("size", "224"); err != nil {
		t.Error(err)
	}
}

// TestNoAllocs: after a first pass, Forward in every mode and Forward +
// Backward allocate nothing.
func TestNoAllocs(t *testing.T) {
	for _, name := range []string{"slab_swin_mini_32", "swin_mini_32", "flatten_swin_mini_32", "swin_mini_prepbn_32"} {
		t.Run(name, func(t *testing.T) {
			m := build(t, name, 1)
			x := images(2, 4, 1, 28)
			dl := tensor.New(4, 10)
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
		})
	}
}

// TestPadding: the 28x28 input sits centred in zeros (a model whose
// padded border were read would change when the border changes).
func TestPadding(t *testing.T) {
	c := *lookup(t, "swin_mini_32")
	m, err := swin.New(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := images(5, 2, 1, 28)
	y, err := m.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	y = y.Clone()
	full := c
	full.InputSize = 0
	f, err := swin.New(full, 2)
	if err != nil {
		t.Fatal(err)
	}
	p := tensor.New(2, 1, 32, 32)
	for b := range 2 {
		for r := range 28 {
			copy(p.Data[b*1024+(r+2)*32+2:], x.Data[b*784+r*28:b*784+r*28+28])
		}
	}
	yf, err := f.Forward(p, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "padded inside vs outside", y, yf, reftest.Tol{})
}

// TestFeatures: the four stage outputs of the last Forward, at strides
// Patch·2^i (2, 4, 8, 16 on the padded 32x32 input), widths C·2^i.
func TestFeatures(t *testing.T) {
	m := build(t, "slab_swin_mini_32", 1)
	if _, err := m.Forward(images(1, 2, 1, 28), nn.Eval); err != nil {
		t.Fatal(err)
	}
	feats, grids := m.Features()
	if len(feats) != 4 {
		t.Fatalf("%d feature maps, want 4", len(feats))
	}
	for i, f := range feats {
		g := 16 >> i
		want := []int{2, g * g, 16 << i}
		if grids[i].H != g || grids[i].W != g || !tensor.ShapeEq(f.Shape, want) {
			t.Errorf("stage %d: grid %+v, shape %v; want %dx%d, %v", i+1, grids[i], f.Shape, g, g, want)
		}
	}
}
