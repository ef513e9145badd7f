//go:build amd64 && !purego && gc

#include "textflag.h"

// K-quant row dots, AVX2: dotQ4KGo, dotQ5KGo and dotQ6KGo (kquant.go) bit for bit.
// Each super-block's integer sums are exact in int32 lanes (VPMADDUBSW with
// the unsigned weight quants first, VPMADDWD by the broadcast sub-block
// scale), summed across the lanes, converted to float32 and scaled with the
// generic code's scalar float operations in its order. The scales are
// unpacked to int16 words in the 32-byte local frame, 0(SP), so each
// sub-block broadcasts its own from memory.

// Q4KHALF adds to Y9 the scaled sums of sub-blocks 2k and 2k+1: the 32 quant
// bytes at qoff(SI) (low nibbles: sub-block 2k, high: 2k+1), the Q8_K quants
// at xoff(DI) and xoff+32(DI), their scales the words at s0(SP) and s1(SP).
#define Q4KHALF(qoff, xlo, xhi, s0, s1) \
	VMOVDQU      qoff(SI), Y1     \
	VPAND        Y14, Y1, Y2      \
	VPSRLW       $4, Y1, Y3       \
	VPAND        Y14, Y3, Y3      \
	VPMADDUBSW   xlo(DI), Y2, Y2  \
	VPMADDUBSW   xhi(DI), Y3, Y3  \
	VPBROADCASTW s0(SP), Y4       \
	VPMADDWD     Y4, Y2, Y2       \
	VPBROADCASTW s1(SP), Y4       \
	VPMADDWD     Y4, Y3, Y3       \
	VPADDD       Y2, Y9, Y9       \
	VPADDD       Y3, Y9, Y9

// HSUM: the int32 sum of Y's eight lanes in X's low dword (t is scratch).
#define HSUM(y, x, t) \
	VEXTRACTI128 $1, y, t \
	VPADDD       t, x, x  \
	VPHADDD      x, x, x  \
	VPHADDD      x, x, x

// KSCALES unpacks the 12 scale bytes at 4(SI) of a Q4_K/Q5_K block as three
// dwords a, b, c (get_scale_min_k4): scales 0-3 = a&0x3f.., 4-7 = c&0x0f.. |
// (a>>6&0x03..)<<4, mins 0-3 = b&0x3f.., 4-7 = c>>4&0x0f.. | (b>>6&0x03..)<<4.
// It leaves summ = Σ m[j]·(bsums[2j]+bsums[2j+1]) in X7's low dword (the mins
// as words, each twice, against the 16 bsums at 260(DI)) and the scales as
// words at 16(SP).
#define KSCALES \
	MOVL  4(SI), AX \
	MOVL  8(SI), BX \
	MOVL  12(SI), DX \
	MOVL  AX, R10 \
	ANDL  $0x3f3f3f3f, R10 \
	MOVL  DX, R12 \
	ANDL  $0x0f0f0f0f, R12 \
	MOVL  AX, R11 \
	SHRL  $6, R11 \
	ANDL  $0x03030303, R11 \
	SHLL  $4, R11 \
	ORL   R11, R12 \
	SHLQ  $32, R12 \
	ORQ   R12, R10 \
	MOVL  BX, R11 \
	ANDL  $0x3f3f3f3f, R11 \
	MOVL  DX, R12 \
	SHRL  $4, R12 \
	ANDL  $0x0f0f0f0f, R12 \
	MOVL  BX, R13 \
	SHRL  $6, R13 \
	ANDL  $0x03030303, R13 \
	SHLL  $4, R13 \
	ORL   R13, R12 \
	SHLQ  $32, R12 \
	ORQ   R12, R11 \
	MOVQ        R11, X6 \
	VPMOVZXBW   X6, X6 \
	VPUNPCKLWD  X6, X6, X7 \
	VPUNPCKHWD  X6, X6, X8 \
	VINSERTI128 $1, X8, Y7, Y7 \
	VPMADDWD    260(DI), Y7, Y7 \
	HSUM(Y7, X7, X8) \
	MOVQ      R10, X6 \
	VPMOVZXBW X6, X6 \
	VMOVDQU   X6, 16(SP)

// KFINISH reduces the lanes of Y9 to sumi and adds (f16(d)*dx)*float32(sumi)
// to X0 and (f16(dmin)*dx)*float32(summ) to X10, as dotQ4KGo.
#define KFINISH \
	HSUM(Y9, X9, X8) \
	VCVTDQ2PS X9, X9 \
	VCVTDQ2PS X7, X7 \
	MOVWLZX   (SI), AX \
	VMOVSS    (R8)(AX*4), X5 \
	VMULSS    (DI), X5, X5 \
	VMULSS    X9, X5, X5 \
	VADDSS    X5, X0, X0 \
	MOVWLZX   2(SI), AX \
	VMOVSS    (R8)(AX*4), X5 \
	VMULSS    (DI), X5, X5 \
	VMULSS    X7, X5, X5 \
	VADDSS    X5, X10, X10

// func q4KDotAVX2(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q4KDotAVX2(SB), NOSPLIT, $32-68
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   nb+48(FP), CX
	MOVQ   tab+56(FP), R8
	MOVL   $0x0f0f0f0f, AX
	MOVQ   AX, X14
	VPBROADCASTD X14, Y14
	VXORPS X0, X0, X0 // acc
	VXORPS X10, X10, X10 // accm
	TESTQ  CX, CX
	JZ     q4kdone

q4kloop:
	KSCALES
	VPXOR Y9, Y9, Y9
	Q4KHALF(16, 4, 36, 16, 18)
	Q4KHALF(48, 68, 100, 20, 22)
	Q4KHALF(80, 132, 164, 24, 26)
	Q4KHALF(112, 196, 228, 28, 30)
	KFINISH

	ADDQ $144, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q4kloop

q4kdone:
	VSUBSS X10, X0, X0
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET

// Q5KHALF is Q4KHALF for Q5_K: quants at qoff(SI), their fifth bits bit lo
// (sub-block 2k) and bit hi (2k+1) of the qh bytes in Y11; Y12 is bytes 0x01.
#define Q5KHALF(qoff, lo, hi, xlo, xhi, s0, s1) \
	VMOVDQU      qoff(SI), Y1     \
	VPAND        Y14, Y1, Y2      \
	VPSRLW       $4, Y1, Y3       \
	VPAND        Y14, Y3, Y3      \
	VPSRLW       $lo, Y11, Y5     \
	VPAND        Y12, Y5, Y5      \
	VPSLLW       $4, Y5, Y5       \
	VPOR         Y5, Y2, Y2       \
	VPSRLW       $hi, Y11, Y5     \
	VPAND        Y12, Y5, Y5      \
	VPSLLW       $4, Y5, Y5       \
	VPOR         Y5, Y3, Y3       \
	VPMADDUBSW   xlo(DI), Y2, Y2  \
	VPMADDUBSW   xhi(DI), Y3, Y3  \
	VPBROADCASTW s0(SP), Y4       \
	VPMADDWD     Y4, Y2, Y2       \
	VPBROADCASTW s1(SP), Y4       \
	VPMADDWD     Y4, Y3, Y3       \
	VPADDD       Y2, Y9, Y9       \
	VPADDD       Y3, Y9, Y9

// func q5KDotAVX2(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q5KDotAVX2(SB), NOSPLIT, $32-68
	MOVQ         w_base+0(FP), SI
	MOVQ         x_base+24(FP), DI
	MOVQ         nb+48(FP), CX
	MOVQ         tab+56(FP), R8
	MOVL         $0x0f0f0f0f, AX
	MOVQ         AX, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x01010101, AX
	MOVQ         AX, X12
	VPBROADCASTD X12, Y12
	VXORPS       X0, X0, X0
	VXORPS       X10, X10, X10
	TESTQ        CX, CX
	JZ           q5kdone

q5kloop:
	KSCALES
	VMOVDQU 16(SI), Y11
	VPXOR   Y9, Y9, Y9
	Q5KHALF(48, 0, 1, 4, 36, 16, 18)
	Q5KHALF(80, 2, 3, 68, 100, 20, 22)
	Q5KHALF(112, 4, 5, 132, 164, 24, 26)
	Q5KHALF(144, 6, 7, 196, 228, 28, 30)
	KFINISH

	ADDQ $176, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q5kloop

q5kdone:
	VSUBSS X10, X0, X0
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET

// Q6KQUARTER adds to Y9 the scaled sums Σ q·x of the 32 values 32k..32k+31
// of a half: quants (0..63) in q, Q8_K quants at xoff(DI), the scales of
// its two sub-blocks the words at s0(SP) (low lane) and s1(SP) (high lane).
#define Q6KQUARTER(q, xoff, s0, s1) \
	VPMADDUBSW   xoff(DI), q, q   \
	VPBROADCASTW s0(SP), X4       \
	VPBROADCASTW s1(SP), X7       \
	VINSERTI128  $1, X7, Y4, Y4   \
	VPMADDWD     Y4, q, q         \
	VPADDD       q, Y9, Y9

// Q6KHALF adds half h's 128 values: ql at qloff(SI), qloff+32(SI), qh at
// qhoff(SI), Q8_K quants from xoff(DI), scales from the words at s(SP).
#define Q6KHALF(ql0, ql1, qh, x0, x1, x2, x3, s0, s1, s2, s3, s4, s5, s6, s7) \
	VMOVDQU    ql0(SI), Y1      \
	VMOVDQU    ql1(SI), Y2      \
	VMOVDQU    qh(SI), Y3       \
	VPSLLW     $4, Y3, Y6       \
	VPAND      Y13, Y6, Y6      \
	VPAND      Y14, Y1, Y5      \
	VPOR       Y6, Y5, Y5       \
	Q6KQUARTER(Y5, x0, s0, s1)  \
	VPSLLW     $2, Y3, Y6       \
	VPAND      Y13, Y6, Y6      \
	VPAND      Y14, Y2, Y5      \
	VPOR       Y6, Y5, Y5       \
	Q6KQUARTER(Y5, x1, s2, s3)  \
	VPAND      Y13, Y3, Y6      \
	VPSRLW     $4, Y1, Y5       \
	VPAND      Y14, Y5, Y5      \
	VPOR       Y6, Y5, Y5       \
	Q6KQUARTER(Y5, x2, s4, s5)  \
	VPSRLW     $2, Y3, Y6       \
	VPAND      Y13, Y6, Y6      \
	VPSRLW     $4, Y2, Y5       \
	VPAND      Y14, Y5, Y5      \
	VPOR       Y6, Y5, Y5       \
	Q6KQUARTER(Y5, x3, s6, s7)

// func q6KDotAVX2(w, x []byte, nb int, tab *[65536]float32) float32
TEXT ·q6KDotAVX2(SB), NOSPLIT, $32-68
	MOVQ   w_base+0(FP), SI
	MOVQ   x_base+24(FP), DI
	MOVQ   nb+48(FP), CX
	MOVQ   tab+56(FP), R8
	MOVL   $0x0f0f0f0f, AX
	MOVQ   AX, X14
	VPBROADCASTD X14, Y14
	MOVL   $0x30303030, AX
	MOVQ   AX, X13
	VPBROADCASTD X13, Y13
	VXORPS X0, X0, X0
	TESTQ  CX, CX
	JZ     q6kdone

q6kloop:
	// The 16 int8 scales as words at 0(SP); Σ (q-32)·x = Σ q·x - 32·Σ x,
	// and Σ x of sub-block g is bsums[g]: start the lanes at -32·sc·bsums.
	VPMOVSXBW 192(SI), Y4
	VMOVDQU   Y4, 0(SP)
	VPMADDWD  260(DI), Y4, Y9
	VPSLLD    $5, Y9, Y9
	VPXOR     Y8, Y8, Y8
	VPSUBD    Y9, Y8, Y9

	Q6KHALF(0, 32, 128, 4, 36, 68, 100, 0, 2, 4, 6, 8, 10, 12, 14)
	Q6KHALF(64, 96, 160, 132, 164, 196, 228, 16, 18, 20, 22, 24, 26, 28, 30)
	HSUM(Y9, X9, X8)

	// acc += (f16(d)*dx) * float32(sumi)
	VCVTDQ2PS X9, X9
	MOVWLZX   208(SI), AX
	VMOVSS    (R8)(AX*4), X5
	VMULSS    (DI), X5, X5
	VMULSS    X9, X5, X5
	VADDSS    X5, X0, X0

	ADDQ $210, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q6kloop

q6kdone:
	VMOVSS X0, ret+64(FP)
	VZEROUPPER
	RET
