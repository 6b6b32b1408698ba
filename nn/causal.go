package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// CausalAttention is LLaMA's self-attention: q/k/v/o projections without
// bias (name.q_proj ... name.o_proj), RoPE on q and k (none when Rope is
// nil: the adaptive-input LM adds sinusoidal positions to its input
// instead), causal softmax with
// scale d^-0.5, and grouped-query attention: Heads query heads share
// KVHeads key/value heads (Heads/KVHeads consecutive query heads per group,
// as HF repeat_kv). KVHeads == Heads is plain multi-head attention.
//
// Heads are never transposed into their own tensors: head h of a [B,T,H*d]
// projection is a strided matrix (row stride H*d) that GEMM reads in place,
// so the only copies are the ones the KV cache needs.
type CausalAttention struct {
	Q, K, V, O              *Linear
	Heads, KVHeads, HeadDim int
	Rope                    *RoPE
	// Linear selects causal simplified linear attention (SLA, docs/method.md 3.1
	// made causal) instead of softmax: see forwardSLA.
	Linear bool

	b, t       int
	q, k, v    *tensor.Tensor // rotated projections (owned by the Linears)
	p          *tensor.Tensor // [B,H,T,T] softmax probabilities
	att        *tensor.Tensor // [B,T,H*d] heads merged, o_proj input
	dp, datt   *tensor.Tensor
	dq, dk, dv *tensor.Tensor
	dx         *tensor.Tensor
	scores     []float32 // decode scratch: one row of scores per (batch, head)
	dec        decodeJob
	decWork    func(lo, hi int)
	den        *tensor.Tensor // SLA: [B,H,T] row normalisers
}

// NewCausalAttention returns zero projections for dim channels. heads must
// be a multiple of kvHeads; rope may be shared between layers.
func NewCausalAttention(name string, dim, heads, kvHeads, headDim int, rope *RoPE) *CausalAttention {
	if kvHeads <= 0 || heads%kvHeads != 0 {
		panic(fmt.Sprintf("nn.NewCausalAttention %s: %d heads not a multiple of %d kv heads", name, heads, kvHeads))
	}
	return &CausalAttention{
		Q:     NewLinear(name+".q_proj", dim, heads*headDim, false),
		K:     NewLinear(name+".k_proj", dim, kvHeads*headDim, false),
		V:     NewLinear(name+".v_proj", dim, kvHeads*headDim, false),
		O:     NewLinear(name+".o_proj", heads*headDim, dim, false),
		Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Rope: rope,
	}
}

func (a *CausalAttention) scale() float32 { return float32(1 / math.Sqrt(float64(a.HeadDim))) }

// Forward is the training/full-sequence pass over x [B,T,C], keeping the
// probabilities for Backward (B·H·T² floats).
func (a *CausalAttention) Forward(x *tensor.Tensor) *tensor.Tensor {
	B, T := x.Dim(0), x.Dim(1)
	a.b, a.t = B, T
	H, G, d := a.Heads, a.KVHeads, a.HeadDim
	hd, gd := H*d, G*d
	q, k, v := a.Q.Forward(x), a.K.Forward(x), a.V.Forward(x)
	a.q, a.k, a.v = q, k, v
	if a.Linear {
		return a.forwardSLA(B, T)
	}
	for b := 0; a.Rope != nil && b < B; b++ {
		a.Rope.Rotate(q.Data[b*T*hd:], T, H, hd, 0, false)
		a.Rope.Rotate(k.Data[b*T*gd:], T, G, gd, 0, false)
	}
	p := tensor.Ensure(&a.p, B, H, T, T)
	att := tensor.Ensure(&a.att, B, T, hd)
	scale := a.scale()
	grp := H / G
	kernels.ParallelFor(B*H, 1, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			g := h / grp
			pm := p.Data[bh*T*T : (bh+1)*T*T]
			kernels.Gemm(false, true, T, T, d, scale, q.Data[b*T*hd+h*d:], hd, k.Data[b*T*gd+g*d:], gd, 0, pm, T)
			for i := 0; i < T; i++ {
				softmaxCausalRow(pm[i*T:(i+1)*T], i+1)
			}
			kernels.Gemm(false, false, T, d, T, 1, pm, T, v.Data[b*T*gd+g*d:], gd, 0, att.Data[b*T*hd+h*d:], hd)
		}
	})
	return a.O.Forward(att)
}

// softmaxCausalRow normalises row[:n] in place and zeroes the masked rest.
// kernels.SoftmaxRows has the vector exp; a scalar loop here was 7 % of a
// training step.
func softmaxCausalRow(row []float32, n int) {
	kernels.SoftmaxRows(row, row, 1, n, n)
	clear(row[n:])
}

// Backward returns dx for the last Forward and accumulates the projection
// gradients.
func (a *CausalAttention) Backward(dy *tensor.Tensor) *tensor.Tensor {
	B, T := a.b, a.t
	H, G, d := a.Heads, a.KVHeads, a.HeadDim
	hd, gd := H*d, G*d
	grp := H / G
	scale := a.scale()
	datt := a.O.Backward(dy)
	if a.Linear {
		return a.backwardSLA(datt)
	}
	dp := tensor.Ensure(&a.dp, B, H, T, T)
	dq := tensor.Ensure(&a.dq, B, T, hd)
	dk := tensor.EnsureZero(&a.dk, B, T, gd)
	dv := tensor.EnsureZero(&a.dv, B, T, gd)
	q, k, v, p := a.q.Data, a.k.Data, a.v.Data, a.p.Data
	// Parallel over (batch, kv group): the heads of one group add into the
	// same dK/dV slice, so they run in one worker.
	kernels.ParallelFor(B*G, 1, func(lo, hi int) {
		for bg := lo; bg < hi; bg++ {
			b, g := bg/G, bg%G
			kg, vg := k[b*T*gd+g*d:], v[b*T*gd+g*d:]
			for h := g * grp; h < (g+1)*grp; h++ {
				bh := b*H + h
				pm := p[bh*T*T : (bh+1)*T*T]
				ds := dp.Data[bh*T*T : (bh+1)*T*T]
				do := datt.Data[b*T*hd+h*d:]
				kernels.Gemm(false, true, T, T, d, 1, do, hd, vg, gd, 0, ds, T)
				for i := 0; i < T; i++ {
					dr := ds[i*T : (i+1)*T]
					kernels.SoftmaxRowsBackward(dr, pm[i*T:], dr, 1, i+1, T, 1)
					clear(dr[i+1:])
				}
				kernels.Gemm(false, false, T, d, T, scale, ds, T, kg, gd, 0, dq.Data[b*T*hd+h*d:], hd)
				kernels.Gemm(true, false, T, d, T, scale, ds, T, q[b*T*hd+h*d:], hd, 1, dk.Data[b*T*gd+g*d:], gd)
				kernels.Gemm(true, false, T, d, T, 1, pm, T, do, hd, 1, dv.Data[b*T*gd+g*d:], gd)
			}
		}
	})
	for b := 0; a.Rope != nil && b < B; b++ {
		a.Rope.Rotate(dq.Data[b*T*hd:], T, H, hd, 0, true)
		a.Rope.Rotate(dk.Data[b*T*gd:], T, G, gd, 0, true)
	}
	return a.sumInputGrads(dq, dk, dv)
}

// sumInputGrads returns dx = the input gradients of the q, k and v
// projections added up.
func (a *CausalAttention) sumInputGrads(dq, dk, dv *tensor.Tensor) *tensor.Tensor {
	dx1 := a.Q.Backward(dq)
	dx := tensor.Ensure(&a.dx, dx1.Shape...)
	kernels.Add(dx.Data, dx1.Data, a.K.Backward(dk).Data)
	kernels.AddTo(dx.Data, a.V.Backward(dv).Data)
	return dx
}

// KVCache holds the rotated keys and values of the positions seen so far
// for one attention layer: K and V are [B, KVHeads, MaxT, HeadDim], so that
// a head reads its keys and values as one contiguous block (with the
// positions interleaved across heads, [B, MaxT, KVHeads*HeadDim], each
// 512-byte row of a head sat in its own 4 KiB stride and the attention
// took 5 % of a llama_350m decode step).
//
// For causal SLA the cache is O(1) in the sequence length instead: K holds
// the running sum of ReLU(k_j) v_j^T per kv head [B, KVHeads, d, d] and V
// the running sum of ReLU(k_j) [B, KVHeads, d]; MaxT only bounds Len.
type KVCache struct {
	K, V    []float32
	B, MaxT int
	Len     int // positions filled
}

// NewCache allocates a cache for batch sequences of up to maxT positions.
func (a *CausalAttention) NewCache(batch, maxT int) *KVCache {
	if a.Linear {
		d := a.HeadDim
		return &KVCache{K: make([]float32, batch*a.KVHeads*d*d), V: make([]float32, batch*a.KVHeads*d), B: batch, MaxT: maxT}
	}
	n := batch * maxT * a.KVHeads * a.HeadDim
	return &KVCache{K: make([]float32, n), V: make([]float32, n), B: batch, MaxT: maxT}
}

// CacheReadBytes is what a decode step at position pos (pos positions
// already cached) reads of the cache: the keys and values of pos+1
// positions, or for linear attention its fixed per-head state.
func (a *CausalAttention) CacheReadBytes(pos int) int64 {
	kv, d := int64(a.KVHeads), int64(a.HeadDim)
	if a.Linear {
		return 4 * kv * (d*d + d)
	}
	return 4 * 2 * int64(pos+1) * kv * d
}

// ForwardCached is the inference pass: x [B,T,C] holds the T positions
// following the c.Len cached ones (a prompt, or one token while decoding);
// their keys and values are appended to c. It keeps nothing for Backward
// and allocates nothing once its buffers have grown.
func (a *CausalAttention) ForwardCached(x *tensor.Tensor, c *KVCache) (*tensor.Tensor, error) {
	B, T := x.Dim(0), x.Dim(1)
	if B != c.B {
		return nil, fmt.Errorf("attention: batch %d but cache batch %d", B, c.B)
	}
	if c.Len+T > c.MaxT || (a.Rope != nil && c.Len+T > a.Rope.MaxPos) {
		return nil, fmt.Errorf("attention: %d positions exceed the context (cache %d)", c.Len+T, c.MaxT)
	}
	H, G, d := a.Heads, a.KVHeads, a.HeadDim
	hd, gd := H*d, G*d
	var qkv [3]*tensor.Tensor
	SharedForward(x, qkv[:], a.Q, a.K, a.V)
	q, k, v := qkv[0], qkv[1], qkv[2]
	if a.Linear {
		return a.cachedSLA(q, k, v, B, T, c), nil
	}
	L := c.Len
	for b := 0; b < B; b++ {
		if a.Rope != nil {
			a.Rope.Rotate(q.Data[b*T*hd:], T, H, hd, L, false)
			a.Rope.Rotate(k.Data[b*T*gd:], T, G, gd, L, false)
		}
		for t := 0; t < T; t++ {
			kr := k.Data[(b*T+t)*gd : (b*T+t+1)*gd]
			vr := v.Data[(b*T+t)*gd : (b*T+t+1)*gd]
			for g := 0; g < G; g++ {
				off := ((b*G+g)*c.MaxT + L + t) * d
				copy(c.K[off:off+d], kr[g*d:(g+1)*d])
				copy(c.V[off:off+d], vr[g*d:(g+1)*d])
			}
		}
	}
	c.Len += T
	att := tensor.Ensure(&a.att, B, T, hd)
	if len(a.scores) < B*H*c.MaxT {
		a.scores = make([]float32, B*H*c.MaxT)
	}
	a.dec = decodeJob{q: q.Data, att: att.Data, c: c, T: T, L: L}
	if a.decWork == nil {
		a.decWork = a.decodeHeads // bound once: no closure per token
	}
	kernels.ParallelFor(B*H, 1, a.decWork)
	a.dec = decodeJob{}
	return a.O.Forward(att), nil
}

// decodeJob is the state of one ForwardCached attention pass, read by the
// pre-bound decodeHeads.
type decodeJob struct {
	q, att []float32
	c      *KVCache
	T, L   int
}

// decodeHeads attends (batch, head) pairs [lo, hi) over the cache. The
// two GEMVs per position run inline on this worker (kernels.Gemm nests
// without forking), so a layer costs one fork/join instead of two per head.
func (a *CausalAttention) decodeHeads(lo, hi int) {
	j := &a.dec
	c, T, L := j.c, j.T, j.L
	H, G, d := a.Heads, a.KVHeads, a.HeadDim
	hd := H * d
	grp := H / G
	scale := a.scale()
	for bh := lo; bh < hi; bh++ {
		b, h := bh/H, bh%H
		g := h / grp
		kc := c.K[(b*G+g)*c.MaxT*d:]
		vc := c.V[(b*G+g)*c.MaxT*d:]
		sc := a.scores[bh*c.MaxT : (bh+1)*c.MaxT]
		for t := 0; t < T; t++ {
			n := L + t + 1
			row := (b*T + t) * hd
			kernels.Gemm(false, true, 1, n, d, scale, j.q[row+h*d:], d, kc, d, 0, sc, n)
			kernels.SoftmaxRows(sc, sc, 1, n, n)
			// p·V as a sum of scaled rows: V is read once, in order.
			out := j.att[row+h*d : row+h*d+d]
			clear(out)
			for i, p := range sc[:n] {
				kernels.Axpy(out, p, vc[i*d:(i+1)*d])
			}
		}
	}
}

// dot32 is a float32 dot product with four accumulators, which lets the
// compiler overlap the multiply-add latency.
func dot32(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Params returns q, k, v, o parameters.
func (a *CausalAttention) Params() []*Param {
	var ps []*Param
	for _, l := range []*Linear{a.Q, a.K, a.V, a.O} {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Buffers is empty: the RoPE table is recomputed, not saved (the official
// rotary_emb.inv_freq buffer is derivable from HeadDim and Base).
func (a *CausalAttention) Buffers() []*Buffer { return nil }

// slaEps is SLA's normaliser offset, 1/(q·Σk + 1e-6) (docs/method.md 3.1).
const slaEps = 1e-6

// forwardSLA is causal simplified linear attention: with q = ReLU(Q x),
// k = ReLU(K x) (no RoPE: the kernel is applied to raw projections, as in
// SLA, and order comes from causality alone) and per head
//
//	o_i = Σ_{j<=i} (q_i·k_j) v_j / (Σ_{j<=i} q_i·k_j + 1e-6),
//
// the vision SLA of docs/method.md 3.1 restricted to the prefix, without the
// depthwise convolution (there is no 2-D token grid in a text sequence).
// Training uses the masked T×T form with the same strided GEMMs as softmax
// attention; decoding (cachedSLA) keeps the d×d state Σ k_j v_j^T per head,
// so memory and time per token do not grow with the context.
func (a *CausalAttention) forwardSLA(B, T int) *tensor.Tensor {
	H, G, d := a.Heads, a.KVHeads, a.HeadDim
	hd, gd := H*d, G*d
	grp := H / G
	q, k, v := a.q, a.k, a.v
	relu(q.Data)
	relu(k.Data)
	p := tensor.Ensure(&a.p, B, H, T, T)
	den := tensor.Ensure(&a.den, B, H, T)
	att := tensor.Ensure(&a.att, B, T, hd)
	kernels.ParallelFor(B*H, 1, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			g := h / grp
			pm := p.Data[bh*T*T : (bh+1)*T*T]
			kernels.Gemm(false, true, T, T, d, 1, q.Data[b*T*hd+h*d:], hd, k.Data[b*T*gd+g*d:], gd, 0, pm, T)
			for i := 0; i < T; i++ {
				row := pm[i*T : (i+1)*T]
				var z float32
				for _, s := range row[:i+1] {
					z += s
				}
				z += slaEps
				den.Data[bh*T+i] = z
				inv := 1 / z
				for j := range row[:i+1] {
					row[j] *= inv
				}
				clear(row[i+1:])
			}
			kernels.Gemm(false, false, T, d, T, 1, pm, T, v.Data[b*T*gd+g*d:], gd, 0, att.Data[b*T*hd+h*d:], hd)
		}
	})
	return a.O.Forward(att)
}

func relu(x []float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

// backwardSLA: with P = A/den (A = q k^T masked), dA_ij = (dP_ij −
// Σ_k dP_ik P_ik)/den_i on the prefix; then dq = dA k, dk = dA^T q, and the
// ReLUs pass gradient where their output is positive.
func (a *CausalAttention) backwardSLA(datt *tensor.Tensor) *tensor.Tensor {
	B, T := a.b, a.t
	H, G, d := a.Heads, a.KVHeads, a.HeadDim
	hd, gd := H*d, G*d
	grp := H / G
	dp := tensor.Ensure(&a.dp, B, H, T, T)
	dq := tensor.Ensure(&a.dq, B, T, hd)
	dk := tensor.EnsureZero(&a.dk, B, T, gd)
	dv := tensor.EnsureZero(&a.dv, B, T, gd)
	q, k, v, p, den := a.q.Data, a.k.Data, a.v.Data, a.p.Data, a.den.Data
	kernels.ParallelFor(B*G, 1, func(lo, hi int) {
		for bg := lo; bg < hi; bg++ {
			b, g := bg/G, bg%G
			kg, vg := k[b*T*gd+g*d:], v[b*T*gd+g*d:]
			for h := g * grp; h < (g+1)*grp; h++ {
				bh := b*H + h
				pm := p[bh*T*T : (bh+1)*T*T]
				ds := dp.Data[bh*T*T : (bh+1)*T*T]
				do := datt.Data[b*T*hd+h*d:]
				kernels.Gemm(false, true, T, T, d, 1, do, hd, vg, gd, 0, ds, T)
				for i := 0; i < T; i++ {
					pr, dr := pm[i*T:i*T+i+1], ds[i*T:(i+1)*T]
					var dot float32
					for j, pv := range pr {
						dot += pv * dr[j]
					}
					inv := 1 / den[bh*T+i]
					for j := range pr {
						dr[j] = (dr[j] - dot) * inv
					}
					clear(dr[i+1:])
				}
				kernels.Gemm(false, false, T, d, T, 1, ds, T, kg, gd, 0, dq.Data[b*T*hd+h*d:], hd)
				kernels.Gemm(true, false, T, d, T, 1, ds, T, q[b*T*hd+h*d:], hd, 1, dk.Data[b*T*gd+g*d:], gd)
				kernels.Gemm(true, false, T, d, T, 1, pm, T, do, hd, 1, dv.Data[b*T*gd+g*d:], gd)
			}
		}
	})
	for i, qv := range q {
		if qv <= 0 {
			dq.Data[i] = 0
		}
	}
	for i, kv := range k {
		if kv <= 0 {
			dk.Data[i] = 0
		}
	}
	return a.sumInputGrads(dq, dk, dv)
}

// cachedSLA advances the per-head state by T positions and returns the
// output projection of their attention outputs.
func (a *CausalAttention) cachedSLA(q, k, v *tensor.Tensor, B, T int, c *KVCache) *tensor.Tensor {
	H, G, d := a.Heads, a.KVHeads, a.HeadDim
	hd, gd := H*d, G*d
	grp := H / G
	relu(q.Data)
	relu(k.Data)
	att := tensor.Ensure(&a.att, B, T, hd)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			row := (b*T + t)
			for g := 0; g < G; g++ {
				S := c.K[(b*G+g)*d*d : (b*G+g+1)*d*d]
				z := c.V[(b*G+g)*d : (b*G+g+1)*d]
				kt := k.Data[row*gd+g*d : row*gd+(g+1)*d]
				vt := v.Data[row*gd+g*d : row*gd+(g+1)*d]
				for i, ki := range kt {
					z[i] += ki
					if ki == 0 {
						continue
					}
					si := S[i*d : (i+1)*d]
					for j, vj := range vt {
						si[j] += ki * vj
					}
				}
				for h := g * grp; h < (g+1)*grp; h++ {
					qh := q.Data[row*hd+h*d : row*hd+(h+1)*d]
					o := att.Data[row*hd+h*d : row*hd+(h+1)*d]
					clear(o)
					inv := 1 / (dot32(qh, z) + slaEps)
					for i, qi := range qh {
						if qi == 0 {
							continue
						}
						qi *= inv
						si := S[i*d : (i+1)*d]
						for j, sv := range si {
							o[j] += qi * sv
						}
					}
				}
			}
		}
	}
	c.Len += T
	return a.O.Forward(att)
}
