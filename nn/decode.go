package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// LinearForward is l.Forward(x), except that for a single row (decoding
// one token) a bias is added by one vector pass after the GEMV instead of
// by the GEMM epilogue. The GEMV applies its epilogue once per four
// outputs, a call each (~20 ns): measured on 2026-12-05, a 384x1024
// GEMV took 11.5 us without bias and 17 us with it, and the lm_head of
// 24,254 rows 0.75 vs 0.86 ms, which made a folded PRepBN decoder (biases
// on q/k/v, gate/up and lm_head) decode 3-13 % slower than RMSNorm.
// Results are identical: the epilogue adds the same bias to the same sums.
func LinearForward(l *Linear, x *tensor.Tensor) *tensor.Tensor {
	if l.Bias == nil || x.Rows() != 1 {
		return l.Forward(x)
	}
	b := l.Bias
	l.Bias = nil
	y := l.Forward(x)
	l.Bias = b
	kernels.AddTo(y.Data, b.W.Data)
	return y
}

// SharedForward sets ys[i] = LinearForward(ls[i], x) for up to four
// Linears that read the same x (q, k, v; SwiGLU's gate and up). For a
// single row their GEMVs run as one parallel region
// (kernels.GemvShared): one fork/join instead of one per matrix, and no
// thread waits at a matrix boundary for the other to finish its half.
// Measured on 2026-12-06 (12 interleaved rounds): lm_small_bpe decodes
// 2-4 % faster; at llama_350m size the gain is inside the noise (the
// weights of one matrix dwarf a fork/join). Results are identical to
// LinearForward.
func SharedForward(x *tensor.Tensor, ys []*tensor.Tensor, ls ...*Linear) {
	if len(ys) < len(ls) {
		panic(fmt.Sprintf("nn.SharedForward: %d outputs for %d layers", len(ys), len(ls)))
	}
	if x.Rows() != 1 || len(ls) > 4 {
		for i, l := range ls {
			ys[i] = LinearForward(l, x)
		}
		return
	}
	for _, l := range ls {
		if l.quant() != nil {
			sharedForwardQ(x, ys, ls)
			return
		}
	}
	var ops [4]kernels.GemvOp
	for i, l := range ls {
		y := l.output(x)
		ops[i] = kernels.GemvOp{W: l.Weight.W.Data, Y: y.Data}
		ys[i] = y
	}
	kernels.GemvShared(x.Data, x.Cols(), ops[:len(ls)]...)
	for i, l := range ls {
		if l.Bias != nil {
			kernels.AddTo(ys[i].Data, l.Bias.W.Data)
		}
	}
}

// sharedForwardQ is SharedForward for one row through low-precision
// Linears: one kernels.GemvQ region (one GEMV each if some are float32).
func sharedForwardQ(x *tensor.Tensor, ys []*tensor.Tensor, ls []*Linear) {
	var ops [4]kernels.QGemvOp
	for i, l := range ls {
		q := l.QWeight()
		if q == nil {
			for i, l := range ls {
				ys[i] = LinearForward(l, x)
			}
			return
		}
		y := l.output(x)
		ops[i] = kernels.QGemvOp{W: q, Y: y.Data}
		ys[i] = y
	}
	kernels.GemvQ(x.Data, ops[:len(ls)]...)
	for i, l := range ls {
		if l.Bias != nil {
			kernels.AddTo(ys[i].Data, l.Bias.W.Data)
		}
	}
}
