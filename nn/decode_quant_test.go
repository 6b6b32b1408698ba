package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// TestMarkDecodeStrips: a decode Linear (MarkDecode) runs prompts of
// fewer than decodePackRows rows on the dequantizing path, so its output
// is bit for bit the float32 GEMM of the dequantized weight (the bf16 and
// int8 GEMMs, which keep a packed copy, round or quantize the activations
// instead).
func TestMarkDecodeStrips(t *testing.T) {
	const in, out, rows = 128, 96, 8
	x := tensor.New(rows, in)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	for _, dt := range []kernels.Dtype{kernels.BF16, kernels.Int8} {
		run := func(decode bool) {
			l := NewLinear("w", in, out, true)
			r := rand.New(rand.NewPCG(7, 8))
			for _, p := range l.Params() {
				for i := range p.W.Data {
					p.W.Data[i] = float32(r.NormFloat64())
				}
			}
			if decode {
				MarkDecode(l)
			}
			if _, err := Quantize(l, dt); err != nil {
				t.Fatal(err)
			}
			w := make([]float32, out*in)
			l.QWeight().DequantizeRows(0, out, w)
			want := make([]float32, rows*out)
			kernels.GemmEpilogue(false, true, rows, out, in, x.Data, in, w, in, want, out, kernels.Epilogue{Bias: l.Bias.W.Data})
			got := l.Forward(x).Data
			same := true
			for i := range want {
				same = same && got[i] == want[i]
			}
			if decode && !same {
				t.Errorf("%v: a decode Linear's %d-row forward is not the dequantized float32 GEMM", dt, rows)
			}
		}
		run(true)
		t.Logf("%v: decode Linear = dequantized float32 GEMM, bit for bit", dt)
	}
}
