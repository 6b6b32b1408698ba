package fuse_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

func tensorOf(t *testing.T, m models.Model, name string) []float32 {
	t.Helper()
	for _, p := range m.Params() {
		if p.Name == name {
			return p.W.Data
		}
	}
	for _, b := range m.Buffers() {
		if b.Name == name && b.F != nil {
			return b.F.Data
		}
	}
	t.Fatalf("no tensor %s", name)
	return nil
}

// Fold refuses what would give a model that is not finite, names the
// tensor or norm at fault and leaves the model untouched: a NaN weight, a
// norm whose affine map is not finite (negative running variance) and a
// product that overflows float32.
func TestFoldRefusesNonFinite(t *testing.T) {
	for _, c := range []struct {
		name, want string
		poison     func(m models.Model)
	}{
		{"NaN weight", "tensor blocks.1.mlp.fc2.weight holds NaN", func(m models.Model) {
			tensorOf(t, m, "blocks.1.mlp.fc2.weight")[3] = float32(math.NaN())
		}},
		{"negative running variance", "norm blocks.0.norm1 folds to scale NaN at channel 5", func(m models.Model) {
			tensorOf(t, m, "blocks.0.norm1.norm2.bn.running_var")[5] = -1
		}},
		{"overflow", "folding blocks.0.norm1 into blocks.0.attn.qkv.weight gives +Inf at [0 2]", func(m models.Model) {
			tensorOf(t, m, "blocks.0.norm1.norm2.bn.weight")[2] = 1e30
			tensorOf(t, m, "blocks.0.attn.qkv.weight")[2] = 1e30
		}},
	} {
		m, err := models.New("slab_deit_mini_28", 1)
		if err != nil {
			t.Fatal(err)
		}
		c.poison(m)
		err = fuse.Fold(m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: Fold gave %v, want %q", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
		if m.Config().NormSpec().Kind == nn.NormNone {
			t.Fatalf("%s: the refused fold changed the model", c.name)
		}
	}
}

// FoldFile never writes an output it cannot vouch for: a file with a NaN
// weight is refused (at load) and no output appears.
func TestFoldFileRefusesNaN(t *testing.T) {
	m, err := models.New("slab_deit_mini_28", 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := models.WeightsFile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Tensors["blocks.3.attn.proj.weight"].F32[0] = float32(math.NaN())
	dir := t.TempDir()
	in, out := filepath.Join(dir, "nan.safetensors"), filepath.Join(dir, "folded.safetensors")
	if err := checkpoint.Write(in, f); err != nil {
		t.Fatal(err)
	}
	_, err = fuse.FoldFile(in, out)
	if err == nil || !strings.Contains(err.Error(), "blocks.3.attn.proj.weight") {
		t.Fatalf("FoldFile of a NaN weight: %v", err)
	}
	t.Log(err)
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Fatalf("FoldFile wrote %s after refusing: %v", out, serr)
	}
}
