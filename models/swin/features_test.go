package swin_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/internal/familytest"
	"github.com/slabml/slab/models/swin"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

// detMini is slab_swin_mini_32 in the detection layout on 32x32 inputs:
// windows 12, 8, 3, 3, so that stage 1 (SLA) and stages 3-4 (shifted
// softmax) pad their maps at most input sizes.
func detMini(t *testing.T, windows []int, depths []int) swin.Config {
	t.Helper()
	c := *lookup(t, "slab_swin_mini_32")
	c.Name, c.InputSize, c.Det = "slab_swin_mini_det", 0, true
	c.Windows, c.Depths = windows, depths
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFeatureMapsDet: the detection layout takes any input whose sides are
// multiples of 16 (patch 2 and three merges) and returns four maps
// [B, C·2^i, H/(2·2^i), W/(2·2^i)] at strides 2, 4, 8, 16, each the stage's
// token output in channel-first order; other sizes are refused naming
// the rule.
func TestFeatureMapsDet(t *testing.T) {
	m, err := swin.New(detMini(t, []int{12, 8, 3, 3}, []int{2, 2, 2, 2}), 1)
	if err != nil {
		t.Fatal(err)
	}
	familytest.Randomize(m, 2)
	var fm models.FeatureModel = m
	for _, hw := range [][2]int{{64, 32}, {48, 80}, {32, 32}} {
		h, w := hw[0], hw[1]
		x := familytest.Images(3, 2, 1, h)
		if h != w {
			x = tensor.New(2, 1, h, w)
			for i := range x.Data {
				x.Data[i] = float32(math.Sin(float64(i) * 0.37))
			}
		}
		maps, err := fm.FeatureMaps(x)
		if err != nil {
			t.Fatal(err)
		}
		toks, grids := m.Features()
		if len(maps) != 4 {
			t.Fatalf("%d maps, want 4", len(maps))
		}
		for i, f := range maps {
			s := 2 << i
			want := []int{2, 16 << i, h / s, w / s}
			if f.Stride != s || !tensor.ShapeEq(f.T.Shape, want) || grids[i].H != h/s || grids[i].W != w/s {
				t.Fatalf("%dx%d stage %d: stride %d shape %v grid %+v, want stride %d shape %v", h, w, i+1, f.Stride, f.T.Shape, grids[i], s, want)
			}
			n, c := want[2]*want[3], want[1]
			for bi := range 2 {
				for k := 0; k < n*c; k += 7 {
					tok, ch := k/c, k%c
					if gv, tv := f.T.Data[(bi*c+ch)*n+tok], toks[i].Data[(bi*n+tok)*c+ch]; gv != tv || math.IsNaN(float64(gv)) {
						t.Fatalf("%dx%d stage %d image %d channel %d token %d: map %g, tokens %g", h, w, i+1, bi, ch, tok, gv, tv)
					}
				}
			}
		}
		t.Logf("%dx%d: maps %v %v %v %v", h, w, maps[0].T.Shape, maps[1].T.Shape, maps[2].T.Shape, maps[3].T.Shape)
	}
	for _, hw := range [][3]int{{1, 40, 32}, {1, 32, 8}, {3, 32, 32}} {
		if err := fm.CheckFeatureInput(hw[0], hw[1], hw[2]); err == nil {
			t.Errorf("input %v accepted", hw)
		} else {
			t.Logf("refused: %v", err)
		}
	}
}

// TestDetMatchesClassifierUnpadded: with one block per stage (no shift)
// and windows that tile the maps, the detection layout pads nothing and
// must equal the classification model with the same weights, logits and
// feature maps alike; at a padded size it stays finite.
func TestDetMatchesClassifierUnpadded(t *testing.T) {
	det := detMini(t, []int{16, 8, 2, 2}, []int{1, 1, 1, 1})
	cls := det
	cls.Name, cls.Det = "slab_swin_mini_cls", false
	mc, err := swin.New(cls, 1)
	if err != nil {
		t.Fatal(err)
	}
	familytest.Randomize(mc, 5)
	md, err := swin.New(det, 9)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.LoadState(md, models.StateDict(mc)); err != nil {
		t.Fatal(err)
	}
	x := familytest.Images(4, 3, 1, 32)
	yc, err := mc.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	yc = yc.Clone()
	fc, err := mc.FeatureMaps(x)
	if err != nil {
		t.Fatal(err)
	}
	f3 := fc[3].T.Clone()
	yd, err := md.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "logits, detection vs classification layout", yd, yc, reftest.Tol{Abs: 1e-6})
	fd, err := md.FeatureMaps(x)
	if err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "stage-4 map", fd[3].T, f3, reftest.Tol{Abs: 1e-6})
	// 48x64: stage 1 (24x32 tokens) in 16x16 SLA windows pads to 32x32
	fp, err := md.FeatureMaps(familytest.Images(6, 1, 1, 48))
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.CheckFinite("padded stage 4", fp[3].T); err != nil {
		t.Fatal(err)
	}
}

// TestDetGradients: the detection layout's padding and cropping are
// differentiated too (finite differences, padded 48x48 input, shifted
// windows in every stage; LayerNorm and RepBN with batch statistics).
func TestDetGradients(t *testing.T) {
	for _, norm := range []string{nn.NormLayerNorm, nn.NormRepBN} {
		t.Run(norm, func(t *testing.T) {
			c := detMini(t, []int{12, 8, 3, 3}, []int{2, 2, 2, 2})
			// a fixed norm: LinearNorm's schedule moves with every training call
			if err := c.Set("norm", norm); err != nil {
				t.Fatal(err)
			}
			m, err := swin.New(c, 1)
			if err != nil {
				t.Fatal(err)
			}
			familytest.Randomize(m, 2)
			familytest.GradCheck(t, m, familytest.Images(8, 2, 1, 48), 3, 1e-2, 6e-2)
		})
	}
}

// TestFeaturesRefuseOtherSizes: a classification model takes its own size
// only and says where other sizes go; FeaturesOfFile reports it as an
// input error.
func TestFeaturesRefuseOtherSizes(t *testing.T) {
	m := build(t, "slab_swin_mini_32", 1)
	err := m.CheckFeatureInput(1, 64, 64)
	if err == nil || !strings.Contains(err.Error(), "28x28 images only") || !strings.Contains(err.Error(), "detection layout") {
		t.Fatalf("64x64 into slab_swin_mini_32: %v", err)
	}
	t.Logf("%v", err)
	path := filepath.Join(t.TempDir(), "in.safetensors")
	f := checkpoint.NewFile()
	f.Set("input", familytest.Images(1, 1, 1, 64))
	if err := checkpoint.Write(path, f); err != nil {
		t.Fatal(err)
	}
	_, _, err = models.FeaturesOfFile(m, path, "", 4)
	var ie *models.InputError
	if !errors.As(err, &ie) || ie.Input != "input" {
		t.Fatalf("FeaturesOfFile: %v, want an input error", err)
	}
	f.Set("input", familytest.Images(1, 3, 1, 28))
	if err := checkpoint.Write(path, f); err != nil {
		t.Fatal(err)
	}
	maps, key, err := models.FeaturesOfFile(m, path, "", 2)
	if err != nil || key != "input" || len(maps) != 4 || maps[0].T.Shape[0] != 3 {
		t.Fatalf("28x28: %v, key %q, %d maps", err, key, len(maps))
	}
}

// TestDetConfig: slab_swin_tiny_det has slab_swin_tiny's parameters (its
// checkpoints load unchanged) and takes multiples of 32.
func TestDetConfig(t *testing.T) {
	d, c := lookup(t, "slab_swin_tiny_det"), lookup(t, "slab_swin_tiny")
	if d.ParamCount() != c.ParamCount() || !d.Det || d.Multiple() != 32 {
		t.Fatalf("det %d params (Det %v, multiple %d), classification %d", d.ParamCount(), d.Det, d.Multiple(), c.ParamCount())
	}
	if err := d.Set("size", "800"); err != nil || d.ImgSize != 800 {
		t.Fatalf("size 800: %v (ImgSize %d)", err, d.ImgSize)
	}
	if err := d.Set("size", "810"); err == nil {
		t.Fatal("size 810 accepted")
	}
}
