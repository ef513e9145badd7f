// Shared by the eight-row kernels of qdot_amd64.s and tile_amd64.s: row k
// of eight is at SI + k·rb, with R9 = rb, R10 = 3·rb, R11 = 5·rb, R12 = 7·rb;
// BX runs over the bytes to prefetch.

// ROWOFFSETS sets R10, R11 and R12 from R9.
#define ROWOFFSETS \
	LEAQ (R9)(R9*2), R10 \
	LEAQ (R9)(R9*4), R11 \
	LEAQ (R10)(R9*4), R12

// SCALES8: y = the eight rows' current f16 block scales as float32, lane k
// for row k (x is y's XMM; f16 to f32 is exact).
#define SCALES8(x, y) \
	VPXOR     x, x, x               \
	VPINSRW   $0, (SI), x, x        \
	VPINSRW   $1, (SI)(R9*1), x, x  \
	VPINSRW   $2, (SI)(R9*2), x, x  \
	VPINSRW   $3, (SI)(R10*1), x, x \
	VPINSRW   $4, (SI)(R9*4), x, x  \
	VPINSRW   $5, (SI)(R11*1), x, x \
	VPINSRW   $6, (SI)(R10*2), x, x \
	VPINSRW   $7, (SI)(R12*1), x, x \
	VCVTPH2PS x, y

// PREFETCH144 and PREFETCH272 prefetch into L2 the bytes one block step of
// eight Q4_0 (8·18) or Q8_0 (8·34) rows consumes, and advance BX past them.
#define PREFETCH144 \
	PREFETCHT1 (BX)      \
	PREFETCHT1 64(BX)    \
	PREFETCHT1 128(BX)   \
	ADDQ       $144, BX

#define PREFETCH272 \
	PREFETCHT1 (BX)      \
	PREFETCHT1 64(BX)    \
	PREFETCHT1 128(BX)   \
	PREFETCHT1 192(BX)   \
	PREFETCHT1 256(BX)   \
	ADDQ       $272, BX

// SCALES8G is SCALES8 with the eight scales gathered by scalar loads into
// two general registers (AX rows 0-3, R8 rows 4-7, clobbered) and moved
// over in two: the vector pipes see three operations instead of eight
// inserts.
#define SCALES8G(x, y, t) \
	MOVWLZX      (SI)(R10*1), AX   \
	SHLQ         $16, AX           \
	MOVW         (SI)(R9*2), AX    \
	SHLQ         $16, AX           \
	MOVW         (SI)(R9*1), AX    \
	SHLQ         $16, AX           \
	MOVW         (SI), AX          \
	MOVWLZX      (SI)(R12*1), R8   \
	SHLQ         $16, R8           \
	MOVW         (SI)(R10*2), R8   \
	SHLQ         $16, R8           \
	MOVW         (SI)(R11*1), R8   \
	SHLQ         $16, R8           \
	MOVW         (SI)(R9*4), R8    \
	MOVQ         AX, x             \
	MOVQ         R8, t             \
	VPUNPCKLQDQ  t, x, x           \
	VCVTPH2PS    x, y
