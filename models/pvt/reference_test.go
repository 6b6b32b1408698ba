package pvt_test

import (
	"testing"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/internal/familytest"
	"github.com/slabml/slab/models/pvt"
)

// TestReferenceWholeModels: tiny SLAB-PVT (LLLL) and PVT-PRepBN (SSSS,
// spatial reduction 4 and 2) in the official slab_pvt.py layout, loaded
// from the .pth tools/reference/pvt_cswin_models.py writes: eval, folded
// and Train logits and every gradient as the float64 PyTorch reference.
func TestReferenceWholeModels(t *testing.T) {
	for _, name := range []string{"slab", "prepbn"} {
		t.Run(name, func(t *testing.T) {
			familytest.Reference(t, "pvt_model_"+name, &pvt.Config{}, func(c models.Config) (models.Classifier, error) {
				return pvt.New(*c.(*pvt.Config), 3)
			})
		})
	}
}
