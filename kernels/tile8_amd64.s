//go:build amd64 && !purego && gc

#include "textflag.h"
#include "rows8_amd64.h"

// 8-row tiles of four or eight tokens (prefill, and the daemon decoding
// several sequences at once). Per block the eight rows' quants are loaded
// two rows to a register (rows k and k+4, low and high lane) and transposed
// in-lane (4×4 dwords) so that lane k of Yi holds quants 4i..4i+3 of row k.
// A token then needs no horizontal sums: eight VPDPBUSD, each with four of
// the token's quants broadcast from memory, leave row k's Σ w·x in lane k.
// VPDPBUSD multiplies unsigned by signed bytes, so the weights enter as
// unsigned (Q4_0 nibbles 0..15; Q8_0 quants + 128) and each token's int32
// lanes start at the offset's correction, -8·Σx or -128·Σx, which the caller
// computed once per token and block (aux, with the block's d_x as float32).
// Per lane the float arithmetic is the one-row kernels':
// acc += float(Σ) · (d_w · d_x), in block order.
//
// Registers: SI row 0's block, R9 rb, R10 3·rb, R11 5·rb, R12 7·rb; DI
// token 0's block, AX token 4's, R13 the stride, DX 3·stride; R8 this
// block's aux entry of token 0 (tokens 8 bytes apart, blocks astride
// apart); CX blocks left; BX the prefetch of what the caller reads next.
// Y0-Y7 the transposed quants, Y8-Y11 temporaries, Y12 the rows' d_w,
// Y13 bytes 0x80, Y14 bytes 0x0f, Y16-Y23 the tokens' accumulators, Y24
// and Y25 a token's sums and scale.

// TRANSPOSE4: the 4×4 dword transpose of a, b, c, d within each lane.
#define TRANSPOSE4(a, b, c, d) \
	VPUNPCKLDQ  b, a, Y8    \
	VPUNPCKHDQ  b, a, Y9    \
	VPUNPCKLDQ  d, c, Y10   \
	VPUNPCKHDQ  d, c, Y11   \
	VPUNPCKLQDQ Y10, Y8, a  \
	VPUNPCKHQDQ Y10, Y8, b  \
	VPUNPCKLQDQ Y11, Y9, c  \
	VPUNPCKHQDQ Y11, Y9, d

// PAIR: y = the 16 bytes at a (low lane) and at b (high lane); x is y's XMM.
#define PAIR(a, b, x, y) \
	VMOVDQU     a, x  \
	VINSERTI128 $1, b, y, y

// Q4QUANTS: Y0-Y7 = the rows' Q4_0 nibbles of this block, transposed. The
// bytes are transposed first (lane k of Yi, i < 4, holds bytes 4i..4i+3 of
// row k), then split: low nibbles are quants 4i..4i+3, high ones 16+4i...
#define Q4QUANTS \
	PAIR(2(SI), 2(SI)(R9*4), X0, Y0)            \
	PAIR(2(SI)(R9*1), 2(SI)(R11*1), X1, Y1)     \
	PAIR(2(SI)(R9*2), 2(SI)(R10*2), X2, Y2)     \
	PAIR(2(SI)(R10*1), 2(SI)(R12*1), X3, Y3)    \
	TRANSPOSE4(Y0, Y1, Y2, Y3)                  \
	VPSRLW      $4, Y0, Y4                      \
	VPSRLW      $4, Y1, Y5                      \
	VPSRLW      $4, Y2, Y6                      \
	VPSRLW      $4, Y3, Y7                      \
	VPAND       Y14, Y0, Y0                     \
	VPAND       Y14, Y1, Y1                     \
	VPAND       Y14, Y2, Y2                     \
	VPAND       Y14, Y3, Y3                     \
	VPAND       Y14, Y4, Y4                     \
	VPAND       Y14, Y5, Y5                     \
	VPAND       Y14, Y6, Y6                     \
	VPAND       Y14, Y7, Y7

// Q8QUANTS: Y0-Y7 = the rows' Q8_0 quants of this block + 128, transposed.
#define Q8QUANTS \
	PAIR(2(SI), 2(SI)(R9*4), X0, Y0)    \
	PAIR(2(SI)(R9*1), 2(SI)(R11*1), X1, Y1)   \
	PAIR(2(SI)(R9*2), 2(SI)(R10*2), X2, Y2)   \
	PAIR(2(SI)(R10*1), 2(SI)(R12*1), X3, Y3)  \
	PAIR(18(SI), 18(SI)(R9*4), X4, Y4)   \
	PAIR(18(SI)(R9*1), 18(SI)(R11*1), X5, Y5)  \
	PAIR(18(SI)(R9*2), 18(SI)(R10*2), X6, Y6)  \
	PAIR(18(SI)(R10*1), 18(SI)(R12*1), X7, Y7) \
	VPXORD      Y13, Y0, Y0            \
	VPXORD      Y13, Y1, Y1            \
	VPXORD      Y13, Y2, Y2            \
	VPXORD      Y13, Y3, Y3            \
	VPXORD      Y13, Y4, Y4            \
	VPXORD      Y13, Y5, Y5            \
	VPXORD      Y13, Y6, Y6            \
	VPXORD      Y13, Y7, Y7            \
	TRANSPOSE4(Y0, Y1, Y2, Y3)         \
	TRANSPOSE4(Y4, Y5, Y6, Y7)

// TOKEN: acc += the eight rows' results for the token whose block is at
// q (a base and index, e.g. (DI)(R13*1)) and aux entry at a(R8).
#define TOKEN(q, a, acc) \
	VPBROADCASTD  a(R8), Y24       \
	VPDPBUSD.BCST 2 q, Y0, Y24     \
	VPDPBUSD.BCST 6 q, Y1, Y24     \
	VPDPBUSD.BCST 10 q, Y2, Y24    \
	VPDPBUSD.BCST 14 q, Y3, Y24    \
	VPDPBUSD.BCST 18 q, Y4, Y24    \
	VPDPBUSD.BCST 22 q, Y5, Y24    \
	VPDPBUSD.BCST 26 q, Y6, Y24    \
	VPDPBUSD.BCST 30 q, Y7, Y24    \
	VCVTDQ2PS     Y24, Y24         \
	VMULPS.BCST   a+4(R8), Y12, Y25 \
	VMULPS        Y25, Y24, Y24    \
	VADDPS        Y24, acc, acc

#define TOKENS4 \
	TOKEN((DI), 0, Y16)         \
	TOKEN((DI)(R13*1), 8, Y17)  \
	TOKEN((DI)(R13*2), 16, Y18) \
	TOKEN((DI)(DX*1), 24, Y19)

#define TOKENS8 \
	TOKENS4                     \
	TOKEN((AX), 32, Y20)        \
	TOKEN((AX)(R13*1), 40, Y21) \
	TOKEN((AX)(R13*2), 48, Y22) \
	TOKEN((AX)(DX*1), 56, Y23)

// TOKEN8A (q8Tile84AVX2, below; defined before any TEXT so that vet reads
// its (SP) as the kernel's locals): dst[off:off+32] += the eight rows'
// results for the token at q, aux entry at a(R8); Y10 its int32 sums.
// Q8STEP: Y10 += the int32 sums of the token's quants at o q (four, broadcast)
// against the transposed weights T = |w| with their signs at so(SP).
#define Q8STEP(q, o, so, T) \
	VPBROADCASTD o q, Y8      \
	VPSIGNB      so(SP), Y8, Y9 \
	VPMADDUBSW   Y9, T, Y9    \
	VPMADDWD     Y13, Y9, Y9  \
	VPADDD       Y9, Y10, Y10

#define TOKEN8A(q, a, off) \
	VPBROADCASTD 2 q, Y8         \
	VPSIGNB      (SP), Y8, Y9    \
	VPMADDUBSW   Y9, Y0, Y9      \
	VPMADDWD     Y13, Y9, Y10    \
	Q8STEP(q, 6, 32, Y1)         \
	Q8STEP(q, 10, 64, Y2)        \
	Q8STEP(q, 14, 96, Y3)        \
	Q8STEP(q, 18, 128, Y4)       \
	Q8STEP(q, 22, 160, Y5)       \
	Q8STEP(q, 26, 192, Y6)       \
	Q8STEP(q, 30, 224, Y7)       \
	VCVTDQ2PS    Y10, Y10        \
	VBROADCASTSS a+4(R8), Y9     \
	VMULPS       Y9, Y12, Y9     \
	VMULPS       Y9, Y10, Y10    \
	VADDPS       off(AX), Y10, Y10 \
	VMOVUPS      Y10, off(AX)

// TILEPRO: the registers above from the arguments; the accumulators zeroed.
#define TILEPRO \
	MOVQ         w_base+0(FP), SI   \
	MOVQ         rb+24(FP), R9      \
	MOVQ         x_base+32(FP), DI  \
	MOVQ         stride+56(FP), R13 \
	MOVQ         nb+64(FP), CX      \
	MOVQ         aux+72(FP), R8     \
	MOVQ         pf+88(FP), BX      \
	ROWOFFSETS                      \
	LEAQ         (R13)(R13*2), DX   \
	MOVL         $0x80808080, AX    \
	VPBROADCASTD AX, Y13            \
	MOVL         $0x0f0f0f0f, AX    \
	VPBROADCASTD AX, Y14            \
	LEAQ         (DI)(R13*4), AX    \
	VPXOR        X12, X12, X12      \
	VPXORD       Y16, Y16, Y16      \
	VPXORD       Y17, Y17, Y17      \
	VPXORD       Y18, Y18, Y18      \
	VPXORD       Y19, Y19, Y19      \
	VPXORD       Y20, Y20, Y20      \
	VPXORD       Y21, Y21, Y21      \
	VPXORD       Y22, Y22, Y22      \
	VPXORD       Y23, Y23, Y23

// NEXT: on to the next block (wb bytes per weight block); loop to l.
#define NEXT(wb, l) \
	ADDQ $wb, SI              \
	ADDQ $34, DI              \
	ADDQ $34, AX              \
	ADDQ astride+80(FP), R8   \
	DECQ CX                   \
	JNZ  l

#define STORE4 \
	MOVQ    dst+96(FP), AX \
	VMOVUPS Y16, (AX)      \
	VMOVUPS Y17, 32(AX)    \
	VMOVUPS Y18, 64(AX)    \
	VMOVUPS Y19, 96(AX)

#define STORE8 \
	STORE4                \
	VMOVUPS Y20, 128(AX) \
	VMOVUPS Y21, 160(AX) \
	VMOVUPS Y22, 192(AX) \
	VMOVUPS Y23, 224(AX)

// func q4Tile84VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)
// Rows w[k*rb:] for k < 8, tokens x[t*stride:] for t < 4; dst[8*t+k].
TEXT ·q4Tile84VNNI(SB), NOSPLIT, $0-104
	TILEPRO

q484loop:
	PREFETCH144
	Q4QUANTS
	SCALES8(X12, Y12)
	TOKENS4
	NEXT(18, q484loop)
	STORE4
	VZEROUPPER
	RET

// func q4Tile88VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[64]float32)
// As q4Tile84VNNI for tokens t < 8.
TEXT ·q4Tile88VNNI(SB), NOSPLIT, $0-104
	TILEPRO

q488loop:
	PREFETCH144
	Q4QUANTS
	SCALES8(X12, Y12)
	TOKENS8
	NEXT(18, q488loop)
	STORE8
	VZEROUPPER
	RET

// func q8Tile84VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)
// Rows w[k*rb:] for k < 8, tokens x[t*stride:] for t < 4; dst[8*t+k].
TEXT ·q8Tile84VNNI(SB), NOSPLIT, $0-104
	TILEPRO

q884loop:
	PREFETCH272
	Q8QUANTS
	SCALES8(X12, Y12)
	TOKENS4
	NEXT(34, q884loop)
	STORE4
	VZEROUPPER
	RET

// func q8Tile88VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[64]float32)
// As q8Tile84VNNI for tokens t < 8.
TEXT ·q8Tile88VNNI(SB), NOSPLIT, $0-104
	TILEPRO

q888loop:
	PREFETCH272
	Q8QUANTS
	SCALES8(X12, Y12)
	TOKENS8
	NEXT(34, q888loop)
	STORE8
	VZEROUPPER
	RET

// The same 8×4 Q4_0 tile on AVX2 alone (no VPDPBUSD, no broadcast operands,
// sixteen registers): per token, eight VPMADDUBSW of the transposed
// nibbles with four of the token's quants broadcast (VPBROADCASTD), their
// int16 pairs summed (at most 8·2·15·127 = 30480, so no int16 overflows;
// activation quants are within ±127), one VPMADDWD with ones to int32, and
// the correction added. The accumulators live in dst, which stays in L1.
// Registers as above but Y13 int16 ones and AX the dst pointer; Y8-Y10 a
// token's temporaries.

// TOKEN2: dst[off:off+32] += the eight rows' results for the token at q,
// aux entry at a(R8).
// Q4STEP: Y9 += the int16 pair sums of the token's quants at o q (four,
// broadcast) against the transposed nibbles T.
#define Q4STEP(q, o, T) \
	VPBROADCASTD o q, Y8     \
	VPMADDUBSW   Y8, T, Y10  \
	VPADDW       Y10, Y9, Y9

#define TOKEN2(q, a, off) \
	VPBROADCASTD 2 q, Y8         \
	VPMADDUBSW   Y8, Y0, Y9      \
	Q4STEP(q, 6, Y1)             \
	Q4STEP(q, 10, Y2)            \
	Q4STEP(q, 14, Y3)            \
	Q4STEP(q, 18, Y4)            \
	Q4STEP(q, 22, Y5)            \
	Q4STEP(q, 26, Y6)            \
	Q4STEP(q, 30, Y7)            \
	VPMADDWD     Y13, Y9, Y9     \
	VPBROADCASTD a(R8), Y10      \
	VPADDD       Y10, Y9, Y9     \
	VCVTDQ2PS    Y9, Y9          \
	VBROADCASTSS a+4(R8), Y10    \
	VMULPS       Y10, Y12, Y10   \
	VMULPS       Y10, Y9, Y9     \
	VADDPS       off(AX), Y9, Y9 \
	VMOVUPS      Y9, off(AX)

// func q4Tile84AVX2(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)
TEXT ·q4Tile84AVX2(SB), NOSPLIT, $0-104
	MOVQ         w_base+0(FP), SI
	MOVQ         rb+24(FP), R9
	MOVQ         x_base+32(FP), DI
	MOVQ         stride+56(FP), R13
	MOVQ         nb+64(FP), CX
	MOVQ         aux+72(FP), R8
	MOVQ         pf+88(FP), BX
	ROWOFFSETS
	LEAQ         (R13)(R13*2), DX
	MOVL         $0x0f0f0f0f, AX
	MOVQ         AX, X14
	VPBROADCASTD X14, Y14
	VPCMPEQW     Y13, Y13, Y13
	VPSRLW       $15, Y13, Y13
	VPXOR        X12, X12, X12
	MOVQ         dst+96(FP), AX
	VPXOR        Y8, Y8, Y8
	VMOVUPS      Y8, (AX)
	VMOVUPS      Y8, 32(AX)
	VMOVUPS      Y8, 64(AX)
	VMOVUPS      Y8, 96(AX)

q484aloop:
	PREFETCH144
	Q4QUANTS
	SCALES8(X12, Y12)
	TOKEN2((DI), 0, 0)
	TOKEN2((DI)(R13*1), 8, 32)
	TOKEN2((DI)(R13*2), 16, 64)
	TOKEN2((DI)(DX*1), 24, 96)
	ADDQ         $18, SI
	ADDQ         $34, DI
	ADDQ         astride+80(FP), R8
	DECQ         CX
	JNZ          q484aloop
	VZEROUPPER
	RET

// The 8×4 Q8_0 tile on AVX2 alone. Q8_0 weights are signed, and
// VPMADDUBSW wants one unsigned operand whose pair sums stay within int16:
// |w| (at most 128, -128 included) against x·sign(w) (within ±127, as
// activation quants are), at most 2·128·127 = 32512 per pair. So per block
// the transposed quants go to the stack (the sign source, a memory operand
// of VPSIGNB) and their absolute values stay in Y0-Y7; per token each of
// the eight is widened by VPMADDWD before the sum, the int16 pairs of two
// would not fit. The rest is q4Tile84AVX2's.

// func q8Tile84AVX2(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)
TEXT ·q8Tile84AVX2(SB), NOSPLIT, $256-104
	MOVQ         w_base+0(FP), SI
	MOVQ         rb+24(FP), R9
	MOVQ         x_base+32(FP), DI
	MOVQ         stride+56(FP), R13
	MOVQ         nb+64(FP), CX
	MOVQ         aux+72(FP), R8
	MOVQ         pf+88(FP), BX
	ROWOFFSETS
	LEAQ         (R13)(R13*2), DX
	VPCMPEQW     Y13, Y13, Y13
	VPSRLW       $15, Y13, Y13
	VPXOR        X12, X12, X12
	MOVQ         dst+96(FP), AX
	VPXOR        Y8, Y8, Y8
	VMOVUPS      Y8, (AX)
	VMOVUPS      Y8, 32(AX)
	VMOVUPS      Y8, 64(AX)
	VMOVUPS      Y8, 96(AX)

q884aloop:
	PREFETCH272
	PAIR(2(SI), 2(SI)(R9*4), X0, Y0)
	PAIR(2(SI)(R9*1), 2(SI)(R11*1), X1, Y1)
	PAIR(2(SI)(R9*2), 2(SI)(R10*2), X2, Y2)
	PAIR(2(SI)(R10*1), 2(SI)(R12*1), X3, Y3)
	PAIR(18(SI), 18(SI)(R9*4), X4, Y4)
	PAIR(18(SI)(R9*1), 18(SI)(R11*1), X5, Y5)
	PAIR(18(SI)(R9*2), 18(SI)(R10*2), X6, Y6)
	PAIR(18(SI)(R10*1), 18(SI)(R12*1), X7, Y7)
	TRANSPOSE4(Y0, Y1, Y2, Y3)
	TRANSPOSE4(Y4, Y5, Y6, Y7)
	VMOVDQU      Y0, (SP)
	VMOVDQU      Y1, 32(SP)
	VMOVDQU      Y2, 64(SP)
	VMOVDQU      Y3, 96(SP)
	VMOVDQU      Y4, 128(SP)
	VMOVDQU      Y5, 160(SP)
	VMOVDQU      Y6, 192(SP)
	VMOVDQU      Y7, 224(SP)
	VPABSB       Y0, Y0
	VPABSB       Y1, Y1
	VPABSB       Y2, Y2
	VPABSB       Y3, Y3
	VPABSB       Y4, Y4
	VPABSB       Y5, Y5
	VPABSB       Y6, Y6
	VPABSB       Y7, Y7
	SCALES8(X12, Y12)
	TOKEN8A((DI), 0, 0)
	TOKEN8A((DI)(R13*1), 8, 32)
	TOKEN8A((DI)(R13*2), 16, 64)
	TOKEN8A((DI)(DX*1), 24, 96)
	ADDQ         $34, SI
	ADDQ         $34, DI
	ADDQ         astride+80(FP), R8
	DECQ         CX
	JNZ          q884aloop
	VZEROUPPER
	RET
