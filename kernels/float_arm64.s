//go:build arm64 && !purego && gc

#include "textflag.h"
#include "neon_arm64.h"

// Float kernels for attention, F16 weights and Scale. Each does the
// operations of dotNEON or axpyNEON (dot_arm64.s) on each of its rows, in
// the same order, so their bits: four accumulators over 16 floats at a time
// (VFMLA, fused), reduced by SUM4S; out + w·v per element by VFMLA.

// ZERO16 clears the accumulators V16-V31.
#define ZERO16 \
	VEOR V16.B16, V16.B16, V16.B16 \
	VEOR V17.B16, V17.B16, V17.B16 \
	VEOR V18.B16, V18.B16, V18.B16 \
	VEOR V19.B16, V19.B16, V19.B16 \
	VEOR V20.B16, V20.B16, V20.B16 \
	VEOR V21.B16, V21.B16, V21.B16 \
	VEOR V22.B16, V22.B16, V22.B16 \
	VEOR V23.B16, V23.B16, V23.B16 \
	VEOR V24.B16, V24.B16, V24.B16 \
	VEOR V25.B16, V25.B16, V25.B16 \
	VEOR V26.B16, V26.B16, V26.B16 \
	VEOR V27.B16, V27.B16, V27.B16 \
	VEOR V28.B16, V28.B16, V28.B16 \
	VEOR V29.B16, V29.B16, V29.B16 \
	VEOR V30.B16, V30.B16, V30.B16 \
	VEOR V31.B16, V31.B16, V31.B16

// KEYF32 and KEYF16 load the next 16 key (or value) floats at (r) into
// V0-V3 and move r past them; KEYF16 converts 16 halves (FCVTL, exact),
// KEYBF16 16 bfloat16s (a shift).
#define KEYF32(r) VLD1.P 64(r), [V0.S4, V1.S4, V2.S4, V3.S4]

#define KEYF16(r) \
	VLD1.P 32(r), [V8.H8, V9.H8] \
	FCVTL_4S(0, 8)               \
	FCVTL2_4S(1, 8)              \
	FCVTL_4S(2, 9)               \
	FCVTL2_4S(3, 9)

#define KEYBF16(r) \
	VLD1.P 32(r), [V8.H8, V9.H8] \
	SHLL_4S(0, 8)                \
	SHLL2_4S(1, 8)               \
	SHLL_4S(2, 9)                \
	SHLL2_4S(3, 9)

// QMUL(r, a, b, c, d): the next 16 query floats at (r), times V0-V3, into
// the accumulators Va-Vd.
#define QMUL(r, a, b, c, d) \
	VLD1.P 64(r), [V4.S4, V5.S4, V6.S4, V7.S4] \
	VFMLA  V4.S4, V0.S4, a                     \
	VFMLA  V5.S4, V1.S4, b                     \
	VFMLA  V6.S4, V2.S4, c                     \
	VFMLA  V7.S4, V3.S4, d

// HEADOUT(a, b, c, d, fa): one head's score, stored at (R11); R11 moves to
// the next head's (R1 = dstride in bytes).
#define HEADOUT(a, b, c, d, fa) \
	SUM4S(a, b, c, d) \
	FMOVS fa, (R11)   \
	ADD   R1, R11

// QMUL4/QMUL2/QMUL1 take a chunk of the key into the sums of four, two or
// one query heads (at R14-R17), HEADOUT4/2/1 store their scores.
#define QMUL4 \
	QMUL(R14, V16.S4, V17.S4, V18.S4, V19.S4) \
	QMUL(R15, V20.S4, V21.S4, V22.S4, V23.S4) \
	QMUL(R16, V24.S4, V25.S4, V26.S4, V27.S4) \
	QMUL(R17, V28.S4, V29.S4, V30.S4, V31.S4)

#define QMUL2 \
	QMUL(R14, V16.S4, V17.S4, V18.S4, V19.S4) \
	QMUL(R15, V20.S4, V21.S4, V22.S4, V23.S4)

#define QMUL1 QMUL(R14, V16.S4, V17.S4, V18.S4, V19.S4)

#define HEADOUT4 \
	HEADOUT(16, 17, 18, 19, F16) \
	HEADOUT(20, 21, 22, 23, F20) \
	HEADOUT(24, 25, 26, 27, F24) \
	HEADOUT(28, 29, 30, 31, F28)

#define HEADOUT2 \
	HEADOUT(16, 17, 18, 19, F16) \
	HEADOUT(20, 21, 22, 23, F20)

#define HEADOUT1 HEADOUT(16, 17, 18, 19, F16)

// DOTROWS(KEY, MULS, OUTS, last, labels...) is the body of the DotHeadsRows
// kernels for kvh key heads of four (QMUL4, HEADOUT4, R17), two (QMUL2,
// HEADOUT2, R15) or one (QMUL1, HEADOUT1, R14) query heads each (query head h against key head h/group,
// its scores at dst + h·dstride), hd floats (a multiple of 16) to a head,
// against n keys: per key every key head in turn, so the key row is read
// front to back once while the query heads (in L1) each take its 16 floats
// at a time; last is the last head's pointer, past it the next key head's
// first query head.
#define DOTROWS(KEY, MULS, OUTS, last, lkey, lhead, lchunk, ldone) \
	MOVD dst+0(FP), R0         \
	MOVD dstride+8(FP), R1     \
	MOVD q+16(FP), R2          \
	MOVD hd+24(FP), R3         \
	MOVD k+32(FP), R4          \
	MOVD kstride+40(FP), R5    \
	MOVD n+48(FP), R6          \
	MOVD kvh+56(FP), R7        \
	LSL  $2, R3, R8            \
	LSR  $4, R3, R3            \
	CBZ  R6, ldone             \
lkey:                          \
	MOVD R4, R9                \
	MOVD R2, R14               \
	MOVD R0, R11               \
	MOVD R7, R12               \
lhead:                         \
	ADD  R8, R14, R15          \
	ADD  R8, R15, R16          \
	ADD  R8, R16, R17          \
	ZERO16                     \
	MOVD R3, R13               \
lchunk:                        \
	KEY(R9)                    \
	MULS                       \
	SUBS $1, R13               \
	BNE  lchunk                \
	OUTS                       \
	MOVD last, R14             \
	SUBS $1, R12               \
	BNE  lhead                 \
	ADD  R5, R4                \
	ADD  $4, R0                \
	SUBS $1, R6                \
	BNE  lkey                  \
ldone:                         \
	RET

// VMUL(a, b, c, d): V0-V3, the value's 16 floats, times the weight in Vw,
// added into Va-Vd.
#define VMUL(w, a, b, c, d) \
	VFMLA V0.S4, w, a \
	VFMLA V1.S4, w, b \
	VFMLA V2.S4, w, c \
	VFMLA V3.S4, w, d

// The parts of AXPYROWS for four heads, two and one: OUTLOAD sets the heads'
// output pointers (R13-R16) and loads their 16 floats (V16-V31, V16-V23),
// WPTRS the heads' weight pointers (R20-R23), WMUL weights a value (V0-V3)
// into each, OUTSTORE stores them, NEXTGROUP moves R5 to the next group's
// first head (R5 is then one head on; R8 is hd in bytes).
#define OUTLOAD4 \
	MOVD R5, R13               \
	ADD  R8, R13, R14          \
	ADD  R8, R14, R15          \
	ADD  R8, R15, R16          \
	VLD1 (R13), [V16.S4, V17.S4, V18.S4, V19.S4] \
	VLD1 (R14), [V20.S4, V21.S4, V22.S4, V23.S4] \
	VLD1 (R15), [V24.S4, V25.S4, V26.S4, V27.S4] \
	VLD1 (R16), [V28.S4, V29.S4, V30.S4, V31.S4]

#define OUTLOAD2 \
	MOVD R5, R13               \
	ADD  R8, R13, R14          \
	VLD1 (R13), [V16.S4, V17.S4, V18.S4, V19.S4] \
	VLD1 (R14), [V20.S4, V21.S4, V22.S4, V23.S4]

#define OUTLOAD1 \
	MOVD R5, R13               \
	VLD1 (R13), [V16.S4, V17.S4, V18.S4, V19.S4]

#define WPTRS4 \
	MOVD R0, R20               \
	ADD  R1, R20, R21          \
	ADD  R1, R21, R22          \
	ADD  R1, R22, R23

#define WPTRS2 \
	MOVD R0, R20               \
	ADD  R1, R20, R21

#define WPTRS1 MOVD R0, R20

#define WMUL4 \
	VLD1R.P 4(R20), [V4.S4]    \
	VLD1R.P 4(R21), [V5.S4]    \
	VLD1R.P 4(R22), [V6.S4]    \
	VLD1R.P 4(R23), [V7.S4]    \
	VMUL(V4.S4, V16.S4, V17.S4, V18.S4, V19.S4) \
	VMUL(V5.S4, V20.S4, V21.S4, V22.S4, V23.S4) \
	VMUL(V6.S4, V24.S4, V25.S4, V26.S4, V27.S4) \
	VMUL(V7.S4, V28.S4, V29.S4, V30.S4, V31.S4)

#define WMUL2 \
	VLD1R.P 4(R20), [V4.S4]    \
	VLD1R.P 4(R21), [V5.S4]    \
	VMUL(V4.S4, V16.S4, V17.S4, V18.S4, V19.S4) \
	VMUL(V5.S4, V20.S4, V21.S4, V22.S4, V23.S4)

#define WMUL1 \
	VLD1R.P 4(R20), [V4.S4]    \
	VMUL(V4.S4, V16.S4, V17.S4, V18.S4, V19.S4)

#define OUTSTORE4 \
	VST1 [V16.S4, V17.S4, V18.S4, V19.S4], (R13) \
	VST1 [V20.S4, V21.S4, V22.S4, V23.S4], (R14) \
	VST1 [V24.S4, V25.S4, V26.S4, V27.S4], (R15) \
	VST1 [V28.S4, V29.S4, V30.S4, V31.S4], (R16)

#define OUTSTORE2 \
	VST1 [V16.S4, V17.S4, V18.S4, V19.S4], (R13) \
	VST1 [V20.S4, V21.S4, V22.S4, V23.S4], (R14)

#define OUTSTORE1 VST1 [V16.S4, V17.S4, V18.S4, V19.S4], (R13)

#define NEXTGROUP4 \
	ADD R8, R5 \
	ADD R8, R5 \
	ADD R8, R5

#define NEXTGROUP2 ADD R8, R5

#define NEXTGROUP1

// AXPYROWS(VAL, vb, G, OUTLOAD, WPTRS, WMUL, OUTSTORE, NEXTGROUP, labels...)
// is the body of the AxpyHeadsRows kernels for groups of G (four, two, one)
// heads sharing the values, hd floats (a multiple of 16) to a head: per 16
// output floats of a group's heads, every key's 16 values (vb bytes of them)
// are loaded once and weighted into each, in key order.
#define AXPYROWS(VAL, vb, G, OUTLOAD, WPTRS, WMUL, OUTSTORE, NEXTGROUP, lgroup, lchunk, lkey, ldone) \
	MOVD w+0(FP), R0           \
	MOVD wstride+8(FP), R1     \
	MOVD v+16(FP), R2          \
	MOVD vstride+24(FP), R3    \
	MOVD n+32(FP), R4          \
	MOVD out+40(FP), R5        \
	MOVD hd+48(FP), R6         \
	MOVD groups+56(FP), R7     \
	LSL  $2, R6, R8            \
	LSR  $4, R6, R6            \
	MOVD $G, R24               \
	MUL  R1, R24               \
	CBZ  R4, ldone             \
lgroup:                        \
	MOVD R2, R19               \
	MOVD R6, R12               \
lchunk:                        \
	OUTLOAD                    \
	WPTRS                      \
	MOVD R19, R9               \
	MOVD R4, R10               \
lkey:                          \
	MOVD R9, R11               \
	VAL(R11)                   \
	ADD  R3, R9                \
	WMUL                       \
	SUBS $1, R10               \
	BNE  lkey                  \
	OUTSTORE                   \
	ADD  $64, R5               \
	ADD  $vb, R19              \
	SUBS $1, R12               \
	BNE  lchunk                \
	NEXTGROUP                  \
	ADD  R24, R0               \
	SUBS $1, R7                \
	BNE  lgroup                \
ldone:                         \
	RET

// HALFDOT(KEY, labels...) is the body of the half-row dots: dotNEON with
// the row's halves converted as they are read.
#define HALFDOT(KEY, lloop, ldone) \
	MOVD w_base+0(FP), R0          \
	MOVD x_base+24(FP), R1         \
	MOVD x_len+32(FP), R2          \
	MOVD acc+48(FP), R4            \
	VEOR V16.B16, V16.B16, V16.B16 \
	VEOR V17.B16, V17.B16, V17.B16 \
	VEOR V18.B16, V18.B16, V18.B16 \
	VEOR V19.B16, V19.B16, V19.B16 \
	LSR  $4, R2                    \
	CBZ  R2, ldone                 \
lloop:                             \
	KEY(R0)                        \
	QMUL(R1, V16.S4, V17.S4, V18.S4, V19.S4) \
	SUBS $1, R2                    \
	BNE  lloop                     \
ldone:                             \
	FADD_4S(16, 16, 17)            \
	FADD_4S(18, 18, 19)            \
	FADD_4S(16, 16, 18)            \
	VST1 [V16.S4], (R4)            \
	RET

// func dotHeadsRows4NEON(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)
// (strides in bytes)
TEXT ·dotHeadsRows4NEON(SB), NOSPLIT, $0-64
	DOTROWS(KEYF32, QMUL4, HEADOUT4, R17, dr4fkey, dr4fhead, dr4fchunk, dr4fdone)

// func dotHeadsRows4F16NEON(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)
TEXT ·dotHeadsRows4F16NEON(SB), NOSPLIT, $0-64
	DOTROWS(KEYF16, QMUL4, HEADOUT4, R17, dr4hkey, dr4hhead, dr4hchunk, dr4hdone)

// func dotHeadsRows2NEON(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)
TEXT ·dotHeadsRows2NEON(SB), NOSPLIT, $0-64
	DOTROWS(KEYF32, QMUL2, HEADOUT2, R15, dr2fkey, dr2fhead, dr2fchunk, dr2fdone)

// func dotHeadsRows2F16NEON(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)
TEXT ·dotHeadsRows2F16NEON(SB), NOSPLIT, $0-64
	DOTROWS(KEYF16, QMUL2, HEADOUT2, R15, dr2hkey, dr2hhead, dr2hchunk, dr2hdone)

// func dotHeadsRows1NEON(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)
TEXT ·dotHeadsRows1NEON(SB), NOSPLIT, $0-64
	DOTROWS(KEYF32, QMUL1, HEADOUT1, R14, dr1fkey, dr1fhead, dr1fchunk, dr1fdone)

// func dotHeadsRows1F16NEON(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)
TEXT ·dotHeadsRows1F16NEON(SB), NOSPLIT, $0-64
	DOTROWS(KEYF16, QMUL1, HEADOUT1, R14, dr1hkey, dr1hhead, dr1hchunk, dr1hdone)

// func axpyHeadsRows4NEON(w *float32, wstride int, v *float32, vstride, n int, out *float32, hd, groups int)
// (strides in bytes)
TEXT ·axpyHeadsRows4NEON(SB), NOSPLIT, $0-64
	AXPYROWS(KEYF32, 64, 4, OUTLOAD4, WPTRS4, WMUL4, OUTSTORE4, NEXTGROUP4, ar4fgroup, ar4fchunk, ar4fkey, ar4fdone)

// func axpyHeadsRows4F16NEON(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd, groups int)
TEXT ·axpyHeadsRows4F16NEON(SB), NOSPLIT, $0-64
	AXPYROWS(KEYF16, 32, 4, OUTLOAD4, WPTRS4, WMUL4, OUTSTORE4, NEXTGROUP4, ar4hgroup, ar4hchunk, ar4hkey, ar4hdone)

// func axpyHeadsRows2NEON(w *float32, wstride int, v *float32, vstride, n int, out *float32, hd, groups int)
TEXT ·axpyHeadsRows2NEON(SB), NOSPLIT, $0-64
	AXPYROWS(KEYF32, 64, 2, OUTLOAD2, WPTRS2, WMUL2, OUTSTORE2, NEXTGROUP2, ar2fgroup, ar2fchunk, ar2fkey, ar2fdone)

// func axpyHeadsRows2F16NEON(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd, groups int)
TEXT ·axpyHeadsRows2F16NEON(SB), NOSPLIT, $0-64
	AXPYROWS(KEYF16, 32, 2, OUTLOAD2, WPTRS2, WMUL2, OUTSTORE2, NEXTGROUP2, ar2hgroup, ar2hchunk, ar2hkey, ar2hdone)

// func axpyHeadsRows1NEON(w *float32, wstride int, v *float32, vstride, n int, out *float32, hd, groups int)
TEXT ·axpyHeadsRows1NEON(SB), NOSPLIT, $0-64
	AXPYROWS(KEYF32, 64, 1, OUTLOAD1, WPTRS1, WMUL1, OUTSTORE1, NEXTGROUP1, ar1fgroup, ar1fchunk, ar1fkey, ar1fdone)

// func axpyHeadsRows1F16NEON(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd, groups int)
TEXT ·axpyHeadsRows1F16NEON(SB), NOSPLIT, $0-64
	AXPYROWS(KEYF16, 32, 1, OUTLOAD1, WPTRS1, WMUL1, OUTSTORE1, NEXTGROUP1, ar1hgroup, ar1hchunk, ar1hkey, ar1hdone)

// func f16DotNEON(w []byte, x []float32, acc *[4]float32)
// len(x) is a multiple of 16 and len(w) >= 2·len(x): dotNEON of the
// converted row with x, its four lanes left in acc.
TEXT ·f16DotNEON(SB), NOSPLIT, $0-56
	HALFDOT(KEYF16, f16loop, f16done)

// func bf16DotNEON(w []byte, x []float32, acc *[4]float32)
// f16DotNEON for bfloat16 halves.
TEXT ·bf16DotNEON(SB), NOSPLIT, $0-56
	HALFDOT(KEYBF16, bf16loop, bf16done)

// func scaleNEON(x []float32, s float32)
// len(x) is a multiple of 16: x[i] *= s, one rounding each.
TEXT ·scaleNEON(SB), NOSPLIT, $0-28
	MOVD  x_base+0(FP), R0
	MOVD  x_len+8(FP), R1
	FMOVS s+24(FP), F20
	VDUP  V20.S[0], V20.S4
	LSR   $4, R1
	CBZ   R1, scaledone

scaleloop:
	VLD1   (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	FMUL_4S(0, 0, 20)
	FMUL_4S(1, 1, 20)
	FMUL_4S(2, 2, 20)
	FMUL_4S(3, 3, 20)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)
	SUBS   $1, R1
	BNE    scaleloop

scaledone:
	RET
