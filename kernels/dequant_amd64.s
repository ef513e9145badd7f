//go:build amd64 && !purego && gc

#include "textflag.h"

// func dequantQ8AVX2(dst *float32, src *byte, nb int)
// dst[32b+j] = float32(int8 q_j)·d_b for nb Q8_0 blocks (34 bytes each: f16 d, 32 quants).
TEXT ·dequantQ8AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nb+16(FP), CX

dq8loop:
	MOVWLZX      (SI), AX
	VMOVD        AX, X0
	VCVTPH2PS    X0, X0
	VBROADCASTSS X0, Y0
	VPMOVSXBD    2(SI), Y1
	VPMOVSXBD    10(SI), Y2
	VPMOVSXBD    18(SI), Y3
	VPMOVSXBD    26(SI), Y4
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VCVTDQ2PS    Y4, Y4
	VMULPS       Y0, Y1, Y1
	VMULPS       Y0, Y2, Y2
	VMULPS       Y0, Y3, Y3
	VMULPS       Y0, Y4, Y4
	VMOVUPS      Y1, (DI)
	VMOVUPS      Y2, 32(DI)
	VMOVUPS      Y3, 64(DI)
	VMOVUPS      Y4, 96(DI)
	ADDQ         $34, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          dq8loop
	VZEROUPPER
	RET

// func dequantQ4AVX2(dst *float32, src *byte, nb int)
// dst[32b+j] = float32(nibble_j - 8)·d_b for nb Q4_0 blocks (18 bytes each: f16 d, then byte j
// holding element j in its low nibble and element j+16 in its high one).
TEXT ·dequantQ4AVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         nb+16(FP), CX
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, X15
	MOVL         $0x08080808, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, X14

dq4loop:
	MOVWLZX      (SI), AX
	VMOVD        AX, X0
	VCVTPH2PS    X0, X0
	VBROADCASTSS X0, Y0
	VMOVDQU      2(SI), X1
	VPAND        X15, X1, X2
	VPSRLW       $4, X1, X3
	VPAND        X15, X3, X3
	VPSUBB       X14, X2, X2
	VPSUBB       X14, X3, X3
	VPMOVSXBD    X2, Y4
	VPSRLDQ      $8, X2, X2
	VPMOVSXBD    X2, Y5
	VPMOVSXBD    X3, Y6
	VPSRLDQ      $8, X3, X3
	VPMOVSXBD    X3, Y7
	VCVTDQ2PS    Y4, Y4
	VCVTDQ2PS    Y5, Y5
	VCVTDQ2PS    Y6, Y6
	VCVTDQ2PS    Y7, Y7
	VMULPS       Y0, Y4, Y4
	VMULPS       Y0, Y5, Y5
	VMULPS       Y0, Y6, Y6
	VMULPS       Y0, Y7, Y7
	VMOVUPS      Y4, (DI)
	VMOVUPS      Y5, 32(DI)
	VMOVUPS      Y6, 64(DI)
	VMOVUPS      Y7, 96(DI)
	ADDQ         $18, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          dq4loop
	VZEROUPPER
	RET
