//go:build arm64 && !purego && gc

#include "textflag.h"

// K-quant row dots (NEON, and SDOT where the CPU has the dot-product
// extension), the bits of dotQ4KGo and dotQ6KGo: per super-block the
// integer sums are exact in int32 lanes and reduced whole (sumi, summ),
// then acc += (d·d_x)·sumi with every product and sum rounded to float32,
// in block order, as the Go code does. Encodings the Go assembler lacks are
// spelled as WORDs (A64 encodings, register numbers as arguments).

#define SMULL_8H(d, n, m)  WORD $(0x0E20C000 | (m)<<16 | (n)<<5 | (d))   // Vd.8H = Vn.8B * Vm.8B
#define SMULL2_8H(d, n, m) WORD $(0x4E20C000 | (m)<<16 | (n)<<5 | (d))   // Vd.8H = Vn.16B[8:] * Vm.16B[8:]
#define SMLAL_8H(d, n, m)  WORD $(0x0E208000 | (m)<<16 | (n)<<5 | (d))   // Vd.8H += Vn.8B * Vm.8B
#define SMLAL2_8H(d, n, m) WORD $(0x4E208000 | (m)<<16 | (n)<<5 | (d))   // Vd.8H += Vn.16B[8:] * Vm.16B[8:]
#define SADDLP_4S(d, n)    WORD $(0x4E602800 | (n)<<5 | (d))             // Vd.4S = pairwise sums of Vn.8H
#define SADALP_4S(d, n)    WORD $(0x4E606800 | (n)<<5 | (d))             // Vd.4S += pairwise sums of Vn.8H
#define SDOT_4S(d, n, m)   WORD $(0x4E809400 | (m)<<16 | (n)<<5 | (d))   // Vd.4S += 4-byte dots of Vn.16B, Vm.16B
#define ADDP_4S(d, n, m)   WORD $(0x4EA0BC00 | (m)<<16 | (n)<<5 | (d))   // Vd.4S = pairwise sums of Vn, then of Vm
#define ADDP_8H(d, n, m)   WORD $(0x4E60BC00 | (m)<<16 | (n)<<5 | (d))   // Vd.8H = pairwise sums of Vn, then of Vm
#define MUL_4S(d, n, m)    WORD $(0x4EA09C00 | (m)<<16 | (n)<<5 | (d))   // Vd.4S = Vn * Vm
#define MLA_4S(d, n, m)    WORD $(0x4EA09400 | (m)<<16 | (n)<<5 | (d))   // Vd.4S += Vn * Vm
#define ADDV_S(d, n)       WORD $(0x4EB1B800 | (n)<<5 | (d))             // Sd = sum of Vn.4S
#define SMULL_4S(d, n, m)  WORD $(0x0E60C000 | (m)<<16 | (n)<<5 | (d))   // Vd.4S = Vn.4H * Vm.4H
#define SMLAL2_4S(d, n, m) WORD $(0x4E608000 | (m)<<16 | (n)<<5 | (d))   // Vd.4S += Vn.8H[4:] * Vm.8H[4:]
#define UXTL_8H(d, n)      WORD $(0x2F08A400 | (n)<<5 | (d))             // Vd.8H = zero-extended Vn.8B
#define UXTL_4S(d, n)      WORD $(0x2F10A400 | (n)<<5 | (d))             // Vd.4S = zero-extended Vn.4H
#define UXTL2_4S(d, n)     WORD $(0x6F10A400 | (n)<<5 | (d))             // Vd.4S = zero-extended Vn.8H[4:]
#define SXTL_8H(d, n)      WORD $(0x0F08A400 | (n)<<5 | (d))             // Vd.8H = sign-extended Vn.8B
#define SXTL_4S(d, n)      WORD $(0x0F10A400 | (n)<<5 | (d))             // Vd.4S = sign-extended Vn.4H
#define EOR_16B(d)         WORD $(0x6E201C00 | (d)<<16 | (d)<<5 | (d))   // Vd = 0
#define SXTL2_4S(d, n)     WORD $(0x4F10A400 | (n)<<5 | (d))             // Vd.4S = sign-extended Vn.8H[4:]

// DOT16 sets V(a) to the four int32 lane sums of Vn·Vm (16 bytes each), so
// that the lanes add up to the exact dot: with SDOT, or with widening
// multiplies into int16 (|q_w·q_x| ≤ 32·128 and two of them fit) for NEON.
#define DOT16DP(a, n, m, t0, t1) \
	EOR_16B(a) \
	SDOT_4S(a, n, m)

#define DOT16(a, n, m, t0, t1) \
	SMULL_8H(t0, n, m)  \
	SMULL2_8H(t1, n, m) \
	SADDLP_4S(a, t0)    \
	SADALP_4S(a, t1)

// DOT32 sets V(a) to the lane sums of Vn1·Vm1 + Vn2·Vm2 (nibbles times int8:
// two products fit int16 for NEON).
#define DOT32DP(a, n1, m1, n2, m2, t0, t1) \
	EOR_16B(a) \
	SDOT_4S(a, n1, m1)                \
	SDOT_4S(a, n2, m2)

#define DOT32(a, n1, m1, n2, m2, t0, t1) \
	SMULL_8H(t0, n1, m1)  \
	SMULL2_8H(t1, n1, m1) \
	SMLAL_8H(t0, n2, m2)  \
	SMLAL2_8H(t1, n2, m2) \
	SADDLP_4S(a, t0)      \
	SADALP_4S(a, t1)

// Q4_K. Registers: R0 the weights, R1 the activations (Q8_K), R2 blocks
// left, R3 the f16 table; R19-R21 the masks of get_scale_min_k4; F20 acc,
// F21 accm. Per block: V16 the eight scales, V17 the eight mins (bytes);
// V22-V29 sub-block j's lanes; V30 the 0x0f bytes.

// Q4KSUB does sub-blocks 2k and 2k+1 (32 nibble bytes at R0, 64 quants at
// R1) into V(a) and V(a+1).
#define Q4KSUB(DOT, a) \
	VLD1.P 32(R0), [V0.B16, V1.B16]                 \
	VLD1.P 64(R1), [V6.B16, V7.B16, V8.B16, V9.B16] \
	VAND   V30.B16, V0.B16, V2.B16                  \
	VAND   V30.B16, V1.B16, V3.B16                  \
	VUSHR  $4, V0.B16, V4.B16                       \
	VUSHR  $4, V1.B16, V5.B16                       \
	DOT(a, 2, 6, 3, 7, 10, 11)                      \
	DOT((a+1), 4, 8, 5, 9, 10, 11)

#define Q4KBLOCK(DOT) \
	MOVHU  (R0), R5                  \
	MOVWU  (R3)(R5<<2), R5           \
	FMOVS  R5, F13 \
	MOVHU  2(R0), R5                 \
	MOVWU  (R3)(R5<<2), R5           \
	FMOVS  R5, F14 \
	FMOVS  (R1), F12 \
	MOVWU  4(R0), R7                 \
	MOVWU  8(R0), R8                 \
	MOVWU  12(R0), R9                \
	LSRW   $4, R9, R10               \
	ANDW   R20, R10, R10             \
	LSRW   $6, R8, R11               \
	ANDW   R21, R11, R11             \
	ORRW   R11<<4, R10, R10 \
	ANDW   R19, R8, R12 \
	ANDW   R20, R9, R9               \
	LSRW   $6, R7, R11               \
	ANDW   R21, R11, R11             \
	ORRW   R11<<4, R9, R9 \
	ANDW   R19, R7, R7 \
	VMOV   R7, V16.S[0]              \
	VMOV   R9, V16.S[1]              \
	VMOV   R12, V17.S[0]             \
	VMOV   R10, V17.S[1]             \
	ADD    $16, R0                   \
	ADD    $260, R1, R13             \
	VLD1   (R13), [V18.H8, V19.H8]   \
	ADDP_8H(18, 18, 19) \
	UXTL_8H(17, 17)                  \
	SMULL_4S(19, 17, 18)             \
	SMLAL2_4S(19, 17, 18)            \
	ADDV_S(19, 19) \
	ADD    $4, R1                    \
	Q4KSUB(DOT, 22)                  \
	Q4KSUB(DOT, 24)                  \
	Q4KSUB(DOT, 26)                  \
	Q4KSUB(DOT, 28)                  \
	ADD    $32, R1 \
	ADDP_4S(22, 22, 23)              \
	ADDP_4S(24, 24, 25)              \
	ADDP_4S(22, 22, 24) \
	ADDP_4S(26, 26, 27)              \
	ADDP_4S(28, 28, 29)              \
	ADDP_4S(26, 26, 28) \
	UXTL_8H(16, 16)                  \
	UXTL_4S(24, 16)                  \
	UXTL2_4S(25, 16)                 \
	MUL_4S(22, 22, 24)               \
	MLA_4S(22, 26, 25)               \
	ADDV_S(22, 22) \
	VMOV   V22.S[0], R5              \
	SCVTFWS R5, F22                  \
	VMOV   V19.S[0], R5              \
	SCVTFWS R5, F23                  \
	FMULS  F12, F13, F13             \
	FMULS  F22, F13, F13             \
	FADDS  F13, F20, F20             \
	FMULS  F12, F14, F14             \
	FMULS  F23, F14, F14             \
	FADDS  F14, F21, F21

#define Q4KPROLOGUE \
	MOVD w_base+0(FP), R0      \
	MOVD x_base+24(FP), R1     \
	MOVD nb+48(FP), R2         \
	MOVD tab+56(FP), R3        \
	MOVW $0x3f3f3f3f, R19      \
	MOVW $0x0f0f0f0f, R20      \
	MOVW $0x03030303, R21      \
	VMOVI $15, V30.B16         \
	VEOR V20.B16, V20.B16, V20.B16 \
	VEOR V21.B16, V21.B16, V21.B16

// func q4KDotNEON(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q4KDotNEON(SB), NOSPLIT, $0-68
	Q4KPROLOGUE
	CBZ R2, q4kndone

q4knloop:
	Q4KBLOCK(DOT32)
	SUBS $1, R2
	BNE  q4knloop

q4kndone:
	FSUBS F21, F20, F20
	FMOVS F20, ret+64(FP)
	RET

// func q4KDotSDOT(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q4KDotSDOT(SB), NOSPLIT, $0-68
	Q4KPROLOGUE
	CBZ R2, q4ksdone

q4ksloop:
	Q4KBLOCK(DOT32DP)
	SUBS $1, R2
	BNE  q4ksloop

q4ksdone:
	FSUBS F21, F20, F20
	FMOVS F20, ret+64(FP)
	RET

// Q6_K. Registers: R0 the weights (ql), R7 qh, R8 the scales, R1 the
// activations, R2 blocks left, R3 the f16 table, R9 and R10 the bits of d
// and d_x, R11 those of acc (every vector register is taken). Per half of a
// block (128 values): V0-V3 ql, V4-V5 qh, V6-V13 the activations' quants,
// V14-V15 a group's 16 quants being made, V16-V23 group j's lanes (j = 2k+g:
// value set k of ql/qh, l in [16g, 16g+16), the scale sc[j]), V24-V25 the
// scales, V26-V27 products, V28 sumi's lanes; V29 0x0f, V30 0x30, V31 0x20.

// Q6KQ0..Q6KQ3 make V14 = value set k's 16 quants minus 32: the low or
// high nibbles of ql byte a (sets 0, 2) or b (1, 3), or'd with the set's two
// bits of qh byte h (bits 2k, 2k+1) moved to bits 4-5. V15 is clobbered.
#define Q6KQ0(a, b, h) \
	VAND V29.B16, a, V14.B16  \
	VSHL $4, h, V15.B16       \
	Q6KMERGE

#define Q6KQ1(a, b, h) \
	VAND V29.B16, b, V14.B16  \
	VSHL $2, h, V15.B16       \
	Q6KMERGE

#define Q6KQ2(a, b, h) \
	VUSHR $4, a, V14.B16      \
	VORR  h, h, V15.B16       \
	Q6KMERGE

#define Q6KQ3(a, b, h) \
	VUSHR $4, b, V14.B16      \
	VUSHR $2, h, V15.B16      \
	Q6KMERGE

#define Q6KMERGE \
	VAND V30.B16, V15.B16, V15.B16 \
	VORR V15.B16, V14.B16, V14.B16 \
	VSUB V31.B16, V14.B16, V14.B16

// Q6KGROUPS does l in [16g, 16g+16) of this half: ql bytes l and l+32 in
// a and b, qh byte l in h, the four value sets against the activations'
// quants Vx0..Vx3 into V(16+g), V(18+g), V(20+g), V(22+g).
#define Q6KGROUPS(DOT, g, a, b, h, x0, x1, x2, x3) \
	Q6KQ0(a, b, h)              \
	DOT((16+g), 14, x0, 26, 27) \
	Q6KQ1(a, b, h)              \
	DOT((18+g), 14, x1, 26, 27) \
	Q6KQ2(a, b, h)              \
	DOT((20+g), 14, x2, 26, 27) \
	Q6KQ3(a, b, h)              \
	DOT((22+g), 14, x3, 26, 27)

#define Q6KHALF(DOT) \
	VLD1.P 64(R0), [V0.B16, V1.B16, V2.B16, V3.B16]      \
	VLD1.P 32(R7), [V4.B16, V5.B16]                      \
	VLD1.P 64(R1), [V6.B16, V7.B16, V8.B16, V9.B16]      \
	VLD1.P 64(R1), [V10.B16, V11.B16, V12.B16, V13.B16]  \
	Q6KGROUPS(DOT, 0, V0.B16, V2.B16, V4.B16, 6, 8, 10, 12)          \
	Q6KGROUPS(DOT, 1, V1.B16, V3.B16, V5.B16, 7, 9, 11, 13)          \
	ADDP_4S(16, 16, 17)                                  \
	ADDP_4S(18, 18, 19)                                  \
	ADDP_4S(16, 16, 18)                                  \
	ADDP_4S(20, 20, 21)                                  \
	ADDP_4S(22, 22, 23)                                  \
	ADDP_4S(20, 20, 22)                                  \
	VLD1.P 8(R8), [V24.B8]                               \
	SXTL_8H(24, 24)                                      \
	SXTL_4S(25, 24)                                      \
	SXTL2_4S(24, 24)                                     \
	MLA_4S(28, 16, 25)                                   \
	MLA_4S(28, 20, 24)

#define Q6KBLOCK(DOT) \
	MOVHU  208(R0), R9               \
	MOVWU  (R3)(R9<<2), R9           \
	MOVWU  (R1), R10                 \
	ADD    $4, R1                    \
	ADD    $128, R0, R7              \
	ADD    $192, R0, R8              \
	VEOR   V28.B16, V28.B16, V28.B16 \
	Q6KHALF(DOT)                     \
	Q6KHALF(DOT)                     \
	ADD    $82, R0                   \
	ADD    $32, R1                   \
	ADDV_S(28, 28)                   \
	VMOV   V28.S[0], R5              \
	SCVTFWS R5, F28                  \
	FMOVS  R9, F13                   \
	FMOVS  R10, F12                  \
	FMULS  F12, F13, F13             \
	FMULS  F28, F13, F13             \
	FMOVS  R11, F20                  \
	FADDS  F13, F20, F20             \
	FMOVS  F20, R11

#define Q6KPROLOGUE \
	MOVD w_base+0(FP), R0          \
	MOVD x_base+24(FP), R1         \
	MOVD nb+48(FP), R2             \
	MOVD tab+56(FP), R3            \
	VMOVI $15, V29.B16             \
	VMOVI $48, V30.B16             \
	VMOVI $32, V31.B16             \
	MOVD $0, R11

// func q6KDotNEON(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q6KDotNEON(SB), NOSPLIT, $0-68
	Q6KPROLOGUE
	CBZ R2, q6kndone

q6knloop:
	Q6KBLOCK(DOT16)
	SUBS $1, R2
	BNE  q6knloop

q6kndone:
	MOVW R11, ret+64(FP)
	RET

// func q6KDotSDOT(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q6KDotSDOT(SB), NOSPLIT, $0-68
	Q6KPROLOGUE
	CBZ R2, q6ksdone

q6ksloop:
	Q6KBLOCK(DOT16DP)
	SUBS $1, R2
	BNE  q6ksloop

q6ksdone:
	MOVW R11, ret+64(FP)
	RET
