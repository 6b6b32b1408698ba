package reftest_test

// The 224px official layouts (docs/method.md 4.6) of slab_deit_tiny
// (LinearNorm keys, unused cls_token, 196 positions, SLA, mean pool) and
// deit_tiny_prepbn (bare RepBN keys, class token, 197 positions, softmax),
// written by torch.save in tools/reference/reference.py with random weights
// and realistic running statistics. The registry configs are used as they
// are except for the width, cut from 192 to 6 (3 heads of 2 channels): every
// key of the real checkpoints is there (12 blocks, 16x16 patches, 14x14
// tokens, 1000 classes), at ~0.3 % of the size. slab reads the .pth
// (checkpoint.ReadPTH), loads it (models.LoadState), folds it (fuse.Copy), and
// both models must give PyTorch's float64 logits to 1e-4 normwise. The
// input is reference.py's formula_input, recomputed here.
//
// The full-width checkpoints (~25 MB each, not committed) go through the
// same checks when SLAB_PTH_FULL names a directory written by
//
//	/usr/bin/python3 tools/reference/reference.py --pth-full DIR

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

// formulaInput is reference.py's formula_input: element i (row-major) is
// float32(((i*7919) % 2001)/1000 - 1), computed in float64 as there.
func formulaInput(shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	for i := range x.Data {
		x.Data[i] = float32(float64((i*7919)%2001)/1000 - 1)
	}
	return x
}

func TestOfficial224(t *testing.T) {
	dir := reftest.Dir(t)
	suffix := "_w6"
	if full := os.Getenv("SLAB_PTH_FULL"); full != "" {
		dir, suffix = full, ""
		t.Logf("full-width checkpoints from %s", full)
	}
	for _, name := range []string{"slab_deit_tiny", "deit_tiny_prepbn"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := vit.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			f := reftest.LoadPath(t, filepath.Join(dir, name+suffix+"_logits.safetensors"))
			// The registry config is the official one: only the width may
			// differ from what PyTorch built.
			c := f.Config
			for _, k := range []struct {
				key       string
				got, want any
			}{
				{"img", cfg.ImgSize, int(f.Num("img"))}, {"patch", cfg.Patch, int(f.Num("patch"))},
				{"in_chans", cfg.InChans, int(f.Num("in_chans"))}, {"classes", cfg.Classes, int(f.Num("classes"))},
				{"depth", cfg.Depth, int(f.Num("depth"))}, {"heads", cfg.Heads, int(f.Num("heads"))},
				{"mlp_ratio", cfg.MLPRatio, int(f.Num("mlp_ratio"))}, {"ln_eps", cfg.LNEps, float32(f.Num("ln_eps"))},
				{"kernel", cfg.DWCKernel, int(f.Num("kernel"))},
				{"attn", cfg.Attn, c["attn"]}, {"cls", cfg.ClsToken, c["cls"]}, {"step", cfg.Step, int64(f.Num("step"))},
			} {
				if k.key == "step" && c["norm"] != "prepbn" {
					continue // T only exists in LinearNorm
				}
				if k.got != k.want {
					t.Errorf("registry %s: %s = %v, PyTorch built %v", name, k.key, k.got, k.want)
				}
			}
			cfg.Dim = int(f.Num("dim"))
			pth, err := checkpoint.ReadPTH(filepath.Join(dir, name+suffix+".pth"))
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
			want := f.T("logits")
			x := formulaInput(want.Shape[0], cfg.InChans, cfg.ImgSize, cfg.ImgSize)
			if f.Has("input") {
				x = f.T("input")
			}
			t.Logf("%s%s: %d tensors read, width %d, input %v", name, suffix, len(pth.Tensors), cfg.Dim, x.Shape)
			logits, err := m.Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "eval logits", logits, want, reftest.Tol{Rel: 1e-4})
			dm, err := fuse.Copy(m)
			if err != nil {
				t.Fatal(err)
			}
			fl, err := dm.(*vit.Model).Forward(x, nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "fused logits", fl, want, reftest.Tol{Rel: 1e-4})
		})
	}
}
