package vit_test

import (
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
)

// officialCase is an official-layout checkpoint written by torch.save
// (tools/reference/reference.py official_pth) and PyTorch's eval logits.
type officialCase struct {
	pth, logits string
	cfg         vit.Config
	// alt is the other norm layout the same state must also load into
	// (bare RepBN <-> LinearNorm), giving the same eval logits.
	alt string
}

// shrink turns a registry config into reference.py's OFFICIAL_TINY twin.
func shrink(t *testing.T, name string) vit.Config {
	c, err := vit.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	c.ImgSize, c.Patch, c.Dim, c.Depth, c.Heads, c.Classes = 32, 8, 24, 2, 2, 10
	return c
}

// checkOfficial loads the checkpoint into cfg (and its alt layout) and
// compares eval logits with PyTorch's (float64) at relative 1e-4.
func checkOfficial(t *testing.T, dir string, oc officialCase) {
	t.Helper()
	f, err := checkpoint.ReadPTH(filepath.Join(dir, oc.pth))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := checkpoint.Read(filepath.Join(dir, oc.logits))
	if err != nil {
		t.Fatal(err)
	}
	x, _ := ref.Tensor("input")
	want, _ := ref.Tensor("logits")
	for _, norm := range []string{oc.cfg.Norm, oc.alt} {
		cfg := oc.cfg
		cfg.Norm = norm
		if cfg.Step == 0 {
			cfg.Step = 300000 // DeiT-S-PRepBN's default T
		}
		m, err := vit.New(cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		warn, err := models.LoadState(m, f.Tensors)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range warn {
			t.Logf("%s as %s: warning: %s", oc.pth, norm, w)
		}
		got, err := m.Forward(x, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		rel, abs := relErr(got.Data, want.Data)
		t.Logf("%s as %s: logits vs PyTorch: max rel err %.3g (abs %.3g)", oc.pth, norm, rel, abs)
		if rel > 1e-4 {
			t.Errorf("%s as %s: logits rel err %.3g", oc.pth, norm, rel)
		}
	}
}

// TestOfficialCheckpoints loads the tiny official-layout .pth files: a
// SLAB-DeiT (LinearNorm keys, unused cls_token, SLA, mean pool) and a
// DeiT-PRepBN (bare RepBN keys, class token, softmax).
func TestOfficialCheckpoints(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "reference")
	for _, oc := range []officialCase{
		{"tiny_slab_deit.pth", "tiny_slab_deit_logits.safetensors", shrink(t, "slab_deit_tiny"), vit.NormRepBN},
		{"tiny_deit_prepbn.pth", "tiny_deit_prepbn_logits.safetensors", shrink(t, "deit_tiny_prepbn"), vit.NormPRepBN},
	} {
		t.Run(oc.pth, func(t *testing.T) {
			checkOfficial(t, dir, oc)
		})
	}
}

// relErr is max|got-want| / max|want| and max|got-want|.
func relErr(got, want []float32) (float64, float64) {
	var d, w float64
	for i := range got {
		d = max(d, abs64(float64(got[i])-float64(want[i])))
		w = max(w, abs64(float64(want[i])))
	}
	return d / w, d
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
