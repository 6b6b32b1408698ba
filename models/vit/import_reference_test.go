package vit_test

// Official-layout checkpoints written by torch.save in our PyTorch reference
// (tools/reference/reference.py): a tiny SLAB-DeiT (LinearNorm keys
// norm1/norm2/warm/iter/total_step, unused cls_token, SLA, mean pooling) and
// a tiny DeiT-PRepBN (bare RepBN keys alpha/bn.*, class token, softmax),
// both with random weights and realistic running statistics, iter = 0 as
// released. They go through checkpoint.ReadPTH, vit.LoadState and
// fuse.Fuse, and the logits must match PyTorch's (computed in float64) to
// 1e-4 normwise, for the unfolded eval model and for the folded one. The
// 224px layouts (slab_deit_tiny, deit_tiny_prepbn at width 6, and the
// full-width ones on request) are checked by TestOfficial224 in
// tools/reference/reftest.

import (
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tools/reference/reftest"
)

var importTol = reftest.Tol{Rel: 1e-4}

func TestReferenceImportOfficialPTH(t *testing.T) {
	for _, name := range []string{"tiny_slab_deit", "tiny_deit_prepbn"} {
		t.Run(name, func(t *testing.T) {
			f := reftest.Load(t, name+"_logits")
			c := f.Config
			cfg := vit.Config{
				Name: name, ImgSize: int(f.Num("img")), Patch: int(f.Num("patch")),
				InChans: int(f.Num("in_chans")), Classes: int(f.Num("classes")), Dim: int(f.Num("dim")),
				Depth: int(f.Num("depth")), Heads: int(f.Num("heads")), MLPRatio: int(f.Num("mlp_ratio")),
				Norm: c["norm"].(string), Attn: c["attn"].(string), ClsToken: c["cls"].(bool),
				LNEps: float32(f.Num("ln_eps")), Step: int64(f.Num("step")), DWCKernel: int(f.Num("kernel")),
			}
			pth, err := checkpoint.ReadPTH(filepath.Join(reftest.Dir(t), name+".pth"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := vit.New(cfg, 7)
			if err != nil {
				t.Fatal(err)
			}
			warnings, err := models.LoadState(m, pth.Tensors)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				t.Logf("LoadState warning: %s", w)
			}
			logits, err := m.Forward(f.T("input"), nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "eval logits", logits, f.T("logits"), importTol)
			d, err := foldVit(m)
			if err != nil {
				t.Fatal(err)
			}
			fl, err := d.Forward(f.T("input"), nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "fused logits", fl, f.T("logits"), importTol)
		})
	}
}
