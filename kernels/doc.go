// Package kernels holds slab's numeric hot paths on plain slices and shapes:
// GEMM (packing, cache blocking, register-blocked microkernels), elementwise
// ops, reductions, softmax, normalisation kernels, depthwise convolution and
// the persistent worker pool that parallelises them. It knows nothing of
// layers or models, so every kernel can be benchmarked and fuzzed alone.
//
// Written by hand on purpose: no served Go module comes within 10x of this
// machine's float32 throughput (gonum Sgemm ~21 GFLOP/s, GoMLX ~10, against
// a ~400 GFLOP/s 2-core FMA peak), and a cgo BLAS would cost users the
// static, cgo-free binary.
//
// Layout conventions: all matrices are row-major with an explicit leading
// dimension (ld = distance between rows). op(X) is X or its transpose.
package kernels
