// Package fuse turns a trained model into its deploy form by folding every
// BatchNorm-based norm into the Linear that reads its output (SLAB.md 2).
//
// The algebra. In evaluation a RepBN is a fixed per-channel affine map
//
//	RepBN(x)_j = a_j·x_j + b_j,  a_j = γ_j/s_j + α,  b_j = β_j − γ_j·μ_j/s_j,
//	s_j = sqrt(running_var_j + eps),
//
// and a plain BatchNorm is the same with α = 0; a LinearNorm (PRepBN) is its
// RepBN branch in evaluation whatever its λ. A Linear y = W z + c reading
// z = a ⊙ x + b computes
//
//	y = W (a ⊙ x + b) + c = (W·diag(a)) x + (W b + c),
//
// so W'[o,j] = W[o,j]·a_j and c' = W b + c (a bias is created if the Linear
// had none). In a pre-norm block both norms feed exactly one Linear: norm1
// feeds attn.qkv (softmax attention and SLA alike, since the norm output is
// used only through qkv) and norm2 feeds mlp.fc1. The final norm is followed
// by token selection (class token) or mean pooling, both linear and
// per-channel, so they commute with the affine map and the final norm folds
// into the head: head.W' = head.W·diag(a), head.c' = head.W b + head.c.
// Every fold is exact in real arithmetic; in float32 the folded model
// differs by rounding only (tests check relative error < 1e-4).
//
// A LayerNorm is not an affine map of its input (it divides by the token's
// own standard deviation), so LayerNorm models are refused. The folded sums
// W b are accumulated in float64.
//
// The result is a new model (Cfg.Norm "none") sharing nothing with its
// source; the source stays usable. Folding is for evaluation: a folded model
// can still be trained, but it is a different (norm-free) network.
package fuse
