package llama

import (
	"math"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// TestLoadState: a state dict in the official layout (our names plus HF's
// rotary_emb.inv_freq buffers) loads and gives the same logits, and
// mismatches are errors that name the tensor. (F16 storage is package
// checkpoint's concern: it hands over float32.)
func TestLoadState(t *testing.T) {
	src := testModel(t, NormPRep, false)
	state := models.StateDict(src)
	for i := range src.Blocks {
		inv := make([]float32, src.Cfg.HeadDim/2)
		for j := range inv {
			inv[j] = float32(invFreq(src.Cfg.RopeBase, j, src.Cfg.HeadDim))
		}
		state["model.layers."+string(rune('0'+i))+".self_attn.rotary_emb.inv_freq"] = &checkpoint.Entry{DType: "F32", Shape: []int{len(inv)}, F32: inv}
	}
	dst := testModel(t, NormPRep, false)
	for _, p := range dst.Params() {
		clear(p.W.Data)
	}
	if _, err := models.LoadState(dst, state); err != nil {
		t.Fatal(err)
	}
	ids := []int{3, 1, 4, 1, 5, 9, 2, 6}
	a, _ := src.Forward(ids, 1, len(ids), nn.Eval)
	want := append([]float32(nil), a.Data...)
	b, _ := dst.Forward(ids, 1, len(ids), nn.Eval)
	for i := range want {
		if math.Abs(float64(b.Data[i]-want[i])) > 1e-6 {
			t.Fatalf("logit %d: loaded %g, source %g", i, b.Data[i], want[i])
		}
	}
	for _, tc := range []struct {
		edit func(map[string]*checkpoint.Entry)
		want string
	}{
		{func(s map[string]*checkpoint.Entry) { delete(s, "lm_head.weight") }, "lm_head.weight"},
		{func(s map[string]*checkpoint.Entry) { s["model.norm.extra"] = s["lm_head.weight"] }, "model.norm.extra"},
		{func(s map[string]*checkpoint.Entry) {
			s["model.layers.0.self_attn.rotary_emb.inv_freq"].F32[1] *= 2
		}, "inv_freq"},
		{func(s map[string]*checkpoint.Entry) {
			e := *s["model.embed_tokens.weight"]
			e.Shape = []int{e.Shape[1], e.Shape[0]}
			s["model.embed_tokens.weight"] = &e
		}, "model.embed_tokens.weight"},
	} {
		st := models.StateDict(src)
		for k, v := range state {
			if strings.HasSuffix(k, "inv_freq") {
				st[k] = &checkpoint.Entry{DType: v.DType, Shape: v.Shape, F32: append([]float32(nil), v.F32...)}
			}
		}
		tc.edit(st)
		if _, err := models.LoadState(dst, st); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %q", err, tc.want)
		}
	}
	// An rmsnorm model refuses a prepbn state dict.
	if _, err := models.LoadState(testModel(t, NormRMS, false), state); err == nil {
		t.Error("prepbn state dict loaded into an rmsnorm model")
	}
}
