//go:build amd64 && !purego && gc

#include "textflag.h"

// F16C conversions, 16 values per loop and a last 8. Y4 collects the NaN
// lanes (VCMPPS predicate 3, unordered) for the Go fix-up.

// func halfToFloatF16C(dst []float32, src []byte) bool
TEXT ·halfToFloatF16C(SB), NOSPLIT, $0-49
	MOVQ   dst_base+0(FP), DI
	MOVQ   dst_len+8(FP), CX
	MOVQ   src_base+24(FP), SI
	VXORPS Y4, Y4, Y4

h2f16:
	CMPQ      CX, $16
	JLT       h2f8
	VCVTPH2PS (SI), Y0
	VCVTPH2PS 16(SI), Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	VCMPPS    $3, Y0, Y0, Y2
	VCMPPS    $3, Y1, Y1, Y3
	VORPS     Y2, Y4, Y4
	VORPS     Y3, Y4, Y4
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JMP       h2f16

h2f8:
	CMPQ      CX, $8
	JLT       h2fdone
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	VCMPPS    $3, Y0, Y0, Y2
	VORPS     Y2, Y4, Y4

h2fdone:
	VMOVMSKPS Y4, AX
	TESTL     AX, AX
	SETNE     ret+48(FP)
	VZEROUPPER
	RET

// func floatToHalfF16C(dst []byte, src []float32) bool
TEXT ·floatToHalfF16C(SB), NOSPLIT, $0-49
	MOVQ   dst_base+0(FP), DI
	MOVQ   src_base+24(FP), SI
	MOVQ   src_len+32(FP), CX
	VXORPS Y4, Y4, Y4

f2h16:
	CMPQ      CX, $16
	JLT       f2h8
	VMOVUPS   (SI), Y0
	VMOVUPS   32(SI), Y1
	VCVTPS2PH $0, Y0, (DI)
	VCVTPS2PH $0, Y1, 16(DI)
	VCMPPS    $3, Y0, Y0, Y2
	VCMPPS    $3, Y1, Y1, Y3
	VORPS     Y2, Y4, Y4
	VORPS     Y3, Y4, Y4
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JMP       f2h16

f2h8:
	CMPQ      CX, $8
	JLT       f2hdone
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, (DI)
	VCMPPS    $3, Y0, Y0, Y2
	VORPS     Y2, Y4, Y4

f2hdone:
	VMOVMSKPS Y4, AX
	TESTL     AX, AX
	SETNE     ret+48(FP)
	VZEROUPPER
	RET
