package pvt_test

import (
	"fmt"
	"testing"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/internal/familytest"
	"github.com/slabml/slab/models/pvt"
	"github.com/slabml/slab/nn"
)

// minis are the Fashion-MNIST variants: SLA everywhere, spatial reduction
// 4/2/2/1 with PRepBN, and the LayerNorm twin.
var minis = []string{"slab_pvt_mini_32", "pvt_mini_prepbn_32", "pvt_mini_32"}

// TestGradients: Train-mode gradients of whole tiny models (SLA with q/kv
// views, spatial reduction with its conv and norm, patch embeddings with
// position embeddings) against finite differences, with LayerNorm and
// with BatchNorm-based RepBN (batch statistics).
func TestGradients(t *testing.T) {
	for _, name := range []string{"slab_pvt_mini_32", "pvt_mini_prepbn_32"} {
		for _, norm := range []string{nn.NormLayerNorm, nn.NormRepBN} {
			t.Run(name+"/"+norm, func(t *testing.T) {
				m := familytest.Build(t, name, norm, 3)
				familytest.GradCheck(t, m, familytest.Input(m, 1, 2), 3, 1e-2, 6e-2)
			})
		}
	}
}

// TestFoldExact: every norm folds (patch embeddings into their convs,
// norm1 into q and kv or q and the sr conv, attn.norm into kv, norm2 into
// fc1); folded logits equal the unfolded ones to 1e-5; the LayerNorm twin
// refuses.
func TestFoldExact(t *testing.T) {
	for _, v := range []struct{ name, norm string }{
		{"slab_pvt_mini_32", ""}, {"pvt_mini_prepbn_32", ""}, {"pvt_mini_prepbn_32", nn.NormRepBN},
	} {
		t.Run(v.name+"/"+v.norm, func(t *testing.T) {
			familytest.FoldExact(t, familytest.Build(t, v.name, v.norm, 5))
		})
	}
	if err := fuseFold(familytest.Build(t, "pvt_mini_32", "", 1)); err == nil {
		t.Error("the LayerNorm twin folded")
	}
}

// TestStateDict: the official names and shapes of slab_pvt.py (SLAB-PVT-T
// and PVT-T-PRepBN at 224, docs/method.md 4.6) are the models' own, and
// state dicts of the minis (both attention types) round-trip through
// models.StateDict and models.LoadState.
func TestStateDict(t *testing.T) {
	official := map[string]map[string][]int{
		"slab_pvt_tiny": {
			"patch_embed1.proj.weight": {64, 3, 4, 4}, "patch_embed4.proj.weight": {512, 320, 2, 2},
			"patch_embed1.norm.norm2.bn.running_var": {64}, "pos_embed1": {1, 3136, 64}, "pos_embed4": {1, 49, 512},
			"block1.0.attn.q.weight": {64, 64}, "block1.0.attn.q.bias": {64}, "block1.0.attn.kv.weight": {128, 64},
			"block1.0.attn.kv.bias": {128}, "block1.0.attn.proj.weight": {64, 64},
			"block1.0.attn.positional_encoding": {1, 3136, 64}, "block1.0.attn.dwc.weight": {64, 1, 5, 5},
			"block4.1.attn.positional_encoding": {1, 49, 512}, "block2.1.norm1.norm1.weight": {128},
			"block3.0.mlp.fc1.weight": {1280, 320}, "block1.0.mlp.fc1.weight": {512, 64}, "head.weight": {1000, 512},
		},
		"pvt_tiny_prepbn": {
			"block1.0.attn.sr.weight": {64, 64, 8, 8}, "block3.1.attn.sr.weight": {320, 320, 2, 2},
			"block1.0.attn.norm.norm1.weight": {64}, "block1.0.attn.norm.norm2.alpha": {1}, "block4.0.attn.kv.weight": {1024, 512},
		},
	}
	absent := []string{"block4.0.attn.sr.weight", "block4.0.attn.norm.norm1.weight", "norm.norm1.weight", "cls_token", "block1.0.attn.qkv.weight"}
	for name, want := range official {
		sd := familytest.Shapes(familytest.Build(t, name, "", 1))
		for k, shape := range want {
			if got, ok := sd[k]; !ok || fmt.Sprint(got) != fmt.Sprint(shape) {
				t.Errorf("%s: %s missing or not %v", name, k, shape)
			}
		}
		for _, k := range absent {
			if _, ok := sd[k]; ok {
				t.Errorf("%s has %s", name, k)
			}
		}
	}
	familytest.RoundTrip(t, familytest.Build(t, "slab_pvt_mini_32", "", 1), familytest.Build(t, "slab_pvt_mini_32", "", 2), map[string][]int{
		"block1.0.attn.q.weight": {16, 16}, "block1.0.attn.kv.bias": {32}, "pos_embed2": {1, 64, 32},
	})
	familytest.RoundTrip(t, familytest.Build(t, "pvt_mini_prepbn_32", "", 1), familytest.Build(t, "pvt_mini_prepbn_32", "", 2), map[string][]int{
		"block1.0.attn.sr.weight": {16, 16, 4, 4}, "block1.0.attn.norm.norm2.alpha": {1},
		"block3.1.attn.sr.bias": {64}, "block4.0.attn.kv.weight": {256, 128},
	})
}

// TestNoAllocs: steady-state passes allocate nothing.
func TestNoAllocs(t *testing.T) {
	for _, name := range minis {
		t.Run(name, func(t *testing.T) { familytest.NoAllocs(t, familytest.Build(t, name, "", 1)) })
	}
}

// TestTrainingThreadInvariant: a few training steps and a BN
// re-calibration at 1 and 2 threads give bit-identical tensors.
func TestTrainingThreadInvariant(t *testing.T) {
	for _, name := range minis {
		t.Run(name, func(t *testing.T) {
			familytest.ThreadInvariant(t, func() models.Classifier {
				c := *lookupT(t, name)
				c.DropPath = 0.1
				m, err := pvt.New(c, 11)
				if err != nil {
					t.Fatal(err)
				}
				return m
			})
		})
	}
}

func lookupT(t *testing.T, name string) *pvt.Config { return lookup(t, name) }
