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

