package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// TestAttnCore: queries and keys/values from different token sets, read
// through strides as SRA lays them out (Q [B,Nq,C]; K and V interleaved in
// one [B,Nk,2C] buffer), against float64 softmax attention and its central
// differences for dQ, dK and dV.
func TestAttnCore(t *testing.T) {
	for i, sh := range []struct{ B, nq, nk, C, H int }{
		{1, 1, 1, 4, 2}, {2, 9, 4, 6, 3}, {1, 50, 3, 8, 1}, {2, 17, 23, 8, 2}, {1, 100, 49, 16, 2}, {3, 5, 5, 4, 4},
	} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 31))
			c := sh.C
			q := rnd(rng, sh.B*sh.nq*c, 1.5)
			kv := rnd(rng, sh.B*sh.nk*2*c, 1.5)
			split := func() (k, v []float64) {
				k, v = make([]float64, sh.B*sh.nk*c), make([]float64, sh.B*sh.nk*c)
				for r := 0; r < sh.B*sh.nk; r++ {
					copy(k[r*c:(r+1)*c], kv[r*2*c:])
					copy(v[r*c:(r+1)*c], kv[r*2*c+c:])
				}
				return
			}
			ref := func() []float64 {
				k, v := split()
				return attnRef(q, k, v, sh.B, sh.nq, sh.nk, c, sh.H)
			}
			a := &AttnCore{Heads: sh.H}
			q32, kv32 := t32(q, len(q)), t32(kv, len(kv))
			o := a.Forward(sh.B, sh.nq, sh.nk, c, q32.Data, c, sh.nq*c, kv32.Data, 2*c, sh.nk*2*c, kv32.Data[c:], 2*c, sh.nk*2*c)
			if !tensor.ShapeEq(o.Shape, []int{sh.B, sh.nq, c}) {
				t.Fatalf("output %v", o.Shape)
			}
			assertClose(t, "forward", o.Data, ref(), 1e-5, 1e-5)
			R := rnd(rng, len(o.Data), 1)
			dq := make([]float32, len(q))
			dkv := make([]float32, len(kv))
			a.Backward(t32(R, o.Shape...), dq, dkv, dkv[c:])
			loss := func() float64 { return dotR(ref(), R) }
			checkGrad(t, "dq", rng, dq, q, loss, 150, 1e-3, 1e-5)
			checkGrad(t, "dkv", rng, dkv, kv, loss, 150, 1e-3, 1e-5)
		})
	}
}

func TestAttnCoreThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const B, nq, nk, c, h = 2, 130, 60, 32, 2
	q := t32(rnd(rng, B*nq*c, 1), B*nq*c)
	kv := t32(rnd(rng, B*nk*2*c, 1), B*nk*2*c)
	dout := t32(rnd(rng, B*nq*c, 1), B, nq, c)
	a := &AttnCore{Heads: h}
	threadInvariant(t, func() [][]float32 {
		o := clone32(a.Forward(B, nq, nk, c, q.Data, c, nq*c, kv.Data, 2*c, nk*2*c, kv.Data[c:], 2*c, nk*2*c).Data)
		dq, dkv := make([]float32, len(q.Data)), make([]float32, len(kv.Data))
		a.Backward(dout, dq, dkv, dkv[c:])
		return [][]float32{o, dq, dkv}
	})
}

func TestAttnCoreAllocs(t *testing.T) {
	a := &AttnCore{Heads: 2}
	q, kv := make([]float32, 2*20*8), make([]float32, 2*7*16)
	dq, dkv := make([]float32, len(q)), make([]float32, len(kv))
	dout := tensor.New(2, 20, 8)
	run := func() {
		a.Forward(2, 20, 7, 8, q, 8, 160, kv, 16, 112, kv[8:], 16, 112)
		a.Backward(dout, dq, dkv, dkv[8:])
	}
	run()
	if n := testing.AllocsPerRun(5, run); n > 0 {
		t.Errorf("AttnCore forward+backward allocates %.1f times", n)
	}
}
