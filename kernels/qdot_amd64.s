//go:build amd64 && !purego && gc

#include "textflag.h"
#include "rows8_amd64.h"
#define PFD 1152

// Quantized dot products, AVX2. The arithmetic is the generic one (dot.go)
// bit for bit: per block the int8 products are summed exactly, first in
// int32 lanes of four bytes (VPMADDUBSW needs one unsigned operand: Q8_0
// uses |w|·(x·sign w), Q4_0 nibble·x − 8·x), then across the lanes
// (VPHADDD), and every block adds round(f16(d_w)·f16(d_x)·sumi) to a float32
// accumulator in block order. That is the order llama.cpp's golden runs
// sum in, and it makes a row·token result independent of the kernel (one
// token, four rows, four tokens, tile), which the engine's batches rely on.
// Kernels doing four results keep them in the lanes of one XMM register.
//
// Register use: R8 the f16 -> f32 table, CX the block count, Y12 the
// nibble shift counts, Y13 bytes 0x08, Y14 bytes 0x0f, Y15 int16 ones.

// Shift counts for NIB: 0 for the low lane's dwords, 4 for the high lane's.
DATA qshift<>+0(SB)/8, $0
DATA qshift<>+8(SB)/8, $0
DATA qshift<>+16(SB)/8, $0x0000000400000004
DATA qshift<>+24(SB)/8, $0x0000000400000004
GLOBL qshift<>(SB), RODATA|NOPTR, $32

#define QCONSTS \
	VMOVDQU      qshift<>(SB), Y12 \
	MOVL         $0x08080808, AX   \
	MOVQ         AX, X13           \
	VPBROADCASTD X13, Y13          \
	MOVL         $0x0f0f0f0f, AX   \
	MOVQ         AX, X14           \
	VPBROADCASTD X14, Y14          \
	VPCMPEQW     Y15, Y15, Y15     \
	VPSRLW       $15, Y15, Y15

// NIB puts the 32 nibbles of the 16 Q4_0 quant bytes at addr in dst as
// unsigned bytes, elements 0..15 in the low lane and 16..31 in the high one:
// the bytes go to both lanes and the high lane's dwords shift right by 4.
#define NIB(addr, dst) \
	VBROADCASTI128 addr, dst    \
	VPSRLVD        Y12, dst, dst \
	VPAND          Y14, dst, dst

// Q4LANES: dst = int32 lanes of Σ (nib-8)·x, x (register or memory) signed,
// corr = maddubs(8, x). dst may be nib.
#define Q4LANES(x, nib, corr, dst) \
	VPMADDUBSW x, nib, dst   \
	VPSUBW     corr, dst, dst \
	VPMADDWD   Y15, dst, dst

// Q8LANES: dst = int32 lanes of Σ w·x for the Q8_0 quants at xaddr, with
// w in Y2 and |w| in Y4.
#define Q8LANES(xaddr, dst) \
	VMOVDQU    xaddr, dst    \
	VPSIGNB    Y2, dst, dst  \
	VPMADDUBSW dst, Y4, dst  \
	VPMADDWD   Y15, dst, dst

// REDUCE1: xa = float32(Σ lanes of a), in the low lane (a's XMM is xa).
#define REDUCE1(a, xa, xt) \
	VEXTRACTI128 $1, a, xt \
	VPADDD       xt, xa, xa \
	VPHADDD      xa, xa, xa \
	VPHADDD      xa, xa, xa \
	VCVTDQ2PS    xa, xa

// REDUCE4: xa = float32([Σa, Σb, Σc, Σd]); a and c are clobbered.
#define REDUCE4(a, b, c, d, xa, xt) \
	VPHADDD      b, a, a    \
	VPHADDD      d, c, c    \
	VPHADDD      c, a, a    \
	VEXTRACTI128 $1, a, xt  \
	VPADDD       xt, xa, xa \
	VCVTDQ2PS    xa, xa

// GATHER4: dst = [f16 at b0, f16 at b1, f16 at b2, f16 at b3] as float32.
#define GATHER4(b0, b1, b2, b3, dst) \
	MOVWLZX   b0, AX                        \
	VMOVSS    (R8)(AX*4), dst               \
	MOVWLZX   b1, AX                        \
	VINSERTPS $0x10, (R8)(AX*4), dst, dst   \
	MOVWLZX   b2, AX                        \
	VINSERTPS $0x20, (R8)(AX*4), dst, dst   \
	MOVWLZX   b3, AX                        \
	VINSERTPS $0x30, (R8)(AX*4), dst, dst

// SCALE1: xs = f16(d_w at (SI)) * f16(d_x at (DI)).
#define SCALE1(xs) \
	MOVWLZX (SI), AX             \
	MOVWLZX (DI), BX             \
	VMOVSS  (R8)(AX*4), xs       \
	VMULSS  (R8)(BX*4), xs, xs

// func q8DotAVX2(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q8DotAVX2(SB), NOSPLIT, $0-68
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   nb+48(FP), CX
	MOVQ   tab+56(FP), R8
	QCONSTS
	VXORPS X0, X0, X0
	TESTQ  CX, CX
	JZ     q8done

q8loop:
	VMOVDQU 2(SI), Y2
	VPSIGNB Y2, Y2, Y4
	Q8LANES(2(DI), Y3)
	REDUCE1(Y3, X3, X5)
	SCALE1(X6)
	VMULSS  X6, X3, X3
	VADDSS  X3, X0, X0
	ADDQ    $34, SI
	ADDQ    $34, DI
	DECQ    CX
	JNZ     q8loop

q8done:
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET

// func q4DotAVX2(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q4DotAVX2(SB), NOSPLIT, $0-68
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   nb+48(FP), CX
	MOVQ   tab+56(FP), R8
	QCONSTS
	VXORPS X0, X0, X0
	TESTQ  CX, CX
	JZ     q4done

q4loop:
	NIB(2(SI), Y2)
	VMOVDQU    2(DI), Y3
	VPMADDUBSW Y3, Y13, Y4
	Q4LANES(Y3, Y2, Y4, Y2)
	REDUCE1(Y2, X2, X5)
	SCALE1(X6)
	VMULSS     X6, X2, X2
	VADDSS     X2, X0, X0
	ADDQ       $18, SI
	ADDQ       $34, DI
	DECQ       CX
	JNZ        q4loop

q4done:
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET

// TOKQ4: dst = int32 lanes of the block's nibbles (Y2) · the x quants at xq.
#define TOKQ4(xq, dst) \
	VPMADDUBSW xq, Y13, Y4 \
	Q4LANES(xq, Y2, Y4, dst)

// TOKENS4 finishes a block of one row against four tokens: the four lane
// vectors a, b, c, d are reduced, scaled by d_w (at (SI)) times each token's
// d_x, and added to X10.
#define TOKENS4(a, b, c, d) \
	REDUCE4(a, b, c, d, X0, X3)                                 \
	GATHER4((DI), (DI)(R9*1), (DI)(R9*2), (DI)(R10*1), X6)      \
	MOVWLZX      (SI), AX                                       \
	VBROADCASTSS (R8)(AX*4), X7                                 \
	VMULPS       X6, X7, X6                                     \
	VMULPS       X6, X0, X0                                     \
	VADDPS       X0, X10, X10

// func q8Dot4AVX2(w, x []byte, stride, nb int, tab *[65536]float32, dst *[4]float32)
// One row against the four tokens at x[t*stride:]: dst[t].
TEXT ·q8Dot4AVX2(SB), NOSPLIT, $0-80
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   stride+48(FP), R9
	MOVQ   nb+56(FP), CX
	MOVQ   tab+64(FP), R8
	MOVQ   dst+72(FP), R11
	LEAQ   (R9)(R9*2), R10
	QCONSTS
	VXORPS X10, X10, X10
	TESTQ  CX, CX
	JZ     q8x4done

q8x4loop:
	VMOVDQU 2(SI), Y2
	VPSIGNB Y2, Y2, Y4
	Q8LANES(2(DI), Y0)
	Q8LANES(2(DI)(R9*1), Y1)
	Q8LANES(2(DI)(R9*2), Y8)
	Q8LANES(2(DI)(R10*1), Y9)
	TOKENS4(Y0, Y1, Y8, Y9)
	ADDQ    $34, SI
	ADDQ    $34, DI
	DECQ    CX
	JNZ     q8x4loop

q8x4done:
	VMOVUPS X10, (R11)
	VZEROUPPER
	RET

// func q4Dot4AVX2(w, x []byte, stride, nb int, tab *[65536]float32, dst *[4]float32)
TEXT ·q4Dot4AVX2(SB), NOSPLIT, $0-80
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   stride+48(FP), R9
	MOVQ   nb+56(FP), CX
	MOVQ   tab+64(FP), R8
	MOVQ   dst+72(FP), R11
	LEAQ   (R9)(R9*2), R10
	QCONSTS
	VXORPS X10, X10, X10
	TESTQ  CX, CX
	JZ     q4x4done

q4x4loop:
	NIB(2(SI), Y2)
	TOKQ4(2(DI), Y0)
	TOKQ4(2(DI)(R9*1), Y1)
	TOKQ4(2(DI)(R9*2), Y8)
	TOKQ4(2(DI)(R10*1), Y9)
	TOKENS4(Y0, Y1, Y8, Y9)
	ADDQ $18, SI
	ADDQ $34, DI
	DECQ CX
	JNZ  q4x4loop

q4x4done:
	VMOVUPS X10, (R11)
	VZEROUPPER
	RET

// func q4Rows4AVX2(w0, w1, w2, w3, x []byte, nb int, tab *[65536]float32, dst *[4]float32)
// Four rows against one token (decode): the token's block, its scale and
// its 8·x correction are loaded once for the four rows; dst[k].
TEXT ·q4Rows4AVX2(SB), NOSPLIT, $0-144
	MOVQ   w0_base+0(FP), SI
	MOVQ   w1_base+24(FP), R9
	MOVQ   w2_base+48(FP), R12
	MOVQ   w3_base+72(FP), R13
	MOVQ   x_base+96(FP), DI
	MOVQ   nb+120(FP), CX
	MOVQ   tab+128(FP), R8
	MOVQ   dst+136(FP), R11
	QCONSTS
	XORQ   R10, R10
	VXORPS X9, X9, X9
	TESTQ  CX, CX
	JZ     q4r4done

q4r4loop:
	PREFETCHT0   PFD(SI)(R10*1)
	PREFETCHT0   PFD(R9)(R10*1)
	PREFETCHT0   PFD(R12)(R10*1)
	PREFETCHT0   PFD(R13)(R10*1)
	VMOVDQU      2(DI), Y3
	VPMADDUBSW   Y3, Y13, Y4
	NIB(2(SI)(R10*1), Y0)
	Q4LANES(Y3, Y0, Y4, Y0)
	NIB(2(R9)(R10*1), Y1)
	Q4LANES(Y3, Y1, Y4, Y1)
	NIB(2(R12)(R10*1), Y2)
	Q4LANES(Y3, Y2, Y4, Y2)
	NIB(2(R13)(R10*1), Y5)
	Q4LANES(Y3, Y5, Y4, Y5)
	REDUCE4(Y0, Y1, Y2, Y5, X0, X8)
	GATHER4((SI)(R10*1), (R9)(R10*1), (R12)(R10*1), (R13)(R10*1), X6)
	MOVWLZX      (DI), BX
	VBROADCASTSS (R8)(BX*4), X7
	VMULPS       X7, X6, X6
	VMULPS       X6, X0, X0
	VADDPS       X0, X9, X9
	ADDQ         $18, R10
	ADDQ         $34, DI
	DECQ         CX
	JNZ          q4r4loop

q4r4done:
	VMOVUPS X9, (R11)
	VZEROUPPER
	RET

// ROWQ8: dst = int32 lanes of Σ w·x for the Q8_0 row block at 2(rb)(R10*1)
// and the token's quants in Y3.
#define ROWQ8(rb, dst) \
	VMOVDQU    2(rb)(R10*1), Y6 \
	VPSIGNB    Y6, Y6, Y7       \
	VPSIGNB    Y6, Y3, dst      \
	VPMADDUBSW dst, Y7, dst     \
	VPMADDWD   Y15, dst, dst

// func q8Rows4AVX2(w0, w1, w2, w3, x []byte, nb int, tab *[65536]float32, dst *[4]float32)
TEXT ·q8Rows4AVX2(SB), NOSPLIT, $0-144
	MOVQ   w0_base+0(FP), SI
	MOVQ   w1_base+24(FP), R9
	MOVQ   w2_base+48(FP), R12
	MOVQ   w3_base+72(FP), R13
	MOVQ   x_base+96(FP), DI
	MOVQ   nb+120(FP), CX
	MOVQ   tab+128(FP), R8
	MOVQ   dst+136(FP), R11
	QCONSTS
	XORQ   R10, R10
	VXORPS X9, X9, X9
	TESTQ  CX, CX
	JZ     q8r4done

q8r4loop:
	VMOVDQU      2(DI), Y3
	ROWQ8(SI, Y0)
	ROWQ8(R9, Y1)
	ROWQ8(R12, Y2)
	ROWQ8(R13, Y5)
	REDUCE4(Y0, Y1, Y2, Y5, X0, X8)
	GATHER4((SI)(R10*1), (R9)(R10*1), (R12)(R10*1), (R13)(R10*1), X6)
	MOVWLZX      (DI), BX
	VBROADCASTSS (R8)(BX*4), X7
	VMULPS       X7, X6, X6
	VMULPS       X6, X0, X0
	VADDPS       X0, X9, X9
	ADDQ         $34, R10
	ADDQ         $34, DI
	DECQ         CX
	JNZ          q8r4loop

q8r4done:
	VMOVUPS X9, (R11)
	VZEROUPPER
	RET

// Eight rows against one token (decode). Row k is at w + k·rb. Row k's
// integer block sum ends in lane k of one YMM register, so one conversion,
// one f16 scale vector (VCVTPH2PS) and one multiply and add serve eight
// rows, instead of the per-row reductions and table look-ups of the
// four-row kernels. The float arithmetic per lane is the generic code's:
// acc += (d_w·d_x)·float32(sumi), in block order.
//
// Eight rows are eight interleaved streams, which the hardware prefetchers
// follow poorly from DRAM; so each block step also prefetches, into L2
// (PREFETCHT1), the bytes the caller reads next (pf: the next eight rows,
// or the first rows of the caller's next chunk) in address order, as many
// bytes as the step consumes. Into L1 (PREFETCHT0) the same
// prefetch was worth much less: it evicts the rows being read. From DRAM,
// `go test -bench 'MatMul/Q4_0/.*/16384x8192/n=1'`: about 14 GB/s per
// thread without it, 23 with it.
//
// Registers: SI row 0's block, R9 rb, R10 3·rb, R11 5·rb, R12 7·rb, DI the
// token's block, BX the prefetch, CX blocks left, DX dst; Y15 int16 ones, Y14 bytes 0x0f,
// Y13 bytes 0x08; Y12 the accumulators.

// ROWSCALES8: Y11 = the eight rows' block scales d_w, as float32, times the
// token's d_x (f16 to f32 is exact, VCVTPH2PS or table alike).
#define ROWSCALES8 \
	SCALES8(X11, Y11)                      \
	VPBROADCASTW (DI), X10                 \
	VCVTPH2PS    X10, Y10                  \
	VMULPS       Y10, Y11, Y11

// ACC8: Y12 += Y11 · float32(s), s the eight sums in row order.
#define ACC8(s) \
	VCVTDQ2PS s, s      \
	VMULPS    Y11, s, s \
	VADDPS    s, Y12, Y12

// ROWS8SETUP: the row offsets and constants, after the arguments' loads.
#define ROWS8SETUP \
	ROWOFFSETS                     \
	MOVL         $0x08080808, AX   \
	MOVQ         AX, X13           \
	VPBROADCASTD X13, Y13          \
	MOVL         $0x0f0f0f0f, AX   \
	MOVQ         AX, X14           \
	VPBROADCASTD X14, Y14          \
	VPCMPEQW     Y15, Y15, Y15     \
	VPSRLW       $15, Y15, Y15     \
	VXORPS       Y12, Y12, Y12     \
	VPXOR        X11, X11, X11

// Q4PAIR: dst = int32 lanes 0-3 of Σ (nib-8)·x for the Q4_0 block at lo,
// lanes 4-7 for the one at hi; xdst is dst's XMM. Y0 and Y1 hold the
// token's elements 0-15 and 16-31 in both lanes, Y2 the int16 correction
// maddubs(8, x) of both halves. The int16 sums stay below 2^14: exact.
#define Q4PAIR(lo, hi, xdst, dst, t) \
	VMOVDQU     lo, xdst         \
	VINSERTI128 $1, hi, dst, dst \
	VPSRLW      $4, dst, t       \
	VPAND       Y14, dst, dst    \
	VPAND       Y14, t, t        \
	VPMADDUBSW  Y0, dst, dst     \
	VPMADDUBSW  Y1, t, t         \
	VPADDW      t, dst, dst      \
	VPSUBW      Y2, dst, dst     \
	VPMADDWD    Y15, dst, dst

// func q4Rows8AVX2(w []byte, rb int, x []byte, nb int, pf *byte, dst *[8]float32)
TEXT ·q4Rows8AVX2(SB), NOSPLIT, $0-80
	MOVQ w_base+0(FP), SI
	MOVQ rb+24(FP), R9
	MOVQ x_base+32(FP), DI
	MOVQ nb+56(FP), CX
	MOVQ pf+64(FP), BX
	MOVQ dst+72(FP), DX
	ROWS8SETUP
	TESTQ CX, CX
	JZ    q4r8done

q4r8loop:
	PREFETCH144
	VBROADCASTI128 2(DI), Y0
	VBROADCASTI128 18(DI), Y1
	VPMADDUBSW     Y0, Y13, Y2
	VPMADDUBSW     Y1, Y13, Y3
	VPADDW         Y3, Y2, Y2
	Q4PAIR(2(SI), 2(SI)(R9*4), X4, Y4, Y8)
	Q4PAIR(2(SI)(R9*1), 2(SI)(R11*1), X5, Y5, Y9)
	Q4PAIR(2(SI)(R9*2), 2(SI)(R10*2), X6, Y6, Y8)
	Q4PAIR(2(SI)(R10*1), 2(SI)(R12*1), X7, Y7, Y9)
	VPHADDD        Y5, Y4, Y4
	VPHADDD        Y7, Y6, Y6
	VPHADDD        Y6, Y4, Y4
	ROWSCALES8
	ACC8(Y4)
	ADDQ           $18, SI
	ADDQ           $34, DI
	DECQ           CX
	JNZ            q4r8loop

q4r8done:
	VMOVUPS Y12, (DX)
	VZEROUPPER
	RET

// q4Rows8VNNI is q4Rows8AVX2 with VPDPBUSD (AVX-512 VNNI), taking the
// token's block entries from aux (auxOf): each pair's int32 lanes take both
// halves' nibble·x products directly, which saves the int16 stage; the
// correction -8·Σx is added once to the eight rows' sums and d_x
// multiplies their scales, each an EVEX broadcast from aux; the scales
// come by scalar loads (SCALES8G) and the lanes are summed by SHUFSUM4.
// Per block about ten vector operations fewer than q4Rows8AVX2's scheme:
// `go test -bench 'Tile8/Q4_0/avx2\+fma\+avx512vnni/n=1'` (weights in L2,
// alternating builds) 12.2 → 11.3 µs.

// SHUFSUM4: per 128-bit lane, a = [Σa, Σb, Σc, Σd] of the four lanes of
// each of a, b, c, d (as VPHADDD b, a, a then d, c, c then c, a, a), with
// shuffles and adds that are one operation each; t and u are clobbered.
#define SHUFSUM4(a, b, c, d, t, u) \
	VSHUFPS $0x88, b, a, t \
	VSHUFPS $0xdd, b, a, u \
	VPADDD  u, t, a        \
	VSHUFPS $0x88, d, c, t \
	VSHUFPS $0xdd, d, c, u \
	VPADDD  u, t, c        \
	VSHUFPS $0x88, c, a, t \
	VSHUFPS $0xdd, c, a, u \
	VPADDD  u, t, a

#define Q4PAIRDP(lo, hi, a) \
	VMOVDQU     lo, X8         \
	VINSERTI128 $1, hi, Y8, Y8 \
	VPSRLW      $4, Y8, Y9     \
	VPAND       Y14, Y8, Y8    \
	VPAND       Y14, Y9, Y9    \
	VPXOR       a, a, a        \
	VPDPBUSD    Y0, Y8, a      \
	VPDPBUSD    Y1, Y9, a

// func q4Rows8VNNI(w []byte, rb int, x []byte, nb int, aux *xaux, astride int, pf *byte, dst *[8]float32)
TEXT ·q4Rows8VNNI(SB), NOSPLIT, $0-96
	MOVQ w_base+0(FP), SI
	MOVQ rb+24(FP), R9
	MOVQ x_base+32(FP), DI
	MOVQ nb+56(FP), CX
	MOVQ aux+64(FP), R13
	MOVQ astride+72(FP), R14
	MOVQ pf+80(FP), BX
	MOVQ dst+88(FP), DX
	ROWS8SETUP
	TESTQ CX, CX
	JZ    q4r8vdone

q4r8vloop:
	PREFETCH144
	VBROADCASTI128 2(DI), Y0
	VBROADCASTI128 18(DI), Y1
	Q4PAIRDP(2(SI), 2(SI)(R9*4), Y4)
	Q4PAIRDP(2(SI)(R9*1), 2(SI)(R11*1), Y5)
	Q4PAIRDP(2(SI)(R9*2), 2(SI)(R10*2), Y6)
	Q4PAIRDP(2(SI)(R10*1), 2(SI)(R12*1), Y7)
	SHUFSUM4(Y4, Y5, Y6, Y7, Y8, Y9)
	VPADDD.BCST    (R13), Y4, Y4
	SCALES8G(X11, Y11, X10)
	VMULPS.BCST    4(R13), Y11, Y11
	ACC8(Y4)
	ADDQ           $18, SI
	ADDQ           $34, DI
	ADDQ           R14, R13
	DECQ           CX
	JNZ            q4r8vloop

q4r8vdone:
	VMOVUPS Y12, (DX)
	VZEROUPPER
	RET

// Q8ROW: dst = int32 lanes of Σ w·x for the Q8_0 block at addr, the
// token's quants in Y0 (|w|·(x·sign w), as Q8LANES).
#define Q8ROW(addr, dst) \
	VMOVDQU    addr, Y10       \
	VPSIGNB    Y10, Y10, Y11   \
	VPSIGNB    Y10, Y0, dst    \
	VPMADDUBSW dst, Y11, dst   \
	VPMADDWD   Y15, dst, dst

// func q8Rows8AVX2(w []byte, rb int, x []byte, nb int, pf *byte, dst *[8]float32)
TEXT ·q8Rows8AVX2(SB), NOSPLIT, $0-80
	MOVQ w_base+0(FP), SI
	MOVQ rb+24(FP), R9
	MOVQ x_base+32(FP), DI
	MOVQ nb+56(FP), CX
	MOVQ pf+64(FP), BX
	MOVQ dst+72(FP), DX
	ROWS8SETUP
	TESTQ CX, CX
	JZ    q8r8done

q8r8loop:
	PREFETCH272
	VMOVDQU    2(DI), Y0
	Q8ROW(2(SI), Y1)
	Q8ROW(2(SI)(R9*1), Y2)
	Q8ROW(2(SI)(R9*2), Y3)
	Q8ROW(2(SI)(R10*1), Y4)
	Q8ROW(2(SI)(R9*4), Y5)
	Q8ROW(2(SI)(R11*1), Y6)
	Q8ROW(2(SI)(R10*2), Y7)
	Q8ROW(2(SI)(R12*1), Y8)
	// [r0..r3 | r4..r7]: pairwise sums within lanes, then the two
	// 128-bit halves of each row added across.
	VPHADDD    Y2, Y1, Y1
	VPHADDD    Y4, Y3, Y3
	VPHADDD    Y6, Y5, Y5
	VPHADDD    Y8, Y7, Y7
	VPHADDD    Y3, Y1, Y1
	VPHADDD    Y7, Y5, Y5
	VPERM2I128 $0x20, Y5, Y1, Y2
	VPERM2I128 $0x31, Y5, Y1, Y3
	VPADDD     Y3, Y2, Y1
	ROWSCALES8
	ACC8(Y1)
	ADDQ       $34, SI
	ADDQ       $34, DI
	DECQ       CX
	JNZ        q8r8loop

q8r8done:
	VMOVUPS Y12, (DX)
	VZEROUPPER
	RET
