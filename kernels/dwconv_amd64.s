#include "textflag.h"

// AVX-512 F runs of the channels-last depthwise conv (see dwconv.go): one
// filter tap applied along a run of pixels. Channels go 16 per ZMM; the
// last partial group uses mask K1.

// func dwTapRunAVX512(o *float32, ldo int, in *float32, ldi int, w *float32, c int, count int)
// o[i*ldo + ch] += w[ch] * in[i*ldi + ch] for i < count, ch < c.
TEXT ·dwTapRunAVX512(SB), NOSPLIT, $0-56
	MOVQ o+0(FP), DI
	MOVQ ldo+8(FP), R8
	SHLQ $2, R8
	MOVQ in+16(FP), SI
	MOVQ ldi+24(FP), R9
	SHLQ $2, R9
	MOVQ w+32(FP), R10
	MOVQ c+40(FP), R11
	MOVQ count+48(FP), R14
	MOVQ R11, R12
	SHRQ $4, R12         // full groups of 16
	MOVQ R11, CX
	ANDQ $15, CX
	MOVQ $1, DX
	SHLQ CX, DX
	DECQ DX
	KMOVW DX, K1         // tail mask (may be empty)
pix:
	TESTQ R14, R14
	JEQ  done
	XORQ BX, BX
	MOVQ R12, R13
grp:
	TESTQ R13, R13
	JEQ  tail
	VMOVUPS (DI)(BX*1), Z0
	VMOVUPS (R10)(BX*1), Z1
	VFMADD231PS (SI)(BX*1), Z1, Z0
	VMOVUPS Z0, (DI)(BX*1)
	ADDQ $64, BX
	DECQ R13
	JMP  grp
tail:
	KORTESTW K1, K1
	JEQ  next
	VMOVUPS.Z (DI)(BX*1), K1, Z0
	VMOVUPS.Z (R10)(BX*1), K1, Z1
	VMOVUPS.Z (SI)(BX*1), K1, Z2
	VFMADD231PS Z2, Z1, Z0
	VMOVUPS Z0, K1, (DI)(BX*1)
next:
	ADDQ R8, DI
	ADDQ R9, SI
	DECQ R14
	JMP  pix
done:
	VZEROUPPER
	RET

// func dwTapDotAVX512(dw *float32, a *float32, lda int, b *float32, ldb int, c int, count int)
// dw[ch] += sum_i a[i*lda + ch] * b[i*ldb + ch] for ch < c.
TEXT ·dwTapDotAVX512(SB), NOSPLIT, $0-56
	MOVQ dw+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	SHLQ $2, R8
	MOVQ b+24(FP), R10
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	MOVQ c+40(FP), R11
	MOVQ count+48(FP), R14
	MOVQ R11, CX
	ANDQ $15, CX
	MOVQ $1, DX
	SHLQ CX, DX
	DECQ DX
	KMOVW DX, K1         // tail mask
	MOVQ $0xffff, DX
	KMOVW DX, K2         // full mask
	XORQ BX, BX          // byte offset of the channel group
grp:
	MOVQ BX, AX
	SHRQ $2, AX          // channels done
	CMPQ AX, R11
	JGE  done
	LEAQ 16(AX), DX
	KMOVW K2, K3
	CMPQ DX, R11
	JLE  full
	KMOVW K1, K3
full:
	VPXORD Z0, Z0, Z0
	VPXORD Z4, Z4, Z4
	LEAQ (SI)(BX*1), R12
	LEAQ (R10)(BX*1), R13
	MOVQ R14, CX
pix2:
	CMPQ CX, $2
	JLT  pix1
	VMOVUPS.Z (R12), K3, Z1
	VMOVUPS.Z (R13), K3, Z2
	VFMADD231PS Z2, Z1, Z0
	VMOVUPS.Z (R12)(R8*1), K3, Z5
	VMOVUPS.Z (R13)(R9*1), K3, Z6
	VFMADD231PS Z6, Z5, Z4
	LEAQ (R12)(R8*2), R12
	LEAQ (R13)(R9*2), R13
	SUBQ $2, CX
	JMP  pix2
pix1:
	TESTQ CX, CX
	JEQ  store
	VMOVUPS.Z (R12), K3, Z1
	VMOVUPS.Z (R13), K3, Z2
	VFMADD231PS Z2, Z1, Z0
store:
	VADDPS Z4, Z0, Z0
	VMOVUPS.Z (DI)(BX*1), K3, Z3
	VADDPS Z3, Z0, Z0
	VMOVUPS Z0, K3, (DI)(BX*1)
	ADDQ $64, BX
	JMP  grp
done:
	VZEROUPPER
	RET
