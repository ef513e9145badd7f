package kernels

import (
	"fmt"
	"math"
)

// Dot returns the dot product of a and b, which must have the same length:
// `for i := range a { s += a[i] * b[i] }`, in float32. Variants sum in a
// different order, so results agree to float32 rounding, not bit for bit.
func Dot(a, b []float32) float32 { return Set{}.Dot(a, b) }

// Axpy is `for i, v := range x { y[i] += a * v }`; len(y) must equal len(x).
func Axpy(a float32, x, y []float32) { Set{}.Axpy(a, x, y) }

// DotHeads sets dst[h] = Dot(q[h*len(k):(h+1)*len(k)], k) for every h <
// len(dst), bit for bit: the scores of several query heads against one key
// head, in one call. q must hold len(dst)*len(k) values.
func DotHeads(dst, q, k []float32) {
	if len(q) != len(dst)*len(k) {
		panic(fmt.Sprintf("kernels: DotHeads of %d heads of %d with %d values", len(dst), len(k), len(q)))
	}
	cur().dotHeads(dst, q, k)
}

// DotHeadsRows sets dst[h*dstride+j] = Dot(q[h*hd:(h+1)*hd], k[j*kstride+kh*hd:][:hd]) for every
// query head h < heads and key j < n, where hd = len(q)/heads and kh = h/(heads/kvHeads) is the
// key head h meets (a key row holds kvHeads heads), bit for bit: DotHeads per key and key head in
// one call, which saves a call per key and reads each key row front to back.
func DotHeadsRows(dst []float32, dstride int, q []float32, heads, kvHeads int, k []float32, kstride, n int) {
	Set{}.DotHeadsRows(dst, dstride, q, heads, kvHeads, k, kstride, n)
}

// dotRowsFit reports whether DotHeadsRows' operands, given by their lengths (nk: the keys'
// elements, floats or halves), hold every element its heads and keys reach (n > 0, heads > 0).
func dotRowsFit(ndst, dstride, nq, heads, kvHeads, nk, kstride, n int) bool {
	hd := nq / heads
	return hd*heads == nq && kvHeads > 0 && heads%kvHeads == 0 && kstride >= kvHeads*hd && dstride >= n &&
		nk >= (n-1)*kstride+kvHeads*hd && ndst >= (heads-1)*dstride+n
}

// axpyRowsFit is dotRowsFit for AxpyHeadsRows (nv: the values' elements, floats or halves).
func axpyRowsFit(nw, wstride, heads, nv, vstride, n, nout int) bool {
	hd := nout / heads
	return hd*heads == nout && vstride >= hd && wstride >= n && nv >= (n-1)*vstride+hd && nw >= (heads-1)*wstride+n
}

// AxpyHeadsRows does, for each key j < n in order, AxpyHeads(w[j], v[j*vstride:j*vstride+hd], out)
// with w[j] the weights w[h*wstride+j] of the heads h < heads, hd = len(out)/heads: bit for bit those
// calls, in one.
func AxpyHeadsRows(w []float32, wstride, heads int, v []float32, vstride, n int, out []float32) {
	Set{}.AxpyHeadsRows(w, wstride, heads, v, vstride, n, out)
}

// DotHeadsRowsF16 is DotHeadsRows for keys stored as little-endian halves (key j's head kh at
// k[2*(j*kstride+kh*hd):]), converted as HalfToFloat converts them (exactly): bit for bit the
// results of converting them and calling DotHeadsRows.
func DotHeadsRowsF16(dst []float32, dstride int, q []float32, heads, kvHeads int, k []byte, kstride, n int) {
	Set{}.DotHeadsRowsF16(dst, dstride, q, heads, kvHeads, k, kstride, n)
}

// AxpyHeadsRowsF16 is AxpyHeadsRows for values stored as little-endian halves: key j's hd halves at
// v[2*j*vstride:], bit for bit the results of converting them and calling AxpyHeadsRows.
func AxpyHeadsRowsF16(w []float32, wstride, heads int, v []byte, vstride, n int, out []float32) {
	Set{}.AxpyHeadsRowsF16(w, wstride, heads, v, vstride, n, out)
}

// AxpyHeads does Axpy(w[h], v, out[h*len(v):(h+1)*len(v)]) for every h <
// len(w), bit for bit: one value row weighted into several heads' outputs.
func AxpyHeads(w, v, out []float32) {
	if len(out) != len(w)*len(v) {
		panic(fmt.Sprintf("kernels: AxpyHeads of %d heads of %d into %d values", len(w), len(v), len(out)))
	}
	cur().axpyHeads(w, v, out)
}

// Scale is `for i := range x { x[i] *= s }`.
func Scale(x []float32, s float32) { cur().scale(x, s) }

func scaleGo(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// Add is `for i := range dst { dst[i] = a[i] + b[i] }`; dst may be a or b.
func Add(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// Mul is `for i := range dst { dst[i] = a[i] * b[i] }`; dst may be a or b.
func Mul(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// RMSNorm sets dst[i] = x[i] * scale * w[i] with
// scale = 1/sqrt(mean(x²) + eps), the mean summed in float64 as ggml does.
// A nil w means no weight (w[i] = 1). dst may be x.
func RMSNorm(dst, x, w []float32, eps float32) {
	dst = dst[:len(x)]
	if len(x) == 0 {
		return
	}
	var sum float64
	for _, v := range x {
		sq := v * v // squared in float32, summed in float64, as ggml does
		sum += float64(sq)
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	if w == nil {
		for i, v := range x {
			dst[i] = v * scale
		}
		return
	}
	w = w[:len(x)]
	for i, v := range x {
		dst[i] = float32(v*scale) * w[i]
	}
}

// maxOf returns the largest value of x (-Inf for none), by comparisons in four independent chains:
// the builtin max orders NaNs and signed zeros, a chain of several instructions per value that was
// most of Softmax's time. A NaN is skipped here; of two zeros either may be kept, and x - max is
// the same for both.
func maxOf(x []float32) float32 {
	m0, m1, m2, m3 := float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))
	i := 0
	for ; i+4 <= len(x); i += 4 {
		if v := x[i]; v > m0 {
			m0 = v
		}
		if v := x[i+1]; v > m1 {
			m1 = v
		}
		if v := x[i+2]; v > m2 {
			m2 = v
		}
		if v := x[i+3]; v > m3 {
			m3 = v
		}
	}
	for ; i < len(x); i++ {
		if x[i] > m0 {
			m0 = x[i]
		}
	}
	if m1 > m0 {
		m0 = m1
	}
	if m3 > m2 {
		m2 = m3
	}
	if m2 > m0 {
		m0 = m2
	}
	return m0
}

// Softmax replaces x with softmax(x) in place: e[i] = exp(x[i] - max(x)),
// x[i] = e[i] / Σe, the sum in float64. Entries of -Inf become 0; if every
// entry is -Inf the result is all 0.
func Softmax(x []float32) { Set{}.Softmax(x) }

// SiLU replaces x[i] with x[i] / (1 + exp(-x[i])).
func SiLU(x []float32) { cur().silu(x) }

func siluGo(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + expf(-v))
	}
}

// GELU replaces x[i] with the tanh approximation used by ggml:
// 0.5*x*(1 + tanh(sqrt(2/π)*(x + 0.044715*x³))), computed as the equal
// x / (1 + exp(-2u)) with u = sqrt(2/π)*(x + 0.044715*x³), which has no
// cancellation near 0.
func GELU(x []float32) { cur().gelu(x) }

func geluGo(x []float32) {
	const c = 0.7978845608028654 // sqrt(2/π)
	for i, v := range x {
		u := c * (v + 0.044715*v*v*v)
		x[i] = v / (1 + expf(-2*u))
	}
}

// expSumGo sets x[i] = e^(x[i]-m) and returns Σ x[i] summed in float64.
func expSumGo(x []float32, m float32) float64 {
	var sum float64
	for i, v := range x {
		e := expf(v - m)
		x[i] = e
		sum += float64(e)
	}
	return sum
}

// expf is e^x in float32 within 2 ulp (Cephes' expf: x = n·ln2 + r with
// |r| <= ln2/2, a degree-6 polynomial for e^r, then the exponent bits).
// Results below 2^-125 flush to 0; above the float32 range it is +Inf.
// It is several times faster than math.Exp, which the activations call once
// per element.
func expf(x float32) float32 {
	const (
		hi    = 88.72283 // ln(MaxFloat32)
		lo    = -86.64   // ln(2^-125): below this the result flushes to 0
		log2e = 1.44269504088896341
		ln2hi = 0.693359375 // ln2 = ln2hi + ln2lo, ln2hi exact in few bits
		ln2lo = -2.12194440e-4
	)
	switch {
	case x > hi:
		return float32(math.Inf(1))
	case x < lo:
		return 0
	case x != x:
		return x
	}
	t := x * log2e
	// n = round(t), halves away from zero, without a branch.
	n := int32(t + math.Float32frombits(0x3f000000|math.Float32bits(t)&(1<<31)))
	fn := float32(n)
	r := x - fn*ln2hi - fn*ln2lo
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y := p*z + r + 1
	// 2^n as 2^(n-1)·2 so that n = 128 (x near hi) stays finite.
	return y * math.Float32frombits(uint32(n-1+127)<<23) * 2
}

// DotQ8_0 returns the dot product of two equally long runs of Q8_0 blocks:
// for each block sumi = Σ q_a[j]*q_b[j] (exact), sum += f16(d_a)*f16(d_b)*sumi,
// in float32. The quants of b must lie in [-127, 127], as Q8_0 quantization
// produces (assembly variants use the sign trick, which needs that of one
// operand); a may hold any byte.
func DotQ8_0(a, b []byte) float32 {
	if len(a) != len(b) || len(a)%q8b != 0 {
		panic(fmt.Sprintf("kernels: DotQ8_0 of %d and %d bytes, not equal whole blocks", len(a), len(b)))
	}
	return cur().q8(a, b)
}

// DotQ4_0Q8_0 returns the dot product of Q4_0 blocks w with as many Q8_0
// blocks x: per block sumi = Σ (nibble_w[j]-8)*q_x[j], sum +=
// f16(d_w)*f16(d_x)*sumi in float32. The quants of x must lie in [-127, 127].
func DotQ4_0Q8_0(w, x []byte) float32 {
	if len(w)%q4b != 0 || len(x) != len(w)/q4b*q8b {
		panic(fmt.Sprintf("kernels: DotQ4_0Q8_0 of %d and %d bytes, not matching whole blocks", len(w), len(x)))
	}
	return cur().q4(w, x)
}
