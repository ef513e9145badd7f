// The bodies shared by the Rows kernels of dot_amd64.s (attention: query
// heads against cached keys, values weighted into the heads' outputs),
// which differ only in how many query heads take each key and in whether
// the cache holds floats or halves. The per-head parts (QUADMUL8/4/2 and
// QUADSTORE8/4/2, AHLOAD4/2/1, AHMUL4/2/1, AHSTORE4/2/1) are defined
// beside the kernels; a macro is expanded where it is used.

// ROWSARGSF32 and ROWSARGSF16 load the arguments of the DotHeadsRows
// kernels, (dst *float32, dstride int, q *float32, hd int, k, kstride, n,
// kvh int): DX dst, R10 the bytes between heads in dst, R8 the bytes of a
// query head, DI the keys, R11 the bytes between keys, CX n. The f16 form
// keeps the bytes of a key's head (halves) in R14 and at hb-24(SP).
#define ROWSARGSF32 \
	MOVQ dst+0(FP), DX      \
	MOVQ dstride+8(FP), R10 \
	SHLQ $2, R10            \
	MOVQ hd+24(FP), R8      \
	SHLQ $2, R8             \
	MOVQ k+32(FP), DI       \
	MOVQ kstride+40(FP), R11 \
	SHLQ $2, R11            \
	MOVQ n+48(FP), CX

#define ROWSARGSF16 \
	MOVQ dst+0(FP), DX      \
	MOVQ dstride+8(FP), R10 \
	SHLQ $2, R10            \
	MOVQ hd+24(FP), R14     \
	SHLQ $1, R14            \
	MOVQ R14, hb-24(SP)     \
	LEAQ (R14)(R14*1), R8   \
	MOVQ k+32(FP), DI       \
	MOVQ kstride+40(FP), R11 \
	SHLQ $1, R11            \
	MOVQ n+48(FP), CX

// QUADLOOPF32(MUL, STORE, labels...) and QUADLOOPF16: four keys at a time
// while there are (keys j, j+1 in Y8, j+2, j+3 in Y9, a chunk of four of
// each), for every key head in turn its query heads' sums by MUL and their
// stores by STORE; at fewer than four keys left, on to lend. The f16 form
// converts the halves as it reads them (VCVTPH2PS, exact).
#define QUADLOOPF32(MUL, STORE, lquad, lhead, lloop, lend) \
lquad:                                        \
	CMPQ        CX, $4                        \
	JLT         lend                          \
	MOVQ        DI, kb-8(SP)                  \
	MOVQ        DX, db-16(SP)                 \
	MOVQ        q+16(FP), SI                  \
	MOVQ        kvh+56(FP), R12               \
lhead:                                        \
	QUADZERO                                  \
lloop:                                        \
	VMOVUPS     (DI)(AX*1), X8                \
	VINSERTF128 $1, (R13)(AX*1), Y8, Y8       \
	VMOVUPS     (R9)(AX*1), X9                \
	VINSERTF128 $1, (R14)(AX*1), Y9, Y9       \
	LEAQ        (SI)(AX*1), BX                \
	MUL                                       \
	ADDQ        $16, AX                       \
	CMPQ        AX, R8                        \
	JLT         lloop                         \
	STORE                                     \
	ADDQ        R8, DI                        \
	DECQ        R12                           \
	JNZ         lhead                         \
	NEXTQUAD                                  \
	JMP         lquad

#define QUADLOOPF16(MUL, STORE, lquad, lhead, lloop, lend) \
lquad:                                        \
	CMPQ      CX, $4                          \
	JLT       lend                            \
	MOVQ      DI, kb-8(SP)                    \
	MOVQ      DX, db-16(SP)                   \
	MOVQ      q+16(FP), SI                    \
	MOVQ      kvh+56(FP), R12                 \
lhead:                                        \
	QUADZERO                                  \
lloop:                                        \
	VMOVQ     (DI)(AX*1), X8                  \
	VPINSRQ   $1, (R13)(AX*1), X8, X8         \
	VCVTPH2PS X8, Y8                          \
	VMOVQ     (R9)(AX*1), X9                  \
	VPINSRQ   $1, (R14)(AX*1), X9, X9         \
	VCVTPH2PS X9, Y9                          \
	LEAQ      (SI)(AX*2), BX                  \
	MUL                                       \
	ADDQ      $8, AX                          \
	CMPQ      AX, hb-24(SP)                   \
	JLT       lloop                           \
	STORE                                     \
	ADDQ      hb-24(SP), DI                   \
	DECQ      R12                             \
	JNZ       lhead                           \
	NEXTQUAD                                  \
	JMP       lquad

// AHARGS loads the arguments of the AxpyHeadsRowsF16 kernels, (w *float32,
// wstride int, v *byte, vstride, n int, out *float32, hd int): DX the
// weights, R10 the bytes between heads' weights (R12 three times that), SI
// the values, R11 the bytes between keys, DI out, R8 the bytes of an output
// head (R9 three times that), AX 0, the byte offset in a key's halves.
#define AHARGS \
	MOVQ w+0(FP), DX        \
	MOVQ wstride+8(FP), R10 \
	SHLQ $2, R10            \
	LEAQ (R10)(R10*2), R12  \
	MOVQ v+16(FP), SI       \
	MOVQ vstride+24(FP), R11 \
	SHLQ $1, R11            \
	MOVQ out+40(FP), DI     \
	MOVQ hd+48(FP), R8      \
	SHLQ $2, R8             \
	LEAQ (R8)(R8*2), R9     \
	XORQ AX, AX

// AHLOOP(CONV, LOAD, MUL, STORE, width, labels...): per chunk of output
// floats of each head (LOAD and STORE at BX, BX+R8, BX+2·R8, BX+R9), every
// key's halves of the chunk (width bytes) converted once by CONV (exact)
// and weighted into each head by MUL (the head's weight at R14, R14+R10,
// ...), in key order: out + w·v per element, as axpyHeadsAVX2 computes it.
// hd is a multiple of the chunk.
#define AHLOOP(CONV, LOAD, MUL, STORE, width, lchunk, lkey, ldone) \
lchunk:                                       \
	LEAQ      (AX)(AX*1), BX                  \
	CMPQ      BX, R8                          \
	JGE       ldone                           \
	LEAQ      (DI)(BX*1), BX                  \
	LOAD                                      \
	LEAQ      (SI)(AX*1), R13                 \
	MOVQ      DX, R14                         \
	MOVQ      n+32(FP), CX                    \
lkey:                                         \
	CONV                                      \
	MUL                                       \
	ADDQ      R11, R13                        \
	ADDQ      $4, R14                         \
	DECQ      CX                              \
	JNZ       lkey                            \
	STORE                                     \
	ADDQ      $width, AX                      \
	JMP       lchunk

// AHCONV16 converts a key's next 16 halves into Y8, Y9; AHCONV32 32 of
// them into Y8, Y9, Y12, Y13.
#define AHCONV16 \
	VCVTPH2PS (R13), Y8   \
	VCVTPH2PS 16(R13), Y9

#define AHCONV32 \
	AHCONV16              \
	VCVTPH2PS 32(R13), Y12 \
	VCVTPH2PS 48(R13), Y13
