package cswin_test

import (
	"math"
	"testing"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/cswin"
)

func build(t testing.TB, name string, seed uint64) *cswin.Model {
	t.Helper()
	m, err := models.New(name, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*cswin.Model)
}

func lookup(t testing.TB, name string) *cswin.Config {
	t.Helper()
	_, c, err := models.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*cswin.Config)
}

// TestParamCounts: ParamCount equals the built model's count and the
// official models' counts are the official code's (docs/method.md 4.4).
func TestParamCounts(t *testing.T) {
	for name, want := range map[string]float64{"slab_cswin_tiny": 21.23, "slab_cswin_small": 35.49} {
		got := lookup(t, name).ParamCount()
		t.Logf("%-18s %d parameters (%.2f M; official %.2f M)", name, got, float64(got)/1e6, want)
		if math.Abs(float64(got)/1e6-want) >= 0.005 {
			t.Errorf("%s: %d parameters, the official code's model has %.2f M", name, got, want)
		}
	}
	// slab_cswin_tiny at an eighth of the width: every shape the formula
	// counts (56x56 encodings, 7-wide stripes, merges) in less time.
	for _, name := range []string{"slab_cswin_tiny", "slab_cswin_mini_32"} {
		c := *lookup(t, name)
		if c.ImgSize == 224 {
			c.Dim = 8
		}
		m, err := cswin.New(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := models.NumParams(m), m.Cfg.ParamCount(); got != want {
			t.Errorf("%s (dim %d): built %d parameters, ParamCount %d", name, c.Dim, got, want)
		}
	}
}

// TestFLOPs: the total is the sum by layer, and SLAB-CSwin-T lands near
// CSwin-T's 4.3 G multiply-adds, doubled.
func TestFLOPs(t *testing.T) {
	for _, name := range []string{"slab_cswin_tiny", "slab_cswin_mini_32"} {
		c := lookup(t, name)
		var s int64
		for _, v := range c.FLOPsByLayer() {
			s += v
		}
		if s != c.FLOPs() {
			t.Errorf("%s: FLOPs %d, sum by layer %d", name, c.FLOPs(), s)
		}
		t.Logf("%-18s %.3f GFLOP (multiply-add = 2) %v", name, float64(c.FLOPs())/1e9, c.FLOPsByLayer())
		if c.ImgSize == 224 && (c.FLOPs() < 8.2e9 || c.FLOPs() > 9.0e9) {
			t.Errorf("%s: %.2f GFLOP, want about 2 x 4.3 G multiply-adds", name, float64(c.FLOPs())/1e9)
		}
	}
}
