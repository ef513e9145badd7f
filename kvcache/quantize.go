package kvcache

import (
	"encoding/binary"
	"math"

	"edgelm/quant"
)

// quantizeQ4_0 writes src as Q4_0 blocks (the GGUF layout quant.DequantizeQ4_0 reads) with, for
// each block, the scale whose rounding gives the smallest squared error among ggml's (the largest
// magnitude maps to -8) and the least-squares scales of 21 candidate roundings (the largest
// magnitude mapped to 7..9 in steps of 0.1). The error is measured after the scale is rounded to
// f16, as attention will read it, so no block is worse than ggml's rounding (quant.QuantizeQ4_0).
// A cache row is quantized once per token and layer: the search costs far less than the step.
func quantizeQ4_0(dst []byte, src []float32) {
	var l, best [quant.QK]int8
	for b := 0; b < len(src)/quant.QK; b++ {
		x := src[b*quant.QK : (b+1)*quant.QK]
		out := dst[b*quant.Q4_0Bytes : (b+1)*quant.Q4_0Bytes]
		var amax, mx float32
		for _, v := range x {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		if amax == 0 || math.IsInf(float64(amax), 0) || math.IsNaN(float64(amax)) {
			quant.QuantizeQ4_0(out, x) // nothing to choose (or nothing sensible)
			continue
		}
		bestErr, bestD := math.Inf(1), uint16(0)
		try := func(d float32) {
			h := quant.F32ToF16(d)
			dh := quant.F16ToF32(h)
			if dh == 0 || math.IsInf(float64(dh), 0) {
				return
			}
			id := 1 / dh
			e := 0.0
			for j, v := range x {
				q := max(-8, min(7, round(v*id)))
				l[j] = int8(q)
				r := float64(v) - float64(dh)*float64(q)
				e += r * r
			}
			if e < bestErr {
				bestErr, bestD, best = e, h, l
			}
		}
		try(mx / -8)
		for is := -10; is <= 10; is++ {
			iscale := -(8 + 0.1*float32(is)) / mx
			var sumlx, suml2 float32
			for _, v := range x {
				q := float32(max(-8, min(7, round(v*iscale))))
				sumlx += v * q
				suml2 += q * q
			}
			if suml2 > 0 {
				try(sumlx / suml2)
			}
		}
		binary.LittleEndian.PutUint16(out, bestD)
		for j := range quant.QK / 2 {
			out[2+j] = byte(best[j]+8) | byte(best[j+quant.QK/2]+8)<<4
		}
	}
}

// hadamard applies the orthonormal Walsh-Hadamard transform of size len(x), a power of two, to x
// in place: H = H₂⊗…⊗H₂ / √len(x), its own inverse. Rotating a key and its query by the same H
// leaves q·k as it was while spreading outlier channels over all the values, so one large channel
// no longer sets a coarse 4-bit step for the rest of its block.
func hadamard(x []float32) {
	n := len(x)
	for h := 1; h < n; h *= 2 {
		for i := 0; i < n; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
	norm := float32(1 / math.Sqrt(float64(n)))
	for i := range x {
		x[i] *= norm
	}
}

// maxRotation bounds the span of the rotation (a stack buffer in quantizeQ4_0Rotated).
const maxRotation = 256

// quantizeQ4_0Rotated is quantizeQ4_0 of src after hadamard over each span of n values.
func quantizeQ4_0Rotated(dst []byte, src []float32, n int) {
	var buf [maxRotation]float32
	for i := 0; i < len(src); i += n {
		r := buf[:n]
		copy(r, src[i:i+n])
		hadamard(r)
		quantizeQ4_0(dst[i/quant.QK*quant.Q4_0Bytes:(i+n)/quant.QK*quant.Q4_0Bytes], r)
	}
}

// round is math.RoundToEven for |x| < 2²²: adding 1.5·2²³ leaves a float32 whose unit is 1, so the
// addition itself rounds x to the nearest integer, ties to even; the low mantissa bits hold it.
// (A call to math.RoundToEven per value made the scale search 65 times ggml's rounding.)
func round(x float32) int {
	return int(math.Float32bits(x+12582912)&0x7fffff) - 0x400000
}
