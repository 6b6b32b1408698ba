// Package fuse turns a trained model into its deploy form by folding every
// BatchNorm-based norm into a neighbouring linear layer (docs/method.md 2).
// It knows the algebra, not the families: each model declares its fold
// sites (models.Model.FoldSites) and Fold applies them in place.
//
// The algebra. In evaluation a RepBN is a fixed per-channel affine map
//
//	RepBN(x)_j = a_j·x_j + b_j,  a_j = γ_j/s_j + α,  b_j = β_j − γ_j·μ_j/s_j,
//	s_j = sqrt(running_var_j + eps),
//
// a plain BatchNorm is the same with α = 0, and a LinearNorm (PRepBN) is its
// RepBN branch in evaluation whatever its λ.
//
// Into the layers that read the norm: a Linear y = W z + c reading
// z = a ⊙ x + b computes y = (W·diag(a)) x + (W b + c), so
// W'[o,j] = W[o,j]·a_j and c' = W b + c (a bias is created if the Linear
// had none). Several readers (LLaMA's q, k and v) each take the fold. Token
// selection and mean pooling between a final norm and the head are linear
// and per-channel, so they commute with the map and the final norm folds
// into the head.
//
// Into the layer that produces the norm's input (a patch-embedding or merge
// convolution, weight [out, ...], bias [out]) followed by the norm:
// V'[o,...] = a_o·V[o,...] and d'_o = a_o·d_o + b_o. This is the exact
// form: the official Swin merge_bn leaves out the α·d_o term.
//
// Every fold is exact in real arithmetic; in float32 the folded model
// differs by rounding only. Sums W b are accumulated in float64. A
// LayerNorm or RMSNorm divides by each token's own statistic and is not an
// affine map: models with those norms are refused, naming the norm.
package fuse
