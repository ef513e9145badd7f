//go:build arm64 && !purego && gc

#include "textflag.h"
#include "neon_arm64.h"

// SiLU, GELU and Softmax's exponentials in NEON, four floats at a time:
// the e^x of expf (vec.go) and of EXP8 (dot_amd64.s), x = n·ln2 + r with
// |r| <= ln2/2 and a polynomial for e^r, then the exponent bits; within
// the activations' tolerance of the float64 functions (TestActivationsWide),
// not bit for bit the Go code.

// EXPCONSTS: V16 lo (ln 2^-125: below it e^x flushes to 0), V17 hi
// (ln MaxFloat32), V18 log2(e), V19 and V20 ln2 in two parts, V21-V26 the
// polynomial (c0..c5), V27 1, V28 126 as an integer, V29 the sign bit.
#define EXPCONSTS \
	MOVW $0xc2ad47ae, R3 \
	VDUP R3, V16.S4      \
	MOVW $0x42b17217, R3 \
	VDUP R3, V17.S4      \
	MOVW $0x3fb8aa3b, R3 \
	VDUP R3, V18.S4      \
	MOVW $0x3f318000, R3 \
	VDUP R3, V19.S4      \
	MOVW $0xb95e8083, R3 \
	VDUP R3, V20.S4      \
	MOVW $0x39506967, R3 \
	VDUP R3, V21.S4      \
	MOVW $0x3ab743ce, R3 \
	VDUP R3, V22.S4      \
	MOVW $0x3c088908, R3 \
	VDUP R3, V23.S4      \
	MOVW $0x3d2aa9c1, R3 \
	VDUP R3, V24.S4      \
	MOVW $0x3e2aaaaa, R3 \
	VDUP R3, V25.S4      \
	MOVW $0x3f000000, R3 \
	VDUP R3, V26.S4      \
	MOVW $0x3f800000, R3 \
	VDUP R3, V27.S4      \
	MOVW $126, R3        \
	VDUP R3, V28.S4      \
	MOVW $0x80000000, R3 \
	VDUP R3, V29.S4

// HORNER(c): V2 = V2·V0 + Vc (V5 scratch).
#define HORNER(c) \
	VMOV  c, V5.B16            \
	VFMLA V2.S4, V0.S4, V5.S4  \
	VMOV  V5.B16, V2.B16

// EXP4 sets V0 to e^V0 in every lane (V1-V5 scratch): below lo 0, NaN stays NaN.
#define EXP4 \
	FCMGT_4S(3, 16, 0)         \
	FMAX_4S(0, 0, 16)          \
	FMIN_4S(0, 0, 17)          \
	FMUL_4S(1, 0, 18)          \
	FCVTAS_4S(1, 1)            \
	SCVTF_4S(4, 1)             \
	VFMLS V4.S4, V19.S4, V0.S4 \
	VFMLS V4.S4, V20.S4, V0.S4 \
	VMOV  V21.B16, V2.B16      \
	HORNER(V22.B16)            \
	HORNER(V23.B16)            \
	HORNER(V24.B16)            \
	HORNER(V25.B16)            \
	HORNER(V26.B16)            \
	HORNER(V27.B16)            \
	HORNER(V27.B16)            \
	VADD  V28.S4, V1.S4, V1.S4 \
	VSHL  $23, V1.S4, V1.S4    \
	FMUL_4S(0, 2, 1)           \
	FADD_4S(0, 0, 0)           \
	BIC_16B(0, 0, 3)

// func siluNEON(x []float32)
// x[i] = x[i] / (1 + e^-x[i]) for len(x) a multiple of 4.
TEXT ·siluNEON(SB), NOSPLIT, $0-24
	MOVD x_base+0(FP), R0
	MOVD x_len+8(FP), R1
	EXPCONSTS
	LSR  $2, R1
	CBZ  R1, siludone

siluloop:
	VLD1   (R0), [V6.S4]
	VEOR   V29.B16, V6.B16, V0.B16
	EXP4
	FADD_4S(0, 0, 27)
	FDIV_4S(0, 6, 0)
	VST1.P [V0.S4], 16(R0)
	SUBS   $1, R1
	BNE    siluloop

siludone:
	RET

// func geluNEON(x []float32)
// x[i] = x[i] / (1 + e^(-2u)), u = sqrt(2/π)(x + 0.044715x³), len(x) a multiple of 4.
TEXT ·geluNEON(SB), NOSPLIT, $0-24
	MOVD x_base+0(FP), R0
	MOVD x_len+8(FP), R1
	EXPCONSTS
	MOVW $0xbd922279, R3 // -2·sqrt(2/π)·0.044715
	VDUP R3, V30.S4
	MOVW $0xbfcc422a, R3 // -2·sqrt(2/π)
	VDUP R3, V31.S4
	LSR  $2, R1
	CBZ  R1, geludone

geluloop:
	VLD1   (R0), [V6.S4]
	FMUL_4S(0, 6, 6)
	VMOV   V31.B16, V7.B16
	VFMLA  V0.S4, V30.S4, V7.S4
	FMUL_4S(0, 6, 7)
	EXP4
	FADD_4S(0, 0, 27)
	FDIV_4S(0, 6, 0)
	VST1.P [V0.S4], 16(R0)
	SUBS   $1, R1
	BNE    geluloop

geludone:
	RET

// func expSumNEON(x []float32, m float32) float64
// x[i] = e^(x[i]-m) for len(x) a multiple of 4; returns Σ x[i] in float64.
TEXT ·expSumNEON(SB), NOSPLIT, $0-40
	MOVD  x_base+0(FP), R0
	MOVD  x_len+8(FP), R1
	EXPCONSTS
	FMOVS m+24(FP), F30
	VDUP  V30.S[0], V30.S4
	VEOR  V8.B16, V8.B16, V8.B16
	VEOR  V9.B16, V9.B16, V9.B16
	LSR   $2, R1
	CBZ   R1, expsumdone

expsumloop:
	VLD1   (R0), [V0.S4]
	FSUB_4S(0, 0, 30)
	EXP4
	VST1.P [V0.S4], 16(R0)
	FCVTL_2D(10, 0)
	FCVTL2_2D(11, 0)
	FADD_2D(8, 8, 10)
	FADD_2D(9, 9, 11)
	SUBS   $1, R1
	BNE    expsumloop

expsumdone:
	FADD_2D(8, 8, 9)
	FADDP_D(8, 8)
	FMOVD  F8, ret+32(FP)
	RET
