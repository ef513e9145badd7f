//go:build arm64 && !purego && gc

package kernels

import (
	"edgelm/quant"

	"github.com/klauspost/cpuid/v2"
)

func archFeatures() []string {
	var fs []string
	if cpuid.CPU.Supports(cpuid.ASIMD) {
		fs = append(fs, "neon")
	}
	if cpuid.CPU.Supports(cpuid.ASIMD, cpuid.ASIMDDP) {
		fs = append(fs, "dotprod")
	}
	return fs
}

// blockKernel and block4Kernel are the assembly signatures: the lanes of
// the accumulators are left in acc for Go to add.
type (
	blockKernel  func(w, x []byte, nb int, tab *[1 << 16]float32, acc *[4]float32)
	block4Kernel func(w, x []byte, stride, nb int, tab *[1 << 16]float32, acc *[16]float32)
)

func sum4(a *[4]float32) float32 { return (a[0] + a[1]) + (a[2] + a[3]) }

// one and four adapt the assembly to the variant's functions. The lane
// buffers are locals the assembly does not keep (noescape), so they stay on
// the stack.
func oneQ8(k blockKernel) func(w, x []byte) float32 {
	return func(w, x []byte) float32 {
		nb := len(w) / q8b
		var acc [4]float32
		k(w, x[:nb*q8b], nb, f16tab, &acc)
		return sum4(&acc)
	}
}

func oneQ4(k blockKernel) func(w, x []byte) float32 {
	return func(w, x []byte) float32 {
		nb := len(w) / q4b
		var acc [4]float32
		k(w, x[:nb*q8b], nb, f16tab, &acc)
		return sum4(&acc)
	}
}

// rows4Kernel is the four-row decode kernel: acc[4*k:4*k+4] are row k's lanes.
type rows4Kernel func(w0, w1, w2, w3, x []byte, nb int, tab *[1 << 16]float32, acc *[16]float32)

func rows4(k rows4Kernel, blockBytes int) func(w0, w1, w2, w3, x []byte, dst *[4]float32) {
	return func(w0, w1, w2, w3, x []byte, dst *[4]float32) {
		n := len(w0)
		nb := n / blockBytes
		var acc [16]float32
		k(w0, w1[:n], w2[:n], w3[:n], x[:nb*q8b], nb, f16tab, &acc)
		for r := range 4 {
			dst[r] = sum4((*[4]float32)(acc[4*r:]))
		}
	}
}

// rows8Kernel is the eight-row decode kernel: acc[4*k:4*k+4] are row k's
// lanes, each as the one-row kernel leaves them; it prefetches from pf.
type rows8Kernel func(w []byte, rb int, x []byte, nb int, tab *[1 << 16]float32, pf *byte, acc *[32]float32)

// rows8 makes the r8 form of an eight-row kernel over blocks of bb weight
// bytes: operands are bounds-checked here, before the assembly reads them,
// and a row shorter than a block gives zeros.
func rows8(k rows8Kernel, bb int) func(w []byte, rb int, x []byte, _ []xaux, _ int, pf []byte, dst *[8]float32) {
	return func(w []byte, rb int, x []byte, _ []xaux, _ int, pf []byte, dst *[8]float32) {
		nb := rb / bb
		if nb == 0 {
			*dst = [8]float32{}
			return
		}
		_ = w[8*rb-1]
		var acc [32]float32
		k(w, rb, x[:nb*q8b], nb, f16tab, prefetchBase(pf, w), &acc)
		for r := range 8 {
			dst[r] = sum4((*[4]float32)(acc[4*r:]))
		}
	}
}

// tile44 makes the t44 form of a 4×4 tile kernel over blocks of bb weight
// bytes: dst[4*k+t] is row w[k*rb:] against token x[t*stride:], bit for
// bit the one-row kernel's.
func tile44(k func(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32), bb int) func(w []byte, rb int, x []byte, stride int, dst *[16]float32) {
	return func(w []byte, rb int, x []byte, stride int, dst *[16]float32) {
		nb := rb / bb
		if nb == 0 {
			*dst = [16]float32{}
			return
		}
		_ = w[4*rb-1]
		_ = x[3*stride+nb*q8b-1]
		k(w, rb, x, stride, nb, f16tab, dst)
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

func four(k block4Kernel, blockBytes int) func(w, x []byte, stride int, dst *[4]float32) {
	return func(w, x []byte, stride int, dst *[4]float32) {
		nb := len(w) / blockBytes
		if nb == 0 {
			*dst = [4]float32{}
			return
		}
		_ = x[3*stride+nb*q8b-1] // the last token's row is in range
		var acc [16]float32
		k(w, x, stride, nb, f16tab, &acc)
		for t := range 4 {
			dst[t] = sum4((*[4]float32)(acc[4*t:]))
		}
	}
}

var (
	neonVariant = withTiles(withNEONFloats(&variant{
		name:  "neon",
		needs: []string{"neon"},
		dot:   dotNEONGo, axpy: axpyNEONGo,
		q8: oneQ8(q8DotNEON), q4: oneQ4(q4DotNEON),
		q8x4: four(q8Dot4NEON, q8b), q4x4: four(q4Dot4NEON, q4b),
		q8r4: rows4(q8Rows4NEON, q8b), q4r4: rows4(q4Rows4NEON, q4b),
		q8r8: rows8(q8Rows8NEON, q8b), q4r8: rows8(q4Rows8NEON, q4b),
		q8t44: tile44(q8Tile44NEON, q8b), q4t44: tile44(q4Tile44NEON, q4b),
		kdot:  kdotsNEON,
		quant: quantizeQ8,
	}))
	sdotVariant = withTiles(withNEONFloats(&variant{
		name:  "neon+dotprod",
		needs: []string{"neon", "dotprod"},
		dot:   dotNEONGo, axpy: axpyNEONGo,
		q8: oneQ8(q8DotSDOT), q4: oneQ4(q4DotSDOT),
		q8x4: four(q8Dot4SDOT, q8b), q4x4: four(q4Dot4SDOT, q4b),
		q8r4: rows4(q8Rows4SDOT, q8b), q4r4: rows4(q4Rows4SDOT, q4b),
		q8r8: rows8(q8Rows8SDOT, q8b), q4r8: rows8(q4Rows8SDOT, q4b),
		q8t44: tile44(q8Tile44SDOT, q8b), q4t44: tile44(q4Tile44SDOT, q4b),
		kdot:  kdotsSDOT,
		quant: quantizeQ8,
	}))
)

func archVariants() []*variant { return []*variant{sdotVariant, neonVariant} }

// withNEONFloats sets v's float kernels (float_arm64.s), the same for both
// variants. The Rows forms take any grouping of query heads to key heads
// (four or two at a time where the group is a multiple of that, else one),
// hd a multiple of 16, and leave other head sizes to the per-key loops,
// which give the same bits.
func withNEONFloats(v *variant) *variant {
	v.silu = func(x []float32) {
		n := len(x) &^ 3
		if n > 0 {
			siluNEON(x[:n])
		}
		siluGo(x[n:])
	}
	v.gelu = func(x []float32) {
		n := len(x) &^ 3
		if n > 0 {
			geluNEON(x[:n])
		}
		geluGo(x[n:])
	}
	v.expsum = func(x []float32, m float32) float64 {
		n := len(x) &^ 3
		var s float64
		if n > 0 {
			s = expSumNEON(x[:n], m)
		}
		return s + expSumGo(x[n:], m)
	}
	v.f16 = func(w []byte, x []float32) float32 { return halfNEONGo(false, w, x) }
	v.bf16 = func(w []byte, x []float32) float32 { return halfNEONGo(true, w, x) }
	v.scale = func(x []float32, s float32) {
		n := len(x) &^ 15
		if n > 0 {
			scaleNEON(x[:n], s)
		}
		scaleGo(x[n:], s)
	}
	v.dotHeadsRows = func(dst []float32, dstride int, q []float32, heads, kvHeads int, k []float32, kstride, n int) {
		if hd := len(q) / heads; hd%16 == 0 && hd > 0 {
			rowsNEON.dot(dst, dstride, q, heads, kvHeads, k, kstride, n)
			return
		}
		dotHeadsRowsLoop(v.dot, dst, dstride, q, heads, kvHeads, k, kstride, n, 0)
	}
	v.dotHeadsRowsF16 = func(dst []float32, dstride int, q []float32, heads, kvHeads int, k []byte, kstride, n int) {
		if hd := len(q) / heads; hd%16 == 0 && hd > 0 {
			rowsF16NEON.dot(dst, dstride, q, heads, kvHeads, k, kstride, n)
			return
		}
		dotHeadsRowsF16Loop(v.dot, dst, dstride, q, heads, kvHeads, k, kstride, n, 0)
	}
	v.axpyHeadsRows = func(w []float32, wstride, heads int, val []float32, vstride, n int, out []float32) {
		if hd := len(out) / heads; hd%16 == 0 && hd > 0 {
			axpyRowsNEON(axpyHeadsRows4NEON, axpyHeadsRows2NEON, axpyHeadsRows1NEON, 4, w, wstride, heads, val, vstride, n, out)
			return
		}
		axpyHeadsRowsLoop(v.axpy, w, wstride, heads, val, vstride, n, out)
	}
	v.axpyHeadsRowsF16 = func(w []float32, wstride, heads int, val []byte, vstride, n int, out []float32) {
		if hd := len(out) / heads; hd%16 == 0 && hd > 0 {
			axpyRowsNEON(axpyHeadsRows4F16NEON, axpyHeadsRows2F16NEON, axpyHeadsRows1F16NEON, 2, w, wstride, heads, val, vstride, n, out)
			return
		}
		axpyHeadsRowsF16Loop(v.axpy, w, wstride, heads, val, vstride, n, out)
	}
	return v
}

// The NEON Rows dot kernels take any number of keys; strides in bytes.
var (
	rowsNEON    = rowKernels[float32]{dotHeadsRows4NEON, dotHeadsRows2NEON, dotHeadsRows1NEON, 1, 1, 1, 4, 4}
	rowsF16NEON = rowKernels[byte]{dotHeadsRows4F16NEON, dotHeadsRows2F16NEON, dotHeadsRows1F16NEON, 1, 1, 2, 4, 2}
)

// axpyKernel is the signature of the NEON AxpyHeadsRows kernels: groups of
// a fixed number of heads sharing the values, strides in bytes.
type axpyKernel[V float32 | byte] func(w *float32, wstride int, v *V, vstride, n int, out *float32, hd, groups int)

// axpyRowsNEON runs the kernel taking the heads four (k4), two (k2) or one
// (k1) at a time, the widest their count divides by; sv is the bytes of a
// value element.
func axpyRowsNEON[V float32 | byte](k4, k2, k1 axpyKernel[V], sv int, w []float32, wstride, heads int, val []V, vstride, n int, out []float32) {
	kern, g := k1, 1
	switch {
	case heads%4 == 0:
		kern, g = k4, 4
	case heads%2 == 0:
		kern, g = k2, 2
	}
	kern(&w[0], 4*wstride, &val[0], sv*vstride, n, &out[0], len(out)/heads, heads/g)
}

// halfNEONGo is dotNEONGo of the row w, halves (bfloat16s if bf), with x:
// the whole chunks of 16 in assembly, the tail converted and summed as
// dotNEONGo sums it.
func halfNEONGo(bf bool, w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	n := len(x) &^ 15
	var s float32
	if n > 0 {
		var acc [4]float32
		if bf {
			bf16DotNEON(w[:2*n], x[:n], &acc)
		} else {
			f16DotNEON(w[:2*n], x[:n], &acc)
		}
		s = sum4(&acc)
	}
	var buf [16]float32
	a := buf[:len(x)-n]
	if bf {
		bf16ToFloatGo(a, w[2*n:])
	} else {
		halfToFloatGo(a, w[2*n:])
	}
	b := x[n:]
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func dotNEONGo(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 15
	var s float32
	if n > 0 {
		var acc [4]float32
		dotNEON(a[:n], b[:n], &acc)
		s = sum4(&acc)
	}
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

func axpyNEONGo(a float32, x, y []float32) {
	y = y[:len(x)]
	n := len(x) &^ 15
	if n > 0 {
		axpyNEON(a, x[:n], y[:n])
	}
	for i := n; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// The assembly handles whole blocks (floats: multiples of 16); the
// wrappers above check lengths and finish tails.

//go:noescape
func q8DotNEON(w, x []byte, nb int, tab *[1 << 16]float32, acc *[4]float32)

//go:noescape
func q8DotSDOT(w, x []byte, nb int, tab *[1 << 16]float32, acc *[4]float32)

//go:noescape
func q4DotNEON(w, x []byte, nb int, tab *[1 << 16]float32, acc *[4]float32)

//go:noescape
func q4DotSDOT(w, x []byte, nb int, tab *[1 << 16]float32, acc *[4]float32)

//go:noescape
func q8Dot4NEON(w, x []byte, stride, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func q8Dot4SDOT(w, x []byte, stride, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func q4Dot4NEON(w, x []byte, stride, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func q4Dot4SDOT(w, x []byte, stride, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func dotNEON(a, b []float32, acc *[4]float32)

//go:noescape
func axpyNEON(a float32, x, y []float32)

//go:noescape
func q4Rows4NEON(w0, w1, w2, w3, x []byte, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func q4Rows4SDOT(w0, w1, w2, w3, x []byte, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func q8Rows4NEON(w0, w1, w2, w3, x []byte, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func q8Rows4SDOT(w0, w1, w2, w3, x []byte, nb int, tab *[1 << 16]float32, acc *[16]float32)

//go:noescape
func q4Rows8NEON(w []byte, rb int, x []byte, nb int, tab *[1 << 16]float32, pf *byte, acc *[32]float32)

//go:noescape
func q4Rows8SDOT(w []byte, rb int, x []byte, nb int, tab *[1 << 16]float32, pf *byte, acc *[32]float32)

//go:noescape
func q8Rows8NEON(w []byte, rb int, x []byte, nb int, tab *[1 << 16]float32, pf *byte, acc *[32]float32)

//go:noescape
func q8Rows8SDOT(w []byte, rb int, x []byte, nb int, tab *[1 << 16]float32, pf *byte, acc *[32]float32)

// The 4×4 prefill tiles: dst[4*k+t] for the rows w[k*rb:] against the
// tokens x[t*stride:], k, t < 4, nb blocks each.
//
//go:noescape
func q4Tile44NEON(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)

//go:noescape
func q4Tile44SDOT(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)

//go:noescape
func q8Tile44NEON(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)

//go:noescape
func q8Tile44SDOT(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)

// The float kernels of float_arm64.s; strides in bytes, arguments checked
// by the callers above and vec.go.

//go:noescape
func dotHeadsRows4NEON(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)

//go:noescape
func dotHeadsRows4F16NEON(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)

//go:noescape
func axpyHeadsRows4NEON(w *float32, wstride int, v *float32, vstride, n int, out *float32, hd, groups int)

//go:noescape
func axpyHeadsRows4F16NEON(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd, groups int)

//go:noescape
func dotHeadsRows2NEON(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)

//go:noescape
func dotHeadsRows2F16NEON(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)

//go:noescape
func axpyHeadsRows2NEON(w *float32, wstride int, v *float32, vstride, n int, out *float32, hd, groups int)

//go:noescape
func axpyHeadsRows2F16NEON(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd, groups int)

//go:noescape
func dotHeadsRows1NEON(dst *float32, dstride int, q *float32, hd int, k *float32, kstride, n, kvh int)

//go:noescape
func dotHeadsRows1F16NEON(dst *float32, dstride int, q *float32, hd int, k *byte, kstride, n, kvh int)

//go:noescape
func axpyHeadsRows1NEON(w *float32, wstride int, v *float32, vstride, n int, out *float32, hd, groups int)

//go:noescape
func axpyHeadsRows1F16NEON(w *float32, wstride int, v *byte, vstride, n int, out *float32, hd, groups int)

//go:noescape
func f16DotNEON(w []byte, x []float32, acc *[4]float32)

//go:noescape
func bf16DotNEON(w []byte, x []float32, acc *[4]float32)

//go:noescape
func scaleNEON(x []float32, s float32)

func bf16ToFloatGo(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = quant.BF16ToF32(u16le(src[2*i:]))
	}
}

// The activations of act_arm64.s, four floats at a time.

//go:noescape
func siluNEON(x []float32)

//go:noescape
func geluNEON(x []float32)

//go:noescape
func expSumNEON(x []float32, m float32) float64
