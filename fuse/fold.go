package fuse

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// ErrNotFoldable is wrapped by Fold's error for a model whose norms are not
// BatchNorm-based (LayerNorm, RMSNorm), or that is already folded.
var ErrNotFoldable = errors.New("not foldable")

// Fold folds every norm of m into its neighbours in place, as m's fold
// sites say, and leaves nn.Identity where each norm was; m's config then
// records norm "none", so a checkpoint of the result rebuilds the folded
// layout. Every site is checked before anything changes, and so is every
// value the fold would write (no NaN or infinity, in m's weights or
// from an overflow): on error m is untouched.
func Fold(m models.Model) error {
	spec := m.Config().NormSpec()
	switch {
	case spec.Kind == nn.NormNone:
		return fmt.Errorf("fuse: %s is already folded (norm none): %w", name(m), ErrNotFoldable)
	case !spec.Foldable():
		return fmt.Errorf("fuse: %s uses norm %q, which divides by per-token statistics and is not an affine map; only batchnorm, repbn and prepbn fold: %w", name(m), spec.Kind, ErrNotFoldable)
	}
	if err := nn.NeedFloat32(m); err != nil {
		return fmt.Errorf("fuse: %s: %v: folding rewrites them in float32; fold the float32 checkpoint first, then quantize the folded file (slab fuse, then slab quantize)", name(m), err)
	}
	if err := nn.CheckFiniteParams(m); err != nil {
		return fmt.Errorf("fuse: %s: %v: refusing to fold non-finite weights", name(m), err)
	}
	sites, err := m.FoldSites()
	if err != nil {
		return fmt.Errorf("fuse: %s: %v", name(m), err)
	}
	type plan struct {
		site nn.FoldSite
		a, b []float32
	}
	plans := make([]plan, 0, len(sites))
	for _, s := range sites {
		n, ok := (*s.Slot.Norm).(nn.AffineNorm)
		if !ok {
			return fmt.Errorf("fuse: %s: norm %s (%T) is not BatchNorm-based: %w", name(m), s.Slot.Name, *s.Slot.Norm, ErrNotFoldable)
		}
		if (len(s.Into) > 0) == (s.FromWeight != nil) {
			return fmt.Errorf("fuse: %s: fold site %s must name either the layers reading the norm or the one producing its input", name(m), s.Slot.Name)
		}
		a, b := n.Affine()
		for _, l := range s.Into {
			if l.In != len(a) {
				return fmt.Errorf("fuse: %s: %s has %d channels, %s reads %d", name(m), s.Slot.Name, len(a), l.Weight.Name, l.In)
			}
		}
		if w := s.FromWeight; w != nil {
			if w.W.Shape[0] != len(a) || s.FromBias == nil || s.FromBias.W.Size() != len(a) {
				return fmt.Errorf("fuse: %s: %s has %d channels, its producer %s has shape %v and needs a bias of that size", name(m), s.Slot.Name, len(a), w.Name, w.W.Shape)
			}
		}
		if err := checkFinite(s, a, b); err != nil {
			return fmt.Errorf("fuse: %s: %v: the folded model would not be finite", name(m), err)
		}
		plans = append(plans, plan{s, a, b})
	}
	for _, p := range plans {
		for _, l := range p.site.Into {
			foldInto(l, p.a, p.b)
		}
		if p.site.FromWeight != nil {
			foldOut(p.site.FromWeight, p.site.FromBias, p.a, p.b)
		}
		*p.site.Slot.Norm = nn.Identity{}
	}
	m.Folded()
	return nil
}

func name(m models.Model) string {
	if n, ok := m.Config().(interface{ ModelName() string }); ok && n.ModelName() != "" {
		return n.ModelName()
	}
	return "model (" + m.Family() + ")"
}

// FoldInto rewrites l so that l(x) equals the old l(a ⊙ x + b):
// W' = W·diag(a), c' = W b + c. A missing bias is created, named after the
// weight; the owner must re-list its parameters (models do in Folded).
func FoldInto(l *nn.Linear, a, b []float32) error {
	if len(a) != l.In || len(b) != l.In {
		return fmt.Errorf("fuse: %s: affine map of %d/%d channels for a Linear with %d inputs", l.Weight.Name, len(a), len(b), l.In)
	}
	foldInto(l, a, b)
	return nil
}

func foldInto(l *nn.Linear, a, b []float32) {
	if l.Bias == nil {
		l.Bias = nn.NewParam(strings.TrimSuffix(l.Weight.Name, ".weight")+".bias", true, l.Out)
	}
	w, c := l.Weight.W.Data, l.Bias.W.Data
	for o := range l.Out {
		row := w[o*l.In : (o+1)*l.In]
		var s float64
		for j, v := range row {
			s += float64(v) * float64(b[j])
			row[j] = v * a[j]
		}
		c[o] = float32(float64(c[o]) + s)
	}
	l.Weight.MarkChanged()
	l.Bias.MarkChanged()
}

// foldOut rewrites a producer (weight [out, ...], bias [out]) followed by
// the map a ⊙ y + b: V'[o,...] = a_o·V[o,...], d'_o = a_o·d_o + b_o.
func foldOut(w, bias *nn.Param, a, b []float32) {
	per := w.W.Size() / len(a)
	for o, ao := range a {
		row := w.W.Data[o*per : (o+1)*per]
		for j := range row {
			row[j] *= ao
		}
		bias.W.Data[o] = float32(float64(ao)*float64(bias.W.Data[o]) + float64(b[o]))
	}
	w.MarkChanged()
	bias.MarkChanged()
}

// Copy returns a folded copy of m and leaves m as it was.
func Copy(m models.Model) (models.Model, error) {
	d, err := models.Clone(m)
	if err != nil {
		return nil, fmt.Errorf("fuse: copying %s: %v", name(m), err)
	}
	if err := Fold(d); err != nil {
		return nil, err
	}
	return d, nil
}
