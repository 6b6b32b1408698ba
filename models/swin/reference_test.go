package swin_test

// The Swin family against our PyTorch reference
// (tools/reference/swin_reference.py, float64 results stored as float32):
//
//   - the block pair fixture (two official SwinTransformerBlocks, shift 0
//     then shift 2, LayerNorm) reproduced by the blocks of a one-stage
//     model: backbone.Block over the WindowMixer, norms from NormSpec;
//   - whole tiny models in the three official layouts (SLAB-Swin with
//     LinearNorm and an SLA stage, FLatten-Swin, Swin-PRepBN with bare
//     RepBN), loaded from the .pth files torch.save wrote through
//     checkpoint.ReadPTH and models.LoadState (relative_position_index and
//     attn_mask consumed by the family's checked aliases): eval logits,
//     the logits of a training forward (batch statistics, lambda 1/2) and
//     every parameter gradient; then folded (the BN-based layouts).
//
// Tolerances, normwise as nn's Swin tests: outputs 1e-5 of the largest
// (blocks) / 1e-4 (whole models through a dozen layers, as the official
// import tests), gradients 1e-4 of each tensor's largest.

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/models/internal/familytest"
	"github.com/slabml/slab/models/swin"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tools/reference/reftest"
)

var (
	blockFwdTol = reftest.Tol{Rel: 1e-5}
	gradTol     = reftest.Tol{Rel: 1e-4, Abs: 1e-7}
)

func TestReferenceBlockPair(t *testing.T) {
	f := reftest.Load(t, "swin_block_pair")
	dim, heads, ws := int(f.Num("dim")), int(f.Num("heads")), int(f.Num("window"))
	H := int(f.Num("H"))
	cfg := swin.Config{Name: "block_pair", ImgSize: H, Patch: 1, InChans: 1, Classes: 2, Dim: dim,
		Depths: []int{2}, Heads: []int{heads}, Windows: []int{ws}, Stages: "S", MLPRatio: int(f.Num("mlp_ratio")),
		Norm: nn.NormLayerNorm, LNEps: float32(f.Num("ln_eps"))}
	m, err := swin.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	blocks := m.Blocks(0)
	if s := m.Mixer(0, 1).Shift; s != ws/2 {
		t.Fatalf("block 1 shift %d, want %d", s, ws/2)
	}
	reftest.CloseT(t, "blocks.1.attn_mask", m.Mixer(0, 1).Mask, f.T("buffer/blocks.1.attn_mask"), reftest.Tol{})
	var ps []*nn.Param
	for _, b := range blocks {
		ps = append(ps, b.Params()...)
	}
	for _, p := range ps {
		name := strings.TrimPrefix(p.Name, "layers.0.")
		want := f.T("param/" + name)
		if want.Size() != p.W.Size() {
			t.Fatalf("%s: shape %v, fixture %v", p.Name, p.W.Shape, want.Shape)
		}
		copy(p.W.Data, want.Data)
		p.G.Zero()
	}
	g := backbone.Grid{H: H, W: H}
	y := f.T("x")
	for _, b := range blocks {
		y = b.Forward(y, g, nn.Train, nil)
	}
	reftest.CloseT(t, "y", y, f.T("y"), blockFwdTol)
	dx := f.T("dy")
	for i := len(blocks) - 1; i >= 0; i-- {
		dx = blocks[i].Backward(dx)
	}
	reftest.CloseT(t, "dx", dx, f.T("dx"), gradTol)
	for _, p := range ps {
		name := strings.TrimPrefix(p.Name, "layers.0.")
		reftest.CloseT(t, "d"+name, p.G, f.T("grad/"+name), gradTol)
	}
}

// tinyConfig rebuilds a fixture's configuration.
func tinyConfig(t *testing.T, f *reftest.Fixture) swin.Config {
	t.Helper()
	c := f.Config
	ints := func(k string) []int {
		var out []int
		for _, v := range c[k].([]any) {
			out = append(out, int(v.(float64)))
		}
		return out
	}
	cfg := swin.Config{Name: "tiny_" + c["name"].(string), ImgSize: int(f.Num("img")), Patch: int(f.Num("patch")),
		InChans: int(f.Num("in_chans")), Classes: int(f.Num("classes")), Dim: int(f.Num("dim")),
		Depths: ints("depths"), Heads: ints("heads"), Windows: ints("windows"), Stages: c["stages"].(string),
		Linear: c["linear"].(string), MLPRatio: int(f.Num("mlp_ratio")), Norm: c["norm"].(string),
		LNEps: float32(f.Num("ln_eps")), Step: int64(f.Num("step")), DWCKernel: int(f.Num("kernel")),
		Focusing: int(f.Num("focusing"))}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// loadTiny builds the fixture's model and loads its official .pth.
func loadTiny(t *testing.T, name string) (*swin.Model, *reftest.Fixture) {
	t.Helper()
	f := reftest.Load(t, "swin_model_"+name)
	m, err := swin.New(tinyConfig(t, f), 3)
	if err != nil {
		t.Fatal(err)
	}
	pth, err := checkpoint.ReadPTH(filepath.Join(reftest.Dir(t), "swin_model_"+name+".pth"))
	if err != nil {
		t.Fatal(err)
	}
	warnings, err := models.LoadState(m, pth.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Logf("LoadState: %d warnings, first: %s", len(warnings), warnings[0])
	}
	return m, f
}

func TestReferenceWholeModels(t *testing.T) {
	for _, name := range []string{"slab", "flatten", "prepbn"} {
		t.Run(name, func(t *testing.T) {
			m, f := loadTiny(t, name)
			familytest.Compare(t, m, f)
		})
	}
}

// TestReferenceAliasesCheck: a checkpoint whose recomputed buffers
// disagree with the model's layout is refused, naming the key.
func TestReferenceAliasesCheck(t *testing.T) {
	f := reftest.Load(t, "swin_model_prepbn")
	pth, err := checkpoint.ReadPTH(filepath.Join(reftest.Dir(t), "swin_model_prepbn.pth"))
	if err != nil {
		t.Fatal(err)
	}
	key := "layers.0.blocks.1.attn_mask"
	e := pth.Tensors[key]
	bad := &checkpoint.Entry{DType: e.DType, Shape: e.Shape, F32: append([]float32(nil), e.F32...)}
	bad.F32[5] = -50
	state := map[string]*checkpoint.Entry{}
	for k, v := range pth.Tensors {
		state[k] = v
	}
	state[key] = bad
	m, err := swin.New(tinyConfig(t, f), 3)
	if err != nil {
		t.Fatal(err)
	}
	_, err = models.LoadState(m, state)
	if err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("a wrong attn_mask loaded: %v", err)
	}
	t.Logf("refused: %v", err)
	// another window layout: the index shape differs
	cfg := tinyConfig(t, f)
	cfg.Windows = []int{4, 2, 2}
	m2, err := swin.New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.LoadState(m2, pth.Tensors); err == nil || !strings.Contains(err.Error(), "relative_position") {
		t.Fatalf("a checkpoint of window 2 loaded into window 4: %v", err)
	} else {
		t.Logf("refused: %.300s", err)
	}
}
