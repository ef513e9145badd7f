package kernels

import (
	"fmt"
	"math"
)

// Dot returns the dot product of a and b, which must have the same length:
// `for i := range a { s += a[i] * b[i] }`, in float32. Variants sum in a
// different order, so results agree to float32 rounding, not bit for bit.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("kernels: Dot of lengths %d and %d", len(a), len(b)))
	}
	return cur().dot(a, b)
}

// Axpy is `for i, v := range x { y[i] += a * v }`; len(y) must equal len(x).
func Axpy(a float32, x, y []float32) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("kernels: Axpy of lengths %d and %d", len(x), len(y)))
	}
	cur().axpy(a, x, y)
}

// Scale is `for i := range x { x[i] *= s }`.
func Scale(x []float32, s float32) {
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

// Softmax replaces x with softmax(x) in place: e[i] = exp(x[i] - max(x)),
// x[i] = e[i] / Σe, the sum in float64. Entries of -Inf become 0; if every
// entry is -Inf the result is all 0.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := float32(math.Inf(-1))
	for _, v := range x {
		mx = max(mx, v)
	}
	if math.IsInf(float64(mx), -1) {
		clear(x)
		return
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// SiLU replaces x[i] with x[i] / (1 + exp(-x[i])).
func SiLU(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + float32(math.Exp(float64(-v))))
	}
}

// GELU replaces x[i] with the tanh approximation used by ggml:
// 0.5*x*(1 + tanh(sqrt(2/π)*(x + 0.044715*x³))).
func GELU(x []float32) {
	const c = 0.7978845608028654 // sqrt(2/π)
	for i, v := range x {
		u := float64(v)
		x[i] = float32(0.5 * u * (1 + math.Tanh(c*(u+0.044715*u*u*u))))
	}
}

// DotQ8_0 returns the dot product of two equally long runs of Q8_0 blocks:
// for each block sumi = Σ q_a[j]*q_b[j] (exact), sum += f16(d_a)*f16(d_b)*sumi,
// in float32. The quants of b must lie in [-127, 127], as QuantizeQ8_0
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
