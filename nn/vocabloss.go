package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// VocabLoss is the mean next-token cross-entropy of logits [B,T,V] against
// targets [B*T] (the inputs shifted by one, prepared by the caller).
//
// It is nn.CrossEntropy specialised for a wide vocabulary: with 24-50k
// classes the logits of one batch are hundreds of MB, so every pass over
// them is a DRAM pass, and the generic layer makes five (softmax into its
// own buffer, a max scan, the loss, the gradient into a third buffer).
// Here each worker takes one row at a time, which fits in L2 (V floats,
// ~100-200 KB), so Forward reads the logits once (the softmax goes to a
// per-worker scratch row) and Backward reads and rewrites them once, in
// place: dlogits replaces the logits, and no batch-sized buffer is added.
type VocabLoss struct {
	logits  []float32 // the last Forward's logits, overwritten by Backward
	rows, v int
	targets []int
	rowLoss []float64
	scratch [][]float32   // one softmax row per worker
	d       tensor.Tensor // Backward's result, a view of the logits
	fwd     func(lo, hi int)
	bwd     func(lo, hi int)
}

// Forward returns the mean loss over the rows of logits; the logits are
// left unchanged.
func (l *VocabLoss) Forward(logits *tensor.Tensor, targets []int) float64 {
	rows, v := logits.Rows(), logits.Cols()
	if len(targets) != rows {
		panic(fmt.Sprintf("nn.VocabLoss: %d targets for %d rows of logits", len(targets), rows))
	}
	for r, t := range targets {
		if t < 0 || t >= v {
			panic(fmt.Sprintf("nn.VocabLoss: target %d of row %d outside [0,%d)", t, r, v))
		}
	}
	l.logits, l.rows, l.v = logits.Data, rows, v
	l.targets = append(l.targets[:0], targets...)
	if cap(l.rowLoss) < rows {
		l.rowLoss = make([]float64, rows)
	}
	l.rowLoss = l.rowLoss[:rows]
	nw := kernels.Threads()
	for len(l.scratch) < nw {
		l.scratch = append(l.scratch, nil)
	}
	for w := range l.scratch[:nw] {
		if len(l.scratch[w]) < v {
			l.scratch[w] = make([]float32, v)
		}
	}
	if l.fwd == nil {
		l.fwd, l.bwd = l.forwardRows, l.backwardRows
	}
	kernels.ParallelFor(nw, 1, l.fwd)
	var total float64
	for _, x := range l.rowLoss {
		total += x
	}
	if rows == 0 {
		return 0
	}
	return total / float64(rows)
}

// span is worker w's share of the rows. The split follows the thread
// count, but no value does: each row's softmax, loss and gradient are
// computed whole by one worker, and Forward adds the per-row losses in row
// order, so the bits are the same on any number of threads (checked by
// TestTrainingThreadInvariant).
func (l *VocabLoss) span(w int) (lo, hi int) {
	nw := kernels.Threads()
	return w * l.rows / nw, (w + 1) * l.rows / nw
}

// forwardRows computes the losses of workers [wlo, whi). With q the
// largest logit, log p_t = x_t - x_q + log p_q, and p_q >= 1/V never
// underflows, so the loss is exact even where p_t itself would.
func (l *VocabLoss) forwardRows(wlo, whi int) {
	v := l.v
	for w := wlo; w < whi; w++ {
		p := l.scratch[w][:v]
		lo, hi := l.span(w)
		for r := lo; r < hi; r++ {
			x := l.logits[r*v : (r+1)*v]
			kernels.SoftmaxRows(p, x, 1, v, v)
			q := 0
			for j, pj := range p {
				if pj > p[q] {
					q = j
				}
			}
			l.rowLoss[r] = -math.Log(float64(p[q])) - float64(x[l.targets[r]]-x[q])
		}
	}
}

// Backward overwrites the last Forward's logits with d(mean loss)/dlogits
// = (softmax - onehot(target)) / rows and returns them as a [rows, V]
// tensor. The logits are consumed: call it at most once per Forward.
func (l *VocabLoss) Backward() *tensor.Tensor {
	if l.logits == nil {
		panic("nn.VocabLoss: Backward without Forward")
	}
	kernels.ParallelFor(kernels.Threads(), 1, l.bwd)
	l.d.Data = l.logits[:l.rows*l.v]
	l.d.Shape = append(l.d.Shape[:0], l.rows, l.v)
	l.logits = nil
	return &l.d
}

func (l *VocabLoss) backwardRows(wlo, whi int) {
	v := l.v
	inv := 1 / float32(max(l.rows, 1))
	for w := wlo; w < whi; w++ {
		lo, hi := l.span(w)
		for r := lo; r < hi; r++ {
			x := l.logits[r*v : (r+1)*v]
			kernels.SoftmaxRows(x, x, 1, v, v)
			for j := range x {
				x[j] *= inv // the row is in L2 now: a cheap serial pass
			}
			x[l.targets[r]] -= inv
		}
	}
}
