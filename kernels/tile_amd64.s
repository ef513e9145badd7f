//go:build amd64 && !purego && gc

#include "textflag.h"

// A 4-row × 4-token Q4_0 tile for prefill with AVX-512 VL/BW + VNNI on
// 256-bit registers, which gives 32 of them: the 16 accumulators live in
// Y16..Y31. Per block, each token's x is loaded as a memory operand of
// VPDPBUSD (u8 nibbles · s8 x) into an accumulator that starts at -8·Σx,
// which turns the unsigned nibbles into nibble-8 for free; the token's f16
// scale and the -8·Σx lanes are computed once per block for the four rows.
// The arithmetic per block is the one of the other kernels:
// acc += f16(d_w)*f16(d_x)*float(lanes).

DATA t44shift<>+0(SB)/8, $0
DATA t44shift<>+8(SB)/8, $0
DATA t44shift<>+16(SB)/8, $0x0000000400000004
DATA t44shift<>+24(SB)/8, $0x0000000400000004
GLOBL t44shift<>(SB), RODATA|NOPTR, $32

// TOK: Y(dx) = f16(d_x) of the block at xaddr; Y(nc) = -8·Σx in int32 lanes.
#define TOK(xaddr, xq, dx, nc) \
	MOVWLZX      xaddr, BX          \
	VBROADCASTSS (R8)(BX*4), dx     \
	VPXORD       nc, nc, nc         \
	VPDPBUSD     xq, Y13, nc        \
	VPSUBD       nc, Y15, nc

// PAIR: acc += (d_w in Y9) * dx * float(nc + Σ nibble·x).
#define PAIR(xq, nc, dx, acc) \
	VMOVDQA32   nc, Y10      \
	VPDPBUSD    xq, Y8, Y10  \
	VCVTDQ2PS   Y10, Y10     \
	VMULPS      dx, Y9, Y11  \
	VFMADD231PS Y11, Y10, acc

// ROW: the block of the row at (rb)(R10*1) against the four tokens.
#define ROW(rb, a0, a1, a2, a3) \
	VBROADCASTI128 2(rb)(R10*1), Y8 \
	VPSRLVD        Y12, Y8, Y8      \
	VPAND          Y14, Y8, Y8      \
	MOVWLZX        (rb)(R10*1), AX  \
	VBROADCASTSS   (R8)(AX*4), Y9   \
	PAIR(2(DI), Y0, Y4, a0)         \
	PAIR(2(DI)(R11*1), Y1, Y5, a1)  \
	PAIR(2(DI)(R11*2), Y2, Y6, a2)  \
	PAIR(2(DI)(DX*1), Y3, Y7, a3)

// HSUMT sums the eight lanes of y into x's low lane, in the order of
// dot_amd64.s's HSUMY (results must not depend on the kernel).
#define HSUMT(y, x, tmp) \
	VEXTRACTF128 $1, y, tmp \
	VADDPS       tmp, x, x  \
	VMOVHLPS     x, x, tmp  \
	VADDPS       tmp, x, x  \
	VMOVSHDUP    x, tmp     \
	VADDSS       tmp, x, x

// HSUM4 stores the lane sums of Y0..Y3 at off(AX).
#define HSUM4(off) \
	HSUMT(Y0, X0, X4)    \
	HSUMT(Y1, X1, X5)    \
	HSUMT(Y2, X2, X6)    \
	HSUMT(Y3, X3, X7)    \
	VMOVSS  X0, off(AX)  \
	VMOVSS  X1, off+4(AX) \
	VMOVSS  X2, off+8(AX) \
	VMOVSS  X3, off+12(AX)

// func q4Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
// Rows w[k*rb:] for k < 4, tokens x[t*stride:] for t < 4; dst[4*k+t].
TEXT ·q4Tile44VNNI(SB), NOSPLIT, $0-88
	MOVQ w_base+0(FP), SI
	MOVQ rb+24(FP), AX
	MOVQ x_base+32(FP), DI
	MOVQ stride+56(FP), R11
	MOVQ nb+64(FP), CX
	MOVQ tab+72(FP), R8
	LEAQ (SI)(AX*1), R9
	LEAQ (R9)(AX*1), R12
	LEAQ (R12)(AX*1), R13
	LEAQ (R11)(R11*2), DX
	VMOVDQU      t44shift<>(SB), Y12
	MOVL         $0x08080808, AX
	VPBROADCASTD AX, Y13
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Y14
	VPXORD       Y15, Y15, Y15
	VPXORD       Y16, Y16, Y16
	VPXORD       Y17, Y17, Y17
	VPXORD       Y18, Y18, Y18
	VPXORD       Y19, Y19, Y19
	VPXORD       Y20, Y20, Y20
	VPXORD       Y21, Y21, Y21
	VPXORD       Y22, Y22, Y22
	VPXORD       Y23, Y23, Y23
	VPXORD       Y24, Y24, Y24
	VPXORD       Y25, Y25, Y25
	VPXORD       Y26, Y26, Y26
	VPXORD       Y27, Y27, Y27
	VPXORD       Y28, Y28, Y28
	VPXORD       Y29, Y29, Y29
	VPXORD       Y30, Y30, Y30
	VPXORD       Y31, Y31, Y31
	XORQ         R10, R10
	TESTQ        CX, CX
	JZ           t44done

t44loop:
	TOK((DI), 2(DI), Y4, Y0)
	TOK((DI)(R11*1), 2(DI)(R11*1), Y5, Y1)
	TOK((DI)(R11*2), 2(DI)(R11*2), Y6, Y2)
	TOK((DI)(DX*1), 2(DI)(DX*1), Y7, Y3)
	ROW(SI, Y16, Y17, Y18, Y19)
	ROW(R9, Y20, Y21, Y22, Y23)
	ROW(R12, Y24, Y25, Y26, Y27)
	ROW(R13, Y28, Y29, Y30, Y31)
	ADDQ $18, R10
	ADDQ $34, DI
	DECQ CX
	JNZ  t44loop

t44done:
	MOVQ      dst+80(FP), AX
	VMOVAPS   Y16, Y0
	VMOVAPS   Y17, Y1
	VMOVAPS   Y18, Y2
	VMOVAPS   Y19, Y3
	HSUM4(0)
	VMOVAPS   Y20, Y0
	VMOVAPS   Y21, Y1
	VMOVAPS   Y22, Y2
	VMOVAPS   Y23, Y3
	HSUM4(16)
	VMOVAPS   Y24, Y0
	VMOVAPS   Y25, Y1
	VMOVAPS   Y26, Y2
	VMOVAPS   Y27, Y3
	HSUM4(32)
	VMOVAPS   Y28, Y0
	VMOVAPS   Y29, Y1
	VMOVAPS   Y30, Y2
	VMOVAPS   Y31, Y3
	HSUM4(48)
	VZEROUPPER
	RET

// The Q8_0 tile: VPDPBUSD wants one unsigned operand, so x is offset to
// x+128 (x ^ 0x80, in [1, 255] as x is never -128) and each row's
// accumulator starts at -128·Σw, which cancels the offset exactly; the
// weights may hold any int8, -128 included.

// TOK8: Y(dx) = f16(d_x) of the block at xaddr; Y(xu) = its quants + 128.
#define TOK8(xaddr, xq, dx, xu) \
	MOVWLZX      xaddr, BX      \
	VBROADCASTSS (R8)(BX*4), dx \
	VPXORD       xq, Y13, xu

// PAIR8: acc += (d_w in Y9) * dx * float(Y8 + Σ (x+128)·w), w at wq.
#define PAIR8(wq, xu, dx, acc) \
	VMOVDQA32   Y8, Y10      \
	VPDPBUSD    wq, xu, Y10  \
	VCVTDQ2PS   Y10, Y10     \
	VMULPS      dx, Y9, Y11  \
	VFMADD231PS Y11, Y10, acc

// ROW8: the block of the row at (rb)(R10*1) against the four tokens.
#define ROW8(rb, a0, a1, a2, a3) \
	VPXORD       Y8, Y8, Y8              \
	VPDPBUSD     2(rb)(R10*1), Y13, Y8   \
	VPSUBD       Y8, Y15, Y8             \
	MOVWLZX      (rb)(R10*1), AX         \
	VBROADCASTSS (R8)(AX*4), Y9          \
	PAIR8(2(rb)(R10*1), Y0, Y4, a0)      \
	PAIR8(2(rb)(R10*1), Y1, Y5, a1)      \
	PAIR8(2(rb)(R10*1), Y2, Y6, a2)      \
	PAIR8(2(rb)(R10*1), Y3, Y7, a3)

// func q8Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[65536]float32, dst *[16]float32)
// Rows w[k*rb:] for k < 4, tokens x[t*stride:] for t < 4; dst[4*k+t].
TEXT ·q8Tile44VNNI(SB), NOSPLIT, $0-88
	MOVQ w_base+0(FP), SI
	MOVQ rb+24(FP), AX
	MOVQ x_base+32(FP), DI
	MOVQ stride+56(FP), R11
	MOVQ nb+64(FP), CX
	MOVQ tab+72(FP), R8
	LEAQ (SI)(AX*1), R9
	LEAQ (R9)(AX*1), R12
	LEAQ (R12)(AX*1), R13
	LEAQ (R11)(R11*2), DX
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Y13
	VPXORD       Y15, Y15, Y15
	VPXORD       Y16, Y16, Y16
	VPXORD       Y17, Y17, Y17
	VPXORD       Y18, Y18, Y18
	VPXORD       Y19, Y19, Y19
	VPXORD       Y20, Y20, Y20
	VPXORD       Y21, Y21, Y21
	VPXORD       Y22, Y22, Y22
	VPXORD       Y23, Y23, Y23
	VPXORD       Y24, Y24, Y24
	VPXORD       Y25, Y25, Y25
	VPXORD       Y26, Y26, Y26
	VPXORD       Y27, Y27, Y27
	VPXORD       Y28, Y28, Y28
	VPXORD       Y29, Y29, Y29
	VPXORD       Y30, Y30, Y30
	VPXORD       Y31, Y31, Y31
	XORQ         R10, R10
	TESTQ        CX, CX
	JZ           t8done

t8loop:
	TOK8((DI), 2(DI), Y4, Y0)
	TOK8((DI)(R11*1), 2(DI)(R11*1), Y5, Y1)
	TOK8((DI)(R11*2), 2(DI)(R11*2), Y6, Y2)
	TOK8((DI)(DX*1), 2(DI)(DX*1), Y7, Y3)
	ROW8(SI, Y16, Y17, Y18, Y19)
	ROW8(R9, Y20, Y21, Y22, Y23)
	ROW8(R12, Y24, Y25, Y26, Y27)
	ROW8(R13, Y28, Y29, Y30, Y31)
	ADDQ $34, R10
	ADDQ $34, DI
	DECQ CX
	JNZ  t8loop

t8done:
	MOVQ      dst+80(FP), AX
	VMOVAPS   Y16, Y0
	VMOVAPS   Y17, Y1
	VMOVAPS   Y18, Y2
	VMOVAPS   Y19, Y3
	HSUM4(0)
	VMOVAPS   Y20, Y0
	VMOVAPS   Y21, Y1
	VMOVAPS   Y22, Y2
	VMOVAPS   Y23, Y3
	HSUM4(16)
	VMOVAPS   Y24, Y0
	VMOVAPS   Y25, Y1
	VMOVAPS   Y26, Y2
	VMOVAPS   Y27, Y3
	HSUM4(32)
	VMOVAPS   Y28, Y0
	VMOVAPS   Y29, Y1
	VMOVAPS   Y30, Y2
	VMOVAPS   Y31, Y3
	HSUM4(48)
	VZEROUPPER
	RET
