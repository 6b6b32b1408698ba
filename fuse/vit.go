package fuse

import (
	"fmt"

	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/nn"
)

// Fuse returns a new deploy model (Cfg.Norm "none") computing the same
// eval-mode function as m, with every norm folded into the Linear after it:
// blocks.i.norm1 -> blocks.i.attn.qkv, blocks.i.norm2 -> blocks.i.mlp.fc1,
// norm -> head. m must use RepBN, PRepBN (LinearNorm) or BatchNorm norms.
func Fuse(m *vit.Model) (*vit.Model, error) {
	switch m.Cfg.Norm {
	case vit.NormRepBN, vit.NormPRepBN, vit.NormBatchNorm:
	case vit.NormNone:
		return nil, fmt.Errorf("fuse: model %s is already folded (norm %q)", m.Cfg.Name, m.Cfg.Norm)
	default:
		return nil, fmt.Errorf("fuse: model %s uses norm %q: only BatchNorm-based norms (repbn, prepbn, batchnorm) fold", m.Cfg.Name, m.Cfg.Norm)
	}
	cfg := m.Cfg
	cfg.Norm = vit.NormNone
	d, err := vit.New(cfg, 0)
	if err != nil {
		return nil, fmt.Errorf("fuse: %w", err)
	}
	src := map[string]*nn.Param{}
	for _, p := range m.Params() {
		src[p.Name] = p
	}
	for _, p := range d.Params() {
		s, ok := src[p.Name]
		if !ok || s.W.Size() != p.W.Size() {
			return nil, fmt.Errorf("fuse: deploy parameter %s has no counterpart of shape %v in %s", p.Name, p.W.Shape, m.Cfg.Name)
		}
		p.W.CopyFrom(s.W)
	}
	for i, b := range m.Blocks {
		db := d.Blocks[i]
		if err := foldNorm(b.Norm1, qkvOf(db.Attn), fmt.Sprintf("blocks.%d.norm1", i)); err != nil {
			return nil, err
		}
		if err := foldNorm(b.Norm2, db.MLP.FC1, fmt.Sprintf("blocks.%d.norm2", i)); err != nil {
			return nil, err
		}
	}
	if err := foldNorm(m.Norm, d.Head, "norm"); err != nil {
		return nil, err
	}
	d.Reindex()
	return d, nil
}

// qkvOf returns the Linear that reads the attention input.
func qkvOf(a vit.Attention) *nn.Linear {
	switch a := a.(type) {
	case *nn.Attention:
		return a.QKV
	case *nn.SLA:
		return a.QKV
	}
	return nil
}

// Affine returns the eval-mode per-channel map y = a ⊙ x + b of a
// BatchNorm-based norm: RepBN, BatchNorm, or a LinearNorm (whose eval form
// is its RepBN branch).
func Affine(n nn.Norm) (a, b []float32, err error) {
	switch n := n.(type) {
	case *nn.RepBN:
		a, b = n.Affine()
	case *nn.BatchNorm:
		a, b = n.Affine()
	case *nn.LinearNorm:
		a, b = n.Norm2.Affine()
	default:
		return nil, nil, fmt.Errorf("norm %T is not BatchNorm-based", n)
	}
	return a, b, nil
}

// foldNorm folds norm's eval affine map into the following Linear l:
// W' = W·diag(a), c' = W b + c, creating the bias if l has none.
func foldNorm(norm nn.Norm, l *nn.Linear, name string) error {
	if l == nil {
		return fmt.Errorf("fuse: %s: no Linear follows it", name)
	}
	a, b, err := Affine(norm)
	if err != nil {
		return fmt.Errorf("fuse: %s: %w", name, err)
	}
	return FoldInto(l, a, b)
}

// FoldInto rewrites l so that l(x) equals the old l(a ⊙ x + b):
// W' = W·diag(a), c' = W b + c. A missing bias is created (named after the
// weight); the caller must then re-list the owner's parameters.
func FoldInto(l *nn.Linear, a, b []float32) error {
	if len(a) != l.In || len(b) != l.In {
		return fmt.Errorf("fuse: %s: affine map of %d/%d channels for a Linear with %d inputs", l.Weight.Name, len(a), len(b), l.In)
	}
	if l.Bias == nil {
		name := l.Weight.Name
		if len(name) > len(".weight") && name[len(name)-len(".weight"):] == ".weight" {
			name = name[:len(name)-len(".weight")]
		}
		l.Bias = nn.NewParam(name+".bias", true, l.Out)
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
	return nil
}
