package models_test

import (
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
