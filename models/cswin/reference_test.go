package cswin_test

import (
	"testing"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/cswin"
	"github.com/slabml/slab/models/internal/familytest"
)

// TestReferenceWholeModel: a tiny SLAB-CSwin (SLA + LePE stages, a
// two-branch stripe stage, a global softmax stage) in the official
// slab_cswin.py layout, loaded from the .pth
// tools/reference/pvt_cswin_models.py writes: eval, folded and Train
// logits and every gradient as the float64 PyTorch reference.
func TestReferenceWholeModel(t *testing.T) {
	familytest.Reference(t, "cswin_model_slab", &cswin.Config{}, func(c models.Config) (models.Classifier, error) {
		return cswin.New(*c.(*cswin.Config), 3)
	})
}
