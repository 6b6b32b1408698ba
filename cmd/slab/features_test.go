package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/tensor"
)

// TestRunFeatures: slab run --features writes a FeatureModel's stage maps
// (the same values as FeatureMaps, batched), refuses models without
// features naming the flag, and passes on the model's size refusal.
func TestRunFeatures(t *testing.T) {
	dir := t.TempDir()
	m, err := models.New("slab_swin_mini_32", 1)
	if err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(dir, "w.safetensors")
	mustWriteWeights(t, w, m)
	input := func(name string, s int) string {
		r := rand.New(rand.NewPCG(1, uint64(s)))
		x := tensor.New(3, 1, s, s)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		f := checkpoint.NewFile()
		f.Set("input", x)
		p := filepath.Join(dir, name)
		if err := checkpoint.Write(p, f); err != nil {
			t.Fatal(err)
		}
		return p
	}
	in28, in64 := input("x28.safetensors", 28), input("x64.safetensors", 64)
	out := filepath.Join(dir, "f.safetensors")
	if _, err := runIn(t, "run", "--weights", w, "--input", in28, "--output", out, "--features", "--batch", "2", "--threads", "1"); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	xf, err := checkpoint.Read(in28)
	if err != nil {
		t.Fatal(err)
	}
	x, err := xf.Tensor("input")
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.(models.FeatureModel).FeatureMaps(x)
	if err != nil {
		t.Fatal(err)
	}
	for i, fm := range want {
		k := fmt.Sprintf("stage%d", i+1)
		got := f.Tensors[k]
		if got == nil || !tensor.ShapeEq(got.Shape, fm.T.Shape) || f.Metadata[k+"_stride"] != fmt.Sprint(fm.Stride) {
			t.Fatalf("%s: %v (stride %q), want %v stride %d", k, got, f.Metadata[k+"_stride"], fm.T.Shape, fm.Stride)
		}
		d := maxAbsDiff(got.F32, fm.T.Data)
		t.Logf("%s %v stride %s: max abs diff to FeatureMaps %.2g", k, got.Shape, f.Metadata[k+"_stride"], d)
		if d > 1e-4 {
			t.Errorf("%s: max abs diff %.3g", k, d)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--weights", w, "--input", in64}, "28x28 images only"},
	} {
		args := append([]string{"run", "--output", filepath.Join(dir, "g.safetensors"), "--features", "--threads", "1"}, c.args...)
		_, err := runIn(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error containing %q", c.args, err, c.want)
		} else {
			t.Logf("%v", err)
		}
	}
	d, err := models.New("slab_deit_mini_28", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(models.FeatureModel); ok {
		t.Skip("slab_deit_mini_28 has features now; pick another model without them")
	}
	dw := filepath.Join(dir, "deit.safetensors")
	mustWriteWeights(t, dw, d)
	_, err = runIn(t, "run", "--weights", dw, "--input", in28, "--output", filepath.Join(dir, "h.safetensors"), "--features", "--threads", "1")
	if err == nil || !strings.Contains(err.Error(), "--features") {
		t.Errorf("deit --features: %v", err)
	}
}
