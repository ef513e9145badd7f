//go:build arm64 && !purego && gc

#include "textflag.h"
#include "neon_arm64.h"

// NEON conversions, 8 values per loop (FCVTL, FCVTN: neon_arm64.h). V31
// collects the lanes whose exponent is all ones (Inf or NaN) for the Go
// fix-up of NaNs.

// SETRET stores whether any lane of V31 is set to the bool at ret.
#define SETRET(ret) \
	VMOV V31.D[0], R4 \
	VMOV V31.D[1], R5 \
	ORR  R4, R5, R4   \
	CMP  $0, R4       \
	CSET NE, R4       \
	MOVB R4, ret

// func halfToFloatNEON(dst []float32, src []byte) bool
TEXT ·halfToFloatNEON(SB), NOSPLIT, $0-49
	MOVD dst_base+0(FP), R0
	MOVD dst_len+8(FP), R1
	MOVD src_base+24(FP), R2
	MOVD $0x7c00, R3
	VDUP R3, V30.H8
	VEOR V31.B16, V31.B16, V31.B16

h2f:
	CBZ    R1, h2fdone
	VLD1.P 16(R2), [V0.H8]
	FCVTL_4S(1, 0)
	FCVTL2_4S(2, 0)
	VST1.P [V1.S4, V2.S4], 32(R0)
	VAND   V30.B16, V0.B16, V3.B16
	VCMEQ  V30.H8, V3.H8, V3.H8
	VORR   V3.B16, V31.B16, V31.B16
	SUB    $8, R1
	B      h2f

h2fdone:
	SETRET(ret+48(FP))
	RET

// func floatToHalfNEON(dst []byte, src []float32) bool
TEXT ·floatToHalfNEON(SB), NOSPLIT, $0-49
	MOVD dst_base+0(FP), R0
	MOVD src_base+24(FP), R2
	MOVD src_len+32(FP), R1
	MOVW $0x7f800000, R3
	VDUP R3, V30.S4
	VEOR V31.B16, V31.B16, V31.B16

f2h:
	CBZ    R1, f2hdone
	VLD1.P 32(R2), [V0.S4, V1.S4]
	FCVTN_4H(2, 0)
	FCVTN2_8H(2, 1)
	VST1.P [V2.H8], 16(R0)
	VAND   V30.B16, V0.B16, V3.B16
	VAND   V30.B16, V1.B16, V4.B16
	VCMEQ  V30.S4, V3.S4, V3.S4
	VCMEQ  V30.S4, V4.S4, V4.S4
	VORR   V3.B16, V31.B16, V31.B16
	VORR   V4.B16, V31.B16, V31.B16
	SUB    $8, R1
	B      f2h

f2hdone:
	SETRET(ret+48(FP))
	RET
