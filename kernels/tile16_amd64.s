//go:build amd64 && !purego && gc

#include "textflag.h"
#include "rows8_amd64.h"

// 16-row × 8-token tiles for prefill on 512-bit registers (AVX-512 F, BW and
// VNNI): tile8_amd64.s's 8×8 tiles with twice the rows per register. Per
// block the sixteen rows' quants are loaded four rows to a register (rows k,
// k+4, k+8 and k+12 in its four 128-bit lanes) and transposed within each
// lane, so that dword k of Zi holds quants 4i..4i+3 of row k. A token then
// costs the same instructions as on 256 bits for twice the rows: eight
// VPDPBUSD with four of its quants broadcast, a conversion and three float
// operations. Where 512-bit operations run at full width (AMD Zen 5, Intel
// server cores) that halves the work per multiply-accumulate; where they are
// split in two (Zen 4) it halves the instructions the front end decodes.
// Per lane the arithmetic is tile8_amd64.s's, hence the one-row kernels':
// the int32 sum starts at the token's offset correction, and
// acc += float(Σ) · (d_w · d_x) in block order.
//
// Registers: SI row 0's block, R14 row 8's, R9 rb, R10 3·rb, R11 5·rb, R12
// 7·rb; DI token 0's block, AX token 4's, R13 the stride, DX 3·stride; R8
// this block's aux entry of token 0 (tokens 8 bytes apart, blocks astride
// apart); CX blocks left; BX the prefetch of what the caller reads next;
// R15 a temporary. Z0-Z7 the transposed quants, Z8-Z11 temporaries, Z12
// the rows' d_w, Z13 bytes 0x80, Z14 bytes 0x0f, Z16-Z23 the tokens'
// accumulators, Z24 and Z25 a token's sums and scale.

// TRANSPOSE4Z: the 4×4 dword transpose of a, b, c, d within each lane.
#define TRANSPOSE4Z(a, b, c, d) \
	VPUNPCKLDQ  b, a, Z8    \
	VPUNPCKHDQ  b, a, Z9    \
	VPUNPCKLDQ  d, c, Z10   \
	VPUNPCKHDQ  d, c, Z11   \
	VPUNPCKLQDQ Z10, Z8, a  \
	VPUNPCKHQDQ Z10, Z8, b  \
	VPUNPCKLQDQ Z11, Z9, c  \
	VPUNPCKHQDQ Z11, Z9, d

// QUADS2 and QUADS18: Z0-Z3 and Z4-Z7 = the 16 bytes at offset 2 and 18 of
// the rows' blocks, untransposed: register i (of four) holds rows i, i+4
// (from SI) and i+8, i+12 (from R14), one to a 128-bit lane.
#define QUADS2 \
	VMOVDQU      2(SI), X0 \
	VINSERTI128  $1, 2(SI)(R9*4), Y0, Y0 \
	VINSERTI32X4 $2, 2(R14), Z0, Z0 \
	VINSERTI32X4 $3, 2(R14)(R9*4), Z0, Z0 \
	VMOVDQU      2(SI)(R9*1), X1 \
	VINSERTI128  $1, 2(SI)(R11*1), Y1, Y1 \
	VINSERTI32X4 $2, 2(R14)(R9*1), Z1, Z1 \
	VINSERTI32X4 $3, 2(R14)(R11*1), Z1, Z1 \
	VMOVDQU      2(SI)(R9*2), X2 \
	VINSERTI128  $1, 2(SI)(R10*2), Y2, Y2 \
	VINSERTI32X4 $2, 2(R14)(R9*2), Z2, Z2 \
	VINSERTI32X4 $3, 2(R14)(R10*2), Z2, Z2 \
	VMOVDQU      2(SI)(R10*1), X3 \
	VINSERTI128  $1, 2(SI)(R12*1), Y3, Y3 \
	VINSERTI32X4 $2, 2(R14)(R10*1), Z3, Z3 \
	VINSERTI32X4 $3, 2(R14)(R12*1), Z3, Z3

#define QUADS18 \
	VMOVDQU      18(SI), X4 \
	VINSERTI128  $1, 18(SI)(R9*4), Y4, Y4 \
	VINSERTI32X4 $2, 18(R14), Z4, Z4 \
	VINSERTI32X4 $3, 18(R14)(R9*4), Z4, Z4 \
	VMOVDQU      18(SI)(R9*1), X5 \
	VINSERTI128  $1, 18(SI)(R11*1), Y5, Y5 \
	VINSERTI32X4 $2, 18(R14)(R9*1), Z5, Z5 \
	VINSERTI32X4 $3, 18(R14)(R11*1), Z5, Z5 \
	VMOVDQU      18(SI)(R9*2), X6 \
	VINSERTI128  $1, 18(SI)(R10*2), Y6, Y6 \
	VINSERTI32X4 $2, 18(R14)(R9*2), Z6, Z6 \
	VINSERTI32X4 $3, 18(R14)(R10*2), Z6, Z6 \
	VMOVDQU      18(SI)(R10*1), X7 \
	VINSERTI128  $1, 18(SI)(R12*1), Y7, Y7 \
	VINSERTI32X4 $2, 18(R14)(R10*1), Z7, Z7 \
	VINSERTI32X4 $3, 18(R14)(R12*1), Z7, Z7

// Q4QUANTSZ: Z0-Z7 = the rows' Q4_0 nibbles of this block, transposed: the
// bytes first (dword k of Zi, i < 4, holds bytes 4i..4i+3 of row k), then
// the low nibbles are quants 4i..4i+3, the high ones 16+4i...
#define Q4QUANTSZ \
	QUADS2                                                  \
	TRANSPOSE4Z(Z0, Z1, Z2, Z3)                             \
	VPSRLW  $4, Z0, Z4                                      \
	VPSRLW  $4, Z1, Z5                                      \
	VPSRLW  $4, Z2, Z6                                      \
	VPSRLW  $4, Z3, Z7                                      \
	VPANDD  Z14, Z0, Z0                                     \
	VPANDD  Z14, Z1, Z1                                     \
	VPANDD  Z14, Z2, Z2                                     \
	VPANDD  Z14, Z3, Z3                                     \
	VPANDD  Z14, Z4, Z4                                     \
	VPANDD  Z14, Z5, Z5                                     \
	VPANDD  Z14, Z6, Z6                                     \
	VPANDD  Z14, Z7, Z7

// Q8QUANTSZ: Z0-Z7 = the rows' Q8_0 quants of this block + 128, transposed.
#define Q8QUANTSZ \
	QUADS2                                                   \
	QUADS18                                                  \
	VPXORD Z13, Z0, Z0                                       \
	VPXORD Z13, Z1, Z1                                       \
	VPXORD Z13, Z2, Z2                                       \
	VPXORD Z13, Z3, Z3                                       \
	VPXORD Z13, Z4, Z4                                       \
	VPXORD Z13, Z5, Z5                                       \
	VPXORD Z13, Z6, Z6                                       \
	VPXORD Z13, Z7, Z7                                       \
	TRANSPOSE4Z(Z0, Z1, Z2, Z3)                              \
	TRANSPOSE4Z(Z4, Z5, Z6, Z7)

// SCALES16: Z12 = the sixteen rows' f16 block scales as float32, lane k for
// row k (f16 to f32 is exact). The scales are gathered by scalar loads, four
// to a general register (AX and R15, clobbered; AX is token 4's block again
// after), so that the vector pipes, busy with the transposes and the tokens,
// see six operations instead of sixteen inserts. X8 is free between the
// transposes and the tokens.
#define GATHER4(r, o0, o1, o2, o3) \
	MOVWLZX o3, r       \
	SHLQ    $16, r      \
	MOVW    o2, r       \
	SHLQ    $16, r      \
	MOVW    o1, r       \
	SHLQ    $16, r      \
	MOVW    o0, r

#define SCALES16 \
	GATHER4(AX, (SI), (SI)(R9*1), (SI)(R9*2), (SI)(R10*1))          \
	GATHER4(R15, (SI)(R9*4), (SI)(R11*1), (SI)(R10*2), (SI)(R12*1)) \
	MOVQ        AX, X12                                                 \
	VPINSRQ     $1, R15, X12, X12                                       \
	GATHER4(AX, (R14), (R14)(R9*1), (R14)(R9*2), (R14)(R10*1))     \
	GATHER4(R15, (R14)(R9*4), (R14)(R11*1), (R14)(R10*2), (R14)(R12*1)) \
	MOVQ        AX, X8                                                  \
	VPINSRQ     $1, R15, X8, X8                                         \
	LEAQ        (DI)(R13*4), AX                                         \
	VINSERTI128 $1, X8, Y12, Y12                                        \
	VCVTPH2PS   Y12, Z12

// TOKEN16: acc += the sixteen rows' results for the token whose block is at
// q (a base and index, e.g. (DI)(R13*1)) and aux entry at a(R8).
#define TOKEN16(q, a, acc) \
	VPBROADCASTD  a(R8), Z24        \
	VPDPBUSD.BCST 2 q, Z0, Z24      \
	VPDPBUSD.BCST 6 q, Z1, Z24      \
	VPDPBUSD.BCST 10 q, Z2, Z24     \
	VPDPBUSD.BCST 14 q, Z3, Z24     \
	VPDPBUSD.BCST 18 q, Z4, Z24     \
	VPDPBUSD.BCST 22 q, Z5, Z24     \
	VPDPBUSD.BCST 26 q, Z6, Z24     \
	VPDPBUSD.BCST 30 q, Z7, Z24     \
	VCVTDQ2PS     Z24, Z24          \
	VMULPS.BCST   a+4(R8), Z12, Z25 \
	VMULPS        Z25, Z24, Z24     \
	VADDPS        Z24, acc, acc

#define TOKENS16 \
	TOKEN16((DI), 0, Z16)         \
	TOKEN16((DI)(R13*1), 8, Z17)  \
	TOKEN16((DI)(R13*2), 16, Z18) \
	TOKEN16((DI)(DX*1), 24, Z19)  \
	TOKEN16((AX), 32, Z20)        \
	TOKEN16((AX)(R13*1), 40, Z21) \
	TOKEN16((AX)(R13*2), 48, Z22) \
	TOKEN16((AX)(DX*1), 56, Z23)

// TILE16PRO: the registers above from the arguments; the accumulators zeroed.
#define TILE16PRO \
	MOVQ         w_base+0(FP), SI   \
	MOVQ         rb+24(FP), R9      \
	MOVQ         x_base+32(FP), DI  \
	MOVQ         stride+56(FP), R13 \
	MOVQ         nb+64(FP), CX      \
	MOVQ         aux+72(FP), R8     \
	MOVQ         pf+88(FP), BX      \
	ROWOFFSETS                      \
	LEAQ         (SI)(R9*8), R14    \
	LEAQ         (R13)(R13*2), DX   \
	MOVL         $0x80808080, AX    \
	VPBROADCASTD AX, Z13            \
	MOVL         $0x0f0f0f0f, AX    \
	VPBROADCASTD AX, Z14            \
	LEAQ         (DI)(R13*4), AX    \
	VPXORD       Z16, Z16, Z16      \
	VPXORD       Z17, Z17, Z17      \
	VPXORD       Z18, Z18, Z18      \
	VPXORD       Z19, Z19, Z19      \
	VPXORD       Z20, Z20, Z20      \
	VPXORD       Z21, Z21, Z21      \
	VPXORD       Z22, Z22, Z22      \
	VPXORD       Z23, Z23, Z23

// NEXT16: on to the next block (wb bytes per weight block); loop to l.
#define NEXT16(wb, l) \
	ADDQ $wb, SI            \
	ADDQ $wb, R14           \
	ADDQ $34, DI            \
	ADDQ $34, AX            \
	ADDQ astride+80(FP), R8 \
	DECQ CX                 \
	JNZ  l

#define STORE16 \
	MOVQ    dst+96(FP), AX \
	VMOVUPS Z16, (AX)      \
	VMOVUPS Z17, 64(AX)    \
	VMOVUPS Z18, 128(AX)   \
	VMOVUPS Z19, 192(AX)   \
	VMOVUPS Z20, 256(AX)   \
	VMOVUPS Z21, 320(AX)   \
	VMOVUPS Z22, 384(AX)   \
	VMOVUPS Z23, 448(AX)

// func q4Tile168VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[128]float32)
TEXT ·q4Tile168VNNI(SB), NOSPLIT, $0-104
	TILE16PRO

q4168loop:
	PREFETCH144
	PREFETCH144
	Q4QUANTSZ
	SCALES16
	TOKENS16
	NEXT16(18, q4168loop)
	STORE16
	VZEROUPPER
	RET

// func q8Tile168VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[128]float32)
TEXT ·q8Tile168VNNI(SB), NOSPLIT, $0-104
	TILE16PRO

q8168loop:
	PREFETCH272
	PREFETCH272
	Q8QUANTSZ
	SCALES16
	TOKENS16
	NEXT16(34, q8168loop)
	STORE16
	VZEROUPPER
	RET

// The 16×16 tiles: the 16×8 tile's block work (loads, transposes, scales)
// shared by sixteen tokens instead of eight. Registers as above but for:
// Z8 and Z9 a token's sums and scale (after the transposes), Z15-Z30 the
// tokens' accumulators, R15 token 8's block and then token 12's.

// TOKENT: acc += the sixteen rows' results for the token whose block is at
// q and aux entry at a(R8), with Z8 and Z9 as temporaries.
#define TOKENT(q, a, acc) \
	VPBROADCASTD  a(R8), Z8        \
	VPDPBUSD.BCST 2 q, Z0, Z8      \
	VPDPBUSD.BCST 6 q, Z1, Z8      \
	VPDPBUSD.BCST 10 q, Z2, Z8     \
	VPDPBUSD.BCST 14 q, Z3, Z8     \
	VPDPBUSD.BCST 18 q, Z4, Z8     \
	VPDPBUSD.BCST 22 q, Z5, Z8     \
	VPDPBUSD.BCST 26 q, Z6, Z8     \
	VPDPBUSD.BCST 30 q, Z7, Z8     \
	VCVTDQ2PS     Z8, Z8           \
	VMULPS.BCST   a+4(R8), Z12, Z9 \
	VMULPS        Z9, Z8, Z8       \
	VADDPS        Z8, acc, acc

#define TOKENS1616 \
	TOKENT((DI), 0, Z15)           \
	TOKENT((DI)(R13*1), 8, Z16)    \
	TOKENT((DI)(R13*2), 16, Z17)   \
	TOKENT((DI)(DX*1), 24, Z18)    \
	TOKENT((AX), 32, Z19)          \
	TOKENT((AX)(R13*1), 40, Z20)   \
	TOKENT((AX)(R13*2), 48, Z21)   \
	TOKENT((AX)(DX*1), 56, Z22)    \
	LEAQ   (DI)(R13*8), R15        \
	TOKENT((R15), 64, Z23)         \
	TOKENT((R15)(R13*1), 72, Z24)  \
	TOKENT((R15)(R13*2), 80, Z25)  \
	TOKENT((R15)(DX*1), 88, Z26)   \
	LEAQ   (R15)(R13*4), R15       \
	TOKENT((R15), 96, Z27)         \
	TOKENT((R15)(R13*1), 104, Z28) \
	TOKENT((R15)(R13*2), 112, Z29) \
	TOKENT((R15)(DX*1), 120, Z30)

#define TILE1616PRO \
	MOVQ         w_base+0(FP), SI   \
	MOVQ         rb+24(FP), R9      \
	MOVQ         x_base+32(FP), DI  \
	MOVQ         stride+56(FP), R13 \
	MOVQ         nb+64(FP), CX      \
	MOVQ         aux+72(FP), R8     \
	MOVQ         pf+88(FP), BX      \
	ROWOFFSETS                      \
	LEAQ         (SI)(R9*8), R14    \
	LEAQ         (R13)(R13*2), DX   \
	MOVL         $0x80808080, AX    \
	VPBROADCASTD AX, Z13            \
	MOVL         $0x0f0f0f0f, AX    \
	VPBROADCASTD AX, Z14            \
	LEAQ         (DI)(R13*4), AX    \
	VPXORD       Z15, Z15, Z15      \
	VPXORD       Z16, Z16, Z16      \
	VPXORD       Z17, Z17, Z17      \
	VPXORD       Z18, Z18, Z18      \
	VPXORD       Z19, Z19, Z19      \
	VPXORD       Z20, Z20, Z20      \
	VPXORD       Z21, Z21, Z21      \
	VPXORD       Z22, Z22, Z22      \
	VPXORD       Z23, Z23, Z23      \
	VPXORD       Z24, Z24, Z24      \
	VPXORD       Z25, Z25, Z25      \
	VPXORD       Z26, Z26, Z26      \
	VPXORD       Z27, Z27, Z27      \
	VPXORD       Z28, Z28, Z28      \
	VPXORD       Z29, Z29, Z29      \
	VPXORD       Z30, Z30, Z30

#define STORE1616 \
	MOVQ    dst+96(FP), AX \
	VMOVUPS Z15, (AX)      \
	VMOVUPS Z16, 64(AX)    \
	VMOVUPS Z17, 128(AX)   \
	VMOVUPS Z18, 192(AX)   \
	VMOVUPS Z19, 256(AX)   \
	VMOVUPS Z20, 320(AX)   \
	VMOVUPS Z21, 384(AX)   \
	VMOVUPS Z22, 448(AX)   \
	VMOVUPS Z23, 512(AX)   \
	VMOVUPS Z24, 576(AX)   \
	VMOVUPS Z25, 640(AX)   \
	VMOVUPS Z26, 704(AX)   \
	VMOVUPS Z27, 768(AX)   \
	VMOVUPS Z28, 832(AX)   \
	VMOVUPS Z29, 896(AX)   \
	VMOVUPS Z30, 960(AX)

// func q4Tile1616VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[256]float32)
TEXT ·q4Tile1616VNNI(SB), NOSPLIT, $0-104
	TILE1616PRO

q41616loop:
	PREFETCH144
	PREFETCH144
	Q4QUANTSZ
	SCALES16
	TOKENS1616
	NEXT16(18, q41616loop)
	STORE1616
	VZEROUPPER
	RET

// func q8Tile1616VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[256]float32)
TEXT ·q8Tile1616VNNI(SB), NOSPLIT, $0-104
	TILE1616PRO

q81616loop:
	PREFETCH272
	PREFETCH272
	Q8QUANTSZ
	SCALES16
	TOKENS1616
	NEXT16(34, q81616loop)
	STORE1616
	VZEROUPPER
	RET
