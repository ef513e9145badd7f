//go:build amd64 && !purego && gc

#include "textflag.h"

// Shift counts for LOADQ4: 0 for the low lane's dwords, 4 for the high lane's.
DATA q4shift<>+0(SB)/8, $0
DATA q4shift<>+8(SB)/8, $0
DATA q4shift<>+16(SB)/8, $0x0000000400000004
DATA q4shift<>+24(SB)/8, $0x0000000400000004
GLOBL q4shift<>(SB), RODATA|NOPTR, $32

// AVX2+FMA kernels. The quantized ones follow llama.cpp's arithmetic: per
// block, the int8 products are summed exactly in eight int32 lanes
// (VPMADDUBSW needs one unsigned operand, so |w| multiplies x*sign(w)),
// converted to float32 and accumulated as acc += f16(d_w)*f16(d_x)*lanes.
// Scales are read through the f16 -> f32 table passed in tab.
//
// Register use: SI weights, DI activations, R8 table, CX block count,
// Y15 int16 ones, Y14 bytes 0x0f, Y13 bytes 0x08.

// HSUMY sums the eight lanes of y into x's low lane (tmp is scratch) in the
// one order every kernel uses, ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)):
// llama.cpp's hsum_float_8, so that sums match its AVX2 kernels, and so that
// a row·token result is the same bits whichever kernel (one token, four
// rows, four tokens, tile) computed it, which the engine's batches rely on.
#define HSUMY(y, x, tmp) \
	VEXTRACTF128 $1, y, tmp \
	VADDPS       tmp, x, x  \
	VMOVHLPS     x, x, tmp  \
	VADDPS       tmp, x, x  \
	VMOVSHDUP    x, tmp     \
	VADDSS       tmp, x, x

// HSUM8 sums the eight lanes of Y0 into X0's low lane.
#define HSUM8 HSUMY(Y0, X0, X1)

// SCALE broadcasts f16(d_w at woff(SI)) * f16(d_x at xoff(xreg)) into dst.
#define SCALE(woff, xoff, xreg, dst) \
	MOVWLZX      woff(SI), AX      \
	MOVWLZX      xoff(xreg), BX    \
	VBROADCASTSS (R8)(AX*4), dst   \
	VBROADCASTSS (R8)(BX*4), Y7    \
	VMULPS       Y7, dst, dst

// XSCALE broadcasts f16(d_x at xoff(xreg)) and multiplies it by Y6 (d_w).
#define XSCALE(xoff, xreg, dst) \
	MOVWLZX      xoff(xreg), BX  \
	VBROADCASTSS (R8)(BX*4), dst \
	VMULPS       Y6, dst, dst

// SDOT: Y4 holds |w|, Y2 the signed w; x at xaddr. acc += scale * lanes(|w| . x*sign(w)).
#define SDOT(xaddr, scale, acc) \
	VMOVDQU     xaddr, Y3     \
	VPSIGNB     Y2, Y3, Y3    \
	VPMADDUBSW  Y3, Y4, Y3    \
	VPMADDWD    Y15, Y3, Y3   \
	VCVTDQ2PS   Y3, Y3        \
	VFMADD231PS Y3, scale, acc

// LOADQ8 puts the 32 int8 quants of the Q8_0 block at off(SI) in Y2, |w| in Y4.
#define LOADQ8(off) \
	VMOVDQU off+2(SI), Y2 \
	VPSIGNB Y2, Y2, Y4

// LOADQ4 puts the 32 unsigned nibbles of the Q4_0 block at off(base) in
// dst, elements 0..15 in the low lane and 16..31 in the high lane: the 16
// bytes go to both lanes, and the high lane's dwords shift right by 4 (Y12)
// before the mask, which is one shuffle cheaper than shifting and inserting.
#define LOADQ4B(off, base, dst) \
	VBROADCASTI128 off+2(base), dst \
	VPSRLVD        Y12, dst, dst    \
	VPAND          Y14, dst, dst

#define LOADQ4(off) LOADQ4B(off, SI, Y2)

// UDOT: acc += scale * lanes(Σ (nibble-8)*x) for the nibbles in Y2 and x at
// xaddr, as maddubs(nibble, x) - maddubs(8, x): each int16 pair sum stays
// within ±2*15*127, and this is cheaper than making the nibbles signed.
#define UDOT(xaddr, scale, acc) \
	VPMADDUBSW  xaddr, Y2, Y3  \
	VPMADDUBSW  xaddr, Y13, Y4 \
	VPSUBW      Y4, Y3, Y3     \
	VPMADDWD    Y15, Y3, Y3    \
	VCVTDQ2PS   Y3, Y3         \
	VFMADD231PS Y3, scale, acc

#define CONSTS \
	VMOVDQU      q4shift<>(SB), Y12 \
	VPCMPEQW     Y15, Y15, Y15 \
	VPSRLW       $15, Y15, Y15 \
	MOVL         $0x0f0f0f0f, AX \
	MOVQ         AX, X14       \
	VPBROADCASTD X14, Y14      \
	MOVL         $0x08080808, AX \
	MOVQ         AX, X13       \
	VPBROADCASTD X13, Y13

// func q8DotAVX2(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q8DotAVX2(SB), NOSPLIT, $0-68
	MOVQ w_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ nb+48(FP), CX
	MOVQ tab+56(FP), R8
	CONSTS
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	CMPQ   CX, $2
	JB     q8tail

q8loop:
	SCALE(0, 0, DI, Y6)
	LOADQ8(0)
	SDOT(2(DI), Y6, Y0)
	SCALE(34, 34, DI, Y5)
	LOADQ8(34)
	SDOT(36(DI), Y5, Y0)
	ADDQ $68, SI
	ADDQ $68, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q8loop

q8tail:
	TESTQ CX, CX
	JZ    q8done
	SCALE(0, 0, DI, Y6)
	LOADQ8(0)
	SDOT(2(DI), Y6, Y0)

q8done:
	HSUM8
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET

// func q4DotAVX2(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q4DotAVX2(SB), NOSPLIT, $0-68
	MOVQ w_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ nb+48(FP), CX
	MOVQ tab+56(FP), R8
	CONSTS
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	CMPQ   CX, $2
	JB     q4tail

q4loop:
	SCALE(0, 0, DI, Y6)
	LOADQ4(0)
	UDOT(2(DI), Y6, Y0)
	SCALE(18, 34, DI, Y5)
	LOADQ4(18)
	UDOT(36(DI), Y5, Y0)
	ADDQ $36, SI
	ADDQ $68, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q4loop

q4tail:
	TESTQ CX, CX
	JZ    q4done
	SCALE(0, 0, DI, Y6)
	LOADQ4(0)
	UDOT(2(DI), Y6, Y0)

q4done:
	HSUM8
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET

// HSUM4TO sums the lanes of each of Y0..Y3, in HSUMY's order, and stores
// the four sums at (R11).
#define HSUM4TO \
	HSUMY(Y0, X0, X4)  \
	HSUMY(Y1, X1, X5)  \
	HSUMY(Y2, X2, X6)  \
	HSUMY(Y3, X3, X7)  \
	VMOVSS  X0, (R11)  \
	VMOVSS  X1, 4(R11) \
	VMOVSS  X2, 8(R11) \
	VMOVSS  X3, 12(R11)

// func q8Dot4AVX2(w, x []byte, stride, nb int, tab *[65536]float32, dst *[4]float32)
TEXT ·q8Dot4AVX2(SB), NOSPLIT, $0-80
	MOVQ w_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ stride+48(FP), R9
	MOVQ nb+56(FP), CX
	MOVQ tab+64(FP), R8
	MOVQ dst+72(FP), R11
	LEAQ (R9)(R9*2), R10
	CONSTS
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ  CX, CX
	JZ     q8x4done
	// Y2 is needed for the weights: keep token 2's sum in Y8 meanwhile.
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9

q8x4loop:
	MOVWLZX      (SI), AX
	VBROADCASTSS (R8)(AX*4), Y6
	LOADQ8(0)
	XSCALE(0, DI, Y5)
	SDOT(2(DI), Y5, Y0)
	LEAQ         (DI)(R9*1), DX
	XSCALE(0, DX, Y5)
	SDOT(2(DX), Y5, Y1)
	LEAQ         (DI)(R9*2), DX
	XSCALE(0, DX, Y5)
	SDOT(2(DX), Y5, Y8)
	LEAQ         (DI)(R10*1), DX
	XSCALE(0, DX, Y5)
	SDOT(2(DX), Y5, Y9)
	ADDQ $34, SI
	ADDQ $34, DI
	DECQ CX
	JNZ  q8x4loop
	VMOVAPS Y8, Y2
	VMOVAPS Y9, Y3

q8x4done:
	HSUM4TO
	VZEROUPPER
	RET

// func q4Dot4AVX2(w, x []byte, stride, nb int, tab *[65536]float32, dst *[4]float32)
TEXT ·q4Dot4AVX2(SB), NOSPLIT, $0-80
	MOVQ w_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ stride+48(FP), R9
	MOVQ nb+56(FP), CX
	MOVQ tab+64(FP), R8
	MOVQ dst+72(FP), R11
	LEAQ (R9)(R9*2), R10
	CONSTS
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ  CX, CX
	JZ     q4x4done
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9

q4x4loop:
	MOVWLZX      (SI), AX
	VBROADCASTSS (R8)(AX*4), Y6
	LOADQ4(0)
	XSCALE(0, DI, Y5)
	UDOT(2(DI), Y5, Y0)
	LEAQ         (DI)(R9*1), DX
	XSCALE(0, DX, Y5)
	UDOT(2(DX), Y5, Y1)
	LEAQ         (DI)(R9*2), DX
	XSCALE(0, DX, Y5)
	UDOT(2(DX), Y5, Y8)
	LEAQ         (DI)(R10*1), DX
	XSCALE(0, DX, Y5)
	UDOT(2(DX), Y5, Y9)
	ADDQ $18, SI
	ADDQ $34, DI
	DECQ CX
	JNZ  q4x4loop
	VMOVAPS Y8, Y2
	VMOVAPS Y9, Y3

q4x4done:
	HSUM4TO
	VZEROUPPER
	RET

// func dotAVX2(a, b []float32) float32
// len(a) is a multiple of 32 and len(b) >= len(a).
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ   $5, CX
	JZ     dotdone

dotloop:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	DECQ        CX
	JNZ         dotloop

dotdone:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func axpyAVX2(a float32, x, y []float32)
// len(x) is a multiple of 32 and len(y) >= len(x).
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	VBROADCASTSS a+0(FP), Y0
	MOVQ         x_base+8(FP), SI
	MOVQ         x_len+16(FP), CX
	MOVQ         y_base+32(FP), DI
	SHRQ         $5, CX
	JZ           axpydone

axpyloop:
	VMOVUPS     (DI), Y4
	VMOVUPS     32(DI), Y5
	VMOVUPS     64(DI), Y6
	VMOVUPS     96(DI), Y7
	VFMADD231PS (SI), Y0, Y4
	VFMADD231PS 32(SI), Y0, Y5
	VFMADD231PS 64(SI), Y0, Y6
	VFMADD231PS 96(SI), Y0, Y7
	VMOVUPS     Y4, (DI)
	VMOVUPS     Y5, 32(DI)
	VMOVUPS     Y6, 64(DI)
	VMOVUPS     Y7, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	DECQ        CX
	JNZ         axpyloop

axpydone:
	VZEROUPPER
	RET

// ROW2Q4 does one Q4_0 block of a weight row at off(base)(R10*1) against the
// x block in Y3 (and 8·x pair sums in Y4): acc += scale * lanes.
#define ROW2Q4(off, base, scale, tmp, acc) \
	VBROADCASTI128 off+2(base)(R10*1), tmp \
	VPSRLVD        Y12, tmp, tmp           \
	VPAND          Y14, tmp, tmp           \
	VPMADDUBSW     Y3, tmp, tmp            \
	VPSUBW         Y4, tmp, tmp            \
	VPMADDWD       Y15, tmp, tmp           \
	VCVTDQ2PS      tmp, tmp                \
	VFMADD231PS    tmp, scale, acc

// ROWSCALE sets dst to f16(d_w of the block at (base)(R10*1)) * Y7 (d_x).
#define ROWSCALE(base, dst) \
	MOVWLZX      (base)(R10*1), AX \
	VBROADCASTSS (R8)(AX*4), dst   \
	VMULPS       Y7, dst, dst

// func q4Rows4AVX2(w0, w1, w2, w3, x []byte, nb int, tab *[65536]float32, dst *[4]float32)
// Four weight rows against one token (decode): the activation block, its
// scale and its 8·x correction are loaded once for the four rows.
TEXT ·q4Rows4AVX2(SB), NOSPLIT, $0-144
	MOVQ w0_base+0(FP), SI
	MOVQ w1_base+24(FP), R9
	MOVQ w2_base+48(FP), R12
	MOVQ w3_base+72(FP), R13
	MOVQ x_base+96(FP), DI
	MOVQ nb+120(FP), CX
	MOVQ tab+128(FP), R8
	MOVQ dst+136(FP), R11
	CONSTS
	XORQ   R10, R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	TESTQ  CX, CX
	JZ     q4r4done

q4r4loop:
	MOVWLZX      (DI), BX
	VBROADCASTSS (R8)(BX*4), Y7
	VMOVDQU      2(DI), Y3
	VPMADDUBSW   Y3, Y13, Y4
	ROWSCALE(SI, Y5)
	ROW2Q4(0, SI, Y5, Y2, Y0)
	ROWSCALE(R9, Y6)
	ROW2Q4(0, R9, Y6, Y8, Y1)
	ROWSCALE(R12, Y5)
	ROW2Q4(0, R12, Y5, Y2, Y9)
	ROWSCALE(R13, Y6)
	ROW2Q4(0, R13, Y6, Y8, Y10)
	ADDQ $18, R10
	ADDQ $34, DI
	DECQ CX
	JNZ  q4r4loop

q4r4done:
	VMOVAPS Y9, Y2
	VMOVAPS Y10, Y3
	HSUM4TO
	VZEROUPPER
	RET

DATA q8absmask<>+0(SB)/4, $0x7fffffff
GLOBL q8absmask<>(SB), RODATA|NOPTR, $4
DATA q8d127<>+0(SB)/4, $0x42fe0000
GLOBL q8d127<>(SB), RODATA|NOPTR, $4
// VPERMD order undoing the lane interleave of the two pack steps.
DATA q8perm<>+0(SB)/4, $0
DATA q8perm<>+4(SB)/4, $4
DATA q8perm<>+8(SB)/4, $1
DATA q8perm<>+12(SB)/4, $5
DATA q8perm<>+16(SB)/4, $2
DATA q8perm<>+20(SB)/4, $6
DATA q8perm<>+24(SB)/4, $3
DATA q8perm<>+28(SB)/4, $7
GLOBL q8perm<>(SB), RODATA|NOPTR, $32

// ROUNDQ8 turns the floats in reg into int32 round(reg*Y8), ties to even
// (VCVTPS2DQ under Go's default MXCSR).
#define ROUNDQ8(reg) \
	VMULPS    Y8, reg, reg  \
	VCVTPS2DQ reg, reg

// func quantizeQ8AVX2(dst []byte, src []float32, nb int)
// quantizeQ8 (dot.go) for nb blocks, bit for bit: d = amax/127 stored as
// f16 (VCVTPS2PH rounds to nearest even, as quant.F32ToF16),
// q = round_even(x * (127/amax)).
TEXT ·quantizeQ8AVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ nb+48(FP), CX
	VBROADCASTSS q8absmask<>(SB), Y14
	VMOVDQU      q8perm<>(SB), Y11
	VMOVSS       q8d127<>(SB), X9
	TESTQ        CX, CX
	JZ           qdone

qloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS  Y14, Y0, Y4
	VANDPS  Y14, Y1, Y5
	VMAXPS  Y5, Y4, Y4
	VANDPS  Y14, Y2, Y5
	VANDPS  Y14, Y3, Y6
	VMAXPS  Y6, Y5, Y5
	VMAXPS  Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS  X5, X4, X4
	VMOVHLPS X4, X4, X5
	VMAXPS  X5, X4, X4
	VMOVSHDUP X4, X5
	VMAXSS  X5, X4, X4          // amax
	VDIVSS  X9, X4, X7          // d = amax/127
	VCVTPS2PH $0, X7, X5
	VMOVD   X5, AX
	MOVW    AX, (DI)
	VXORPS  X8, X8, X8
	VUCOMISS X8, X4
	JEQ     qzero               // amax == 0: id = 0, all quants 0
	VDIVSS  X4, X9, X8          // id = 127/amax
	VBROADCASTSS X8, Y8
	ROUNDQ8(Y0)
	ROUNDQ8(Y1)
	ROUNDQ8(Y2)
	ROUNDQ8(Y3)
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD    Y0, Y11, Y0
	VMOVDQU   Y0, 2(DI)
	JMP     qnext

qzero:
	VPXOR   Y0, Y0, Y0
	VMOVDQU Y0, 2(DI)

qnext:
	ADDQ $128, SI
	ADDQ $34, DI
	DECQ CX
	JNZ  qloop

qdone:
	VZEROUPPER
	RET

// func f16DotAVX2(w []byte, x []float32) float32
// Σ f16(w[i]) * x[i] for len(x) elements, a multiple of 32; w holds 2*len(x) bytes.
TEXT ·f16DotAVX2(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   x_len+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ   $5, CX
	JZ     f16done

f16loop:
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   16(SI), Y5
	VCVTPH2PS   32(SI), Y6
	VCVTPH2PS   48(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	DECQ        CX
	JNZ         f16loop

f16done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func bf16DotAVX2(w []byte, x []float32) float32
// Σ bf16(w[i]) * x[i]; a bfloat16 is the top half of a float32.
TEXT ·bf16DotAVX2(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   x_len+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ   $5, CX
	JZ     bf16done

bf16loop:
	VPMOVZXWD   (SI), Y4
	VPMOVZXWD   16(SI), Y5
	VPMOVZXWD   32(SI), Y6
	VPMOVZXWD   48(SI), Y7
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	DECQ        CX
	JNZ         bf16loop

bf16done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// Vector exp for the activations: expf's method (vec.go) on 8 lanes, with n
// rounded to nearest even (VROUNDPS) instead of away from zero, which changes
// nothing but which half of [-ln2/2, ln2/2] r falls in. Lanes below exlo
// flush to 0; above exhi they saturate at e^exhi (finite).
DATA exlo<>+0(SB)/8, $0xc2ad47aec2ad47ae
DATA exlo<>+8(SB)/8, $0xc2ad47aec2ad47ae
DATA exlo<>+16(SB)/8, $0xc2ad47aec2ad47ae
DATA exlo<>+24(SB)/8, $0xc2ad47aec2ad47ae
GLOBL exlo<>(SB), RODATA|NOPTR, $32
DATA exhi<>+0(SB)/8, $0x42b1721742b17217
DATA exhi<>+8(SB)/8, $0x42b1721742b17217
DATA exhi<>+16(SB)/8, $0x42b1721742b17217
DATA exhi<>+24(SB)/8, $0x42b1721742b17217
GLOBL exhi<>(SB), RODATA|NOPTR, $32
DATA exlog2e<>+0(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA exlog2e<>+8(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA exlog2e<>+16(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA exlog2e<>+24(SB)/8, $0x3fb8aa3b3fb8aa3b
GLOBL exlog2e<>(SB), RODATA|NOPTR, $32
DATA exln2hi<>+0(SB)/8, $0x3f3180003f318000
DATA exln2hi<>+8(SB)/8, $0x3f3180003f318000
DATA exln2hi<>+16(SB)/8, $0x3f3180003f318000
DATA exln2hi<>+24(SB)/8, $0x3f3180003f318000
GLOBL exln2hi<>(SB), RODATA|NOPTR, $32
DATA exln2lo<>+0(SB)/8, $0xb95e8083b95e8083
DATA exln2lo<>+8(SB)/8, $0xb95e8083b95e8083
DATA exln2lo<>+16(SB)/8, $0xb95e8083b95e8083
DATA exln2lo<>+24(SB)/8, $0xb95e8083b95e8083
GLOBL exln2lo<>(SB), RODATA|NOPTR, $32
DATA exc0<>+0(SB)/8, $0x3950696739506967
DATA exc0<>+8(SB)/8, $0x3950696739506967
DATA exc0<>+16(SB)/8, $0x3950696739506967
DATA exc0<>+24(SB)/8, $0x3950696739506967
GLOBL exc0<>(SB), RODATA|NOPTR, $32
DATA exc1<>+0(SB)/8, $0x3ab743ce3ab743ce
DATA exc1<>+8(SB)/8, $0x3ab743ce3ab743ce
DATA exc1<>+16(SB)/8, $0x3ab743ce3ab743ce
DATA exc1<>+24(SB)/8, $0x3ab743ce3ab743ce
GLOBL exc1<>(SB), RODATA|NOPTR, $32
DATA exc2<>+0(SB)/8, $0x3c0889083c088908
DATA exc2<>+8(SB)/8, $0x3c0889083c088908
DATA exc2<>+16(SB)/8, $0x3c0889083c088908
DATA exc2<>+24(SB)/8, $0x3c0889083c088908
GLOBL exc2<>(SB), RODATA|NOPTR, $32
DATA exc3<>+0(SB)/8, $0x3d2aa9c13d2aa9c1
DATA exc3<>+8(SB)/8, $0x3d2aa9c13d2aa9c1
DATA exc3<>+16(SB)/8, $0x3d2aa9c13d2aa9c1
DATA exc3<>+24(SB)/8, $0x3d2aa9c13d2aa9c1
GLOBL exc3<>(SB), RODATA|NOPTR, $32
DATA exc4<>+0(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA exc4<>+8(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA exc4<>+16(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA exc4<>+24(SB)/8, $0x3e2aaaaa3e2aaaaa
GLOBL exc4<>(SB), RODATA|NOPTR, $32
DATA exc5<>+0(SB)/8, $0x3f0000003f000000
DATA exc5<>+8(SB)/8, $0x3f0000003f000000
DATA exc5<>+16(SB)/8, $0x3f0000003f000000
DATA exc5<>+24(SB)/8, $0x3f0000003f000000
GLOBL exc5<>(SB), RODATA|NOPTR, $32
DATA exone<>+0(SB)/8, $0x3f8000003f800000
DATA exone<>+8(SB)/8, $0x3f8000003f800000
DATA exone<>+16(SB)/8, $0x3f8000003f800000
DATA exone<>+24(SB)/8, $0x3f8000003f800000
GLOBL exone<>(SB), RODATA|NOPTR, $32
DATA ex126<>+0(SB)/8, $0x7e0000007e
DATA ex126<>+8(SB)/8, $0x7e0000007e
DATA ex126<>+16(SB)/8, $0x7e0000007e
DATA ex126<>+24(SB)/8, $0x7e0000007e
GLOBL ex126<>(SB), RODATA|NOPTR, $32
DATA exsign<>+0(SB)/8, $0x8000000080000000
DATA exsign<>+8(SB)/8, $0x8000000080000000
DATA exsign<>+16(SB)/8, $0x8000000080000000
DATA exsign<>+24(SB)/8, $0x8000000080000000
GLOBL exsign<>(SB), RODATA|NOPTR, $32
DATA exgk1<>+0(SB)/8, $0xbfcc422abfcc422a
DATA exgk1<>+8(SB)/8, $0xbfcc422abfcc422a
DATA exgk1<>+16(SB)/8, $0xbfcc422abfcc422a
DATA exgk1<>+24(SB)/8, $0xbfcc422abfcc422a
GLOBL exgk1<>(SB), RODATA|NOPTR, $32
DATA exgk2<>+0(SB)/8, $0xbd922279bd922279
DATA exgk2<>+8(SB)/8, $0xbd922279bd922279
DATA exgk2<>+16(SB)/8, $0xbd922279bd922279
DATA exgk2<>+24(SB)/8, $0xbd922279bd922279
GLOBL exgk2<>(SB), RODATA|NOPTR, $32

// EXP8 sets x to e^x in all lanes; n, r, m are scratch.
#define EXP8(x, n, r, m) \
	VCMPPS       $1, exlo<>(SB), x, m  \
	VMAXPS       exlo<>(SB), x, x      \
	VMINPS       exhi<>(SB), x, x      \
	VMULPS       exlog2e<>(SB), x, n   \
	VROUNDPS     $0, n, n              \
	VFNMADD231PS exln2hi<>(SB), n, x   \
	VFNMADD231PS exln2lo<>(SB), n, x   \
	VMOVAPS      exc0<>(SB), r         \
	VFMADD213PS  exc1<>(SB), x, r      \
	VFMADD213PS  exc2<>(SB), x, r      \
	VFMADD213PS  exc3<>(SB), x, r      \
	VFMADD213PS  exc4<>(SB), x, r      \
	VFMADD213PS  exc5<>(SB), x, r      \
	VFMADD213PS  exone<>(SB), x, r     \
	VFMADD213PS  exone<>(SB), x, r     \
	VCVTPS2DQ    n, n                  \
	VPADDD       ex126<>(SB), n, n     \
	VPSLLD       $23, n, n             \
	VMULPS       n, r, x               \
	VADDPS       x, x, x               \
	VANDNPS      x, m, x

// func siluAVX2(x []float32)
// x[i] = x[i] / (1 + e^-x[i]) for len(x) a multiple of 8.
TEXT ·siluAVX2(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $3, CX
	JZ   silundone

siluloop:
	VMOVUPS (SI), Y5
	VXORPS  exsign<>(SB), Y5, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VADDPS  exone<>(SB), Y0, Y0
	VDIVPS  Y0, Y5, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     siluloop

silundone:
	VZEROUPPER
	RET

// func geluAVX2(x []float32)
// x[i] = x[i] / (1 + e^(-2u)), u = sqrt(2/π)(x + 0.044715x³), len(x) a multiple of 8.
TEXT ·geluAVX2(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $3, CX
	JZ   geludone

geluloop:
	VMOVUPS     (SI), Y5
	VMULPS      Y5, Y5, Y0
	VMOVAPS     exgk2<>(SB), Y4
	VFMADD213PS exgk1<>(SB), Y0, Y4
	VMULPS      Y5, Y4, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VADDPS      exone<>(SB), Y0, Y0
	VDIVPS      Y0, Y5, Y0
	VMOVUPS     Y0, (SI)
	ADDQ        $32, SI
	DECQ        CX
	JNZ         geluloop

geludone:
	VZEROUPPER
	RET

// func expSumAVX2(x []float32, m float32) float64
// x[i] = e^(x[i]-m) for len(x) a multiple of 8; returns Σ x[i] in float64.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-40
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS m+24(FP), Y6
	VXORPD       Y8, Y8, Y8
	VXORPD       Y9, Y9, Y9
	SHRQ         $3, CX
	JZ           expsumdone

expsumloop:
	VMOVUPS      (SI), Y0
	VSUBPS       Y6, Y0, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VMOVUPS      Y0, (SI)
	VCVTPS2PD    X0, Y4
	VEXTRACTF128 $1, Y0, X5
	VCVTPS2PD    X5, Y5
	VADDPD       Y4, Y8, Y8
	VADDPD       Y5, Y9, Y9
	ADDQ         $32, SI
	DECQ         CX
	JNZ          expsumloop

expsumdone:
	VADDPD       Y9, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VADDPD       X9, X8, X8
	VHADDPD      X8, X8, X8
	VMOVSD       X8, ret+32(FP)
	VZEROUPPER
	RET
