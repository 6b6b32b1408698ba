package fuse_test

import (
	"testing"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
)

// Compare: a model against itself differs by nothing, against its folded
// copy by rounding; a classifier and a language model are refused.
func TestCompare(t *testing.T) {
	m, err := models.New("slab_deit_mini_28", 1)
	if err != nil {
		t.Fatal(err)
	}
	if d, mx, err := fuse.Compare(m, m, 2, 1); err != nil || d != 0 || mx == 0 {
		t.Fatalf("self: diff %g, max logit %g, %v", d, mx, err)
	}
	f, err := fuse.Copy(m)
	if err != nil {
		t.Fatal(err)
	}
	d, mx, err := fuse.Compare(m, f, 2, 1)
	t.Logf("folded copy: max abs logit diff %.3g (max |logit| %.3g)", d, mx)
	if err != nil || d > 1e-4*max(1, mx) {
		t.Fatalf("folded copy: diff %g, %v", d, err)
	}
	lm, err := models.New("lm_test", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fuse.Compare(m, lm, 2, 1); err == nil {
		t.Fatal("a classifier compared with a language model")
	}
	if d, _, err := fuse.Compare(lm, lm, 2, 1); err != nil || d != 0 {
		t.Fatalf("LM self: diff %g, %v", d, err)
	}
}
