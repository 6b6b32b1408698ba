package nn

import "math"

// RoPE is LLaMA's rotary position embedding in the "rotate-half" convention
// (HF LlamaRotaryEmbedding): channel i of a head is paired with channel
// i+d/2, not with its neighbour, and rotated by angle pos*base^(-2i/d).
// It has no parameters; the cos/sin table is built once for MaxPos
// positions, so applying it is two multiply-adds per channel and never
// calls math.Cos on the hot path.
type RoPE struct {
	HeadDim int
	MaxPos  int
	Base    float64
	// cos, sin hold [MaxPos, HeadDim/2] values. They are computed in
	// float32 the way HF does (inv_freq and pos*inv_freq in float32), so
	// that positions far from 0 round the same way as the reference.
	cos, sin []float32
}

// NewRoPE builds the table for positions 0..maxPos-1. headDim must be even.
func NewRoPE(headDim, maxPos int, base float64) *RoPE {
	if headDim%2 != 0 {
		panic("nn.NewRoPE: head dim must be even")
	}
	half := headDim / 2
	r := &RoPE{HeadDim: headDim, MaxPos: maxPos, Base: base,
		cos: make([]float32, maxPos*half), sin: make([]float32, maxPos*half)}
	for i := 0; i < half; i++ {
		invFreq := float32(1 / math.Pow(base, float64(2*i)/float64(headDim)))
		for p := 0; p < maxPos; p++ {
			ang := float64(float32(p) * invFreq)
			r.cos[p*half+i] = float32(math.Cos(ang))
			r.sin[p*half+i] = float32(math.Sin(ang))
		}
	}
	return r
}

// Rotate applies the rotation in place to x holding T positions of heads
// vectors each, laid out [T, heads, HeadDim] with row stride ld (>= heads*HeadDim)
// between positions; position t uses angle index start+t. inverse applies
// the transposed rotation, which is the backward pass (a rotation's
// Jacobian is the rotation itself).
func (r *RoPE) Rotate(x []float32, T, heads, ld, start int, inverse bool) {
	half := r.HeadDim / 2
	if start+T > r.MaxPos {
		panic("nn.RoPE: position beyond the table (raise the model's max positions)")
	}
	for t := 0; t < T; t++ {
		c := r.cos[(start+t)*half : (start+t+1)*half]
		s := r.sin[(start+t)*half : (start+t+1)*half]
		if inverse {
			// Negating sin turns the rotation into its inverse.
			for h := 0; h < heads; h++ {
				v := x[t*ld+h*r.HeadDim : t*ld+(h+1)*r.HeadDim]
				lo, hi := v[:half], v[half:]
				for i := range lo {
					a, b := lo[i], hi[i]
					lo[i] = a*c[i] + b*s[i]
					hi[i] = b*c[i] - a*s[i]
				}
			}
			continue
		}
		for h := 0; h < heads; h++ {
			v := x[t*ld+h*r.HeadDim : t*ld+(h+1)*r.HeadDim]
			lo, hi := v[:half], v[half:]
			for i := range lo {
				a, b := lo[i], hi[i]
				lo[i] = a*c[i] - b*s[i]
				hi[i] = b*c[i] + a*s[i]
			}
		}
	}
}
