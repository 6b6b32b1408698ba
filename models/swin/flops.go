package swin

import "github.com/slabml/slab/nn"

// FLOPsByLayer counts floating-point operations of one eval-mode forward of
// ONE image, by layer type. Convention: a multiply-add is 2 flops, so these
// are twice the multiply-add "FLOPs" Swin's and SLAB's papers print
// (swin_tiny: 4.5 G there, about 9.0e9 here). Elementwise work is counted
// as 1 flop per arithmetic operation as written out below; window
// partition, shift and reverse move data only (0 flops).
//
// Keys:
//
//	"linear"     qkv, proj, fc1, fc2, patch-merging reductions and head
//	             (biases as 1 add)
//	"conv"       patch embedding and the linear attention's depthwise conv
//	"attention"  everything between qkv and proj: QKᵀ, bias and mask adds,
//	             softmax and AV per window; or SLA's kernels, KᵀV, Q·S and
//	             normaliser (plus FLatten's focusing function)
//	"norm"       LayerNorm (7 flops/element) or eval-mode BN/RepBN/PRepBN (an
//	             affine map, 2 flops/element); 0 after folding
//	"activation" GELU (1 flop/element)
//	"add"        residual adds and mean pooling
func (c *Config) FLOPsByLayer() map[string]int64 {
	f := map[string]int64{}
	var perNorm int64 // per element
	switch c.Norm {
	case nn.NormLayerNorm:
		perNorm = 7
	case nn.NormRepBN, nn.NormPRepBN, nn.NormBatchNorm:
		perNorm = 2
	}
	C, N0 := int64(c.Dim), int64(c.Grid()*c.Grid())
	f["conv"] = 2*N0*C*int64(c.InChans*c.Patch*c.Patch) + N0*C
	f["norm"] = perNorm * N0 * C
	k := int64(c.DWCKernel)
	for i := range c.Depths {
		g, d, h := int64(c.StageGrid(i)), int64(c.StageDim(i)), int64(c.Heads[i])
		N, H, hd := g*g, d*int64(c.MLPRatio), d/h
		w := int64(c.Window(i))
		n := w * w
		nW := N / n
		for j := range c.Depths[i] {
			f["linear"] += 2*N*d*3*d + N*3*d + 2*N*d*d + N*d + 2*N*d*H + N*H + 2*N*H*d + N*d
			var attn int64
			if c.LinearStage(i) {
				attn = n * d                // K += P
				attn += 2 * n * d           // ReLU(Q), ReLU(K)
				attn += h * 2 * n * hd * hd // S = KᵀV
				attn += h * n * hd          // ksum
				attn += h * 2 * n * hd      // Q·ksum
				attn += h * 2 * n           // +eps, reciprocal
				attn += h * 2 * n * hd * hd // Q S
				attn += h * n * hd          // scale by z
				attn += n * d               // + DWC(V)
				if c.Linear == AttnFocused {
					// per token, q and k: +1e-6, /s, square-sum, power p,
					// square-sum, two square roots and the rescale
					attn += 2 * n * d * (3 + int64(c.Focusing) + 2)
				}
				f["conv"] += nW * h * (2*n*hd*k*k + n*hd)
			} else {
				attn = h * (2*n*n*hd + n*n + n*n + 4*n*n + 2*n*n*hd) // QKᵀ, bias, scale, softmax, AV
				if c.Shift(i, j) > 0 {
					attn += h * n * n // mask
				}
			}
			f["attention"] += nW * attn
			f["norm"] += 2 * perNorm * N * d
			f["activation"] += N * H
			f["add"] += 2 * N * d
		}
		if i < c.NumStages()-1 {
			m := N / 4
			f["norm"] += perNorm * m * 4 * d
			f["linear"] += 2 * m * 4 * d * 2 * d
			if c.Norm == nn.NormNone {
				f["linear"] += m * 2 * d
			}
		}
	}
	last, g := int64(c.StageDim(c.NumStages()-1)), int64(c.StageGrid(c.NumStages()-1))
	f["norm"] += perNorm * g * g * last
	f["add"] += g * g * last
	f["linear"] += 2*last*int64(c.Classes) + int64(c.Classes)
	return f
}
