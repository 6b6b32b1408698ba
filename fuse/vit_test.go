package fuse_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

func randImages(c vit.Config, b int, seed uint64) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := tensor.New(b, c.InChans, c.ImgSize, c.ImgSize)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	return x
}

// randomize gives every norm random gamma/beta/alpha and biases, then runs
// training forwards so that BN running statistics are non-trivial.
func randomize(t *testing.T, m *vit.Model, seed uint64, batch int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, p := range m.Params() {
		n := p.Name
		switch {
		case strings.HasSuffix(n, ".alpha"):
			for i := range p.W.Data {
				p.W.Data[i] = 0.5 + rng.Float32()
			}
		case strings.Contains(n, "norm") && strings.HasSuffix(n, ".weight"):
			for i := range p.W.Data {
				p.W.Data[i] = 1 + 0.3*float32(rng.NormFloat64())
			}
		case strings.HasSuffix(n, ".bias") || strings.HasSuffix(n, "positional_encoding"):
			for i := range p.W.Data {
				p.W.Data[i] = 0.1 * float32(rng.NormFloat64())
			}
		}
	}
	x := randImages(m.Cfg, batch, seed)
	for range 3 {
		if _, err := m.Forward(x, nn.Train); err != nil {
			t.Fatal(err)
		}
	}
}

// relErr is max|got-want| / max|want|.
func relErr(got, want []float32) (float64, float64) {
	var d, w float64
	for i := range got {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		w = math.Max(w, math.Abs(float64(want[i])))
	}
	return d / w, d
}

// TestFuseExact: fused and unfused eval logits agree to relative error <
// 1e-4 on random inputs after the norms got random affine parameters and
// running statistics.
func TestFuseExact(t *testing.T) {
	variant := func(name, norm, attn string, cls bool) vit.Config {
		c, err := vit.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if norm != "" {
			c.Name = name + "/" + norm + "_" + attn
			c.Norm, c.Attn, c.ClsToken = norm, attn, cls
		}
		return c
	}
	cases := []struct {
		cfg   vit.Config
		batch int
	}{
		{variant("slab_deit_mini_28", "", "", false), 4},
		{variant("deit_mini_prepbn_28", "", "", false), 4},
		{variant("slab_deit_mini_28", "batchnorm", "sla", false), 4},
		{variant("slab_deit_mini_28", "batchnorm", "softmax", true), 4},
		{variant("slab_deit_mini_28", "repbn", "sla", false), 4},
		{variant("slab_deit_mini_28", "repbn", "softmax", true), 4},
		{variant("deit_tiny_prepbn", "", "", false), 1},
		{variant("slab_deit_tiny", "", "", false), 1},
	}
	for _, tc := range cases {
		if testing.Short() && tc.cfg.ImgSize > 28 {
			continue
		}
		t.Run(tc.cfg.Name, func(t *testing.T) {
			m, err := vit.New(tc.cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			randomize(t, m, 2, max(tc.batch, 2))
			x := randImages(tc.cfg, tc.batch, 3)
			want, err := m.Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			want = want.Clone()
			d, err := foldVit(m)
			if err != nil {
				t.Fatal(err)
			}
			if d.Cfg.Norm != vit.NormNone || len(d.Buffers()) != 0 {
				t.Errorf("deploy model: norm %q, %d buffers", d.Cfg.Norm, len(d.Buffers()))
			}
			for _, p := range d.Params() {
				if strings.Contains(p.Name, "norm") {
					t.Errorf("deploy model keeps norm parameter %s", p.Name)
				}
			}
			got, err := d.Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			rel, abs := relErr(got.Data, want.Data)
			t.Logf("fused vs unfused: max rel err %.3g (abs %.3g), params %d -> %d", rel, abs, m.NumParams(), d.NumParams())
			if rel >= 1e-4 {
				t.Errorf("fused logits differ: rel err %.3g", rel)
			}
			// The source model is untouched and still agrees with itself.
			again, _ := m.Forward(x, nn.Eval)
			if r, _ := relErr(again.Data, want.Data); r != 0 {
				t.Errorf("Fuse modified its source (rel %.3g)", r)
			}
		})
	}
}

func TestFuseRefuses(t *testing.T) {
	for _, name := range []string{"deit_mini_28", "deit_tiny"} {
		c, _ := vit.Lookup(name)
		c.ImgSize, c.Patch, c.Depth = 32, 16, 1
		m, err := vit.New(c, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := foldVit(m); err == nil || !strings.Contains(err.Error(), "only batchnorm, repbn and prepbn fold") {
			t.Errorf("%s: Fuse error = %v", name, err)
		}
	}
	c, _ := vit.Lookup("slab_deit_mini_28")
	m, _ := vit.New(c, 0)
	d, err := foldVit(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := foldVit(d); err == nil || !strings.Contains(err.Error(), "already folded") {
		t.Errorf("Fold(deploy) error = %v", err)
	}
}

// TestFoldIntoCreatesBias folds an affine map into a bias-free Linear: the
// new bias is W b and the outputs agree.
func TestFoldIntoCreatesBias(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l := nn.NewLinear("blocks.0.attn.qkv", 8, 5, false)
	a, b := make([]float32, 8), make([]float32, 8)
	for i := range a {
		a[i], b[i] = 0.5+rng.Float32(), float32(rng.NormFloat64())
	}
	for i := range l.Weight.W.Data {
		l.Weight.W.Data[i] = float32(rng.NormFloat64())
	}
	x := tensor.New(3, 8)
	z := tensor.New(3, 8)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
		z.Data[i] = a[i%8]*x.Data[i] + b[i%8]
	}
	want := l.Forward(z).Clone()
	if err := fuse.FoldInto(l, a, b); err != nil {
		t.Fatal(err)
	}
	if l.Bias == nil || l.Bias.Name != "blocks.0.attn.qkv.bias" {
		t.Fatalf("bias %+v, want blocks.0.attn.qkv.bias", l.Bias)
	}
	got := l.Forward(x)
	if rel, abs := relErr(got.Data, want.Data); rel > 1e-5 {
		t.Errorf("folded Linear differs: rel %.3g abs %.3g", rel, abs)
	}
	if err := fuse.FoldInto(l, a[:7], b); err == nil {
		t.Error("FoldInto accepted a 7-channel map for 8 inputs")
	}
}
