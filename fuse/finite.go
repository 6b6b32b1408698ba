package fuse

import (
	"fmt"

	"github.com/slabml/slab/nn"
)

// checkFinite refuses, before anything changes, a fold whose result would
// hold a NaN or an infinity: a fold site's affine map (a, b) that is not
// finite (a running variance below -eps, say), or a product that
// overflows float32 in a layer it rewrites. It computes what foldInto and
// foldOut would write, in the same arithmetic, without writing it.
func checkFinite(s nn.FoldSite, a, b []float32) error {
	if i := nn.FirstNonFinite(a); i >= 0 {
		return fmt.Errorf("norm %s folds to scale %v at channel %d", s.Slot.Name, a[i], i)
	}
	if i := nn.FirstNonFinite(b); i >= 0 {
		return fmt.Errorf("norm %s folds to shift %v at channel %d", s.Slot.Name, b[i], i)
	}
	for _, l := range s.Into {
		w := l.Weight.W.Data
		for o := range l.Out {
			row := w[o*l.In : (o+1)*l.In]
			var sum float64
			for j, v := range row {
				sum += float64(v) * float64(b[j])
				if p := v * a[j]; p-p != 0 {
					return fmt.Errorf("folding %s into %s gives %v at [%d %d]", s.Slot.Name, l.Weight.Name, p, o, j)
				}
			}
			c := 0.0
			if l.Bias != nil {
				c = float64(l.Bias.W.Data[o])
			}
			if v := float32(c + sum); v-v != 0 {
				return fmt.Errorf("folding %s into %s gives a bias of %v at [%d]", s.Slot.Name, l.Weight.Name, v, o)
			}
		}
	}
	if s.FromWeight != nil {
		per := s.FromWeight.W.Size() / len(a)
		for o, ao := range a {
			for j, v := range s.FromWeight.W.Data[o*per : (o+1)*per] {
				if p := v * ao; p-p != 0 {
					return fmt.Errorf("folding %s into %s gives %v at flat index %d", s.Slot.Name, s.FromWeight.Name, p, o*per+j)
				}
			}
			if v := float32(float64(ao)*float64(s.FromBias.W.Data[o]) + float64(b[o])); v-v != 0 {
				return fmt.Errorf("folding %s into %s gives %v at [%d]", s.Slot.Name, s.FromBias.Name, v, o)
			}
		}
	}
	return nil
}
