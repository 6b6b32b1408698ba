#include "textflag.h"

// AVX-512 F row kernels for softmax (see softmax.go). Vector exp: Cody-Waite
// reduction with VRNDSCALEPS, the same degree-6 polynomial as Expf, and
// VSCALEFPS for the 2^n factor; arguments are clamped at -87 (e^-87 is
// below float32's normal range, a row cannot notice it). Row tails use
// mask registers, so any length works without a scalar loop.

// BCAST broadcasts a 32-bit constant into a ZMM register.
#define BCAST(bits, reg) MOVL $bits, AX; VPBROADCASTD AX, reg

// tailMask sets K1 to the low (CX - BX) bits; CX is clobbered.
#define TAILMASK SUBQ BX, CX; MOVQ $1, DX; SHLQ CX, DX; DECQ DX; KMOVW DX, K1

// HMAX / HSUM reduce Z(r) horizontally into every lane of X(r)'s low lane.
#define HREDUCE(op, z, y, x, tz, ty, tx) VEXTRACTF64X4 $1, z, ty; op ty, y, y; VEXTRACTF128 $1, y, tx; op tx, x, x; VPERMILPS $0x4E, x, tx; op tx, x, x; VPERMILPS $0xB1, x, tx; op tx, x, x

// func softmaxRowAVX512(y, x *float32, n int)
TEXT ·softmaxRowAVX512(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), R9

	// Pass 1: row maximum.
	BCAST(0xff800000, Z5)
	VMOVAPS Z5, Z30
	XORQ BX, BX
max_loop:
	LEAQ 16(BX), DX
	CMPQ DX, R9
	JGT  max_tail
	VMAXPS (SI)(BX*4), Z5, Z5
	MOVQ DX, BX
	JMP  max_loop
max_tail:
	CMPQ BX, R9
	JEQ  max_done
	MOVQ R9, CX
	TAILMASK
	VMOVAPS Z30, Z1
	VMOVUPS (SI)(BX*4), K1, Z1
	VMAXPS Z1, Z5, Z5
max_done:
	HREDUCE(VMAXPS, Z5, Y5, X5, Z6, Y6, X6)
	VBROADCASTSS X5, Z0

	// Pass 2: y = exp(x - max), sum.
	BCAST(0xc2ae0000, Z20)
	BCAST(0x3fb8aa3b, Z21)
	BCAST(0x3f318000, Z22)
	BCAST(0xb95e8083, Z23)
	BCAST(0x39506967, Z24)
	BCAST(0x3ab743ce, Z25)
	BCAST(0x3c088908, Z26)
	BCAST(0x3d2aa9c1, Z27)
	BCAST(0x3e2aaaaa, Z28)
	BCAST(0x3f000000, Z29)
	BCAST(0x3f800000, Z31)
	VPXORD Z7, Z7, Z7
	XORQ BX, BX
exp_loop:
	LEAQ 16(BX), DX
	CMPQ DX, R9
	JGT  exp_tail
	VMOVUPS (SI)(BX*4), Z1
	VSUBPS Z0, Z1, Z1
	VMAXPS Z20, Z1, Z1
	VMULPS Z21, Z1, Z2
	VRNDSCALEPS $0, Z2, Z2
	VFNMADD231PS Z22, Z2, Z1
	VFNMADD231PS Z23, Z2, Z1
	VMOVAPS Z24, Z3
	VFMADD213PS Z25, Z1, Z3
	VFMADD213PS Z26, Z1, Z3
	VFMADD213PS Z27, Z1, Z3
	VFMADD213PS Z28, Z1, Z3
	VFMADD213PS Z29, Z1, Z3
	VMULPS Z1, Z1, Z4
	VFMADD213PS Z1, Z4, Z3
	VADDPS Z31, Z3, Z3
	VSCALEFPS Z2, Z3, Z3
	VMOVUPS Z3, (DI)(BX*4)
	VADDPS Z3, Z7, Z7
	MOVQ DX, BX
	JMP  exp_loop
exp_tail:
	CMPQ BX, R9
	JEQ  exp_done
	MOVQ R9, CX
	TAILMASK
	VMOVUPS.Z (SI)(BX*4), K1, Z1
	VSUBPS Z0, Z1, Z1
	VMAXPS Z20, Z1, Z1
	VMULPS Z21, Z1, Z2
	VRNDSCALEPS $0, Z2, Z2
	VFNMADD231PS Z22, Z2, Z1
	VFNMADD231PS Z23, Z2, Z1
	VMOVAPS Z24, Z3
	VFMADD213PS Z25, Z1, Z3
	VFMADD213PS Z26, Z1, Z3
	VFMADD213PS Z27, Z1, Z3
	VFMADD213PS Z28, Z1, Z3
	VFMADD213PS Z29, Z1, Z3
	VMULPS Z1, Z1, Z4
	VFMADD213PS Z1, Z4, Z3
	VADDPS Z31, Z3, Z3
	VSCALEFPS Z2, Z3, Z3
	VMOVUPS Z3, K1, (DI)(BX*4)
	VADDPS Z3, Z7, K1, Z7
exp_done:
	HREDUCE(VADDPS, Z7, Y7, X7, Z6, Y6, X6)
	VBROADCASTSS X7, Z7
	VDIVPS Z7, Z31, Z8

	// Pass 3: y *= 1/sum.
	XORQ BX, BX
scale_loop:
	LEAQ 16(BX), DX
	CMPQ DX, R9
	JGT  scale_tail
	VMULPS (DI)(BX*4), Z8, Z1
	VMOVUPS Z1, (DI)(BX*4)
	MOVQ DX, BX
	JMP  scale_loop
scale_tail:
	CMPQ BX, R9
	JEQ  scale_done
	MOVQ R9, CX
	TAILMASK
	VMOVUPS.Z (DI)(BX*4), K1, Z1
	VMULPS Z1, Z8, Z1
	VMOVUPS Z1, K1, (DI)(BX*4)
scale_done:
	VZEROUPPER
	RET

// func softmaxBwdRowAVX512(dx, y, dy *float32, n int, scale float32)
TEXT ·softmaxBwdRowAVX512(SB), NOSPLIT, $0-36
	MOVQ dx+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ dy+16(FP), R8
	MOVQ n+24(FP), R9
	VBROADCASTSS scale+32(FP), Z9

	// Pass 1: dot = <y, dy>.
	VPXORD Z7, Z7, Z7
	XORQ BX, BX
dot_loop:
	LEAQ 16(BX), DX
	CMPQ DX, R9
	JGT  dot_tail
	VMOVUPS (SI)(BX*4), Z1
	VFMADD231PS (R8)(BX*4), Z1, Z7
	MOVQ DX, BX
	JMP  dot_loop
dot_tail:
	CMPQ BX, R9
	JEQ  dot_done
	MOVQ R9, CX
	TAILMASK
	VMOVUPS.Z (SI)(BX*4), K1, Z1
	VMOVUPS.Z (R8)(BX*4), K1, Z2
	VFMADD231PS Z2, Z1, Z7
dot_done:
	HREDUCE(VADDPS, Z7, Y7, X7, Z6, Y6, X6)
	VBROADCASTSS X7, Z7

	// Pass 2: dx = scale * y * (dy - dot).
	XORQ BX, BX
out_loop:
	LEAQ 16(BX), DX
	CMPQ DX, R9
	JGT  out_tail
	VMOVUPS (R8)(BX*4), Z1
	VSUBPS Z7, Z1, Z1
	VMULPS (SI)(BX*4), Z1, Z1
	VMULPS Z9, Z1, Z1
	VMOVUPS Z1, (DI)(BX*4)
	MOVQ DX, BX
	JMP  out_loop
out_tail:
	CMPQ BX, R9
	JEQ  out_done
	MOVQ R9, CX
	TAILMASK
	VMOVUPS.Z (R8)(BX*4), K1, Z1
	VMOVUPS.Z (SI)(BX*4), K1, Z2
	VSUBPS Z7, Z1, Z1
	VMULPS Z2, Z1, Z1
	VMULPS Z9, Z1, Z1
	VMOVUPS Z1, K1, (DI)(BX*4)
out_done:
	VZEROUPPER
	RET
