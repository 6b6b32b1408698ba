package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// CrossEntropy is PyTorch's F.cross_entropy with label_smoothing s and
// mean reduction: per row, loss = (1-s)*(-log p_label) + s*mean_c(-log p_c).
// The softmax comes from kernels.SoftmaxRows (vectorised exp, max-shifted,
// so stable for any logit range) with rows split across the worker pool:
// a language model's rows have 32000 classes, where float64 math.Exp would
// cost ~80 ms per 512 tokens. Every log-probability follows from the
// largest probability p_q (no underflow) as log p_j = log p_q + x_j - x_q,
// so no second exponential pass is needed.
// Forward keeps the softmax so that Backward is one pass:
// dlogits = (p - (1-s)*onehot - s/C) / rows.
type CrossEntropy struct {
	Smoothing float32

	p, dx    *tensor.Tensor
	labels   []int
	shp      []int
	logits   []float32 // the current Forward's input, for the workers
	k        int
	rowLoss  []float64
	work     func(lo, hi int) // bound once: no allocation per call
	gradWork func(lo, hi int)
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
	for r, lab := range labels {
		if lab < 0 || lab >= k {
			panic(fmt.Sprintf("nn.CrossEntropy: label %d of row %d outside [0,%d)", lab, r, k))
		}
	}
	ensureDims(&c.p, &c.shp, rows, k)
	c.labels = append(c.labels[:0], labels...)
	if cap(c.rowLoss) < rows {
		c.rowLoss = make([]float64, rows)
	}
	c.rowLoss = c.rowLoss[:rows]
	if c.work == nil {
		c.work = c.rows
	}
	c.logits, c.k = logits.Data, k
	kernels.ParallelFor(rows, max(1, (1<<14)/max(k, 1)), c.work)
	c.logits = nil
	if rows == 0 {
		return 0
	}
	var total float64
	for _, l := range c.rowLoss {
		total += l
	}
	return total / float64(rows)
}

// rows computes the softmax and the loss of rows [lo, hi). For any index
// q, log p_j = log p_q + x_j - x_q; q is taken where p is largest, so
// log p_q = -log Z to rounding and never underflows.
func (c *CrossEntropy) rows(lo, hi int) {
	k := c.k
	s := float64(c.Smoothing)
	kernels.SoftmaxRows(c.p.Data[lo*k:hi*k], c.logits[lo*k:hi*k], hi-lo, k, k)
	for r := lo; r < hi; r++ {
		x := c.logits[r*k : r*k+k]
		pr := c.p.Data[r*k : r*k+k]
		q, pq := 0, pr[0]
		for j, v := range pr {
			if v > pq {
				q, pq = j, v
			}
		}
		logZ := -math.Log(float64(pq)) // -log p_q
		xq := float64(x[q])
		nll := logZ - (float64(x[c.labels[r]]) - xq)
		loss := nll
		if s != 0 {
			smooth := logZ - (kernels.Sum(x)/float64(k) - xq)
			loss = (1-s)*nll + s*smooth
		}
		c.rowLoss[r] = loss
	}
}

// Backward returns d(mean loss)/dlogits [rows, classes] for the last
// Forward, rows split across the worker pool.
func (c *CrossEntropy) Backward() *tensor.Tensor {
	if c.p == nil {
		panic("nn.CrossEntropy: Backward without Forward")
	}
	rows, k := c.p.Rows(), c.p.Cols()
	ensureDims(&c.dx, &c.shp, rows, k)
	if c.gradWork == nil {
		c.gradWork = c.gradRows
	}
	c.k = k
	kernels.ParallelFor(rows, max(1, (1<<14)/max(k, 1)), c.gradWork)
	return c.dx
}

// gradRows writes dlogits for rows [lo, hi).
func (c *CrossEntropy) gradRows(lo, hi int) {
	k, s := c.k, c.Smoothing
	inv := 1 / float32(max(c.p.Rows(), 1))
	off := s / float32(k)
	for r := lo; r < hi; r++ {
		pr, dr := c.p.Data[r*k:r*k+k], c.dx.Data[r*k:r*k+k]
		dr = dr[:len(pr)]
		for j, v := range pr {
			dr[j] = (v - off) * inv
		}
		dr[c.labels[r]] -= (1 - s) * inv
	}
}
