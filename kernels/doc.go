// Package kernels holds slab's numeric hot paths on plain slices and shapes:
// GEMM (packing, cache blocking, register-blocked microkernels), elementwise
// ops, reductions, softmax, normalisation kernels, depthwise convolution,
// the fused SLA row passes and the persistent worker pool that parallelises
// them. It knows nothing of layers or models, so every kernel can be
// benchmarked and fuzzed alone.
//
// Written by hand on purpose: no served Go module comes within 10x of this
// machine's float32 throughput (gonum Sgemm ~21 GFLOP/s, GoMLX ~10, against
// a ~400 GFLOP/s 2-core FMA peak), and a cgo BLAS would cost users the
// static, cgo-free binary.
//
// Where to look:
//   - gemm.go: the BLIS-style GEMM entry points; its header comment explains
//     the blocking, which operands are read in place, the threading and the
//     fused epilogues (GemmEpilogue: bias, exact GELU, residual), and maps
//     the files it is split into (gemm_driver.go, gemm_fused.go,
//     gemm_pack.go, gemm_generic.go, gemm_epilogue.go).
//   - gemv.go: the M = 1 product (decode), rows of W read in place eight
//     at a time, and GemvShared (several GEMVs on one x, one region);
//     bandwidth.go: ReadAll, the read-rate probe decode is held against.
//   - quant.go: bf16 and int8 weights (QMatrix, Quantize); gemv_quant.go:
//     GemvQ, decode GEMVs reading them (widening or VDPBF16PS for bf16,
//     int8 x int16 by VPDPWSSD for int8); gemm_quant.go: GemmQ, which
//     dequantizes a strip of W at a time for the float32 GEMM, or with
//     int8 weights on AVX512_VNNI runs gemm_int8.go's VPDPBUSD GEMM. Its
//     accuracy contract: the activations are quantized too, each row per
//     weight group (64 k) to 8 bits, scale max|a|/127, codes rounded to
//     nearest even; each group's integer dot product is exact, so the
//     result is the float32 product of the quantized A and W
//     (SetInt8Gemm(false) keeps A exact). With bf16 weights on
//     AVX512_BF16, GemmQ runs gemm_bf16.go's VDPBF16PS GEMM (twice the
//     float32 FMA's products per instruction). Its accuracy contract: the
//     activations are rounded to bf16 (to nearest even, denormals to
//     zero), ~3 significant digits (relative error <= 2^-9); products of
//     two bf16 are exact and summed in float32 in k order, so the result
//     is the float32 product of bf16(A) and W (SetBF16Gemm(false) keeps A
//     exact). Their
//     assembly (quant_amd64.s) comes from gen/lowprec.go, with the
//     VDPBF16PS and VPDPBUSD peak loops the benchmarks measure against.
//   - gen/main.go generates gemm_amd64.s (AVX-512 12x32 and AVX2 6x16
//     microkernels, GEMV dot kernels, vector GELU, peak and bandwidth
//     probes); cpu*.go picks the path at start-up from CPU features.
//     SLAB_KERNELS=generic|avx2|avx512 forces one (tests run both).
//   - im2col.go, unfold.go: convolution as unfold + GEMM: the patch
//     embedding's non-overlapping patches, and general kernel, stride and
//     padding over channel-major images (with a space-to-depth blocking
//     for strided few-channel stems) or channels-last token maps, with the
//     input-gradient folds written as per-row gathers (no atomics, no
//     thread-dependent sums); peak.go: PeakGFLOPS, the same-process FMA
//     peak for benchmarks outside this package.
//   - pool.go: persistent workers that spin briefly then park, so batch-1
//     latency is not dominated by goroutine start-up (~150 ns fork/join).
//   - norm.go, activation.go, elementwise.go, reduce.go, softmax*.go,
//     dwconv*.go, sla*.go, optim.go, transpose.go: the per-layer kernels,
//     each a pure-Go loop with an AVX-512 twin; vecgen/main.go generates
//     vec_amd64.s (elementwise, affine, column reductions, LayerNorm and
//     PRepBN's fused passes, GELU, AdamW, depthwise-conv rows, SLA's 8x32
//     head tile, the gathered transpose). docs/bench-elementwise.md has
//     the kernels' design and their speed against PyTorch's.
//
// Layout conventions: all matrices are row-major with an explicit leading
// dimension (ld = distance between rows). op(X) is X or its transpose.
// GEMM and the elementwise/norm kernels are tested to give bit-identical
// results on 1 and 2 threads: no reduction order depends on the partition.
// The vector kernels that only combine values (adds, affine maps, column
// sums, BatchNorm statistics, AdamW) also give the pure-Go loops' bits.
package kernels
