package slab_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/vit"
)

var update = flag.Bool("update", false, "rewrite testdata/api/classify_w24.safetensors from testdata/reference")

// apiClassifier is the examples' classifier: the weights of
// testdata/reference/classify_w24.safetensors (tools/reference/classify_ref.py:
// slab_deit_tiny's layout at 224px, width 24, depth 1) as a slab checkpoint
// (family and config recorded), which slab.Load needs.
const apiClassifier = "testdata/api/classify_w24.safetensors"

// TestAPIFixtures checks that the examples' classifier holds exactly the
// PyTorch reference weights (-update rewrites it from them).
func TestAPIFixtures(t *testing.T) {
	ref, err := checkpoint.Read(filepath.Join("testdata", "reference", "classify_w24.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Dim, Depth int }
	if err := json.Unmarshal([]byte(ref.Metadata["config"]), &meta); err != nil {
		t.Fatal(err)
	}
	cfg, err := vit.Lookup("slab_deit_tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Dim, cfg.Depth = "classify_w24", meta.Dim, meta.Depth
	m, err := vit.New(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.LoadState(m, ref.Tensors); err != nil {
		t.Fatal(err)
	}
	if *update {
		wf, err := models.WeightsFile(m, map[string]string{"source": "testdata/reference/classify_w24.safetensors (tools/reference/classify_ref.py)"})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(apiClassifier), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.Write(apiClassifier, wf); err != nil {
			t.Fatal(err)
		}
	}
	got, err := checkpoint.Read(apiClassifier)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tensors) != len(ref.Tensors) {
		t.Fatalf("%s: %d tensors, the reference %d", apiClassifier, len(got.Tensors), len(ref.Tensors))
	}
	for k, e := range ref.Tensors {
		g := got.Tensors[k]
		if g == nil || !reflect.DeepEqual(g.F32, e.F32) || !reflect.DeepEqual(g.I64, e.I64) {
			t.Errorf("%s: %s differs from the reference", apiClassifier, k)
		}
	}
}
