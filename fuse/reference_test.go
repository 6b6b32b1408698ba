package fuse_test

// The deploy model against our PyTorch reference fold
// (tools/reference/reference.py, fuse(): docs/method.md 2.1 exact form, computed in
// float64): for every BatchNorm-based tiny model fixture, fuse.Fuse must give
// PyTorch's folded weights and the folded model's logits, which PyTorch
// checked equal to the unfolded eval logits to 1e-10.
//
// Tolerances (normwise, package reftest): folded weights 1e-5 (one
// multiply-add per element from exact inputs, so a few float32 ulps; the
// folded bias is a 16-term dot product), logits 1e-4 as for the unfolded
// model (models/vit/reference_test.go).

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tools/reference/reftest"
)

func TestReferenceFuse(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(reftest.Dir(t), "vit_*.safetensors"))
	n := 0
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".safetensors")
		f := reftest.LoadPath(t, path)
		if !f.Has("fused/logits") {
			continue // LayerNorm models do not fold
		}
		n++
		t.Run(name, func(t *testing.T) {
			c := f.Config
			cfg := vit.Config{
				Name: "ref_" + name, ImgSize: int(f.Num("img")), Patch: int(f.Num("patch")),
				InChans: int(f.Num("in_chans")), Classes: int(f.Num("classes")), Dim: int(f.Num("dim")),
				Depth: int(f.Num("depth")), Heads: int(f.Num("heads")), MLPRatio: int(f.Num("mlp_ratio")),
				Norm: c["norm"].(string), Attn: c["attn"].(string), ClsToken: c["cls"].(bool),
				LNEps: float32(f.Num("ln_eps")), Step: int64(f.Num("step")), Warm: int64(f.Num("warm")),
				DWCKernel: int(f.Num("kernel")),
			}
			m, err := vit.New(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params() {
				copy(p.W.Data, f.T("init/param/"+p.Name).Data)
			}
			for _, b := range m.Buffers() {
				if b.I != nil {
					*b.I = f.Ints("init/buffer/" + b.Name)[0]
				} else {
					copy(b.F.Data, f.T("init/buffer/"+b.Name).Data)
				}
			}
			d, err := foldVit(m)
			if err != nil {
				t.Fatal(err)
			}
			if d.Cfg.Norm != vit.NormNone {
				t.Errorf("fused Cfg.Norm = %q, want %q", d.Cfg.Norm, vit.NormNone)
			}
			want := map[string]bool{}
			for _, k := range f.Names("fused/param/") {
				want[k] = true
			}
			for _, p := range d.Params() {
				if !want[p.Name] {
					t.Errorf("deploy parameter %s is not in PyTorch's folded model", p.Name)
					continue
				}
				delete(want, p.Name)
				reftest.CloseT(t, p.Name, p.W, f.T("fused/param/"+p.Name), reftest.Tol{Rel: 1e-5})
			}
			for k := range want {
				t.Errorf("PyTorch's folded model has %s, the deploy model does not", k)
			}
			if len(d.Buffers()) != 0 {
				t.Errorf("deploy model keeps %d buffers, want none", len(d.Buffers()))
			}
			logits, err := d.Forward(f.T("input"), nn.Eval)
			if err != nil {
				t.Fatal(err)
			}
			reftest.CloseT(t, "fused logits", logits, f.T("fused/logits"), reftest.Tol{Rel: 1e-4})
		})
	}
	if n == 0 {
		t.Fatal("no BatchNorm-based vit_*.safetensors fixture")
	}
}
