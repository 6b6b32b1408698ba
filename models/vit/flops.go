package vit

// FLOPs counts floating-point operations of one eval-mode forward of ONE
// image, by layer type. Convention: a multiply-add is 2 flops (so these are
// twice the "GFLOPs" that fvcore and the DeiT/SLAB papers print, which count
// multiply-adds: deit_tiny is ~2.51e9 here, 1.25 G multiply-adds there).
// Elementwise work is counted as 1 flop per arithmetic operation as written
// out below; papers usually leave it out, and it is small (~1-2 %).
//
// Keys:
//
//	"linear"    qkv, proj, fc1, fc2 and head GEMMs (biases as 1 add)
//	"conv"      patch embedding and the SLA depth-wise conv
//	"attention" everything between qkv and proj: QK^T, softmax and AV, or
//	            SLA's ReLU kernels, K^T V, Q S, normaliser and position add
//	"norm"      LayerNorm (7 flops/element) or eval-mode BN/RepBN/PRepBN
//	            (an affine map, 2 flops/element); 0 after folding
//	"activation" GELU (counted as 1 flop/element)
//	"add"       residual adds, position embedding, mean pooling
func (c *Config) FLOPsByLayer() map[string]int64 {
	C, N, P := int64(c.Dim), int64(c.Tokens()), int64(c.Patches())
	H, D, h := int64(c.Hidden()), int64(c.HeadDim()), int64(c.Heads)
	k := int64(c.DWCKernel)
	pp := int64(c.Patch * c.Patch * c.InChans)
	depth := int64(c.Depth)
	f := map[string]int64{}

	f["conv"] = 2*P*C*pp + P*C
	perBlock := 2*N*C*3*C + N*3*C // qkv
	perBlock += 2*N*C*C + N*C     // proj
	perBlock += 2*N*C*H + N*H     // fc1
	perBlock += 2*N*H*C + N*C     // fc2
	f["linear"] = depth*perBlock + 2*C*int64(c.Classes) + int64(c.Classes)

	var attn int64
	switch c.Attn {
	case AttnSoftmax:
		attn = h * (2*N*N*D + 4*N*N + 2*N*N*D) // QK^T, scale+exp+sum+divide, AV
	case AttnSLA:
		attn = N * C              // K += P
		attn += 2 * N * C         // ReLU(Q), ReLU(K)
		attn += h * 2 * N * D * D // S = K^T V
		attn += h * N * D         // ksum
		attn += h * 2 * N * D     // Q·ksum
		attn += h * 2 * N         // +eps, reciprocal
		attn += h * 2 * N * D * D // Q S
		attn += h * N * D         // scale by z
		attn += N * C             // + DWC(V)
		f["conv"] += depth * h * (2*N*D*k*k + N*D)
	}
	f["attention"] = depth * attn

	var perNorm int64
	switch c.Norm {
	case NormLayerNorm:
		perNorm = 7 * N * C
	case NormRepBN, NormPRepBN, NormBatchNorm:
		perNorm = 2 * N * C
	}
	f["norm"] = (2*depth + 1) * perNorm
	f["activation"] = depth * N * H
	f["add"] = depth*2*N*C + N*C
	if !c.ClsToken {
		f["add"] += N * C // mean pooling
	}
	return f
}
