package slab_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/slabml/slab"
	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/tensor"
)

const apiLM = "testdata/compat/old_lm.safetensors"

// TestClassifyMatchesPyTorch: the API's Classify gives PyTorch's top-5 on
// the PNG images of testdata/reference/classify_w24.json (torchvision
// preprocessing, float64 model), unfolded and folded.
func TestClassifyMatchesPyTorch(t *testing.T) {
	var ref struct {
		Images []struct {
			Image   string
			Classes []int
			Probs   []float64
		}
	}
	b, err := os.ReadFile("testdata/reference/classify_w24.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for _, fold := range []bool{false, true} {
		var opts []slab.Option
		if fold {
			opts = append(opts, slab.Fold())
		}
		m, err := slab.Load(apiClassifier, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if m.Folded() != fold || m.Task() != "classify" || m.Family() != "vit" || m.Classes() != 1000 {
			t.Errorf("fold %v: folded %v, task %s, family %s, classes %d", fold, m.Folded(), m.Task(), m.Family(), m.Classes())
		}
		maxd := 0.0
		for _, im := range ref.Images {
			if !strings.HasSuffix(im.Image, ".png") {
				continue // JPEG decoding differs from libjpeg's (cmd/slab's TestClassify)
			}
			p, err := m.ClassifyFiles([]string{filepath.Join("data", "testdata", "imagenet", im.Image)}, 5)
			if err != nil {
				t.Fatal(err)
			}
			for k, c := range p[0] {
				if c.Class != im.Classes[k] {
					t.Errorf("fold %v %s: class %d is %d, PyTorch %d", fold, im.Image, k, c.Class, im.Classes[k])
				}
				maxd = math.Max(maxd, math.Abs(c.Prob-im.Probs[k]))
			}
		}
		if maxd > 1e-5 {
			t.Errorf("fold %v: probabilities differ from PyTorch's by %.3g", fold, maxd)
		}
		t.Logf("fold %v: PNG top-5 classes as PyTorch, probabilities within %.2e", fold, maxd)
	}
}

// TestConcurrentModel: a Model shared by goroutines and a Pool both give
// every goroutine the answer of a lone call, bit for bit.
func TestConcurrentModel(t *testing.T) {
	m, err := slab.Load(apiClassifier, slab.Fold())
	if err != nil {
		t.Fatal(err)
	}
	c, h, w := m.InputShape()
	xs := make([]*tensor.Tensor, 6)
	want := make([]*tensor.Tensor, len(xs))
	for i := range xs {
		xs[i] = tensor.New(1+i%3, c, h, w)
		for j := range xs[i].Data {
			xs[i].Data[j] = float32(math.Sin(float64(j*(i+3)) * 0.001))
		}
		if want[i], err = m.Logits(xs[i]); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := slab.NewPool(m, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, viaPool := range []bool{false, true} {
		var wg sync.WaitGroup
		errs := make([]error, 2*len(xs))
		for g := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				i := g % len(xs)
				var y *tensor.Tensor
				var err error
				if viaPool {
					y, err = pool.Logits(context.Background(), xs[i])
				} else {
					y, err = m.Logits(xs[i])
				}
				if err == nil && !reflect.DeepEqual(y.Data, want[i].Data) {
					err = errors.New("logits differ from a lone call")
				}
				errs[g] = err
			}()
		}
		wg.Wait()
		for g, err := range errs {
			if err != nil {
				t.Errorf("pool %v, goroutine %d: %v", viaPool, g, err)
			}
		}
	}
}

// TestGenerate: streamed text equals the returned text, a Pool of a folded
// decoder generates the same text, a cancelled context stops early.
func TestGenerate(t *testing.T) {
	m, err := slab.Load(apiLM, slab.Fold())
	if err != nil {
		t.Fatal(err)
	}
	var streamed strings.Builder
	text, err := m.Generate(context.Background(), "abc", slab.GenerateOptions{Tokens: 20, Temperature: 0.9, TopK: 5, Seed: 3,
		Emit: func(s string) bool { streamed.WriteString(s); return true }})
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != text || len(text) == 0 {
		t.Errorf("streamed %q, returned %q", streamed.String(), text)
	}
	pool, err := slab.NewPool(m, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		again, err := pool.Generate(context.Background(), "abc", slab.GenerateOptions{Tokens: 20, Temperature: 0.9, TopK: 5, Seed: 3})
		if err != nil || again != text {
			t.Errorf("pool generate %d: %q (%v), want %q", i, again, err, text)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err = m.Generate(ctx, "abc", slab.GenerateOptions{Tokens: 20, Emit: func(string) bool { n++; cancel(); return true }})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Errorf("cancelled generate: %d tokens emitted, error %v", n, err)
	}
	ids := []int{1, 2, 3, 4, 5, 6}
	y, err := m.TokenLogits(ids, 2, 3)
	if err != nil || !reflect.DeepEqual(y.Shape, []int{2, 3, m.Classes()}) {
		t.Errorf("TokenLogits: %v, %v", y, err)
	}
}

// TestAPIErrors: misuse gives errors naming the file, option or shape.
func TestAPIErrors(t *testing.T) {
	cls, err := slab.Load(apiClassifier)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := slab.Load(apiLM)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := slab.Load("testdata/nope.safetensors"); return err }(), "nope.safetensors"},
		{func() error {
			_, err := slab.Load("testdata/reference/classify_w24.safetensors")
			return err
		}(), "slab import"},
		{func() error { _, err := slab.Load(apiClassifier, slab.Dataset("cifar")); return err }(), "cifar"},
		{func() error { _, err := cls.Logits(tensor.New(1, 3, 32, 32)); return err }(), "[B, 3, 224, 224]"},
		{func() error { _, err := cls.Classify(nil, 0); return err }(), "k must be"},
		{func() error {
			_, err := cls.Generate(context.Background(), "x", slab.GenerateOptions{Tokens: 1})
			return err
		}(), "not a language model"},
		{func() error { _, err := lm.ClassifyFiles([]string{"x.png"}, 1); return err }(), "x.png"},
		{func() error { _, err := lm.Classify(nil, 1); return err }(), "not an image classifier"},
		{func() error { _, err := lm.Generate(context.Background(), "x", slab.GenerateOptions{}); return err }(), "Tokens"},
		{func() error { _, err := lm.TokenLogits([]int{1, 999}, 1, 2); return err }(), "outside the vocabulary"},
		{func() error { _, err := slab.NewPool(cls, 0); return err }(), "at least 1"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", c.err, c.want)
		}
	}
}

// TestModelExport: Model.Export writes what OfficialState holds and
// refuses a folded model with ErrFolded.
func TestModelExport(t *testing.T) {
	dir := t.TempDir()
	m, err := slab.Load(apiClassifier)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "w24.pth")
	if err := m.Export(out, slab.ExportOptions{Wrap: "model"}); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.ReadPTH(out)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := checkpoint.Read("testdata/reference/classify_w24.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(ref.Tensors) {
		t.Errorf("%d tensors exported, the PyTorch state dict has %d", len(f.Tensors), len(ref.Tensors))
	}
	for k, e := range ref.Tensors {
		g := f.Tensors[k]
		if g == nil || g.DType != e.DType || !reflect.DeepEqual(g.F32, e.F32) || !reflect.DeepEqual(g.I64, e.I64) {
			t.Errorf("%s: exported differently from PyTorch's state dict", k)
		}
	}
	folded, err := slab.Load(apiClassifier, slab.Fold())
	if err != nil {
		t.Fatal(err)
	}
	err = folded.Export(filepath.Join(dir, "f.pth"), slab.ExportOptions{})
	if !errors.Is(err, slab.ErrFolded) || !strings.Contains(err.Error(), apiClassifier) {
		t.Errorf("folded export: %v", err)
	}
	if err := m.Export(filepath.Join(dir, "x.onnx"), slab.ExportOptions{}); err == nil || !strings.Contains(err.Error(), ".onnx") {
		t.Errorf("unknown extension: %v", err)
	}
}
