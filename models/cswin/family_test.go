package cswin_test

import (
	"fmt"
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/cswin"
	"github.com/slabml/slab/models/internal/familytest"
	"github.com/slabml/slab/nn"
)

// TestMiniLayout: the Fashion-MNIST variant runs every mechanism: global
// SLA + LePE in stages 1-2, two stripe branches in stage 3, one global
// softmax window in stage 4.
func TestMiniLayout(t *testing.T) {
	m := build(t, "slab_cswin_mini_32", 1)
	for i, want := range []int{16, 8, 4, 2} {
		if g := m.Cfg.StageGrid(i); g != want {
			t.Errorf("stage %d: %dx%d map, want %d", i+1, g, g, want)
		}
	}
	sd := models.StateDict(m)
	for _, k := range []string{"stage1.0.attns.0.get_v.weight", "stage2.1.attns.0.dwc.weight", "stage3.0.attns.1.get_v.weight", "stage4.0.attns.0.get_v.weight"} {
		if _, ok := sd[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if _, ok := sd["stage4.0.attns.1.get_v.weight"]; ok {
		t.Error("stage 4 has two branches")
	}
}

// TestGradients: Train-mode gradients of the whole mini model (stem and
// merge convs, SLA + LePE, stripes, final norm) against finite
// differences, with LayerNorm and with RepBN (batch statistics).
func TestGradients(t *testing.T) {
	for _, norm := range []string{nn.NormLayerNorm, nn.NormRepBN} {
		t.Run(norm, func(t *testing.T) {
			m := familytest.Build(t, "slab_cswin_mini_32", norm, 3)
			familytest.GradCheck(t, m, familytest.Input(m, 1, 2), 2, 1e-2, 6e-2)
		})
	}
}

// TestFoldExact: stem and merge norms fold into their convs, block norms
// into qkv and fc1, the final norm into the head; folded logits equal the
// unfolded ones to 1e-5; LayerNorm refuses.
func TestFoldExact(t *testing.T) {
	for _, norm := range []string{"", nn.NormRepBN} {
		t.Run("prepbn"+norm, func(t *testing.T) {
			familytest.FoldExact(t, familytest.Build(t, "slab_cswin_mini_32", norm, 5))
		})
	}
	if err := fuse.Fold(familytest.Build(t, "slab_cswin_mini_32", nn.NormLayerNorm, 1)); err == nil {
		t.Error("a LayerNorm model folded")
	}
}

// TestStateDict: slab_cswin.py's names and shapes at 224 (docs/method.md
// 4.6) are the model's own, and the mini's state dict round-trips.
func TestStateDict(t *testing.T) {
	want := map[string][]int{
		"stage1_conv_embed.0.weight": {64, 3, 7, 7}, "stage1_conv_embed.0.bias": {64}, "stage1_conv_embed.2.norm2.bn.running_mean": {64},
		"stage1.0.qkv.weight": {192, 64}, "stage1.0.proj.weight": {64, 64}, "stage1.0.norm1.norm1.weight": {64},
		"stage1.0.attns.0.get_v.weight": {64, 1, 3, 3}, "stage1.0.attns.0.dwc.weight": {32, 1, 5, 5},
		"stage1.0.attns.0.scale": {1, 1, 64}, "stage1.0.attns.0.positional_encoding": {1, 3136, 64},
		"stage2.3.attns.0.positional_encoding": {1, 784, 128}, "merge1.conv.weight": {128, 64, 3, 3}, "merge3.norm.norm2.alpha": {1},
		"stage3.17.attns.0.get_v.weight": {128, 1, 3, 3}, "stage3.17.attns.1.get_v.bias": {128},
		"stage4.0.attns.0.get_v.weight": {512, 1, 3, 3}, "stage4.0.mlp.fc1.weight": {2048, 512},
		"norm.norm1.weight": {512}, "head.weight": {1000, 512},
	}
	sd := familytest.Shapes(familytest.Build(t, "slab_cswin_tiny", "", 1))
	for k, shape := range want {
		if got, ok := sd[k]; !ok || fmt.Sprint(got) != fmt.Sprint(shape) {
			t.Errorf("%s missing or not %v", k, shape)
		}
	}
	for _, k := range []string{"stage4.0.attns.1.get_v.weight", "stage3.0.attns.0.dwc.weight", "stage1.0.attns.1.get_v.weight"} {
		if _, ok := sd[k]; ok {
			t.Errorf("slab_cswin_tiny has %s", k)
		}
	}
	familytest.RoundTrip(t, familytest.Build(t, "slab_cswin_mini_32", "", 1), familytest.Build(t, "slab_cswin_mini_32", "", 2), map[string][]int{
		"stage1_conv_embed.0.weight": {16, 1, 3, 3}, "stage3.1.attns.1.get_v.weight": {32, 1, 3, 3}, "merge2.conv.weight": {64, 32, 3, 3},
	})
}

// TestNoAllocs: steady-state passes allocate nothing.
func TestNoAllocs(t *testing.T) {
	familytest.NoAllocs(t, build(t, "slab_cswin_mini_32", 1))
}

// TestTrainingThreadInvariant: a few training steps (drop path on) and a
// BN re-calibration at 1 and 2 threads give bit-identical tensors.
func TestTrainingThreadInvariant(t *testing.T) {
	familytest.ThreadInvariant(t, func() models.Classifier {
		c := *lookup(t, "slab_cswin_mini_32")
		c.DropPath = 0.1
		m, err := cswin.New(c, 11)
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}
