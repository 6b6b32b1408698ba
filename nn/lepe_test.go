package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestLePE: maps read through strides (V inside a [maps, h*w, 3C] buffer,
// the output [maps, h*w, C] already holding values it adds to), against
// the float64 3x3 depthwise conv with zero padding and its central
// differences.
func TestLePE(t *testing.T) {
	for i, sh := range []struct{ maps, h, w, c int }{
		{1, 1, 1, 3}, {2, 3, 5, 4}, {3, 7, 2, 16}, {2, 6, 6, 17}, {1, 14, 7, 32},
	} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 41))
			c, n := sh.c, sh.h*sh.w
			l := NewLePE("get_v", c)
			wt, bias := rnd(rng, c*9, 0.3), rnd(rng, c, 0.3)
			set32(l.Weight, wt)
			set32(l.Bias, bias)
			buf := rnd(rng, sh.maps*n*3*c, 1) // V at column 2c of each row
			base := rnd(rng, sh.maps*n*c, 1)
			v := func() []float64 {
				x := make([]float64, sh.maps*n*c)
				for r := 0; r < sh.maps*n; r++ {
					copy(x[r*c:(r+1)*c], buf[r*3*c+2*c:])
				}
				return x
			}
			ref := func() []float64 {
				y := dwRef(v(), sh.maps, sh.h, sh.w, c, wt, bias)
				for j := range y {
					y[j] += base[j]
				}
				return y
			}
			b32 := t32(buf, len(buf))
			out := t32(base, len(base))
			l.Forward(out.Data, c, n*c, b32.Data[2*c:], 3*c, n*3*c, sh.maps, sh.h, sh.w)
			assertClose(t, "forward", out.Data, ref(), 1e-5, 1e-5)
			R := rnd(rng, len(base), 1)
			dbuf := make([]float32, len(buf))
			for j := range dbuf {
				dbuf[j] = 1 // Backward adds into dv
			}
			l.Backward(dbuf[2*c:], t32(R, len(R)).Data)
			for j := range dbuf {
				if j%(3*c) < 2*c && dbuf[j] != 1 {
					t.Fatalf("Backward wrote outside V's columns at %d", j)
				}
				dbuf[j]-- // the gradient proper (0 outside V)
			}
			loss := func() float64 { return dotR(ref(), R) }
			checkGrad(t, "dv", rng, dbuf, buf, loss, 150, 1e-4, 1e-5)
			checkGrad(t, "dweight", rng, l.Weight.G.Data, wt, loss, 100, 1e-4, 1e-5)
			checkGrad(t, "dbias", rng, l.Bias.G.Data, bias, loss, 50, 1e-4, 1e-5)
		})
	}
}

func TestLePEThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	const maps, h, w, c = 6, 14, 7, 32
	l := NewLePE("get_v", c)
	set32(l.Weight, rnd(rng, c*9, 0.3))
	set32(l.Bias, rnd(rng, c, 0.3))
	v := t32(rnd(rng, maps*h*w*c, 1), maps*h*w*c)
	dout := t32(rnd(rng, maps*h*w*c, 1), maps*h*w*c)
	threadInvariant(t, func() [][]float32 {
		ZeroGrads(l.Params())
		out := make([]float32, maps*h*w*c)
		l.Forward(out, c, h*w*c, v.Data, c, h*w*c, maps, h, w)
		dv := make([]float32, len(out))
		l.Backward(dv, dout.Data)
		return [][]float32{out, dv, clone32(l.Weight.G.Data), clone32(l.Bias.G.Data)}
	})
}

func TestLePEAllocs(t *testing.T) {
	l := NewLePE("get_v", 8)
	out, v := make([]float32, 3*20*8), make([]float32, 3*20*8)
	run := func() {
		l.Forward(out, 8, 160, v, 8, 160, 3, 4, 5)
		l.Backward(v, out)
	}
	run()
	if n := testing.AllocsPerRun(5, run); n > 0 {
		t.Errorf("LePE forward+backward allocates %.1f times", n)
	}
}
