package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Float64 building blocks shared by the tests of the PVT and CSwin layers
// (Conv2d, AttnCore, LePE, SRA, StripeAttention): each layer's forward is
// re-written from its equations in float64, our float32 forward is
// compared with it, and our analytic backward with its central
// differences (numGrad).

// rnd returns n normal values (mean 0, std) rounded to float32, so the
// float64 reference and the float32 layer see the same numbers.
func rnd(rng *rand.Rand, n int, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(float32(std * rng.NormFloat64()))
	}
	return x
}

// t32 returns a float32 tensor of the given shape holding x.
func t32(x []float64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i, v := range x {
		t.Data[i] = float32(v)
	}
	return t
}

// set32 copies x into a parameter's value.
func set32(p *Param, x []float64) {
	for i, v := range x {
		p.W.Data[i] = float32(v)
	}
}

// dotR is the scalar loss sum(y ⊙ r) whose gradient is the VJP with r.
func dotR(y, r []float64) float64 {
	s := 0.0
	for i := range y {
		s += y[i] * r[i]
	}
	return s
}

// checkGrad compares got (the layer's gradient of x) with central
// differences of loss at up to max random entries of x.
func checkGrad(t *testing.T, name string, rng *rand.Rand, got []float32, x []float64, loss func() float64, maxN int, rtol, atol float64) {
	t.Helper()
	idx := rng.Perm(len(x))
	if len(idx) > maxN {
		idx = idx[:maxN]
	}
	g := make([]float32, len(idx))
	want := make([]float64, len(idx))
	for j, ix := range idx {
		g[j] = got[ix]
		want[j] = numGrad(func([]float64) float64 { return loss() }, x[ix:ix+1], 1e-6)[0]
	}
	assertClose(t, name, g, want, rtol, atol)
}

// linRef is y = x Wᵀ + b over rows rows (b nil: none).
func linRef(x []float64, rows, in, out int, w, b []float64) []float64 {
	y := make([]float64, rows*out)
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[o*in+i]
			}
			y[r*out+o] = s
		}
	}
	return y
}

// attnRef is multi-head softmax attention of q [nb,nq,c] over k, v
// [nb,nk,c] with scale d^-0.5, merged heads [nb,nq,c].
func attnRef(q, k, v []float64, nb, nq, nk, c, heads int) []float64 {
	d := c / heads
	sc := 1 / math.Sqrt(float64(d))
	out := make([]float64, nb*nq*c)
	row := make([]float64, nk)
	for b := 0; b < nb; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < nq; i++ {
				m := math.Inf(-1)
				for j := 0; j < nk; j++ {
					s := 0.0
					for a := 0; a < d; a++ {
						s += q[(b*nq+i)*c+h*d+a] * k[(b*nk+j)*c+h*d+a]
					}
					row[j] = s * sc
					m = math.Max(m, row[j])
				}
				sum := 0.0
				for j := range row {
					row[j] = math.Exp(row[j] - m)
					sum += row[j]
				}
				for a := 0; a < d; a++ {
					s := 0.0
					for j := 0; j < nk; j++ {
						s += row[j] / sum * v[(b*nk+j)*c+h*d+a]
					}
					out[(b*nq+i)*c+h*d+a] = s
				}
			}
		}
	}
	return out
}

// convRef is PyTorch's conv2d of images x [B,ci,h,w] with weight
// [co,ci,k,k] and bias, output as tokens [B, oh*ow, co].
func convRef(x []float64, B, ci, h, w, co, k, s, p int, wt, bias []float64) []float64 {
	oh, ow := kernels.ConvOutSize(h, k, s, p), kernels.ConvOutSize(w, k, s, p)
	y := make([]float64, B*oh*ow*co)
	for b := 0; b < B; b++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for o := 0; o < co; o++ {
					sum := bias[o]
					for c := 0; c < ci; c++ {
						for ky := 0; ky < k; ky++ {
							iy := oy*s - p + ky
							if iy < 0 || iy >= h {
								continue
							}
							for kx := 0; kx < k; kx++ {
								ix := ox*s - p + kx
								if ix < 0 || ix >= w {
									continue
								}
								sum += wt[((o*ci+c)*k+ky)*k+kx] * x[((b*ci+c)*h+iy)*w+ix]
							}
						}
					}
					y[((b*oh+oy)*ow+ox)*co+o] = sum
				}
			}
		}
	}
	return y
}

// tokensToImages turns token maps [B,h*w,c] into images [B,c,h,w].
func tokensToImages(x []float64, B, h, w, c int) []float64 {
	y := make([]float64, len(x))
	for b := 0; b < B; b++ {
		for p := 0; p < h*w; p++ {
			for ch := 0; ch < c; ch++ {
				y[(b*c+ch)*h*w+p] = x[(b*h*w+p)*c+ch]
			}
		}
	}
	return y
}

// dwRef is a 3x3 depthwise conv with bias (zero padding) of maps x
// [maps, h*w, c] (channels-last), weight [c,1,3,3].
func dwRef(x []float64, maps, h, w, c int, wt, bias []float64) []float64 {
	y := make([]float64, len(x))
	for m := 0; m < maps; m++ {
		for yy := 0; yy < h; yy++ {
			for xx := 0; xx < w; xx++ {
				for ch := 0; ch < c; ch++ {
					s := bias[ch]
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							iy, ix := yy+ky-1, xx+kx-1
							if iy < 0 || iy >= h || ix < 0 || ix >= w {
								continue
							}
							s += wt[ch*9+ky*3+kx] * x[(m*h*w+iy*w+ix)*c+ch]
						}
					}
					y[(m*h*w+yy*w+xx)*c+ch] = s
				}
			}
		}
	}
	return y
}

// withThreads runs f with kernels.SetThreads(n), restoring the count.
func withThreads(n int, f func()) {
	old := kernels.Threads()
	kernels.SetThreads(n)
	defer kernels.SetThreads(old)
	f()
}

// sameBits reports the first index where a and b differ bitwise (-1: none).
func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// threadInvariant runs step (which must return the layer's outputs and
// gradients, copied) at 1, 2 and 4 threads and fails unless all runs are
// bit-identical.
func threadInvariant(t *testing.T, step func() [][]float32) {
	t.Helper()
	var base [][]float32
	for _, n := range []int{1, 2, 4} {
		var got [][]float32
		withThreads(n, func() { got = step() })
		if base == nil {
			base = got
			continue
		}
		for i := range got {
			if j := sameBits(base[i], got[i]); j >= 0 {
				t.Errorf("threads %d: result %d differs from 1 thread at %d: %g vs %g", n, i, j, got[i][j], base[i][j])
			}
		}
	}
}

func clone32(x []float32) []float32 { return append([]float32(nil), x...) }
