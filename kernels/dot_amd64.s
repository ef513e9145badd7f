//go:build amd64 && !purego && gc

#include "textflag.h"
#include "heads_amd64.h"

// AVX2+FMA float kernels, the activation quantizer and the activations;
// the quantized dot products are in qdot_amd64.s.

// func dot4SSE(a, b []float32, acc *[4]float32)
// acc[c] = Σ a[4k+c]*b[4k+c] over k, each product rounded and then added
// in order: dotGo's four chains exactly (one XMM accumulator; len(a) is a
// multiple of 4). Slower than a wide FMA loop, but the sums are the ones
// every variant and the golden runs agree on, which matters more for the
// short dot products (attention heads) it serves.
TEXT ·dot4SSE(SB), NOSPLIT, $0-56
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	MOVQ   acc+48(FP), R11
	VXORPS X0, X0, X0
	SHRQ   $2, CX
	JZ     dotdone

dotloop:
	VMOVUPS (SI), X1
	VMULPS  (DI), X1, X1
	VADDPS  X1, X0, X0
	ADDQ    $16, SI
	ADDQ    $16, DI
	DECQ    CX
	JNZ     dotloop

dotdone:
	VMOVUPS X0, (R11)
	RET

// func axpyAVX2(a float32, x, y []float32)
// len(x) is a multiple of 32 and len(y) >= len(x). Not fused: the product is
// rounded before the add, as in axpyGo, so every variant gives the same bits.
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
	VMULPS      (SI), Y0, Y8
	VMULPS      32(SI), Y0, Y9
	VMULPS      64(SI), Y0, Y10
	VMULPS      96(SI), Y0, Y11
	VADDPS      Y8, Y4, Y4
	VADDPS      Y9, Y5, Y5
	VADDPS      Y10, Y6, Y6
	VADDPS      Y11, Y7, Y7
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

// HSUM4: x[0] = (x0+x1)+(x2+x3), dotGo's final sum.
#define HSUM4(x) \
	VMOVSHDUP x, X9     \
	VADDPS    X9, x, x  \
	VMOVHLPS  x, X9, X9 \
	VADDSS    X9, x, x

// func dotHeadsSSE(dst, q, k []float32)
// dst[h] = dotGo(q[h*len(k):], k) for h < len(dst), len(k) a multiple of 4,
// bit for bit: each head is dot4SSE's one chain, then (s0+s1)+(s2+s3). Four
// heads run at once, in four registers: one head's chain waits on the add's
// latency, four keep the adder busy (attention's dots are short, so the
// latency was most of their cost).
TEXT ·dotHeadsSSE(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DX
	MOVQ dst_len+8(FP), BX
	MOVQ q_base+24(FP), SI
	MOVQ k_base+48(FP), DI
	MOVQ k_len+56(FP), R8
	SHLQ $2, R8             // bytes per head
	LEAQ (R8)(R8*2), R9     // 3 heads

dh4:
	CMPQ   BX, $4
	JLT    dh1
	VXORPS X0, X0, X0
	VXORPS X1, X1, X1
	VXORPS X2, X2, X2
	VXORPS X3, X3, X3
	XORQ   AX, AX

dh4loop:
	CMPQ    AX, R8
	JGE     dh4end
	VMOVUPS (DI)(AX*1), X4
	LEAQ    (SI)(AX*1), CX
	VMULPS  (CX), X4, X5
	VADDPS  X5, X0, X0
	VMULPS  (CX)(R8*1), X4, X6
	VADDPS  X6, X1, X1
	VMULPS  (CX)(R8*2), X4, X7
	VADDPS  X7, X2, X2
	VMULPS  (CX)(R9*1), X4, X8
	VADDPS  X8, X3, X3
	ADDQ    $16, AX
	JMP     dh4loop

dh4end:
	HSUM4(X0)
	VMOVSS X0, (DX)
	HSUM4(X1)
	VMOVSS X1, 4(DX)
	HSUM4(X2)
	VMOVSS X2, 8(DX)
	HSUM4(X3)
	VMOVSS X3, 12(DX)
	ADDQ   $16, DX
	LEAQ   (SI)(R8*4), SI
	SUBQ   $4, BX
	JMP    dh4

dh1:
	TESTQ  BX, BX
	JZ     dhdone
	VXORPS X0, X0, X0
	XORQ   AX, AX

dh1loop:
	CMPQ    AX, R8
	JGE     dh1end
	VMOVUPS (DI)(AX*1), X4
	VMULPS  (SI)(AX*1), X4, X5
	VADDPS  X5, X0, X0
	ADDQ    $16, AX
	JMP     dh1loop

dh1end:
	HSUM4(X0)
	VMOVSS X0, (DX)
	ADDQ   $4, DX
	ADDQ   R8, SI
	DECQ   BX
	JMP    dh1

dhdone:
	RET

// func axpyHeadsAVX2(w, v, out []float32)
// out[h*len(v)+i] += w[h]*v[i] for h < len(w), len(v) a multiple of 8; the
// product rounded before the add, as axpyGo.
TEXT ·axpyHeadsAVX2(SB), NOSPLIT, $0-72
	MOVQ w_base+0(FP), DX
	MOVQ w_len+8(FP), BX
	MOVQ v_base+24(FP), SI
	MOVQ v_len+32(FP), R8
	MOVQ out_base+48(FP), DI
	SHLQ $2, R8
	TESTQ BX, BX
	JZ   ahdone

ahhead:
	VBROADCASTSS (DX), Y0
	XORQ         AX, AX

ahloop:
	VMULPS  (SI)(AX*1), Y0, Y1
	VADDPS  (DI)(AX*1), Y1, Y1
	VMOVUPS Y1, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, R8
	JLT     ahloop
	ADDQ    $4, DX
	ADDQ    R8, DI
	DECQ    BX
	JNZ     ahhead

ahdone:
	VZEROUPPER
	RET

// PAIRZERO starts a key head of the two-key loops of dotHeadsRows4AVX and
// dotHeadsRows4F16: the four heads' sums cleared, R13 at key j+1, AX at
// the head's first element. PAIRMUL4 adds the products of one chunk of the
// two keys (Y4: key j low, key j+1 high) with the four query heads' chunk
// at BX, BX+R8, BX+2·R8, BX+R9 (broadcast to both halves): mul, then add,
// as dotHeadsSSE does.
#define PAIRZERO \
	VXORPS Y0, Y0, Y0     \
	VXORPS Y1, Y1, Y1     \
	VXORPS Y2, Y2, Y2     \
	VXORPS Y3, Y3, Y3     \
	LEAQ   (DI)(R11*1), R13 \
	XORQ   AX, AX

#define PAIRMUL4 \
	VBROADCASTF128 (BX), Y5       \
	VMULPS         Y5, Y4, Y5     \
	VADDPS         Y5, Y0, Y0     \
	VBROADCASTF128 (BX)(R8*1), Y6 \
	VMULPS         Y6, Y4, Y6     \
	VADDPS         Y6, Y1, Y1     \
	VBROADCASTF128 (BX)(R8*2), Y7 \
	VMULPS         Y7, Y4, Y7     \
	VADDPS         Y7, Y2, Y2     \
	VBROADCASTF128 (BX)(R9*1), Y8 \
	VMULPS         Y8, Y4, Y8     \
	VADDPS         Y8, Y3, Y3

// HEADSTORE2: one head's sums of two keys, the low and high halves of y
// (x its XMM), reduced as HSUM4 reduces them and stored at d0 and d1; t is
// clobbered (and X9, by HSUM4).
#define HEADSTORE2(y, x, t, d0, d1) \
	VEXTRACTF128 $1, y, t \
	HSUM4(x)              \
	HSUM4(t)              \
	VMOVSS       x, d0    \
	VMOVSS       t, d1

// PAIRSTORE4 and NEXTPAIR are the ends of the two-key loops of
// dotHeadsRows4AVX and dotHeadsRows4F16: the four heads' sums of keys j
// (low halves of Y0-Y3) and j+1 (high halves) reduced as HSUM4 reduces
// them and stored at DX + h·R10 (+4 for j+1), the pointers moved to the
// next key head (R12 counts them down); then the next pair of keys.
#define PAIRSTORE4 \
	LEAQ         (R10)(R10*2), BX \
	VEXTRACTF128 $1, Y0, X10      \
	VEXTRACTF128 $1, Y1, X11      \
	VEXTRACTF128 $1, Y2, X12      \
	VEXTRACTF128 $1, Y3, X13      \
	HSUM4(X0)                     \
	HSUM4(X10)                    \
	VMOVSS       X0, (DX)         \
	VMOVSS       X10, 4(DX)       \
	HSUM4(X1)                     \
	HSUM4(X11)                    \
	VMOVSS       X1, (DX)(R10*1)  \
	VMOVSS       X11, 4(DX)(R10*1) \
	HSUM4(X2)                     \
	HSUM4(X12)                    \
	VMOVSS       X2, (DX)(R10*2)  \
	VMOVSS       X12, 4(DX)(R10*2) \
	HSUM4(X3)                     \
	HSUM4(X13)                    \
	VMOVSS       X3, (DX)(BX*1)   \
	VMOVSS       X13, 4(DX)(BX*1) \
	LEAQ         (DX)(R10*4), DX  \
	LEAQ         (SI)(R8*4), SI   \
	ADDQ         R14, DI          \
	DECQ         R12

#define NEXTPAIR \
	MOVQ kb-8(SP), DI       \
	LEAQ (DI)(R11*2), DI    \
	MOVQ db-16(SP), DX      \
	ADDQ $8, DX             \
	SUBQ $2, CX

// The four-key loops of dotHeadsRows4AVX and dotHeadsRows4F16 share these: QUADZERO clears the
// eight sums (Y0-Y3 keys j and j+1, Y4-Y7 keys j+2 and j+3, one register per query head) and points
// R13, R9, R14 at keys j+1..j+3; QUADMUL8 adds the products of the chunks in Y8 (keys j, j+1) and Y9
// (j+2, j+3) with the four query heads' chunk at BX, BX+R8, BX+2·R8, BX+3·R8 (BX clobbered);
// QUADSTORE8 reduces and stores the sums at DX + h·R10 (+4, +8, +12 for keys j+1..j+3) and moves DX
// and SI to the next key head; NEXTQUAD moves to the next four keys.
#define QUADZERO \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7 \
	LEAQ   (DI)(R11*1), R13 \
	LEAQ   (DI)(R11*2), R9 \
	LEAQ   (R9)(R11*1), R14 \
	XORQ   AX, AX

#define QUADMUL8 \
	VBROADCASTF128 (BX), Y10 \
	VMULPS         Y10, Y8, Y11 \
	VADDPS         Y11, Y0, Y0 \
	VMULPS         Y10, Y9, Y12 \
	VADDPS         Y12, Y4, Y4 \
	VBROADCASTF128 (BX)(R8*1), Y10 \
	VMULPS         Y10, Y8, Y11 \
	VADDPS         Y11, Y1, Y1 \
	VMULPS         Y10, Y9, Y12 \
	VADDPS         Y12, Y5, Y5 \
	LEAQ           (BX)(R8*2), BX \
	VBROADCASTF128 (BX), Y10 \
	VMULPS         Y10, Y8, Y11 \
	VADDPS         Y11, Y2, Y2 \
	VMULPS         Y10, Y9, Y12 \
	VADDPS         Y12, Y6, Y6 \
	VBROADCASTF128 (BX)(R8*1), Y10 \
	VMULPS         Y10, Y8, Y11 \
	VADDPS         Y11, Y3, Y3 \
	VMULPS         Y10, Y9, Y12 \
	VADDPS         Y12, Y7, Y7

#define QUADSTORE8 \
	LEAQ           (R10)(R10*2), BX \
	HEADSTORE2(Y0, X0, X10, (DX), 4(DX)) \
	HEADSTORE2(Y4, X4, X10, 8(DX), 12(DX)) \
	HEADSTORE2(Y1, X1, X10, (DX)(R10*1), 4(DX)(R10*1)) \
	HEADSTORE2(Y5, X5, X10, 8(DX)(R10*1), 12(DX)(R10*1)) \
	HEADSTORE2(Y2, X2, X10, (DX)(R10*2), 4(DX)(R10*2)) \
	HEADSTORE2(Y6, X6, X10, 8(DX)(R10*2), 12(DX)(R10*2)) \
	HEADSTORE2(Y3, X3, X10, (DX)(BX*1), 4(DX)(BX*1)) \
	HEADSTORE2(Y7, X7, X10, 8(DX)(BX*1), 12(DX)(BX*1)) \
	LEAQ           (DX)(R10*4), DX \
	LEAQ           (SI)(R8*4), SI

#define NEXTQUAD \
	MOVQ           kb-8(SP), DI \
	LEAQ           (DI)(R11*4), DI \
	MOVQ           db-16(SP), DX \
	ADDQ           $16, DX \
	SUBQ           $4, CX

// QUADMUL4 and QUADSTORE4 are QUADMUL8 and QUADSTORE8 for two query heads to a key head (Y0, Y4
// head 0's sums, Y1, Y5 head 1's): the loops of dotHeadsRows2AVX and dotHeadsRows2F16.
#define QUADMUL4 \
	VBROADCASTF128 (BX), Y10 \
	VMULPS         Y10, Y8, Y11 \
	VADDPS         Y11, Y0, Y0 \
	VMULPS         Y10, Y9, Y12 \
	VADDPS         Y12, Y4, Y4 \
	VBROADCASTF128 (BX)(R8*1), Y10 \
	VMULPS         Y10, Y8, Y11 \
	VADDPS         Y11, Y1, Y1 \
	VMULPS         Y10, Y9, Y12 \
	VADDPS         Y12, Y5, Y5

#define QUADSTORE4 \
	HEADSTORE2(Y0, X0, X10, (DX), 4(DX)) \
	HEADSTORE2(Y4, X4, X10, 8(DX), 12(DX)) \
	HEADSTORE2(Y1, X1, X10, (DX)(R10*1), 4(DX)(R10*1)) \
	HEADSTORE2(Y5, X5, X10, 8(DX)(R10*1), 12(DX)(R10*1)) \
	LEAQ           (DX)(R10*2), DX \
	LEAQ           (SI)(R8*2), SI

// QUADMUL2 and QUADSTORE2 are the same for one query head to a key head (multi-head attention:
// Y0 and Y4 its sums), for dotHeadsRows1AVX and dotHeadsRows1F16.
#define QUADMUL2 \
	VBROADCASTF128 (BX), Y10 \
	VMULPS         Y10, Y8, Y11 \
	VADDPS         Y11, Y0, Y0 \
	VMULPS         Y10, Y9, Y12 \
	VADDPS         Y12, Y4, Y4

#define QUADSTORE2 \
	HEADSTORE2(Y0, X0, X10, (DX), 4(DX)) \
	HEADSTORE2(Y4, X4, X10, 8(DX), 12(DX)) \
	ADDQ           R10, DX \
	ADDQ           R8, SI

// func dotHeadsRows4AVX(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)
// DotHeadsRows for kvh key heads of four query heads each, hd floats (a
// multiple of 4) to a head, against n keys (even): query head h meets key
// head h/4, its scores at dst + h·dstride. Two keys at once, key j in the
// low 128 bits of each register and key j+1 in the high, each half doing
// dotHeadsSSE's operations on its key (mul, then add into one chain per
// head; HSUM4), so the bits of a dotHeadsSSE call per key and key head;
// per pair of keys every key head in turn, so the two rows are read front
// to back.
TEXT ·dotHeadsRows4AVX(SB), NOSPLIT, $16-64
	ROWSARGSF32

	// Four keys at a time while there are: two pairs, eight sums in flight,
	// each head's query chunk loaded once for both. R9 and R14 point at keys
	// j+2 and j+3 there (the pair loop below wants them back as 3·R8 and R8).
	QUADLOOPF32(QUADMUL8, QUADSTORE8, dr4quad, dr4qhead, dr4qloop, dr4quadend)

dr4quadend:
	LEAQ (R8)(R8*2), R9
	MOVQ R8, R14

dr4pair:
	CMPQ CX, $2
	JLT  dr4done
	MOVQ DI, kb-8(SP)
	MOVQ DX, db-16(SP)
	MOVQ q+16(FP), SI
	MOVQ kvh+56(FP), R12

dr4head:
	PAIRZERO

dr4loop:
	CMPQ           AX, R14
	JGE            dr4end
	VMOVUPS        (DI)(AX*1), X4
	VINSERTF128    $1, (R13)(AX*1), Y4, Y4
	LEAQ           (SI)(AX*1), BX
	PAIRMUL4
	ADDQ           $16, AX
	JMP            dr4loop

dr4end:
	PAIRSTORE4
	JNZ          dr4head
	NEXTPAIR
	JMP          dr4pair

dr4done:
	VZEROUPPER
	RET

// func axpyHeadsRowsAVX2(w *float32, wstride, heads int, v *float32, vstride, n int, out *float32, hd int)
// AxpyHeadsRows for hd a multiple of 8: per head, 32 (then 8) output floats
// stay in registers while every key's weighted row is added to them in key
// order, each element out + w·v as axpyHeadsAVX2 computes it.
TEXT ·axpyHeadsRowsAVX2(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), DX
	MOVQ wstride+8(FP), R10
	SHLQ $2, R10             // bytes between heads' weights
	MOVQ heads+16(FP), BX
	MOVQ v+24(FP), SI
	MOVQ vstride+32(FP), R11
	SHLQ $2, R11             // bytes between keys
	MOVQ n+40(FP), R12
	MOVQ out+48(FP), DI
	MOVQ hd+56(FP), R8
	SHLQ $2, R8              // bytes per head
	TESTQ BX, BX
	JZ    arhdone

arhhead:
	XORQ AX, AX              // byte offset in the head

arh32:
	LEAQ    128(AX), R9
	CMPQ    R9, R8
	JGT     arh8
	VMOVUPS (DI)(AX*1), Y0
	VMOVUPS 32(DI)(AX*1), Y1
	VMOVUPS 64(DI)(AX*1), Y2
	VMOVUPS 96(DI)(AX*1), Y3
	LEAQ    (SI)(AX*1), R13  // key 0's elements
	MOVQ    DX, R14          // its weight
	MOVQ    R12, CX

arh32key:
	VBROADCASTSS (R14), Y8
	VMULPS       (R13), Y8, Y4
	VADDPS       Y4, Y0, Y0
	VMULPS       32(R13), Y8, Y5
	VADDPS       Y5, Y1, Y1
	VMULPS       64(R13), Y8, Y6
	VADDPS       Y6, Y2, Y2
	VMULPS       96(R13), Y8, Y7
	VADDPS       Y7, Y3, Y3
	ADDQ         R11, R13
	ADDQ         $4, R14
	DECQ         CX
	JNZ          arh32key
	VMOVUPS      Y0, (DI)(AX*1)
	VMOVUPS      Y1, 32(DI)(AX*1)
	VMOVUPS      Y2, 64(DI)(AX*1)
	VMOVUPS      Y3, 96(DI)(AX*1)
	MOVQ         R9, AX
	JMP          arh32

arh8:
	CMPQ    AX, R8
	JGE     arhnext
	VMOVUPS (DI)(AX*1), Y0
	LEAQ    (SI)(AX*1), R13
	MOVQ    DX, R14
	MOVQ    R12, CX

arh8key:
	VBROADCASTSS (R14), Y8
	VMULPS       (R13), Y8, Y4
	VADDPS       Y4, Y0, Y0
	ADDQ         R11, R13
	ADDQ         $4, R14
	DECQ         CX
	JNZ          arh8key
	VMOVUPS      Y0, (DI)(AX*1)
	ADDQ         $32, AX
	JMP          arh8

arhnext:
	ADDQ R10, DX
	ADDQ R8, DI
	DECQ BX
	JNZ  arhhead

arhdone:
	VZEROUPPER
	RET

// func dotHeadsRows4F16(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)
// dotHeadsRows4AVX for keys stored as halves (kstride in halves), over kvh
// key heads of four query heads each (query head h against key head h/4,
// its scores at dst + h·dstride): per pair of keys every key head in turn,
// so the two rows are read front to back, one stream through memory. Four
// of each key's halves are converted (VCVTPH2PS, exact) as they are read,
// the rest the same operations, so the same bits as converting the rows.
TEXT ·dotHeadsRows4F16(SB), NOSPLIT, $24-64
	ROWSARGSF16

	// Four keys at a time while there are, as dotHeadsRows4AVX.
	QUADLOOPF16(QUADMUL8, QUADSTORE8, dh16quad, dh16qhead, dh16qloop, dh16quadend)

dh16quadend:
	LEAQ (R8)(R8*2), R9
	MOVQ hb-24(SP), R14

dh16pair:
	CMPQ CX, $2
	JLT  dh16done
	MOVQ DI, kb-8(SP)
	MOVQ DX, db-16(SP)
	MOVQ q+16(FP), SI
	MOVQ kvh+56(FP), R12

dh16head:
	PAIRZERO

dh16loop:
	CMPQ           AX, R14
	JGE            dh16end
	VMOVQ          (DI)(AX*1), X4
	VPINSRQ        $1, (R13)(AX*1), X4, X4
	VCVTPH2PS      X4, Y4
	LEAQ           (SI)(AX*2), BX
	PAIRMUL4
	ADDQ           $8, AX
	JMP            dh16loop

dh16end:
	PAIRSTORE4
	JNZ          dh16head
	NEXTPAIR
	JMP          dh16pair

dh16done:
	VZEROUPPER
	RET

// func dotHeadsRows2AVX(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)
// dotHeadsRows4AVX's four-key loop for kvh key heads of two query heads
// each (gemma2's grouping), n a multiple of 4: the bits of a dotHeadsSSE
// call per key and key head.
TEXT ·dotHeadsRows2AVX(SB), NOSPLIT, $16-64
	ROWSARGSF32
	QUADLOOPF32(QUADMUL4, QUADSTORE4, dr2quad, dr2head, dr2loop, dr2done)

dr2done:
	VZEROUPPER
	RET

// func dotHeadsRows2F16(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)
// dotHeadsRows2AVX for keys stored as halves (kstride in halves), converted
// as they are read (VCVTPH2PS, exact), as dotHeadsRows4F16.
TEXT ·dotHeadsRows2F16(SB), NOSPLIT, $24-64
	ROWSARGSF16
	QUADLOOPF16(QUADMUL4, QUADSTORE4, dh2quad, dh2head, dh2loop, dh2done)

dh2done:
	VZEROUPPER
	RET

// func dotHeadsRows1AVX(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)
// dotHeadsRows2AVX for one query head to a key head (multi-head
// attention): query head h against key head h.
TEXT ·dotHeadsRows1AVX(SB), NOSPLIT, $16-64
	ROWSARGSF32
	QUADLOOPF32(QUADMUL2, QUADSTORE2, dr1quad, dr1head, dr1loop, dr1done)

dr1done:
	VZEROUPPER
	RET

// func dotHeadsRows1F16(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)
// dotHeadsRows2F16 for one query head to a key head.
TEXT ·dotHeadsRows1F16(SB), NOSPLIT, $24-64
	ROWSARGSF16
	QUADLOOPF16(QUADMUL2, QUADSTORE2, dh1quad, dh1head, dh1loop, dh1done)

dh1done:
	VZEROUPPER
	RET

// The per-head parts of AHLOOP (heads_amd64.h): AHHEAD weights the
// converted halves (Y8, Y9) by the weight at w into the head's 16 floats
// (a, b); AHLOAD, AHMUL and AHSTORE for four, two and one heads, 16 floats
// each, and for one head 32 floats (1W: a key's loop is too short for one
// head's 16).
#define AHHEAD(w, a, b) \
	VBROADCASTSS w, Y10    \
	VMULPS       Y8, Y10, Y11 \
	VADDPS       Y11, a, a \
	VMULPS       Y9, Y10, Y11 \
	VADDPS       Y11, b, b

#define AHLOAD1 \
	VMOVUPS (BX), Y0 \
	VMOVUPS 32(BX), Y1

#define AHLOAD2 \
	AHLOAD1                    \
	VMOVUPS (BX)(R8*1), Y2     \
	VMOVUPS 32(BX)(R8*1), Y3

#define AHLOAD4 \
	AHLOAD2                    \
	VMOVUPS (BX)(R8*2), Y4     \
	VMOVUPS 32(BX)(R8*2), Y5   \
	VMOVUPS (BX)(R9*1), Y6     \
	VMOVUPS 32(BX)(R9*1), Y7

#define AHMUL1 AHHEAD((R14), Y0, Y1)

#define AHMUL2 \
	AHMUL1 \
	AHHEAD((R14)(R10*1), Y2, Y3)

#define AHMUL4 \
	AHMUL2                       \
	AHHEAD((R14)(R10*2), Y4, Y5) \
	AHHEAD((R14)(R12*1), Y6, Y7)

#define AHLOAD1W \
	AHLOAD1           \
	VMOVUPS 64(BX), Y2 \
	VMOVUPS 96(BX), Y3

#define AHMUL1W \
	AHMUL1                    \
	VMULPS       Y12, Y10, Y11 \
	VADDPS       Y11, Y2, Y2   \
	VMULPS       Y13, Y10, Y11 \
	VADDPS       Y11, Y3, Y3

#define AHSTORE1 \
	VMOVUPS Y0, (BX) \
	VMOVUPS Y1, 32(BX)

#define AHSTORE2 \
	AHSTORE1                   \
	VMOVUPS Y2, (BX)(R8*1)     \
	VMOVUPS Y3, 32(BX)(R8*1)

#define AHSTORE1W \
	AHSTORE1           \
	VMOVUPS Y2, 64(BX) \
	VMOVUPS Y3, 96(BX)

#define AHSTORE4 \
	AHSTORE2                   \
	VMOVUPS Y4, (BX)(R8*2)     \
	VMOVUPS Y5, 32(BX)(R8*2)   \
	VMOVUPS Y6, (BX)(R9*1)     \
	VMOVUPS Y7, 32(BX)(R9*1)

// func axpyHeadsRows4F16(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd int)
// AxpyHeadsRows for four heads sharing values stored as halves (vstride in
// halves), hd a multiple of 16: per 16 output floats of the four heads
// (eight registers), each key's 16 halves are converted once (exact) and
// weighted into all four, in key order: out + w·v per element, as
// axpyHeadsAVX2 computes it.
TEXT ·axpyHeadsRows4F16(SB), NOSPLIT, $0-56
	AHARGS
	AHLOOP(AHCONV16, AHLOAD4, AHMUL4, AHSTORE4, 32, ah16chunk, ah16key, ah16done)

ah16done:
	VZEROUPPER
	RET

// func axpyHeadsRows2F16(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd int)
// axpyHeadsRows4F16 for two heads sharing the values.
TEXT ·axpyHeadsRows2F16(SB), NOSPLIT, $0-56
	AHARGS
	AHLOOP(AHCONV16, AHLOAD2, AHMUL2, AHSTORE2, 32, ah2chunk, ah2key, ah2done)

ah2done:
	VZEROUPPER
	RET

// func axpyHeadsRows1F16(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd int)
// axpyHeadsRows4F16 for one head, 32 floats at a time (hd a multiple of 32).
TEXT ·axpyHeadsRows1F16(SB), NOSPLIT, $0-56
	AHARGS
	AHLOOP(AHCONV32, AHLOAD1W, AHMUL1W, AHSTORE1W, 64, ah1chunk, ah1key, ah1done)

ah1done:
	VZEROUPPER
	RET

// func scaleAVX2(x []float32, s float32)
// x[i] *= s, len(x) a multiple of 8: 32 floats a step, then 8.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-28
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	VBROADCASTSS s+24(FP), Y0

sc32:
	CMPQ    CX, $32
	JLT     sc8
	VMULPS  (DI), Y0, Y1
	VMULPS  32(DI), Y0, Y2
	VMULPS  64(DI), Y0, Y3
	VMULPS  96(DI), Y0, Y4
	VMOVUPS Y1, (DI)
	VMOVUPS Y2, 32(DI)
	VMOVUPS Y3, 64(DI)
	VMOVUPS Y4, 96(DI)
	ADDQ    $128, DI
	SUBQ    $32, CX
	JMP     sc32

sc8:
	CMPQ    CX, $8
	JLT     scdone
	VMULPS  (DI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     sc8

scdone:
	VZEROUPPER
	RET
