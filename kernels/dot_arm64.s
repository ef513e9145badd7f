//go:build arm64 && !purego && gc

#include "textflag.h"
#include "neon_arm64.h"

// NEON kernels (and SDOT ones for CPUs with the dot-product extension).
// Per block the int8 products are summed exactly into four int32 lanes
// (SMULL/SMLAL into int16: two products of |q| <= 128*127 fit), converted to
// float32 and accumulated as acc += f16(d_w)*f16(d_x)*lanes; the four lanes
// are stored to acc and summed in Go. Scales go through the f16 table tab.
// The Go assembler lacks the widening, pairwise and dot-product
// instructions, so they are encoded by hand (A64 encodings; register
// numbers as arguments).

#define SMULL_8H(d, n, m)  WORD $(0x0E20C000 | (m)<<16 | (n)<<5 | (d))
#define SMULL2_8H(d, n, m) WORD $(0x4E20C000 | (m)<<16 | (n)<<5 | (d))
#define SMLAL_8H(d, n, m)  WORD $(0x0E208000 | (m)<<16 | (n)<<5 | (d))
#define SMLAL2_8H(d, n, m) WORD $(0x4E208000 | (m)<<16 | (n)<<5 | (d))
#define SADDLP_4S(d, n)    WORD $(0x4E602800 | (n)<<5 | (d))
#define SADALP_4S(d, n)    WORD $(0x4E606800 | (n)<<5 | (d))
#define SDOT_4S(d, n, m)   WORD $(0x4E809400 | (m)<<16 | (n)<<5 | (d))
#define FMUL_ELEM(d, n, m, i) WORD $(0x4F809000 | ((i)&1)<<21 | (m)<<16 | ((i)>>1)<<11 | (n)<<5 | (d)) // Vd.4S = Vn * Vm.S[i]
#define FMLA_ELEM(d, n, m, i) WORD $(0x4F801000 | ((i)&1)<<21 | (m)<<16 | ((i)>>1)<<11 | (n)<<5 | (d)) // Vd.4S += Vn * Vm.S[i]

// WSCALE loads f16(d_w) at (R0) into F16 and moves R0 to the quants.
#define WSCALE \
	MOVHU (R0), R5          \
	MOVWU (R3)(R5<<2), R5   \
	FMOVS R5, F16           \
	ADD   $2, R0

// XSCALE sets V18 to F16 * f16(d_x at (xr)), in all lanes, and moves xr to the quants.
#define XSCALE(xr) \
	MOVHU (xr), R6          \
	MOVWU (R3)(R6<<2), R6   \
	FMOVS R6, F17           \
	FMULS F16, F17, F17     \
	VDUP  V17.S[0], V18.S4  \
	ADD   $2, xr

// Q4UNPACK turns the 16 nibble bytes at (R0) into the signed quants:
// V0 elements 0..15, V1 elements 16..31. V30 holds 0x0f, V29 0x08 bytes.
#define Q4UNPACK \
	VLD1.P 16(R0), [V0.B16]           \
	VUSHR  $4, V0.B16, V1.B16         \
	VAND   V30.B16, V0.B16, V0.B16    \
	VSUB   V29.B16, V0.B16, V0.B16    \
	VSUB   V29.B16, V1.B16, V1.B16

// IDOT sets V6 to the four int32 lane sums of V0·V2 + V1·V3 (NEON).
#define IDOT \
	SMULL_8H(4, 0, 2)  \
	SMULL2_8H(5, 0, 2) \
	SMLAL_8H(4, 1, 3)  \
	SMLAL2_8H(5, 1, 3) \
	SADDLP_4S(6, 4)    \
	SADALP_4S(6, 5)

// IDOTDP is IDOT with SDOT.
#define IDOTDP \
	VEOR V6.B16, V6.B16, V6.B16 \
	SDOT_4S(6, 0, 2)            \
	SDOT_4S(6, 1, 3)

// ACC adds V18 * float(V6) to acc.
#define ACC(acc) \
	SCVTF_4S(6, 6) \
	VFMLA V18.S4, V6.S4, acc

#define CONSTS \
	VMOVI $15, V30.B16 \
	VMOVI $8, V29.B16

#define Q8LOAD VLD1.P 32(R0), [V0.B16, V1.B16]

// Four-row decode kernels: rows at R0, R7, R9, R10 against one token at R1.
// The token's scale (F19) and quants (V2, V3) are loaded once per block.

// RSCALE sets F16 to f16(d_w at (wr)) * F19; wr moves to the quants.
#define RSCALE(wr) \
	MOVHU.P 2(wr), R5       \
	MOVWU   (R3)(R5<<2), R5 \
	FMOVS   R5, F16         \
	FMULS   F19, F16, F16

#define Q4LOADR(wr) \
	VLD1.P 16(wr), [V0.B16]           \
	VUSHR  $4, V0.B16, V1.B16         \
	VAND   V30.B16, V0.B16, V0.B16    \
	VSUB   V29.B16, V0.B16, V0.B16    \
	VSUB   V29.B16, V1.B16, V1.B16

#define Q8LOADR(wr) VLD1.P 32(wr), [V0.B16, V1.B16]

// ROWR accumulates the row at wr against the token into V(acc): the lanes
// times the scale as ACC does (the same fused multiply-add of each lane),
// by element so the scale needs no copy to every lane.
#define ROWR(wr, LOADR, IDOTM, acc) \
	RSCALE(wr)          \
	LOADR(wr)           \
	IDOTM               \
	SCVTF_4S(6, 6)      \
	FMLA_ELEM(acc, 6, 16, 0)

#define R4PROLOGUE \
	MOVD w0_base+0(FP), R0      \
	MOVD w1_base+24(FP), R7     \
	MOVD w2_base+48(FP), R9     \
	MOVD w3_base+72(FP), R10    \
	MOVD x_base+96(FP), R1      \
	MOVD nb+120(FP), R2         \
	MOVD tab+128(FP), R3        \
	MOVD acc+136(FP), R4        \
	CONSTS                      \
	VEOR V7.B16, V7.B16, V7.B16 \
	VEOR V8.B16, V8.B16, V8.B16 \
	VEOR V9.B16, V9.B16, V9.B16 \
	VEOR V10.B16, V10.B16, V10.B16

// R4TOKEN loads the token's block: F19 = f16(d_x), V2/V3 = quants.
#define R4TOKEN \
	MOVHU  (R1), R6                  \
	MOVWU  (R3)(R6<<2), R6           \
	FMOVS  R6, F19                   \
	ADD    $2, R1                    \
	VLD1.P 32(R1), [V2.B16, V3.B16]

// X4BODY does one weight block (already in V0, V1; d_w in F16) against the
// four tokens at R1, R7, R9, R10, accumulating into V7, V8, V9, V10.
#define X4BODY(IDOTM) \
	XSCALE(R1)                       \
	VLD1.P 32(R1), [V2.B16, V3.B16]  \
	IDOTM                            \
	ACC(V7.S4)                       \
	XSCALE(R7)                       \
	VLD1.P 32(R7), [V2.B16, V3.B16]  \
	IDOTM                            \
	ACC(V8.S4)                       \
	XSCALE(R9)                       \
	VLD1.P 32(R9), [V2.B16, V3.B16]  \
	IDOTM                            \
	ACC(V9.S4)                       \
	XSCALE(R10)                      \
	VLD1.P 32(R10), [V2.B16, V3.B16] \
	IDOTM                            \
	ACC(V10.S4)

#define X4PROLOGUE \
	MOVD w_base+0(FP), R0       \
	MOVD x_base+24(FP), R1      \
	MOVD stride+48(FP), R11     \
	MOVD nb+56(FP), R2          \
	MOVD tab+64(FP), R3         \
	MOVD acc+72(FP), R4         \
	ADD  R11, R1, R7            \
	ADD  R11, R7, R9            \
	ADD  R11, R9, R10           \
	CONSTS                      \
	VEOR V7.B16, V7.B16, V7.B16 \
	VEOR V8.B16, V8.B16, V8.B16 \
	VEOR V9.B16, V9.B16, V9.B16 \
	VEOR V10.B16, V10.B16, V10.B16

#define X4EPILOGUE \
	VST1.P [V7.S4, V8.S4], 32(R4) \
	VST1   [V9.S4, V10.S4], (R4)  \
	RET

// Eight-row decode kernels: row k at R0 + k·rb (pointers R0, R7-R10,
// R12-R14), the token at R1; each row's block is ROWR of the four-row
// kernels, so a row's lanes are those of the one-row kernel. Meanwhile R19
// runs over the weights to prefetch into L2, as many bytes per block step
// as the eight rows read (8·18 for Q4_0, 8·34 for Q8_0): the lines the
// next rows need arrive while these compute. A prefetch never faults, so
// reading a few bytes past pf is harmless.

#define R8PROLOGUE \
	MOVD w_base+0(FP), R0           \
	MOVD rb+24(FP), R11             \
	MOVD x_base+32(FP), R1          \
	MOVD nb+56(FP), R2              \
	MOVD tab+64(FP), R3             \
	MOVD pf+72(FP), R19             \
	MOVD acc+80(FP), R4             \
	ADD  R11, R0, R7                \
	ADD  R11, R7, R8                \
	ADD  R11, R8, R9                \
	ADD  R11, R9, R10               \
	ADD  R11, R10, R12              \
	ADD  R11, R12, R13              \
	ADD  R11, R13, R14              \
	CONSTS                          \
	VEOR V20.B16, V20.B16, V20.B16  \
	VEOR V21.B16, V21.B16, V21.B16  \
	VEOR V22.B16, V22.B16, V22.B16  \
	VEOR V23.B16, V23.B16, V23.B16  \
	VEOR V24.B16, V24.B16, V24.B16  \
	VEOR V25.B16, V25.B16, V25.B16  \
	VEOR V26.B16, V26.B16, V26.B16  \
	VEOR V27.B16, V27.B16, V27.B16

#define PRFM144 \
	PRFM (R19), PLDL2KEEP    \
	PRFM 64(R19), PLDL2KEEP  \
	PRFM 128(R19), PLDL2KEEP \
	ADD  $144, R19

#define PRFM272 \
	PRFM (R19), PLDL2KEEP    \
	PRFM 64(R19), PLDL2KEEP  \
	PRFM 128(R19), PLDL2KEEP \
	PRFM 192(R19), PLDL2KEEP \
	PRFM 256(R19), PLDL2KEEP \
	ADD  $272, R19

// R8BODY is one block of the eight rows against the token.
#define R8BODY(LOADR, IDOTM) \
	R4TOKEN                          \
	ROWR(R0, LOADR, IDOTM, 20)   \
	ROWR(R7, LOADR, IDOTM, 21)   \
	ROWR(R8, LOADR, IDOTM, 22)   \
	ROWR(R9, LOADR, IDOTM, 23)   \
	ROWR(R10, LOADR, IDOTM, 24)  \
	ROWR(R12, LOADR, IDOTM, 25)  \
	ROWR(R13, LOADR, IDOTM, 26)  \
	ROWR(R14, LOADR, IDOTM, 27)

// R8STORE stores row k's four lanes to acc[4k:4k+4], for Go to sum.
#define R8STORE \
	VST1.P [V20.S4, V21.S4, V22.S4, V23.S4], 64(R4) \
	VST1   [V24.S4, V25.S4, V26.S4, V27.S4], (R4)   \
	RET

// 4×4 prefill tiles: rows at R0, R12, R13, R14 (w + k·rb) against tokens
// at R1, R7, R9, R10 (x + t·stride). Each row is loaded and each token's
// scale looked up once per block instead of four times; every (row, token)
// keeps four int32 lanes per block as the one-row kernel does, and its
// accumulator V(16+4k+t) gets them as the one-row kernel's does (the scale
// d_w·d_x, then one fused multiply-add per lane), so the tile gives the
// one-row kernel's bits. V0, V1: the row's quants; V2, V3: Q4_0's 0x0f and
// 0x08 bytes; V4, V5: products; V6: the row's scales d_w·d_x; V7: the
// tokens' d_x; V8-V15: the tokens' quants.


// TXSCALE puts f16(d_x at (xr)) in lane i of V7; xr moves to the quants.
#define TXSCALE(xr, i) \
	MOVHU (xr), R5          \
	MOVWU (R3)(R5<<2), R5   \
	VMOV  R5, V7.S[i]       \
	ADD   $2, xr

// TTOKENS loads the four tokens' block: d_x into V7, quants into V8-V15.
#define TTOKENS \
	TXSCALE(R1, 0)                    \
	TXSCALE(R7, 1)                    \
	TXSCALE(R9, 2)                    \
	TXSCALE(R10, 3)                   \
	VLD1.P 32(R1), [V8.B16, V9.B16]   \
	VLD1.P 32(R7), [V10.B16, V11.B16] \
	VLD1.P 32(R9), [V12.B16, V13.B16] \
	VLD1.P 32(R10), [V14.B16, V15.B16]

// TWSCALE sets V6 to f16(d_w at (wr)) times V7; wr moves to the quants.
#define TWSCALE(wr) \
	MOVHU (wr), R5          \
	MOVWU (R3)(R5<<2), R5   \
	FMOVS R5, F6            \
	FMUL_ELEM(6, 7, 6, 0)   \
	ADD   $2, wr

#define TQ4LOAD(wr) \
	VLD1.P 16(wr), [V0.B16]         \
	VUSHR  $4, V0.B16, V1.B16       \
	VAND   V2.B16, V0.B16, V0.B16   \
	VSUB   V3.B16, V0.B16, V0.B16   \
	VSUB   V3.B16, V1.B16, V1.B16

#define TQ8LOAD(wr) VLD1.P 32(wr), [V0.B16, V1.B16]

// TIDOT sets V4 to the four int32 lane sums of V0·Va + V1·Vb (NEON), as IDOT.
#define TIDOT(a, b) \
	SMULL_8H(4, 0, a)  \
	SMULL2_8H(5, 0, a) \
	SMLAL_8H(4, 1, b)  \
	SMLAL2_8H(5, 1, b) \
	SADDLP_4S(4, 4)    \
	SADALP_4S(4, 5)

// TIDOTDP is TIDOT with SDOT.
#define TIDOTDP(a, b) \
	VEOR V4.B16, V4.B16, V4.B16 \
	SDOT_4S(4, 0, a)            \
	SDOT_4S(4, 1, b)

// TPAIR accumulates row·token t into V(acc): lanes times the row's scale for t.
#define TPAIR(IDOTM, a, b, t, acc) \
	IDOTM(a, b)       \
	SCVTF_4S(4, 4)    \
	FMLA_ELEM(acc, 4, 6, t)

// TROW does row wr (accumulators V(acc)..V(acc+3)) against the four tokens.
#define TROW(wr, LOAD, IDOTM, acc) \
	TWSCALE(wr)                        \
	LOAD(wr)                           \
	TPAIR(IDOTM, 8, 9, 0, acc)         \
	TPAIR(IDOTM, 10, 11, 1, (acc+1))   \
	TPAIR(IDOTM, 12, 13, 2, (acc+2))   \
	TPAIR(IDOTM, 14, 15, 3, (acc+3))

#define TBODY(LOAD, IDOTM) \
	TTOKENS                     \
	TROW(R0, LOAD, IDOTM, 16)   \
	TROW(R12, LOAD, IDOTM, 20)  \
	TROW(R13, LOAD, IDOTM, 24)  \
	TROW(R14, LOAD, IDOTM, 28)

#define T44PROLOGUE \
	MOVD w_base+0(FP), R0           \
	MOVD rb+24(FP), R11             \
	MOVD x_base+32(FP), R1          \
	MOVD stride+56(FP), R6          \
	MOVD nb+64(FP), R2              \
	MOVD tab+72(FP), R3             \
	MOVD dst+80(FP), R4             \
	ADD  R11, R0, R12               \
	ADD  R11, R12, R13              \
	ADD  R11, R13, R14              \
	ADD  R6, R1, R7                 \
	ADD  R6, R7, R9                 \
	ADD  R6, R9, R10                \
	VMOVI $15, V2.B16               \
	VMOVI $8, V3.B16                \
	VEOR V16.B16, V16.B16, V16.B16  \
	VEOR V17.B16, V17.B16, V17.B16  \
	VEOR V18.B16, V18.B16, V18.B16  \
	VEOR V19.B16, V19.B16, V19.B16  \
	VEOR V20.B16, V20.B16, V20.B16  \
	VEOR V21.B16, V21.B16, V21.B16  \
	VEOR V22.B16, V22.B16, V22.B16  \
	VEOR V23.B16, V23.B16, V23.B16  \
	VEOR V24.B16, V24.B16, V24.B16  \
	VEOR V25.B16, V25.B16, V25.B16  \
	VEOR V26.B16, V26.B16, V26.B16  \
	VEOR V27.B16, V27.B16, V27.B16  \
	VEOR V28.B16, V28.B16, V28.B16  \
	VEOR V29.B16, V29.B16, V29.B16  \
	VEOR V30.B16, V30.B16, V30.B16  \
	VEOR V31.B16, V31.B16, V31.B16

// TSUM4 leaves in V(a) row a's four tokens' sums, each as sum4 adds its
// lanes: (l0+l1)+(l2+l3).
#define TSUM4(a) \
	FADDP_4S(a, a, (a+1))         \
	FADDP_4S((a+2), (a+2), (a+3)) \
	FADDP_4S(a, a, (a+2))

#define T44EPILOGUE \
	TSUM4(16)                                        \
	TSUM4(20)                                        \
	TSUM4(24)                                        \
	TSUM4(28)                                        \
	VST1.P [V16.S4], 16(R4)                          \
	VST1.P [V20.S4], 16(R4)                          \
	VST1.P [V24.S4], 16(R4)                          \
	VST1   [V28.S4], (R4)                            \
	RET

// func q8DotNEON(w, x []byte, nb int, tab *[65536]float32, acc *[4]float32)
TEXT ·q8DotNEON(SB), NOSPLIT, $0-72
	MOVD w_base+0(FP), R0
	MOVD x_base+24(FP), R1
	MOVD nb+48(FP), R2
	MOVD tab+56(FP), R3
	MOVD acc+64(FP), R4
	VEOR V7.B16, V7.B16, V7.B16
	CBZ  R2, q8done

q8loop:
	WSCALE
	Q8LOAD
	XSCALE(R1)
	VLD1.P 32(R1), [V2.B16, V3.B16]
	IDOT
	ACC(V7.S4)
	SUBS $1, R2
	BNE  q8loop

q8done:
	VST1 [V7.S4], (R4)
	RET

// func q8DotSDOT(w, x []byte, nb int, tab *[65536]float32, acc *[4]float32)
TEXT ·q8DotSDOT(SB), NOSPLIT, $0-72
	MOVD w_base+0(FP), R0
	MOVD x_base+24(FP), R1
	MOVD nb+48(FP), R2
	MOVD tab+56(FP), R3
	MOVD acc+64(FP), R4
	VEOR V7.B16, V7.B16, V7.B16
	CBZ  R2, q8sdone

q8sloop:
	WSCALE
	Q8LOAD
	XSCALE(R1)
	VLD1.P 32(R1), [V2.B16, V3.B16]
	IDOTDP
	ACC(V7.S4)
	SUBS $1, R2
	BNE  q8sloop

q8sdone:
	VST1 [V7.S4], (R4)
	RET

// func q4DotNEON(w, x []byte, nb int, tab *[65536]float32, acc *[4]float32)
TEXT ·q4DotNEON(SB), NOSPLIT, $0-72
	MOVD w_base+0(FP), R0
	MOVD x_base+24(FP), R1
	MOVD nb+48(FP), R2
	MOVD tab+56(FP), R3
	MOVD acc+64(FP), R4
	CONSTS
	VEOR V7.B16, V7.B16, V7.B16
	CBZ  R2, q4done

q4loop:
	WSCALE
	Q4UNPACK
	XSCALE(R1)
	VLD1.P 32(R1), [V2.B16, V3.B16]
	IDOT
	ACC(V7.S4)
	SUBS $1, R2
	BNE  q4loop

q4done:
	VST1 [V7.S4], (R4)
	RET

// func q4DotSDOT(w, x []byte, nb int, tab *[65536]float32, acc *[4]float32)
TEXT ·q4DotSDOT(SB), NOSPLIT, $0-72
	MOVD w_base+0(FP), R0
	MOVD x_base+24(FP), R1
	MOVD nb+48(FP), R2
	MOVD tab+56(FP), R3
	MOVD acc+64(FP), R4
	CONSTS
	VEOR V7.B16, V7.B16, V7.B16
	CBZ  R2, q4sdone

q4sloop:
	WSCALE
	Q4UNPACK
	XSCALE(R1)
	VLD1.P 32(R1), [V2.B16, V3.B16]
	IDOTDP
	ACC(V7.S4)
	SUBS $1, R2
	BNE  q4sloop

q4sdone:
	VST1 [V7.S4], (R4)
	RET

// func q8Dot4NEON(w, x []byte, stride, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q8Dot4NEON(SB), NOSPLIT, $0-80
	X4PROLOGUE
	CBZ R2, q8x4done

q8x4loop:
	WSCALE
	Q8LOAD
	X4BODY(IDOT)
	SUBS $1, R2
	BNE  q8x4loop

q8x4done:
	X4EPILOGUE

// func q8Dot4SDOT(w, x []byte, stride, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q8Dot4SDOT(SB), NOSPLIT, $0-80
	X4PROLOGUE
	CBZ R2, q8x4sdone

q8x4sloop:
	WSCALE
	Q8LOAD
	X4BODY(IDOTDP)
	SUBS $1, R2
	BNE  q8x4sloop

q8x4sdone:
	X4EPILOGUE

// func q4Dot4NEON(w, x []byte, stride, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q4Dot4NEON(SB), NOSPLIT, $0-80
	X4PROLOGUE
	CBZ R2, q4x4done

q4x4loop:
	WSCALE
	Q4UNPACK
	X4BODY(IDOT)
	SUBS $1, R2
	BNE  q4x4loop

q4x4done:
	X4EPILOGUE

// func q4Dot4SDOT(w, x []byte, stride, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q4Dot4SDOT(SB), NOSPLIT, $0-80
	X4PROLOGUE
	CBZ R2, q4x4sdone

q4x4sloop:
	WSCALE
	Q4UNPACK
	X4BODY(IDOTDP)
	SUBS $1, R2
	BNE  q4x4sloop

q4x4sdone:
	X4EPILOGUE

// func dotNEON(a, b []float32, acc *[4]float32)
// len(a) is a multiple of 16 and len(b) >= len(a).
TEXT ·dotNEON(SB), NOSPLIT, $0-56
	MOVD a_base+0(FP), R0
	MOVD a_len+8(FP), R2
	MOVD b_base+24(FP), R1
	MOVD acc+48(FP), R4
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	LSR  $4, R2
	CBZ  R2, dotdone

dotloop:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VFMLA  V0.S4, V4.S4, V16.S4
	VFMLA  V1.S4, V5.S4, V17.S4
	VFMLA  V2.S4, V6.S4, V18.S4
	VFMLA  V3.S4, V7.S4, V19.S4
	SUBS   $1, R2
	BNE    dotloop

dotdone:
	FADD_4S(16, 16, 17)
	FADD_4S(18, 18, 19)
	FADD_4S(16, 16, 18)
	VST1 [V16.S4], (R4)
	RET

// func axpyNEON(a float32, x, y []float32)
// len(x) is a multiple of 16 and len(y) >= len(x).
TEXT ·axpyNEON(SB), NOSPLIT, $0-56
	FMOVS a+0(FP), F20
	VDUP  V20.S[0], V20.S4
	MOVD  x_base+8(FP), R0
	MOVD  x_len+16(FP), R2
	MOVD  y_base+32(FP), R1
	LSR   $4, R2
	CBZ   R2, axpydone

axpyloop:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1   (R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VFMLA  V0.S4, V20.S4, V4.S4
	VFMLA  V1.S4, V20.S4, V5.S4
	VFMLA  V2.S4, V20.S4, V6.S4
	VFMLA  V3.S4, V20.S4, V7.S4
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R1)
	SUBS   $1, R2
	BNE    axpyloop

axpydone:
	RET

// func q4Rows4NEON(w0, w1, w2, w3, x []byte, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q4Rows4NEON(SB), NOSPLIT, $0-144
	R4PROLOGUE
	CBZ R2, q4rows4neondone

q4rows4neonloop:
	R4TOKEN
	ROWR(R0, Q4LOADR, IDOT, 7)
	ROWR(R7, Q4LOADR, IDOT, 8)
	ROWR(R9, Q4LOADR, IDOT, 9)
	ROWR(R10, Q4LOADR, IDOT, 10)
	SUBS $1, R2
	BNE  q4rows4neonloop

q4rows4neondone:
	X4EPILOGUE

// func q4Rows4SDOT(w0, w1, w2, w3, x []byte, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q4Rows4SDOT(SB), NOSPLIT, $0-144
	R4PROLOGUE
	CBZ R2, q4rows4sdotdone

q4rows4sdotloop:
	R4TOKEN
	ROWR(R0, Q4LOADR, IDOTDP, 7)
	ROWR(R7, Q4LOADR, IDOTDP, 8)
	ROWR(R9, Q4LOADR, IDOTDP, 9)
	ROWR(R10, Q4LOADR, IDOTDP, 10)
	SUBS $1, R2
	BNE  q4rows4sdotloop

q4rows4sdotdone:
	X4EPILOGUE

// func q8Rows4NEON(w0, w1, w2, w3, x []byte, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q8Rows4NEON(SB), NOSPLIT, $0-144
	R4PROLOGUE
	CBZ R2, q8rows4neondone

q8rows4neonloop:
	R4TOKEN
	ROWR(R0, Q8LOADR, IDOT, 7)
	ROWR(R7, Q8LOADR, IDOT, 8)
	ROWR(R9, Q8LOADR, IDOT, 9)
	ROWR(R10, Q8LOADR, IDOT, 10)
	SUBS $1, R2
	BNE  q8rows4neonloop

q8rows4neondone:
	X4EPILOGUE

// func q8Rows4SDOT(w0, w1, w2, w3, x []byte, nb int, tab *[65536]float32, acc *[16]float32)
TEXT ·q8Rows4SDOT(SB), NOSPLIT, $0-144
	R4PROLOGUE
	CBZ R2, q8rows4sdotdone

q8rows4sdotloop:
	R4TOKEN
	ROWR(R0, Q8LOADR, IDOTDP, 7)
	ROWR(R7, Q8LOADR, IDOTDP, 8)
	ROWR(R9, Q8LOADR, IDOTDP, 9)
	ROWR(R10, Q8LOADR, IDOTDP, 10)
	SUBS $1, R2
	BNE  q8rows4sdotloop

q8rows4sdotdone:
	X4EPILOGUE

// func q4Rows8NEON(w []byte, rb int, x []byte, nb int, tab *[65536]float32, pf *byte, acc *[32]float32)
TEXT ·q4Rows8NEON(SB), NOSPLIT, $0-88
	R8PROLOGUE
	CBZ R2, q4r8ndone

q4r8nloop:
	PRFM144
	R8BODY(Q4LOADR, IDOT)
	SUBS $1, R2
	BNE  q4r8nloop

q4r8ndone:
	R8STORE

// func q4Rows8SDOT(w []byte, rb int, x []byte, nb int, tab *[65536]float32, pf *byte, acc *[32]float32)
TEXT ·q4Rows8SDOT(SB), NOSPLIT, $0-88
	R8PROLOGUE
	CBZ R2, q4r8sdone

q4r8sloop:
	PRFM144
	R8BODY(Q4LOADR, IDOTDP)
	SUBS $1, R2
	BNE  q4r8sloop

q4r8sdone:
	R8STORE

// func q8Rows8NEON(w []byte, rb int, x []byte, nb int, tab *[65536]float32, pf *byte, acc *[32]float32)
TEXT ·q8Rows8NEON(SB), NOSPLIT, $0-88
	R8PROLOGUE
	CBZ R2, q8r8ndone

q8r8nloop:
	PRFM272
	R8BODY(Q8LOADR, IDOT)
	SUBS $1, R2
	BNE  q8r8nloop

q8r8ndone:
	R8STORE

// func q8Rows8SDOT(w []byte, rb int, x []byte, nb int, tab *[65536]float32, pf *byte, acc *[32]float32)
TEXT ·q8Rows8SDOT(SB), NOSPLIT, $0-88
	R8PROLOGUE
	CBZ R2, q8r8sdone

q8r8sloop:
	PRFM272
	R8BODY(Q8LOADR, IDOTDP)
	SUBS $1, R2
	BNE  q8r8sloop

q8r8sdone:
	R8STORE

// func q4Tile44NEON(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
TEXT ·q4Tile44NEON(SB), NOSPLIT, $0-88
	T44PROLOGUE
	CBZ R2, q4tile44neondone

q4tile44neonloop:
	TBODY(TQ4LOAD, TIDOT)
	SUBS $1, R2
	BNE  q4tile44neonloop

q4tile44neondone:
	T44EPILOGUE

// func q4Tile44SDOT(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
TEXT ·q4Tile44SDOT(SB), NOSPLIT, $0-88
	T44PROLOGUE
	CBZ R2, q4tile44sdotdone

q4tile44sdotloop:
	TBODY(TQ4LOAD, TIDOTDP)
	SUBS $1, R2
	BNE  q4tile44sdotloop

q4tile44sdotdone:
	T44EPILOGUE

// func q8Tile44NEON(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
TEXT ·q8Tile44NEON(SB), NOSPLIT, $0-88
	T44PROLOGUE
	CBZ R2, q8tile44neondone

q8tile44neonloop:
	TBODY(TQ8LOAD, TIDOT)
	SUBS $1, R2
	BNE  q8tile44neonloop

q8tile44neondone:
	T44EPILOGUE

// func q8Tile44SDOT(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
TEXT ·q8Tile44SDOT(SB), NOSPLIT, $0-88
	T44PROLOGUE
	CBZ R2, q8tile44sdotdone

q8tile44sdotloop:
	TBODY(TQ8LOAD, TIDOTDP)
	SUBS $1, R2
	BNE  q8tile44sdotloop

q8tile44sdotdone:
	T44EPILOGUE
