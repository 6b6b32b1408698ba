package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/tensor"
)

// CrossEntropy is PyTorch's F.cross_entropy with label_smoothing s and
// mean reduction: per row, loss = (1-s)*(-log p_label) + s*mean_c(-log p_c)
// with log p from a max-shifted log-softmax (stable for any logit range).
// Forward keeps the softmax so that Backward is one pass:
// dlogits = (p - (1-s)*onehot - s/C) / rows.
type CrossEntropy struct {
	Smoothing float32

	p, dx  *tensor.Tensor
	labels []int
	shp    []int
}

// Forward returns the mean loss over the rows of logits [rows, classes]
// (any leading shape; the last axis is the classes). A label outside
// [0, classes) panics with the row named: labels come from the data
// loader, which validates them.
func (c *CrossEntropy) Forward(logits *tensor.Tensor, labels []int) float64 {
	rows, k := logits.Rows(), logits.Cols()
	if len(labels) != rows {
		panic(fmt.Sprintf("nn.CrossEntropy: %d labels for logits %v (%d rows)", len(labels), logits.Shape, rows))
	}
	p := ensureDims(&c.p, &c.shp, rows, k)
	c.labels = append(c.labels[:0], labels...)
	s := float64(c.Smoothing)
	var total float64
	for r := 0; r < rows; r++ {
		lab := labels[r]
		if lab < 0 || lab >= k {
			panic(fmt.Sprintf("nn.CrossEntropy: label %d of row %d outside [0,%d)", lab, r, k))
		}
		x := logits.Data[r*k : r*k+k]
		pr := p.Data[r*k : r*k+k]
		m := x[0]
		for _, v := range x[1:] {
			m = max(m, v)
		}
		var z, sumShift float64
		for j, v := range x {
			d := float64(v - m)
			e := math.Exp(d)
			pr[j] = float32(e)
			z += e
			sumShift += d
		}
		logZ := math.Log(z)
		inv := float32(1 / z)
		for j := range pr {
			pr[j] *= inv
		}
		// -log p_j = logZ - (x_j - m)
		nll := logZ - float64(x[lab]-m)
		smooth := logZ - sumShift/float64(k)
		total += (1-s)*nll + s*smooth
	}
	if rows == 0 {
		return 0
	}
	return total / float64(rows)
}

// Backward returns d(mean loss)/dlogits [rows, classes] for the last
// Forward.
func (c *CrossEntropy) Backward() *tensor.Tensor {
	if c.p == nil {
		panic("nn.CrossEntropy: Backward without Forward")
	}
	rows, k := c.p.Rows(), c.p.Cols()
	dx := ensureDims(&c.dx, &c.shp, rows, k)
	s := c.Smoothing
	inv := 1 / float32(max(rows, 1))
	off := s / float32(k)
	for r := 0; r < rows; r++ {
		pr, dr := c.p.Data[r*k:r*k+k], dx.Data[r*k:r*k+k]
		for j := range dr {
			dr[j] = (pr[j] - off) * inv
		}
		dr[c.labels[r]] -= (1 - s) * inv
	}
	return dx
}
