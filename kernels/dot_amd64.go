//go:build amd64 && !purego && gc

package kernels

import "github.com/klauspost/cpuid/v2"

func archFeatures() []string {
	var fs []string
	// F16C (VCVTPS2PH) comes with every AVX2 CPU; the activation quantizer uses it.
	if cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C) {
		fs = append(fs, "avx2", "fma")
	}
	// The tiles use EVEX 256-bit VPDPBUSD and Y16-Y31: AVX-512 VNNI, VL and BW.
	if cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512VL, cpuid.AVX512BW, cpuid.AVX512VNNI) {
		fs = append(fs, "avx512vnni")
	}
	return fs
}

// The variants are complete in their initializers: dispatch's init, which
// runs first, chooses among them.
var avx2Variant = withTiles(&variant{
	name:  "avx2+fma",
	needs: []string{"avx2", "fma"},
	dot:   dotAVX2Go, axpy: axpyAVX2Go,
	dotHeads:  dotHeadsAVX2Go,
	axpyHeads: axpyHeadsAVX2Go,
	// The Rows forms get checked arguments (vec.go).
	dotHeadsRows: dotRowsAVX2,
	axpyHeadsRows: func(w []float32, wstride, heads int, v []float32, vstride, n int, out []float32) {
		if hd := len(out) / heads; hd%8 == 0 && hd > 0 {
			axpyHeadsRowsAVX2(&w[0], wstride, heads, &v[0], vstride, n, &out[0], hd)
			return
		}
		axpyHeadsRowsLoop(axpyAVX2Go, w, wstride, heads, v, vstride, n, out)
	},
	dotHeadsRowsF16:  dotRowsF16AVX2,
	axpyHeadsRowsF16: axpyRowsF16AVX2,
	q8:               q8AVX2Go, q4: q4AVX2Go,
	q8x4: func(w, x []byte, stride int, dst *[4]float32) {
		nb := len(w) / q8b
		if nb == 0 {
			*dst = [4]float32{}
			return
		}
		_ = x[3*stride+nb*q8b-1] // the last token's row is in range
		q8Dot4AVX2(w, x, stride, nb, f16tab, dst)
	},
	q4x4: func(w, x []byte, stride int, dst *[4]float32) {
		nb := len(w) / q4b
		if nb == 0 {
			*dst = [4]float32{}
			return
		}
		_ = x[3*stride+nb*q8b-1]
		q4Dot4AVX2(w, x, stride, nb, f16tab, dst)
	},
	q8r4: func(w0, w1, w2, w3, x []byte, dst *[4]float32) {
		nb := len(w0) / q8b
		n := len(w0)
		q8Rows4AVX2(w0, w1[:n], w2[:n], w3[:n], x[:nb*q8b], nb, f16tab, dst)
	},
	q4r4: func(w0, w1, w2, w3, x []byte, dst *[4]float32) {
		nb := len(w0) / q4b
		n := len(w0)
		q4Rows4AVX2(w0, w1[:n], w2[:n], w3[:n], x[:nb*q8b], nb, f16tab, dst)
	},
	q8r8: rows8Form(q8b, q8Rows8AVX2),

	q4r8: rows8Form(q4b, q4Rows8AVX2),

	quant: func(dst []byte, src []float32) {
		nb := len(src) / qk
		quantizeQ8AVX2(dst[:nb*q8b], src[:nb*qk], nb)
	},
	silu: func(x []float32) {
		n := len(x) &^ 7
		siluAVX2(x[:n])
		siluGo(x[n:])
	},
	gelu: func(x []float32) {
		n := len(x) &^ 7
		geluAVX2(x[:n])
		geluGo(x[n:])
	},
	expsum: func(x []float32, m float32) float64 {
		n := len(x) &^ 7
		return expSumAVX2(x[:n], m) + expSumGo(x[n:], m)
	},
	scale: func(x []float32, s float32) {
		n := len(x) &^ 7
		if n > 0 {
			scaleAVX2(x[:n], s)
		}
		scaleGo(x[n:], s)
	},
	q4t84: tile84(q4b, q4Tile84AVX2),
	q8t84: tile84(q8b, q8Tile84AVX2),
	kdot: [numWTypes]func(w, x []byte) float32{
		Q4_K: func(w, x []byte) float32 {
			nb := len(w) / q4kb
			return q4KDotAVX2(w, x[:nb*q8kb], nb, f16tab)
		},
		Q5_K: func(w, x []byte) float32 {
			nb := len(w) / q5kb
			return q5KDotAVX2(w, x[:nb*q8kb], nb, f16tab)
		},
		Q6_K: func(w, x []byte) float32 {
			nb := len(w) / q6kb
			return q6KDotAVX2(w, x[:nb*q8kb], nb, f16tab)
		},
	},
})

// q4KDotAVX2, q5KDotAVX2 and q6KDotAVX2 are dotQ4KGo, dotQ5KGo and dotQ6KGo
// over nb super-blocks (kquant_amd64.s).
//
//go:noescape
func q4KDotAVX2(w, x []byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func q5KDotAVX2(w, x []byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func q6KDotAVX2(w, x []byte, nb int, tab *[1 << 16]float32) float32

// The Rows dot kernels: four heads take keys in pairs, two and one in fours.
var (
	rowsAVX2    = rowKernels[float32]{dotHeadsRows4AVX, dotHeadsRows2AVX, dotHeadsRows1AVX, 2, 4, 1, 1, 1}
	rowsF16AVX2 = rowKernels[byte]{dotHeadsRows4F16, dotHeadsRows2F16, dotHeadsRows1F16, 2, 4, 2, 1, 1}
)

// dotRowsAVX2 is DotHeadsRows: the kernels for head sizes a multiple of
// four, the keys they leave over and other sizes by the per-key loop.
func dotRowsAVX2(dst []float32, dstride int, q []float32, heads, kvHeads int, k []float32, kstride, n int) {
	j := 0
	if hd := len(q) / heads; hd%4 == 0 && hd > 0 {
		j = rowsAVX2.dot(dst, dstride, q, heads, kvHeads, k, kstride, n)
	}
	if j < n {
		dotHeadsRowsLoop(dotAVX2Go, dst, dstride, q, heads, kvHeads, k, kstride, n, j)
	}
}

// dotRowsF16AVX2 is dotRowsAVX2 for keys stored as halves.
func dotRowsF16AVX2(dst []float32, dstride int, q []float32, heads, kvHeads int, k []byte, kstride, n int) {
	j := 0
	if hd := len(q) / heads; hd%4 == 0 && hd > 0 {
		j = rowsF16AVX2.dot(dst, dstride, q, heads, kvHeads, k, kstride, n)
	}
	if j < n {
		dotHeadsRowsF16Loop(dotAVX2Go, dst, dstride, q, heads, kvHeads, k, kstride, n, j)
	}
}

// axpyRowsF16AVX2 is AxpyHeadsRowsF16: heads four at a time by
// axpyHeadsRows4F16 when they are a multiple of four, two at a time by
// axpyHeadsRows2F16 when of two, else one at a time (axpyHeadsRows1F16,
// hd a multiple of 32); other head sizes by the per-key loop.
func axpyRowsF16AVX2(w []float32, wstride, heads int, v []byte, vstride, n int, out []float32) {
	hd := len(out) / heads
	switch {
	case hd%16 != 0 || hd == 0 || heads%2 != 0 && hd%32 != 0:
		axpyHeadsRowsF16Loop(axpyAVX2Go, w, wstride, heads, v, vstride, n, out)
	case heads%4 == 0:
		for h := 0; h < heads; h += 4 {
			axpyHeadsRows4F16(&w[h*wstride], wstride, &v[0], vstride, n, &out[h*hd], hd)
		}
	case heads%2 == 0:
		for h := 0; h < heads; h += 2 {
			axpyHeadsRows2F16(&w[h*wstride], wstride, &v[0], vstride, n, &out[h*hd], hd)
		}
	default:
		for h := range heads {
			axpyHeadsRows1F16(&w[h*wstride], wstride, &v[0], vstride, n, &out[h*hd], hd)
		}
	}
}

// q4Tile84AVX2 and q8Tile84AVX2 are q4Tile84VNNI and q8Tile84VNNI on AVX2 alone (tile8_amd64.s).
//
//go:noescape
func q4Tile84AVX2(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)

//go:noescape
func q8Tile84AVX2(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)

func q8AVX2Go(w, x []byte) float32 {
	nb := len(w) / q8b
	return q8DotAVX2(w, x[:nb*q8b], nb, f16tab)
}

func q4AVX2Go(w, x []byte) float32 {
	nb := len(w) / q4b
	return q4DotAVX2(w, x[:nb*q8b], nb, f16tab)
}

func archVariants() []*variant { return []*variant{vnniVariant, avx2Variant} }

// dotAVX2Go is dotGo, bit for bit: the assembly keeps its four chains in
// one register's lanes, and the tail joins chain 0 before the final sum.
func dotAVX2Go(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 3
	var acc [4]float32
	if n > 0 {
		dot4SSE(a[:n], b[:n], &acc)
	}
	s0, s1, s2, s3 := acc[0], acc[1], acc[2], acc[3]
	for i := n; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotHeadsAVX2Go(dst, q, k []float32) {
	if len(k)%4 != 0 || len(k) == 0 || len(dst) == 0 {
		dotHeadsLoop(dotAVX2Go, dst, q, k)
		return
	}
	_ = q[len(dst)*len(k)-1]
	dotHeadsSSE(dst, q, k)
}

func axpyHeadsAVX2Go(w, v, out []float32) {
	if len(v)%8 != 0 || len(v) == 0 || len(w) == 0 {
		axpyHeadsLoop(axpyAVX2Go, w, v, out)
		return
	}
	_ = out[len(w)*len(v)-1]
	axpyHeadsAVX2(w, v, out)
}

func axpyAVX2Go(a float32, x, y []float32) {
	y = y[:len(x)]
	n := len(x) &^ 31
	if n > 0 {
		axpyAVX2(a, x[:n], y[:n])
	}
	for i := n; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// The assembly below handles whole blocks (floats: multiples of 32); the
// wrappers above check lengths and finish tails.

//go:noescape
func dotHeadsSSE(dst, q, k []float32)

//go:noescape
func axpyHeadsAVX2(w, v, out []float32)

// dotHeadsRows4AVX and axpyHeadsRowsAVX2 are the DotHeadsRows and
// AxpyHeadsRows of four heads and n even, and of hd a multiple of 8.
//
//go:noescape
func dotHeadsRows4AVX(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)

//go:noescape
func axpyHeadsRowsAVX2(w *float32, wstride, heads int, v *float32, vstride, n int, out *float32, hd int)

// dotHeadsRows4F16 and axpyHeadsRows4F16 are dotHeadsRows4AVX and the
// four-head AxpyHeadsRows (hd a multiple of 16) on halves.
//
//go:noescape
func dotHeadsRows4F16(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)

//go:noescape
func axpyHeadsRows4F16(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd int)

// dotHeadsRows2AVX, dotHeadsRows2F16 and axpyHeadsRows2F16 are the forms
// above for two query heads to a key head (gemma2), the dots over n keys a
// multiple of 4.
//
//go:noescape
func dotHeadsRows2AVX(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)

//go:noescape
func dotHeadsRows2F16(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)

//go:noescape
func axpyHeadsRows2F16(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd int)

// dotHeadsRows1AVX, dotHeadsRows1F16 and axpyHeadsRows1F16 are the same
// for one query head to a key head (multi-head attention); the last with
// hd a multiple of 32.
//
//go:noescape
func dotHeadsRows1AVX(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)

//go:noescape
func dotHeadsRows1F16(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)

//go:noescape
func axpyHeadsRows1F16(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd int)

//go:noescape
func q8DotAVX2(w, x []byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func q4DotAVX2(w, x []byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func q8Dot4AVX2(w, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[4]float32)

//go:noescape
func q4Dot4AVX2(w, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[4]float32)

//go:noescape
func q8Rows4AVX2(w0, w1, w2, w3, x []byte, nb int, tab *[1 << 16]float32, dst *[4]float32)

//go:noescape
func q4Rows4AVX2(w0, w1, w2, w3, x []byte, nb int, tab *[1 << 16]float32, dst *[4]float32)

// rows8Form makes the r8 form of an eight-row decode kernel (qdot_amd64.s) over blocks of bb weight
// bytes: the operands are bounds-checked here, before the assembly reads them, and a row shorter
// than a block gives zeros.
func rows8Form(bb int, k func(w []byte, rb int, x []byte, nb int, pf *byte, dst *[8]float32)) func(w []byte, rb int, x []byte, _ []xaux, _ int, pf []byte, dst *[8]float32) {
	return func(w []byte, rb int, x []byte, _ []xaux, _ int, pf []byte, dst *[8]float32) {
		nb := rb / bb
		if nb == 0 {
			*dst = [8]float32{}
			return
		}
		_ = w[8*rb-1]
		k(w, rb, x[:nb*q8b], nb, prefetchBase(pf, w), dst)
	}
}

// prefetchBase is where a kernel's prefetch starts: pf, or w when pf is
// empty. The kernels prefetch as many bytes as they read (up to a few
// bytes beyond, which a prefetch may touch: it never faults).
func prefetchBase(pf, w []byte) *byte {
	if len(pf) > 0 {
		return &pf[0]
	}
	return &w[0]
}

// q8Rows8AVX2 and q4Rows8AVX2 compute dst[k] for the rows w[k*rb:], k < 8,
// against the token x: nb blocks each, prefetching the bytes from pf on.
//
//go:noescape
func q8Rows8AVX2(w []byte, rb int, x []byte, nb int, pf *byte, dst *[8]float32)

//go:noescape
func q4Rows8AVX2(w []byte, rb int, x []byte, nb int, pf *byte, dst *[8]float32)

//go:noescape
func quantizeQ8AVX2(dst []byte, src []float32, nb int)

//go:noescape
func siluAVX2(x []float32)

// scaleAVX2 is scaleGo for len(x) a multiple of 8 (VMULPS: the same
// float32 products).
//
//go:noescape
func scaleAVX2(x []float32, s float32)

//go:noescape
func geluAVX2(x []float32)

//go:noescape
func expSumAVX2(x []float32, m float32) float64

//go:noescape
func dot4SSE(a, b []float32, acc *[4]float32)

//go:noescape
func axpyAVX2(a float32, x, y []float32)
