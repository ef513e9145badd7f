package kernels

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Set is one choice of kernels, made once per loaded model so that models loaded with different
// `kernels` settings run side by side, and a model reloaded without a cap gets the best kernels back
// while requests of the old one finish on theirs. The zero Set follows the process's choice
// (EDGELM_KERNELS, SetMaxFeatures).
//
// Its methods are the package functions of the same names, run on the set's variant. The
// conversions (HalfToFloat, FloatToHalf, DequantQ8_0, DequantQ4_0) are the same bits on every
// variant, so they stay package functions.
type Set struct{ v *variant }

// Choose returns the kernels allowed by features, read as SetMaxFeatures reads it ("" or "auto":
// the best the CPU has, "generic": none of its features, or a list such as "avx2,fma"), without
// changing the process's choice. Unknown names are an error.
func Choose(features string) (Set, error) {
	allow, err := parseAllow(features)
	if err != nil {
		return Set{}, err
	}
	return Set{choose(enabled(allow))}, nil
}

// parseAllow reads a feature cap: nil allows everything.
func parseAllow(s string) (map[string]bool, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	switch s {
	case "", "auto":
		return nil, nil
	case "generic", "none":
		return map[string]bool{}, nil
	}
	allow := map[string]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '+' || r == ' ' }) {
		if !slices.Contains(allFeatures, f) {
			return nil, fmt.Errorf("kernels: unknown CPU feature %q in %q (known: %s)", f, s, strings.Join(allFeatures, ","))
		}
		allow[f] = true
	}
	return allow, nil
}

func (k Set) variant() *variant {
	if k.v == nil {
		return cur()
	}
	return k.v
}

// Features names the set's kernels as the package's Features does.
func (k Set) Features() string { return k.variant().name }

// Dot is the package's Dot on the set's kernels.
func (k Set) Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("kernels: Dot of lengths %d and %d", len(a), len(b)))
	}
	return k.variant().dot(a, b)
}

// Axpy is the package's Axpy on the set's kernels.
func (k Set) Axpy(a float32, x, y []float32) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("kernels: Axpy of lengths %d and %d", len(x), len(y)))
	}
	k.variant().axpy(a, x, y)
}

// DotHeadsRows is the package's DotHeadsRows on the set's kernels.
func (k Set) DotHeadsRows(dst []float32, dstride int, q []float32, heads, kvHeads int, keys []float32, kstride, n int) {
	if n <= 0 || heads <= 0 {
		return
	}
	if !dotRowsFit(len(dst), dstride, len(q), heads, kvHeads, len(keys), kstride, n) {
		panic(fmt.Sprintf("kernels: DotHeadsRows of %d heads (%d key heads) of %d values against %d keys %d apart (%d values) into %d, %d apart",
			heads, kvHeads, len(q), n, kstride, len(keys), len(dst), dstride))
	}
	k.variant().dotHeadsRows(dst, dstride, q, heads, kvHeads, keys, kstride, n)
}

// AxpyHeadsRows is the package's AxpyHeadsRows on the set's kernels.
func (k Set) AxpyHeadsRows(w []float32, wstride, heads int, v []float32, vstride, n int, out []float32) {
	if n <= 0 || heads <= 0 {
		return
	}
	if !axpyRowsFit(len(w), wstride, heads, len(v), vstride, n, len(out)) {
		panic(fmt.Sprintf("kernels: AxpyHeadsRows of %d keys %d apart (%d values) into %d heads (%d values), weights %d apart in %d",
			n, vstride, len(v), heads, len(out), wstride, len(w)))
	}
	k.variant().axpyHeadsRows(w, wstride, heads, v, vstride, n, out)
}

// DotHeadsRowsF16 is the package's DotHeadsRowsF16 on the set's kernels.
func (k Set) DotHeadsRowsF16(dst []float32, dstride int, q []float32, heads, kvHeads int, keys []byte, kstride, n int) {
	if n <= 0 || heads <= 0 {
		return
	}
	if !dotRowsFit(len(dst), dstride, len(q), heads, kvHeads, len(keys)/2, kstride, n) {
		panic(fmt.Sprintf("kernels: DotHeadsRowsF16 of %d heads (%d key heads) of %d values against %d keys %d apart (%d bytes) into %d, %d apart",
			heads, kvHeads, len(q), n, kstride, len(keys), len(dst), dstride))
	}
	k.variant().dotHeadsRowsF16(dst, dstride, q, heads, kvHeads, keys, kstride, n)
}

// AxpyHeadsRowsF16 is the package's AxpyHeadsRowsF16 on the set's kernels.
func (k Set) AxpyHeadsRowsF16(w []float32, wstride, heads int, v []byte, vstride, n int, out []float32) {
	if n <= 0 || heads <= 0 {
		return
	}
	if !axpyRowsFit(len(w), wstride, heads, len(v)/2, vstride, n, len(out)) {
		panic(fmt.Sprintf("kernels: AxpyHeadsRowsF16 of %d keys %d apart (%d bytes) into %d heads (%d values), weights %d apart in %d",
			n, vstride, len(v), heads, len(out), wstride, len(w)))
	}
	k.variant().axpyHeadsRowsF16(w, wstride, heads, v, vstride, n, out)
}

// Scale is the package's Scale on the set's kernels.
func (k Set) Scale(x []float32, s float32) { k.variant().scale(x, s) }

// Softmax is the package's Softmax on the set's kernels.
func (k Set) Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := maxOf(x)
	if math.IsInf(float64(mx), -1) {
		clear(x)
		return
	}
	v := k.variant()
	sum := v.expsum(x, mx)
	v.scale(x, float32(1/sum))
}

// SiLU is the package's SiLU on the set's kernels.
func (k Set) SiLU(x []float32) { k.variant().silu(x) }

// GELU is the package's GELU on the set's kernels.
func (k Set) GELU(x []float32) { k.variant().gelu(x) }
