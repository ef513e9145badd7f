//go:build amd64 && !purego && gc

#include "textflag.h"
#include "rows8_amd64.h"

// 4-row × 4-token tiles for prefill with AVX-512 VL/BW + VNNI on 256-bit
// registers. Per block, VPDPBUSD forms the int32 lanes of each row·token
// pair, the lanes are summed (VPHADDD), and each pair adds
// round(f16(d_w)·f16(d_x)·sumi) to its float32 accumulator in block order:
// the arithmetic of qdot_amd64.s and dot.go, bit for bit. Row k's four
// token results live in the lanes of X16+k.
//
// Register use: R8 the f16 table, CX the block count, rows at SI, R9, R12,
// R13 (+R10, the block offset), tokens at DI, DI+R11, DI+2·R11, DI+DX.

DATA t44shift<>+0(SB)/8, $0
DATA t44shift<>+8(SB)/8, $0
DATA t44shift<>+16(SB)/8, $0x0000000400000004
DATA t44shift<>+24(SB)/8, $0x0000000400000004
GLOBL t44shift<>(SB), RODATA|NOPTR, $32

// RED4: xa = float32([Σa, Σb, Σc, Σd]); a and c are clobbered.
#define RED4(a, b, c, d, xa, xt) \
	VPHADDD      b, a, a    \
	VPHADDD      d, c, c    \
	VPHADDD      c, a, a    \
	VEXTRACTI128 $1, a, xt  \
	VPADDD       xt, xa, xa \
	VCVTDQ2PS    xa, xa

// DX4: X4 = the four tokens' f16(d_x) as float32.
#define DX4 \
	MOVWLZX   (DI), AX                    \
	VMOVSS    (R8)(AX*4), X4              \
	MOVWLZX   (DI)(R11*1), AX             \
	VINSERTPS $0x10, (R8)(AX*4), X4, X4   \
	MOVWLZX   (DI)(R11*2), AX             \
	VINSERTPS $0x20, (R8)(AX*4), X4, X4   \
	MOVWLZX   (DI)(DX*1), AX              \
	VINSERTPS $0x30, (R8)(AX*4), X4, X4

// FINISH: acc += (d_w of the row at (rb)(R10*1)) · X4 · sums of Y5, Y6, Y7, Y11.
#define FINISH(rb, acc) \
	RED4(Y5, Y6, Y7, Y11, X5, X10)  \
	MOVWLZX      (rb)(R10*1), AX    \
	VBROADCASTSS (R8)(AX*4), X9     \
	VMULPS       X4, X9, X9         \
	VMULPS       X9, X5, X5         \
	VADDPS       X5, acc, acc

#define ZEROACC \
	VPXORD X16, X16, X16 \
	VPXORD X17, X17, X17 \
	VPXORD X18, X18, X18 \
	VPXORD X19, X19, X19

#define STOREACC \
	MOVQ    dst+80(FP), AX \
	VMOVUPS X16, (AX)      \
	VMOVUPS X17, 16(AX)    \
	VMOVUPS X18, 32(AX)    \
	VMOVUPS X19, 48(AX)

#define TILEPROLOGUE \
	MOVQ w_base+0(FP), SI      \
	MOVQ rb+24(FP), AX         \
	MOVQ x_base+32(FP), DI     \
	MOVQ stride+56(FP), R11    \
	MOVQ nb+64(FP), CX         \
	MOVQ tab+72(FP), R8        \
	LEAQ (SI)(AX*1), R9        \
	LEAQ (R9)(AX*1), R12       \
	LEAQ (R12)(AX*1), R13      \
	LEAQ (R11)(R11*2), DX      \
	XORQ R10, R10              \
	VPXORD Y15, Y15, Y15       \
	ZEROACC

// Q4_0: each token's accumulator starts at -8·Σx (Y0..Y3), which turns
// the unsigned nibbles into nibble-8.

// NEGC: nc = -8·Σx in int32 lanes for the x block at xq.
#define NEGC(xq, nc) \
	VPXORD   nc, nc, nc  \
	VPDPBUSD xq, Y13, nc \
	VPSUBD   nc, Y15, nc

// P4: t = nc + Σ nibble·x (nibbles in Y8).
#define P4(xq, nc, t) \
	VMOVDQA32 nc, t       \
	VPDPBUSD  xq, Y8, t

// ROW4: one row's block against the four tokens, into acc.
#define ROW4(rb, acc) \
	VBROADCASTI128 2(rb)(R10*1), Y8 \
	VPSRLVD        Y12, Y8, Y8      \
	VPAND          Y14, Y8, Y8      \
	P4(2(DI), Y0, Y5)               \
	P4(2(DI)(R11*1), Y1, Y6)        \
	P4(2(DI)(R11*2), Y2, Y7)        \
	P4(2(DI)(DX*1), Y3, Y11)        \
	FINISH(rb, acc)

// func q4Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
// Rows w[k*rb:] for k < 4, tokens x[t*stride:] for t < 4; dst[4*k+t].
TEXT ·q4Tile44VNNI(SB), NOSPLIT, $0-88
	TILEPROLOGUE
	VMOVDQU      t44shift<>(SB), Y12
	MOVL         $0x08080808, AX
	VPBROADCASTD AX, Y13
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Y14
	TESTQ        CX, CX
	JZ           t44done

t44loop:
	NEGC(2(DI), Y0)
	NEGC(2(DI)(R11*1), Y1)
	NEGC(2(DI)(R11*2), Y2)
	NEGC(2(DI)(DX*1), Y3)
	DX4
	ROW4(SI, X16)
	ROW4(R9, X17)
	ROW4(R12, X18)
	ROW4(R13, X19)
	ADDQ $18, R10
	ADDQ $34, DI
	DECQ CX
	JNZ  t44loop

t44done:
	STOREACC
	VZEROUPPER
	RET

// Q8_0: VPDPBUSD wants one unsigned operand, so x is offset to x+128
// (x ^ 0x80, in [1, 255] as x is never -128) and each row's accumulator
// starts at -128·Σw (Y8), which cancels the offset exactly; the weights
// may hold any int8, -128 included.

// P8: t = Y8 + Σ (x+128)·w, w at wq.
#define P8(wq, xu, t) \
	VMOVDQA32 Y8, t       \
	VPDPBUSD  wq, xu, t

#define ROW8(rb, acc) \
	VPXORD   Y8, Y8, Y8              \
	VPDPBUSD 2(rb)(R10*1), Y13, Y8   \
	VPSUBD   Y8, Y15, Y8             \
	P8(2(rb)(R10*1), Y0, Y5)         \
	P8(2(rb)(R10*1), Y1, Y6)         \
	P8(2(rb)(R10*1), Y2, Y7)         \
	P8(2(rb)(R10*1), Y3, Y11)        \
	FINISH(rb, acc)

// func q8Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
TEXT ·q8Tile44VNNI(SB), NOSPLIT, $0-88
	TILEPROLOGUE
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Y13
	TESTQ        CX, CX
	JZ           t8done

t8loop:
	VPXORD 2(DI), Y13, Y0
	VPXORD 2(DI)(R11*1), Y13, Y1
	VPXORD 2(DI)(R11*2), Y13, Y2
	VPXORD 2(DI)(DX*1), Y13, Y3
	DX4
	ROW8(SI, X16)
	ROW8(R9, X17)
	ROW8(R12, X18)
	ROW8(R13, X19)
	ADDQ $34, R10
	ADDQ $34, DI
	DECQ CX
	JNZ  t8loop

t8done:
	STOREACC
	VZEROUPPER
	RET

// 8-row × 4-token Q4_0 tile, the layout of the eight-row decode kernel
// (qdot_amd64.s): rows k and k+4 share a register, low and high lane, and
// after three VPHADDD row k's block sum is lane k. Per block the nibbles of
// the eight rows are unpacked once and VCVTPH2PS makes their eight scales;
// per token, two VPDPBUSD per row pair and one multiply-add finish eight
// results. Per lane the float arithmetic is the generic code's.
//
// Registers: SI row 0's block, R9 rb, R10 3·rb, R11 5·rb, R12 7·rb; DI token
// 0's block, R13 the stride, DX 3·stride; CX blocks left; BX the prefetch of
// what the caller reads next, as in the decode kernels (a daemon decoding four
// sequences at once runs these tiles on weights coming from DRAM). Y0-Y3 the pairs'
// int32 sums, Y4-Y11 the pairs' low/high nibbles, Y12 the rows' d_w, Y13
// bytes 0x08, Y14 bytes 0x0f, Y15 zero, Y16-Y19 the tokens' accumulators.

// T84NIB: lo and hi get the low and high nibbles of the Q4_0 quants of the
// blocks at a (low lane) and b (high lane).
#define T84NIB(a, b, xlo, lo, hi) \
	VMOVDQU     a, xlo         \
	VINSERTI128 $1, b, lo, lo  \
	VPSRLW      $4, lo, hi     \
	VPAND       Y14, lo, lo    \
	VPAND       Y14, hi, hi

// T84PAIR: s = -8·Σx + Σ nibble·x over the pair's two halves.
#define T84PAIR(lo, hi, s) \
	VMOVDQA32 Y22, s     \
	VPDPBUSD  Y20, lo, s \
	VPDPBUSD  Y21, hi, s

// T84TOK: the token block whose quants are at xlo, xhi and scale at xd,
// into acc.
#define T84TOK(xlo, xhi, xd, acc) \
	VBROADCASTI32X4 xlo, Y20      \
	VBROADCASTI32X4 xhi, Y21      \
	VPXORD          Y22, Y22, Y22 \
	VPDPBUSD        Y20, Y13, Y22 \
	VPDPBUSD        Y21, Y13, Y22 \
	VPSUBD          Y22, Y15, Y22 \
	T84PAIR(Y4, Y5, Y0)           \
	T84PAIR(Y6, Y7, Y1)           \
	T84PAIR(Y8, Y9, Y2)           \
	T84PAIR(Y10, Y11, Y3)         \
	VPHADDD         Y1, Y0, Y0    \
	VPHADDD         Y3, Y2, Y2    \
	VPHADDD         Y2, Y0, Y0    \
	VCVTDQ2PS       Y0, Y0        \
	VPBROADCASTW    xd, X23       \
	VCVTPH2PS       X23, Y23      \
	VMULPS          Y23, Y12, Y24 \
	VMULPS          Y24, Y0, Y0   \
	VADDPS          Y0, acc, acc

// func q4Tile84VNNI(w []byte, rb int, x []byte, stride, nb int, pf *byte, dst *[32]float32)
// Rows w[k*rb:] for k < 8, tokens x[t*stride:] for t < 4; dst[8*t+k].
TEXT ·q4Tile84VNNI(SB), NOSPLIT, $0-88
	MOVQ         w_base+0(FP), SI
	MOVQ         rb+24(FP), R9
	MOVQ         x_base+32(FP), DI
	MOVQ         stride+56(FP), R13
	MOVQ         nb+64(FP), CX
	ROWOFFSETS
	LEAQ         (R13)(R13*2), DX
	MOVQ         pf+72(FP), BX
	MOVL         $0x08080808, AX
	VPBROADCASTD AX, Y13
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Y14
	VPXOR        Y15, Y15, Y15
	VPXORD       Y16, Y16, Y16
	VPXORD       Y17, Y17, Y17
	VPXORD       Y18, Y18, Y18
	VPXORD       Y19, Y19, Y19
	VPXOR        X12, X12, X12
	TESTQ        CX, CX
	JZ           t84done

t84loop:
	PREFETCH144
	T84NIB(2(SI), 2(SI)(R9*4), X4, Y4, Y5)
	T84NIB(2(SI)(R9*1), 2(SI)(R11*1), X6, Y6, Y7)
	T84NIB(2(SI)(R9*2), 2(SI)(R10*2), X8, Y8, Y9)
	T84NIB(2(SI)(R10*1), 2(SI)(R12*1), X10, Y10, Y11)
	SCALES8(X12, Y12)
	T84TOK(2(DI), 18(DI), (DI), Y16)
	T84TOK(2(DI)(R13*1), 18(DI)(R13*1), (DI)(R13*1), Y17)
	T84TOK(2(DI)(R13*2), 18(DI)(R13*2), (DI)(R13*2), Y18)
	T84TOK(2(DI)(DX*1), 18(DI)(DX*1), (DI)(DX*1), Y19)
	ADDQ      $18, SI
	ADDQ      $34, DI
	DECQ      CX
	JNZ       t84loop

t84done:
	MOVQ    dst+80(FP), AX
	VMOVUPS Y16, (AX)
	VMOVUPS Y17, 32(AX)
	VMOVUPS Y18, 64(AX)
	VMOVUPS Y19, 96(AX)
	VZEROUPPER
	RET

// 8-row × 4-token Q8_0 tile. A Q8_0 block fills a register, so each row's
// int32 lanes are reduced with the eight-row decode kernel's tree (six
// VPHADDD, two VPERM2I128, one add) into lane k; the rest is
// q4Tile84VNNI's. Tokens are offset to x+128 as in q8Tile44VNNI, and each
// row's lanes start at -128·Σw.
//
// Registers: as q4Tile84VNNI for the addresses; Y0-Y7 the rows' int32
// lanes for one token, Y8-Y11 temporaries, Y12 the rows' d_w, Y13 bytes
// 0x80, Y15 zero, Y16-Y19 the tokens' accumulators, Y20 the token's
// offset quants, Y24-Y31 the rows' -128·Σw.

// T88NEGW: nw = -128·Σw in int32 lanes for the block at wq.
#define T88NEGW(wq, nw) \
	VPXORD   nw, nw, nw  \
	VPDPBUSD wq, Y13, nw \
	VPSUBD   nw, Y15, nw

// T88ROW: s = Σ x·w in int32 lanes, for the row block at wq, Y20 = x+128.
#define T88ROW(wq, nw, s) \
	VMOVDQA32 nw, s       \
	VPDPBUSD  wq, Y20, s

// T88TOK: the token block with quants at xq and scale at xd, into acc.
#define T88TOK(xq, xd, acc) \
	VPXORD       xq, Y13, Y20                    \
	T88ROW(2(SI), Y24, Y0)                       \
	T88ROW(2(SI)(R9*1), Y25, Y1)                 \
	T88ROW(2(SI)(R9*2), Y26, Y2)                 \
	T88ROW(2(SI)(R10*1), Y27, Y3)                \
	T88ROW(2(SI)(R9*4), Y28, Y4)                 \
	T88ROW(2(SI)(R11*1), Y29, Y5)                \
	T88ROW(2(SI)(R10*2), Y30, Y6)                \
	T88ROW(2(SI)(R12*1), Y31, Y7)                \
	VPHADDD      Y1, Y0, Y0                      \
	VPHADDD      Y3, Y2, Y2                      \
	VPHADDD      Y5, Y4, Y4                      \
	VPHADDD      Y7, Y6, Y6                      \
	VPHADDD      Y2, Y0, Y0                      \
	VPHADDD      Y6, Y4, Y4                      \
	VPERM2I128   $0x20, Y4, Y0, Y8               \
	VPERM2I128   $0x31, Y4, Y0, Y9               \
	VPADDD       Y9, Y8, Y0                      \
	VCVTDQ2PS    Y0, Y0                          \
	VPBROADCASTW xd, X10                         \
	VCVTPH2PS    X10, Y10                        \
	VMULPS       Y10, Y12, Y11                   \
	VMULPS       Y11, Y0, Y0                     \
	VADDPS       Y0, acc, acc

// func q8Tile84VNNI(w []byte, rb int, x []byte, stride, nb int, pf *byte, dst *[32]float32)
// Rows w[k*rb:] for k < 8, tokens x[t*stride:] for t < 4; dst[8*t+k].
TEXT ·q8Tile84VNNI(SB), NOSPLIT, $0-88
	MOVQ         w_base+0(FP), SI
	MOVQ         rb+24(FP), R9
	MOVQ         x_base+32(FP), DI
	MOVQ         stride+56(FP), R13
	MOVQ         nb+64(FP), CX
	ROWOFFSETS
	LEAQ         (R13)(R13*2), DX
	MOVQ         pf+72(FP), BX
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Y13
	VPXOR        Y15, Y15, Y15
	VPXORD       Y16, Y16, Y16
	VPXORD       Y17, Y17, Y17
	VPXORD       Y18, Y18, Y18
	VPXORD       Y19, Y19, Y19
	VPXOR        X12, X12, X12
	TESTQ        CX, CX
	JZ           t88done

t88loop:
	PREFETCH272
	T88NEGW(2(SI), Y24)
	T88NEGW(2(SI)(R9*1), Y25)
	T88NEGW(2(SI)(R9*2), Y26)
	T88NEGW(2(SI)(R10*1), Y27)
	T88NEGW(2(SI)(R9*4), Y28)
	T88NEGW(2(SI)(R11*1), Y29)
	T88NEGW(2(SI)(R10*2), Y30)
	T88NEGW(2(SI)(R12*1), Y31)
	SCALES8(X12, Y12)
	T88TOK(2(DI), (DI), Y16)
	T88TOK(2(DI)(R13*1), (DI)(R13*1), Y17)
	T88TOK(2(DI)(R13*2), (DI)(R13*2), Y18)
	T88TOK(2(DI)(DX*1), (DI)(DX*1), Y19)
	ADDQ      $34, SI
	ADDQ      $34, DI
	DECQ      CX
	JNZ       t88loop

t88done:
	MOVQ    dst+80(FP), AX
	VMOVUPS Y16, (AX)
	VMOVUPS Y17, 32(AX)
	VMOVUPS Y18, 64(AX)
	VMOVUPS Y19, 96(AX)
	VZEROUPPER
	RET

