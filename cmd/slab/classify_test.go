package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab"
	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
)

// classifyRef is tools/reference/classify_ref.py's output: PyTorch's top-5
// (torchvision's DeiT eval transform on PIL, float64 model, softmax) for the
// committed images on the committed classify_w24 weights.
type classifyRef struct {
	Model  string         `json:"model"`
	Config map[string]any `json:"config"`
	Top    int            `json:"top"`
	Images []struct {
		Image     string    `json:"image"`
		Classes   []int     `json:"classes"`
		Probs     []float64 `json:"probs"`
		Logits    []float64 `json:"logits"`
		MinLogGap float64   `json:"min_logit_gap"`
	} `json:"images"`
}

// The largest difference allowed between a printed probability and
// PyTorch's: PNG preprocessing is bit-exact with torchvision's (package
// data), so only float32 rounding in the model remains (measured 1.3e-7); a
// JPEG is decoded by Go's image/jpeg, whose IDCT differs from libjpeg's by
// up to 3/255 on ~4 % of the values, which moves these logits by up to
// 5.3e-3 and the probabilities by up to 2.4e-4 (measured).
const (
	classifyProbTol     = 1e-5
	classifyJPEGProbTol = 1e-3
)

// TestClassify checks slab classify end to end against PyTorch on a 224
// ImageNet model (slab_deit_tiny's official layout at width 24, depth 1,
// weights and answers from tools/reference/classify_ref.py) and five
// committed images (PNG, 4:2:0 and 4:2:2 JPEG, RGBA, grayscale): the top-5
// classes must be PyTorch's, in order, and the probabilities within
// classifyProbTol (classifyJPEGProbTol for JPEG). The 1-channel path (a 28x28 model) is checked against the
// model's own softmax on the command's preprocessing, which package data
// tests against torchvision.
func TestClassify(t *testing.T) {
	imgDir := filepath.Join("..", "..", "data", "testdata", "imagenet")
	refDir := filepath.Join("..", "..", "testdata", "reference")
	var ref classifyRef
	b, err := os.ReadFile(filepath.Join(refDir, "classify_w24.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	cfg, err := vit.Lookup("slab_deit_tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Dim, cfg.Depth = ref.Model, int(ref.Config["dim"].(float64)), int(ref.Config["depth"].(float64))
	state, err := checkpoint.Read(filepath.Join(refDir, ref.Model+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := vit.New(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.LoadState(m, state.Tensors); err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(t.TempDir(), ref.Model+".safetensors")
	mustWriteWeights(t, w, m)
	args := []string{"classify", "--weights", w, "--top", fmt.Sprint(ref.Top), "--json"}
	for _, im := range ref.Images {
		args = append(args, filepath.Join(imgDir, im.Image))
	}
	js, err := runIn(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var r classifyResult
	if err := json.Unmarshal([]byte(js), &r); err != nil || len(r.Images) != len(ref.Images) {
		t.Fatalf("classify --json printed %q (%v)", js, err)
	}
	var worstP, worstLogit [2]float64 // PNG, JPEG
	for i, want := range ref.Images {
		got := r.Images[i].Top
		kind, tol := 0, classifyProbTol
		if strings.HasSuffix(want.Image, ".jpg") {
			kind, tol = 1, classifyJPEGProbTol
		}
		if len(got) != len(want.Classes) {
			t.Fatalf("%s: %d classes printed, want %d", want.Image, len(got), len(want.Classes))
		}
		var dl float64
		for k := range got {
			dp := math.Abs(got[k].Prob - want.Probs[k])
			dl = max(dl, math.Abs(got[k].Logit-want.Logits[k]))
			worstP[kind] = max(worstP[kind], dp)
			if got[k].Class != want.Classes[k] || dp > tol {
				t.Errorf("%s: top %d = class %d p %.6f, PyTorch class %d p %.6f", want.Image, k+1, got[k].Class, got[k].Prob, want.Classes[k], want.Probs[k])
			}
			if got[k].Name != data.ImageNetClasses[got[k].Class] {
				t.Errorf("%s: class %d named %q, want ImageNet's %q", want.Image, got[k].Class, got[k].Name, data.ImageNetClasses[got[k].Class])
			}
		}
		worstLogit[kind] = max(worstLogit[kind], dl)
		t.Logf("%-15s top-5 %v, p %.4f..%.4f; max logit diff %.2e, PyTorch's smallest gap between the first six logits %.2e",
			want.Image, want.Classes, want.Probs[0], want.Probs[len(want.Probs)-1], dl, want.MinLogGap)
	}
	t.Logf("PNG: max |prob - PyTorch| %.2e (tolerance %g), max |logit - PyTorch| %.2e", worstP[0], classifyProbTol, worstLogit[0])
	t.Logf("JPEG: max |prob - PyTorch| %.2e (tolerance %g), max |logit - PyTorch| %.2e", worstP[1], classifyJPEGProbTol, worstLogit[1])

	// The 1-channel path.
	images := []string{filepath.Join(imgDir, "land.png"), filepath.Join(imgDir, "tall.jpg")}
	{
		name := "slab_deit_mini_28"
		m := officialModel(t, name)
		w := filepath.Join(t.TempDir(), name+".safetensors")
		mustWriteWeights(t, w, m)
		js, err := runIn(t, append([]string{"classify", "--weights", w, "--top", "3", "--json"}, images...)...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var r classifyResult
		if err := json.Unmarshal([]byte(js), &r); err != nil || len(r.Images) != 2 {
			t.Fatalf("%s: classify --json printed %q (%v)", name, js, err)
		}
		// The API's preprocessing and top-k (package slab) on the model.
		sm, err := slab.Wrap(m, nil, slab.Dataset("fashion-mnist"))
		if err != nil {
			t.Fatal(err)
		}
		for i, path := range images {
			wants, err := sm.ClassifyFiles([]string{path}, 3)
			if err != nil {
				t.Fatal(err)
			}
			want := wants[0]
			got := r.Images[i].Top
			for k := range want {
				if got[k].Class != want[k].Class || got[k].Name != want[k].Name || math.Abs(got[k].Prob-want[k].Prob) > 1e-5 {
					t.Errorf("%s %s: top %d = %+v, want %+v", name, path, k, got[k], want[k])
				}
				if k > 0 && got[k].Prob > got[k-1].Prob {
					t.Errorf("%s: top-k not sorted", name)
				}
			}
			t.Logf("%s %s: %q %.3f", name, filepath.Base(path), got[0].Name, got[0].Prob)
		}
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"classify", "--weights", "x"}, "IMAGE"},
		{[]string{"classify", images[0]}, "--weights"},
		{[]string{"classify", "--weights", images[0], images[0]}, "--weights"},
	}
	for _, c := range bad {
		if _, err := runIn(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
