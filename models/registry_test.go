package models_test

import (
	"slices"
	"testing"

	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/all"
)

// TestLookupSuffixes: name endings resolve within their own family even
// when several families offer the same ending, options apply in order, and
// the looked-up name is recorded.
func TestLookupSuffixes(t *testing.T) {
	for _, tc := range []struct{ name, family, norm, attn string }{
		{"lm_test_prepbn", "llama", "prepbn", "softmax"},
		{"lm_test_prepbn_sla", "llama", "prepbn", "sla"},
		{"lm_tiny_layernorm", "llama", "layernorm", "softmax"},
		{"adaptive_lm_tiny_prepbn", "adaptive", "prepbn", ""},
		{"slab_deit_tiny", "vit", "prepbn", "sla"},
	} {
		e, c, err := models.Lookup(tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if e.Family.Name != tc.family || c.NormSpec().Kind != tc.norm || (tc.attn != "" && c.Get("attn") != tc.attn) {
			t.Errorf("%s: family %s, norm %s, attn %s", tc.name, e.Family.Name, c.NormSpec().Kind, c.Get("attn"))
		}
		if n, ok := c.(interface{ ModelName() string }); ok && n.ModelName() != tc.name {
			t.Errorf("%s: config records name %q", tc.name, n.ModelName())
		}
	}
	for _, bad := range []string{"nope", "lm_test_prepbn_prepbn", "slab_deit_tiny_prepbn", "_prepbn"} {
		if _, _, err := models.Lookup(bad); err == nil {
			t.Errorf("%s resolved", bad)
		}
	}
}

// TestBuildBare: every family's bare build has Build's parameters (names,
// shapes) and buffers (values too: running statistics and counters are
// constants) and draws nothing: its matrices are all zero. Loading a
// checkpoint into it is what models.Load and Clone do, and their tests
// compare logits against the drawn model's.
func TestBuildBare(t *testing.T) {
	for _, name := range []string{"slab_deit_mini_28", "slab_swin_mini_32", "slab_pvt_mini_32", "slab_cswin_mini_32", "lm_test_prepbn", "lm_test_tied", "adaptive_lm_tiny", "adaptive_lm_tiny_full"} {
		e, c, err := models.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		drawn, err := models.Build(e.Family, c, 3)
		if err != nil {
			t.Fatal(err)
		}
		bare, err := models.BuildBare(e.Family, c)
		if err != nil {
			t.Fatal(err)
		}
		dp, bp := drawn.Params(), bare.Params()
		if len(dp) != len(bp) || len(drawn.Buffers()) != len(bare.Buffers()) {
			t.Fatalf("%s: bare build has %d params / %d buffers, Build %d / %d", name, len(bp), len(bare.Buffers()), len(dp), len(drawn.Buffers()))
		}
		matrices := 0
		for i, p := range bp {
			q := dp[i]
			if p.Name != q.Name || !slices.Equal(p.W.Shape, q.W.Shape) {
				t.Fatalf("%s: bare param %d is %s %v, Build's %s %v", name, i, p.Name, p.W.Shape, q.Name, q.W.Shape)
			}
			if len(p.W.Shape) < 2 {
				continue
			}
			matrices++
			for j, v := range p.W.Data {
				if v != 0 {
					t.Fatalf("%s: bare %s[%d] = %v: drawn", name, p.Name, j, v)
				}
			}
		}
		if matrices == 0 {
			t.Fatalf("%s: no matrices", name)
		}
		for i, b := range bare.Buffers() {
			d := drawn.Buffers()[i]
			if b.Name != d.Name || (b.F != nil) != (d.F != nil) || b.F != nil && !slices.Equal(b.F.Data, d.F.Data) || b.I != nil && *b.I != *d.I {
				t.Fatalf("%s: bare buffer %s differs from Build's %s", name, b.Name, d.Name)
			}
		}
	}
}
