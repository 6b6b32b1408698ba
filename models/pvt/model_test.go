package pvt_test

import (
	"math"
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/pvt"
)

func build(t testing.TB, name string, seed uint64) *pvt.Model {
	t.Helper()
	m, err := models.New(name, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*pvt.Model)
}

func lookup(t testing.TB, name string) *pvt.Config {
	t.Helper()
	_, c, err := models.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*pvt.Config)
}

// TestParamCounts: ParamCount equals the built model's count and the
// official models' counts are the official code's (docs/method.md 4.2).
func TestParamCounts(t *testing.T) {
	official := map[string]float64{
		"slab_pvt_tiny": 12.16, "slab_pvt_small": 21.68, "slab_pvt_medium": 37.27,
		"pvt_tiny_prepbn": 13.24, "pvt_small_prepbn": 24.51, "pvt_medium_prepbn": 44.25,
	}
	for name, want := range official {
		got := lookup(t, name).ParamCount()
		t.Logf("%-18s %d parameters (%.2f M; official %.2f M)", name, got, float64(got)/1e6, want)
		if math.Abs(float64(got)/1e6-want) >= 0.005 {
			t.Errorf("%s: %d parameters, the official code's model has %.2f M", name, got, want)
		}
	}
	// The 224 layouts are built at an eighth of the width (heads still
	// divide every stage): every shape the formula counts (position
	// embeddings and encodings over 56x56 maps, 8x8 reductions) at a
	// fraction of the initialisation time.
	for _, name := range []string{"slab_pvt_tiny", "pvt_tiny_prepbn", "pvt_tiny", "slab_pvt_mini_32", "pvt_mini_prepbn_32", "pvt_mini_32"} {
		c := *lookup(t, name)
		if c.ImgSize == 224 {
			c.Dims = []int{8, 16, 40, 64}
		}
		m, err := pvt.New(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := models.NumParams(m), m.Cfg.ParamCount(); got != want {
			t.Errorf("%s (dims %v): built %d parameters, ParamCount %d", name, c.Dims, got, want)
		}
	}
}

func fuseFold(m models.Model) error { return fuse.Fold(m) }

// TestFLOPs: the total is the sum by layer, and PVT-T (LayerNorm and
// PRepBN) lands near the PVT paper's 1.9 G multiply-adds, doubled.
func TestFLOPs(t *testing.T) {
	for _, name := range []string{"pvt_tiny", "pvt_tiny_prepbn", "slab_pvt_tiny", "slab_pvt_mini_32", "pvt_mini_prepbn_32"} {
		c := lookup(t, name)
		var s int64
		for _, v := range c.FLOPsByLayer() {
			s += v
		}
		if s != c.FLOPs() {
			t.Errorf("%s: FLOPs %d, sum by layer %d", name, c.FLOPs(), s)
		}
		t.Logf("%-18s %.3f GFLOP (multiply-add = 2) %v", name, float64(c.FLOPs())/1e9, c.FLOPsByLayer())
		if c.Stages == "SSSS" && c.ImgSize == 224 && (c.FLOPs() < 3.6e9 || c.FLOPs() > 4.0e9) {
			t.Errorf("%s: %.2f GFLOP, want about 2 x 1.9 G multiply-adds", name, float64(c.FLOPs())/1e9)
		}
	}
}
