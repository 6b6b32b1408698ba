package models_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// logitsOf runs m once in eval mode on a fixed random input (an image
// batch of 2, or 2x5 token ids) and returns a copy of the logits.
func logitsOf(t *testing.T, m models.Model) []float32 {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 9))
	var y *tensor.Tensor
	var err error
	switch mm := m.(type) {
	case models.Classifier:
		c, h, w := mm.InputShape()
		x := tensor.New(2, c, h, w)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		y, err = mm.Forward(x, nn.Eval)
	case models.LM:
		ids := make([]int, 10)
		for i := range ids {
			ids[i] = r.IntN(mm.Vocab())
		}
		y, err = mm.Forward(ids, 2, 5, nn.Eval)
	default:
		t.Fatalf("%T is neither a classifier nor an LM", m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), y.Data...)
}

// TestQuantizedFileRoundTrip: for a model of every family, a checkpoint
// written after nn.Quantize stores the Linear weights as BF16, or as I8
// with F32 scales, records the dtype, is smaller, and loads into a model
// holding the low-precision weights only whose logits equal the in-memory
// quantized model's bit for bit; a clone of it too. Quantizing it to
// another dtype names the file, and folding it is refused with the
// reason.
func TestQuantizedFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"slab_deit_mini_28", "slab_swin_mini_32", "slab_pvt_mini_32", "slab_cswin_mini_32", "lm_test_prepbn", "lm_test_tied", "lm_test_tied_prepbn", "adaptive_lm_tiny_prepbn", "adaptive_lm_tiny_full"} {
		base, err := models.New(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		base.DropGrads()
		f32, err := models.WeightsFile(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		f32Path := filepath.Join(dir, name+".safetensors")
		if err := checkpoint.Write(f32Path, f32); err != nil {
			t.Fatal(err)
		}
		for _, dt := range []kernels.Dtype{kernels.BF16, kernels.Int8} {
			m, _, _, err := models.Load(f32Path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := nn.Quantize(m, dt)
			if err != nil {
				t.Fatal(err)
			}
			want := logitsOf(t, m)
			wf, err := models.WeightsFile(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if wf.Metadata[models.MetaDtype] != dt.String() {
				t.Errorf("%s %v: metadata dtype %q", name, dt, wf.Metadata[models.MetaDtype])
			}
			lowp, scales := 0, 0
			for k, e := range wf.Tensors {
				switch {
				case e.DType == "BF16" || e.DType == "I8":
					lowp++
				case strings.HasSuffix(k, models.ScaleSuffix):
					scales++
				}
			}
			if lowp != n || (dt == kernels.Int8) != (scales == n) {
				t.Errorf("%s %v: %d low-precision tensors and %d scales for %d Linears", name, dt, lowp, scales, n)
			}
			path := filepath.Join(dir, name+"_"+dt.String()+".safetensors")
			if err := checkpoint.Write(path, wf); err != nil {
				t.Fatal(err)
			}
			q, _, _, err := models.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if d, src := nn.StoredDtype(q); d != dt || src != path {
				t.Errorf("%s %v: loaded model stores %v from %q", name, dt, d, src)
			}
			got := logitsOf(t, q)
			for i, v := range want {
				if got[i] != v {
					t.Fatalf("%s %v: logit %d = %v from the file, %v in memory", name, dt, i, got[i], v)
				}
			}
			c, err := models.Clone(q)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range logitsOf(t, c) {
				if v != want[i] {
					t.Fatalf("%s %v: clone's logit %d = %v, want %v", name, dt, i, v, want[i])
				}
			}
			a, _ := os.Stat(f32Path)
			b, _ := os.Stat(path)
			t.Logf("%s %v: %d Linears, file %d -> %d bytes (%.2f)", name, dt, n, a.Size(), b.Size(), float64(b.Size())/float64(a.Size()))
			if b.Size() >= a.Size() {
				t.Errorf("%s %v: quantized file %d bytes, float32 %d", name, dt, b.Size(), a.Size())
			}
			other := kernels.Int8
			if dt == other {
				other = kernels.BF16
			}
			var se *nn.StoredError
			if _, err := nn.Quantize(q, other); !errors.As(err, &se) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: %v over %v file: %v", name, other, dt, err)
			}
			if _, err := nn.Quantize(q, dt); err != nil {
				t.Errorf("%s: %v over %v file: %v", name, dt, dt, err)
			}
			if q.Config().NormSpec().Foldable() {
				if _, err := fuse.Copy(q); err == nil || !strings.Contains(err.Error(), "fold the float32 checkpoint first") {
					t.Errorf("%s %v: folding a quantized model: %v", name, dt, err)
				}
			}
		}
	}
}

// TestQuantizedFileErrors: a file recording int8 whose scales are missing
// or mis-shaped, or recording an unknown dtype, is refused with the
// tensor and file named.
func TestQuantizedFileErrors(t *testing.T) {
	m, err := models.New("lm_test", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nn.Quantize(m, kernels.Int8); err != nil {
		t.Fatal(err)
	}
	good, err := models.WeightsFile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := "model.layers.0.self_attn.q_proj.weight"
	if good.Tensors[key] == nil || good.Tensors[key].DType != "I8" {
		t.Fatalf("no I8 tensor %s", key)
	}
	for what, edit := range map[string]func(f *checkpoint.File){
		"no scales": func(f *checkpoint.File) { delete(f.Tensors, key+models.ScaleSuffix) },
		"scales [3,1]": func(f *checkpoint.File) {
			f.Tensors[key+models.ScaleSuffix] = &checkpoint.Entry{DType: "F32", Shape: []int{3, 1}, F32: make([]float32, 3)}
		},
		"dtype fp8": func(f *checkpoint.File) { f.Metadata[models.MetaDtype] = "fp8" },
		"stray scales": func(f *checkpoint.File) {
			f.Tensors["x"+models.ScaleSuffix] = &checkpoint.Entry{DType: "F32", Shape: []int{1}, F32: []float32{1}}
		},
		"weight as F32": func(f *checkpoint.File) {
			f.Tensors[key] = &checkpoint.Entry{DType: "F32", Shape: f.Tensors[key].Shape, F32: make([]float32, f.Tensors[key].Numel())}
		},
		"bf16 over int8": func(f *checkpoint.File) { f.Metadata[models.MetaDtype] = "bf16" },
	} {
		f := checkpoint.NewFile()
		for k, e := range good.Tensors {
			f.Tensors[k] = e
		}
		for k, v := range good.Metadata {
			f.Metadata[k] = v
		}
		edit(f)
		path := filepath.Join(t.TempDir(), "bad.safetensors")
		if err := checkpoint.Write(path, f); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := models.Load(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", what, err)
			continue
		}
		t.Logf("%s: %v", what, err)
	}
}
