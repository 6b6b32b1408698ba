package all_test

import (
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

// TestLegacyCheckpoints loads checkpoints written before the registry (no
// family metadata; a bare vit.Config, or lm_config for a language model;
// see testdata/compat/README.md) and checks the logits against those the
// old code computed. The models and the arithmetic are the same, so the
// tolerance is float32 rounding: 1e-6 of the largest logit.
func TestLegacyCheckpoints(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "compat")
	want, err := checkpoint.Read(filepath.Join(dir, "old_logits.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := want.Tensor("input")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, family, norm string
	}{
		{"old_vit_train", "vit", nn.NormPRepBN},
		{"old_vit_folded", "vit", nn.NormNone},
		{"old_lm", "llama", nn.NormPRepBN},
	} {
		m, _, warns, err := models.Load(filepath.Join(dir, tc.file+".safetensors"))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if m.Family() != tc.family || m.Config().NormSpec().Kind != tc.norm {
			t.Errorf("%s: family %s norm %s, want %s %s", tc.file, m.Family(), m.Config().NormSpec().Kind, tc.family, tc.norm)
		}
		for _, w := range warns {
			t.Logf("%s: warning %s", tc.file, w)
		}
		ref, err := want.Tensor(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var y *tensor.Tensor
		switch mm := m.(type) {
		case models.Classifier:
			if y, err = mm.Forward(x, nn.Eval); err != nil {
				t.Fatal(err)
			}
		case models.LM:
			if y, err = mm.Forward([]int{1, 5, 9, 200, 33, 7, 100, 3}, 1, 8, nn.Eval); err != nil {
				t.Fatal(err)
			}
		}
		reftest.CloseT(t, tc.file, y, ref, reftest.Tol{Rel: 1e-6})
	}
}
