package slab_test

import (
	"context"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/slabml/slab"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// TestImport: an official state dict written by Export (.pth wrapped under
// "model", and safetensors) imports into the registry model with the same
// logits bit for bit; folded within float32 rounding; a language model
// without tokenizer gives TokenLogits but refuses Generate.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	src, err := models.New("slab_deit_mini_28", 5)
	if err != nil {
		t.Fatal(err)
	}
	cls := src.(models.Classifier)
	c, h, w := cls.InputShape()
	x := tensor.New(2, c, h, w)
	for i := range x.Data {
		x.Data[i] = float32(math.Cos(float64(i) * 0.01))
	}
	y, err := cls.Forward(x, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	want := y.Clone()
	for _, out := range []string{"mini.pth", "mini.safetensors"} {
		path := filepath.Join(dir, out)
		wrap := ""
		if strings.HasSuffix(out, ".pth") {
			wrap = "model"
		}
		if err := slab.Export(src, path, slab.ExportOptions{Wrap: wrap}); err != nil {
			t.Fatal(err)
		}
		for _, fold := range []bool{false, true} {
			var opts []slab.Option
			if fold {
				opts = append(opts, slab.Fold())
			}
			m, err := slab.Import(path, "slab_deit_mini_28", opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			maxd := 0.0
			for i := range got.Data {
				maxd = math.Max(maxd, math.Abs(float64(got.Data[i]-want.Data[i])))
			}
			if (!fold && maxd != 0) || maxd > 1e-5 {
				t.Errorf("%s fold %v: logits differ by %.3g", out, fold, maxd)
			}
			t.Logf("%s fold %v: logits within %.2e of the exported model", out, fold, maxd)
		}
	}
	if _, err := slab.Import(filepath.Join(dir, "mini.pth"), "deit_mini_28"); err == nil || !strings.Contains(err.Error(), "mini.pth") {
		t.Errorf("wrong architecture: %v", err)
	}

	lm, err := models.New("lm_test", 2)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lm.safetensors")
	if err := slab.Export(lm, path, slab.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := slab.Import(path, "lm_test")
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{3, 1, 4, 1, 5, 9}
	got, err := m.TokenLogits(ids, 1, 6)
	if err != nil {
		t.Fatal(err)
	}
	y2, err := lm.(models.LM).Forward(ids, 1, 6, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Data, y2.Data) {
		t.Error("imported LM logits differ from the exported model's")
	}
	if _, err := m.Generate(context.Background(), "x", slab.GenerateOptions{Tokens: 1}); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("Generate without tokenizer: %v", err)
	}
}
