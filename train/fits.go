package train

import "fmt"

// CheckFits verifies that the images of ds (called name in errors) fit
// m's input and its labels m's head, before a run rather than at its
// first batch.
func CheckFits(ds Dataset, m Model, name string) error {
	c, h, w := ds.Shape()
	mc, mh, mw := m.InputShape()
	if c != mc || h != mh || w != mw {
		return fmt.Errorf("%s images are %dx%dx%d but the model takes %dx%dx%d", name, c, h, w, mc, mh, mw)
	}
	if d, ok := ds.(interface{ NumClasses() int }); ok && d.NumClasses() > m.Classes() {
		return fmt.Errorf("%s has %d classes but the model's head has %d", name, d.NumClasses(), m.Classes())
	}
	return nil
}
