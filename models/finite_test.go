package models_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

// A checkpoint with a NaN or an infinity in a weight is refused at load,
// naming the tensor; eval, fuse, run and the Go API all load through here.
func TestLoadRefusesNonFinite(t *testing.T) {
	m, err := models.New("slab_deit_mini_28", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key string
		v   float32
	}{{"blocks.2.attn.qkv.weight", float32(math.NaN())}, {"blocks.0.norm1.norm2.bn.running_var", float32(math.Inf(1))}} {
		f, err := models.WeightsFile(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := f.Tensors[c.key]
		if e == nil {
			t.Fatalf("no tensor %s", c.key)
		}
		e.F32[7] = c.v
		path := filepath.Join(t.TempDir(), "w.safetensors")
		if err := checkpoint.Write(path, f); err != nil {
			t.Fatal(err)
		}
		_, _, _, err = models.Load(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "tensor "+c.key+" holds") || !strings.Contains(err.Error(), "non-finite") {
			t.Fatalf("%s = %v: load gave %v", c.key, c.v, err)
		}
		t.Log(err)
	}
}
