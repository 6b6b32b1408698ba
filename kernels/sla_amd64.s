#include "textflag.h"

// AVX-512 F versions of the SLA row passes (see sla.go). d channels per
// head go 16 per ZMM; the last partial group uses mask K1, so the full
// groups run unmasked.

// TAILMASK(reg) sets K1 to the low (reg & 15) bits; clobbers CX, DX.
#define TAILMASK(reg) MOVQ reg, CX; ANDQ $15, CX; MOVQ $1, DX; SHLQ CX, DX; DECQ DX; KMOVW DX, K1

// func slaPrepAVX512(qr, kr, ksum, q, k, pos *float32, n, d, ldQKV, ldC int)
TEXT ·slaPrepAVX512(SB), NOSPLIT, $0-80
	MOVQ qr+0(FP), DI
	MOVQ kr+8(FP), R15
	MOVQ ksum+16(FP), R10
	MOVQ q+24(FP), SI
	MOVQ k+32(FP), R11
	MOVQ pos+40(FP), R12
	MOVQ n+48(FP), R14
	MOVQ d+56(FP), R13
	MOVQ ldQKV+64(FP), R8
	SHLQ $2, R8
	MOVQ ldC+72(FP), R9
	SHLQ $2, R9
	TAILMASK(R13)
	VPXORD Z31, Z31, Z31
	MOVQ R13, AX
	SHRQ $4, AX          // full groups
row:
	TESTQ R14, R14
	JEQ  done
	XORQ BX, BX
	MOVQ AX, CX
grp:
	TESTQ CX, CX
	JEQ  tail
	VMAXPS (SI)(BX*1), Z31, Z0
	VMOVUPS Z0, (DI)(BX*1)
	VMOVUPS (R11)(BX*1), Z1
	VADDPS (R12)(BX*1), Z1, Z1
	VMAXPS Z31, Z1, Z1
	VMOVUPS Z1, (R15)(BX*1)
	VADDPS (R10)(BX*1), Z1, Z2
	VMOVUPS Z2, (R10)(BX*1)
	ADDQ $64, BX
	DECQ CX
	JMP  grp
tail:
	KORTESTW K1, K1
	JEQ  next
	VMOVUPS.Z (SI)(BX*1), K1, Z0
	VMAXPS Z31, Z0, Z0
	VMOVUPS Z0, K1, (DI)(BX*1)
	VMOVUPS.Z (R11)(BX*1), K1, Z1
	VMOVUPS.Z (R12)(BX*1), K1, Z3
	VADDPS Z3, Z1, Z1
	VMAXPS Z31, Z1, Z1
	VMOVUPS Z1, K1, (R15)(BX*1)
	VMOVUPS.Z (R10)(BX*1), K1, Z2
	VADDPS Z1, Z2, Z2
	VMOVUPS Z2, K1, (R10)(BX*1)
next:
	ADDQ R8, SI
	ADDQ R8, R11
	ADDQ R9, R12
	ADDQ R9, DI
	ADDQ R9, R15
	DECQ R14
	JMP  row
done:
	VZEROUPPER
	RET

// func slaNormAVX512(o, z, num, qr, ksum *float32, n, d, ldC int)
// z[i] = 1/(qr_i . ksum + 1e-6), o_i = z[i] * num_i.
TEXT ·slaNormAVX512(SB), NOSPLIT, $0-64
	MOVQ o+0(FP), DI
	MOVQ z+8(FP), R15
	MOVQ num+16(FP), SI
	MOVQ qr+24(FP), R11
	MOVQ ksum+32(FP), R10
	MOVQ n+40(FP), R14
	MOVQ d+48(FP), R13
	MOVQ ldC+56(FP), R9
	SHLQ $2, R9
	TAILMASK(R13)
	MOVL $0x358637bd, DX // 1e-6
	VMOVD DX, X30
	MOVL $0x3f800000, DX // 1
	VMOVD DX, X29
	MOVQ R13, AX
	SHRQ $4, AX
row:
	TESTQ R14, R14
	JEQ  done
	// dot = qr_i . ksum
	VPXORD Z0, Z0, Z0
	XORQ BX, BX
	MOVQ AX, CX
dgrp:
	TESTQ CX, CX
	JEQ  dtail
	VMOVUPS (R11)(BX*1), Z1
	VFMADD231PS (R10)(BX*1), Z1, Z0
	ADDQ $64, BX
	DECQ CX
	JMP  dgrp
dtail:
	KORTESTW K1, K1
	JEQ  dsum
	VMOVUPS.Z (R11)(BX*1), K1, Z1
	VMOVUPS.Z (R10)(BX*1), K1, Z2
	VFMADD231PS Z2, Z1, Z0
dsum:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VADDPS X1, X0, X0
	VADDSS X30, X0, X0
	VDIVSS X0, X29, X0
	VMOVSS X0, (R15)
	VBROADCASTSS X0, Z0
	// o_i = z * num_i
	XORQ BX, BX
	MOVQ AX, CX
ogrp:
	TESTQ CX, CX
	JEQ  otail
	VMULPS (SI)(BX*1), Z0, Z1
	VMOVUPS Z1, (DI)(BX*1)
	ADDQ $64, BX
	DECQ CX
	JMP  ogrp
otail:
	KORTESTW K1, K1
	JEQ  next
	VMOVUPS.Z (SI)(BX*1), K1, Z1
	VMULPS Z1, Z0, Z1
	VMOVUPS Z1, K1, (DI)(BX*1)
next:
	ADDQ R9, DI
	ADDQ R9, SI
	ADDQ R9, R11
	ADDQ $4, R15
	DECQ R14
	JMP  row
done:
	VZEROUPPER
	RET
