// Package nn holds slab's layers, each with an explicit forward and backward
// pass written next to each other (llm.c's habit) rather than a tape: SLAB
// models are a fixed stack of a dozen layer kinds, explicit backward passes
// let every layer reuse its buffers (no allocation in a steady-state step)
// and fuse its elementwise work, and each one is tested alone against
// float64 finite differences and against PyTorch reference tensors.
//
// Conventions every layer follows:
//
//   - A layer is built with its full state-dict prefix, and its parameters
//     carry the official PyTorch names (docs/method.md 4.6), e.g.
//     NewLinear("blocks.0.attn.qkv", 192, 576, true) owns
//     "blocks.0.attn.qkv.weight" [576,192] and "blocks.0.attn.qkv.bias".
//     So checkpoint import is a name lookup, not a translation table.
//   - Forward(x) computes the output into a buffer the layer owns (grown with
//     tensor.Ensure) and keeps what Backward needs. The returned tensor is
//     valid until the next Forward of the same layer.
//   - Backward(dy) ACCUMULATES parameter gradients into Param.G (the training
//     loop zeroes them) and returns dx in a layer-owned buffer. Backward
//     must follow the Forward whose activations it uses.
//   - Layers whose behaviour differs between training and evaluation take a
//     train flag in Forward.
//   - Layouts: tokens are [B, N, C] row-major; a Linear weight is [out, in]
//     (PyTorch's layout), so y = x W^T + b.
package nn
