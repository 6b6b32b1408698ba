package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// ropeRef64 rotates v [T, heads, d] in float64 from the formula.
func ropeRef64(v []float64, T, heads, d int, base float64, start int) {
	half := d / 2
	for t := 0; t < T; t++ {
		for h := 0; h < heads; h++ {
			x := v[(t*heads+h)*d : (t*heads+h+1)*d]
			for i := 0; i < half; i++ {
				ang := float64(start+t) * math.Pow(base, -float64(2*i)/float64(d))
				c, s := math.Cos(ang), math.Sin(ang)
				a, b := x[i], x[i+half]
				x[i], x[i+half] = a*c-b*s, b*c+a*s
			}
		}
	}
}

func TestRoPE(t *testing.T) {
	for _, tc := range []struct{ T, heads, d, start int }{{5, 2, 8, 0}, {3, 1, 16, 7}, {1, 3, 4, 30}} {
		r := NewRoPE(tc.d, 40, 10000)
		rng := rand.New(rand.NewPCG(1, 2))
		n := tc.T * tc.heads * tc.d
		x := make([]float32, n)
		want := make([]float64, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			want[i] = float64(x[i])
		}
		orig := append([]float32(nil), x...)
		ropeRef64(want, tc.T, tc.heads, tc.d, 10000, tc.start)
		r.Rotate(x, tc.T, tc.heads, tc.heads*tc.d, tc.start, false)
		assertClose(t, "rope", x, want, 1e-5, 1e-5)
		r.Rotate(x, tc.T, tc.heads, tc.heads*tc.d, tc.start, true)
		back := make([]float64, n)
		for i, v := range orig {
			back[i] = float64(v)
		}
		assertClose(t, "rope inverse", x, back, 1e-5, 1e-5)
	}
}

func TestEmbedding(t *testing.T) {
	e := NewEmbedding("emb", 5, 3)
	for i := range e.Weight.W.Data {
		e.Weight.W.Data[i] = float32(i)
	}
	out, err := e.Forward([]int{4, 0, 4}, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "embedding", out.Data, []float64{12, 13, 14, 0, 1, 2, 12, 13, 14}, 0, 0)
	dy, _ := tensor.FromData([]float32{1, 1, 1, 2, 2, 2, 3, 3, 3}, 1, 3, 3)
	e.Backward(dy)
	want := make([]float64, 15)
	for j := 0; j < 3; j++ {
		want[j], want[12+j] = 2, 4
	}
	assertClose(t, "embedding grad", e.Weight.G.Data, want, 0, 0)
	if _, err := e.Forward([]int{5}); err == nil {
		t.Fatal("id 5 of vocab 5 accepted")
	}
}

func randFill(rng *rand.Rand, std float64, ts ...*tensor.Tensor) {
	for _, t := range ts {
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * std)
		}
	}
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// matT64 is x [n, in] times w^T (w [out, in]).
func matT64(x, w []float64, n, in, out int) []float64 {
	y := make([]float64, n*out)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			var s float64
			for k := 0; k < in; k++ {
				s += x[i*in+k] * w[o*in+k]
			}
			y[i*out+o] = s
		}
	}
	return y
}

// attnRef64 is causal GQA attention from the equations, in float64.
// With linear, it is causal SLA: ReLU kernels, no RoPE, weights
// q_i·k_j / (Σ_{j<=i} q_i·k_j + 1e-6).
func attnRef64(x, wq, wk, wv, wo []float64, B, T, C, H, G, d int, linear bool) []float64 {
	q := matT64(x, wq, B*T, C, H*d)
	k := matT64(x, wk, B*T, C, G*d)
	v := matT64(x, wv, B*T, C, G*d)
	if linear {
		for _, s := range [][]float64{q, k} {
			for i := range s {
				s[i] = math.Max(s[i], 0)
			}
		}
	}
	for b := 0; b < B && !linear; b++ {
		ropeRef64(q[b*T*H*d:(b+1)*T*H*d], T, H, d, 10000, 0)
		ropeRef64(k[b*T*G*d:(b+1)*T*G*d], T, G, d, 10000, 0)
	}
	att := make([]float64, B*T*H*d)
	sc := make([]float64, T)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			g := h / (H / G)
			for i := 0; i < T; i++ {
				m := math.Inf(-1)
				for j := 0; j <= i; j++ {
					var s float64
					for c := 0; c < d; c++ {
						s += q[(b*T+i)*H*d+h*d+c] * k[(b*T+j)*G*d+g*d+c]
					}
					sc[j] = s / math.Sqrt(float64(d))
					if linear {
						sc[j] = s
					}
					m = math.Max(m, sc[j])
				}
				var z float64
				for j := 0; j <= i; j++ {
					if !linear {
						sc[j] = math.Exp(sc[j] - m)
					}
					z += sc[j]
				}
				if linear {
					z += 1e-6
				}
				for j := 0; j <= i; j++ {
					for c := 0; c < d; c++ {
						att[(b*T+i)*H*d+h*d+c] += sc[j] / z * v[(b*T+j)*G*d+g*d+c]
					}
				}
			}
		}
	}
	return matT64(att, wo, B*T, H*d, C)
}

func TestCausalAttentionGrad(t *testing.T) {
	for _, tc := range []struct {
		B, T, C, H, G, d int
		linear           bool
	}{{2, 5, 8, 2, 2, 4, false}, {1, 6, 8, 4, 2, 4, false}, {2, 3, 6, 2, 1, 6, false}, {2, 5, 8, 2, 2, 4, true}, {1, 6, 8, 4, 2, 4, true}} {
		t.Logf("B=%d T=%d C=%d heads=%d kv=%d d=%d linear=%v", tc.B, tc.T, tc.C, tc.H, tc.G, tc.d, tc.linear)
		rng := rand.New(rand.NewPCG(3, uint64(tc.H*10+tc.G)))
		rope := NewRoPE(tc.d, 16, 10000)
		a := NewCausalAttention("attn", tc.C, tc.H, tc.G, tc.d, rope)
		a.Linear = tc.linear
		x := tensor.New(tc.B, tc.T, tc.C)
		randFill(rng, 0.5, x, a.Q.Weight.W, a.K.Weight.W, a.V.Weight.W, a.O.Weight.W)
		w := make([]float64, x.Size())
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		x64 := to64(x.Data)
		ws := [][]float64{to64(a.Q.Weight.W.Data), to64(a.K.Weight.W.Data), to64(a.V.Weight.W.Data), to64(a.O.Weight.W.Data)}
		f := func() []float64 {
			return attnRef64(x64, ws[0], ws[1], ws[2], ws[3], tc.B, tc.T, tc.C, tc.H, tc.G, tc.d, tc.linear)
		}
		y := a.Forward(x)
		assertClose(t, "attention forward", y.Data, f(), 1e-4, 1e-5)
		dy, _ := tensor.FromData(make([]float32, len(w)), y.Shape...)
		for i := range w {
			dy.Data[i] = float32(w[i])
		}
		loss := func(v []float64) float64 {
			var s float64
			for i, o := range f() {
				s += o * w[i]
			}
			return s
		}
		dx := a.Backward(dy)
		assertClose(t, "attention dx", dx.Data, numGrad(loss, x64, 1e-6), 1e-4, 1e-5)
		for i, p := range []*Param{a.Q.Weight, a.K.Weight, a.V.Weight, a.O.Weight} {
			assertClose(t, p.Name+" grad", p.G.Data, numGrad(loss, ws[i], 1e-6), 1e-4, 1e-5)
		}
		// The cached path, fed the sequence in two chunks, must give the
		// same outputs as the full forward.
		c := a.NewCache(tc.B, tc.T)
		full := append([]float32(nil), y.Data...)
		split := tc.T / 2
		xa, xb := tensor.New(tc.B, split, tc.C), tensor.New(tc.B, tc.T-split, tc.C)
		for b := 0; b < tc.B; b++ {
			copy(xa.Data[b*split*tc.C:], x.Data[b*tc.T*tc.C:(b*tc.T+split)*tc.C])
			copy(xb.Data[b*(tc.T-split)*tc.C:], x.Data[(b*tc.T+split)*tc.C:(b+1)*tc.T*tc.C])
		}
		ya, err := a.ForwardCached(xa, c)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(full))
		for b := 0; b < tc.B; b++ {
			copy(got[b*tc.T*tc.C:], ya.Data[b*split*tc.C:(b+1)*split*tc.C])
		}
		yb, err := a.ForwardCached(xb, c)
		if err != nil {
			t.Fatal(err)
		}
		for b := 0; b < tc.B; b++ {
			copy(got[(b*tc.T+split)*tc.C:], yb.Data[b*(tc.T-split)*tc.C:(b+1)*(tc.T-split)*tc.C])
		}
		assertClose(t, "cached forward", got, to64(full), 1e-4, 1e-5)
		if _, err := a.ForwardCached(xb, c); err == nil {
			t.Fatal("cache overflow not reported")
		}
	}
}

func TestSwiGLUGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n, C, Hd = 4, 6, 10
	m := NewSwiGLU("mlp", C, Hd)
	x := tensor.New(2, 2, C)
	randFill(rng, 0.7, x, m.Gate.Weight.W, m.Up.Weight.W, m.Down.Weight.W)
	x64 := to64(x.Data)
	ws := [][]float64{to64(m.Gate.Weight.W.Data), to64(m.Up.Weight.W.Data), to64(m.Down.Weight.W.Data)}
	f := func() []float64 {
		g := matT64(x64, ws[0], n, C, Hd)
		u := matT64(x64, ws[1], n, C, Hd)
		for i := range g {
			g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
		}
		return matT64(g, ws[2], n, Hd, C)
	}
	y := m.Forward(x)
	assertClose(t, "swiglu forward", y.Data, f(), 1e-5, 1e-6)
	w := make([]float64, y.Size())
	dy := tensor.New(y.Shape...)
	for i := range w {
		w[i] = rng.NormFloat64()
		dy.Data[i] = float32(w[i])
	}
	loss := func([]float64) float64 {
		var s float64
		for i, o := range f() {
			s += o * w[i]
		}
		return s
	}
	dx := m.Backward(dy)
	assertClose(t, "swiglu dx", dx.Data, numGrad(loss, x64, 1e-6), 1e-4, 1e-5)
	for i, p := range []*Param{m.Gate.Weight, m.Up.Weight, m.Down.Weight} {
		assertClose(t, p.Name+" grad", p.G.Data, numGrad(loss, ws[i], 1e-6), 1e-4, 1e-5)
	}
}
