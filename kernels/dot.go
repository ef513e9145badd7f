package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"

	"edgelm/quant"
)

// This file holds the plain Go kernels. They always build: they are the
// "generic" variant, the reference every assembly variant is tested
// against, and the fallback on other architectures.

const (
	qk  = quant.QK
	q8b = quant.Q8_0Bytes
	q4b = quant.Q4_0Bytes
)

func u16le(b []byte) uint16  { return binary.LittleEndian.Uint16(b) }
func f32le(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

// littleEndian is true where a []byte of little-endian float32s can be read
// in place as []float32.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// f32view returns b as []float32 without copying (little-endian hosts only).
func f32view(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// f16 is quant.F16ToF32 through a table: the block scales of every
// quantized dot go through it.
var f16tab = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = quant.F16ToF32(uint16(i))
	}
	return &t
}()

func f16(b []byte) float32 { return f16tab[binary.LittleEndian.Uint16(b)] }

// dotGo is the float32 dot product, accumulated in four interleaved sums
// (s[i%4] += a[i]*b[i], then (s0+s1)+(s2+s3)) so that it pipelines.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// f16DotGo is dotGo over the halves of w converted to float32, in dotGo's
// order exactly: a row gives the same bits converted on the fly (decode) as
// dequantized first (batches).
func f16DotGo(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += f16tab[u16le(w[2*i:])] * x[i]
		s1 += f16tab[u16le(w[2*i+2:])] * x[i+1]
		s2 += f16tab[u16le(w[2*i+4:])] * x[i+2]
		s3 += f16tab[u16le(w[2*i+6:])] * x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += f16tab[u16le(w[2*i:])] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// bf16DotGo is f16DotGo for bfloat16 halves.
func bf16DotGo(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += quant.BF16ToF32(u16le(w[2*i:])) * x[i]
		s1 += quant.BF16ToF32(u16le(w[2*i+2:])) * x[i+1]
		s2 += quant.BF16ToF32(u16le(w[2*i+4:])) * x[i+2]
		s3 += quant.BF16ToF32(u16le(w[2*i+6:])) * x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += quant.BF16ToF32(u16le(w[2*i:])) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo is `for i, v := range x { y[i] += a * v }`.
func axpyGo(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

// sumQ8 is the exact integer dot product of two Q8_0 blocks' quants.
func sumQ8(w, x *[q8b]byte) int32 {
	var s int32
	for j := 2; j < q8b; j++ {
		s += int32(int8(w[j])) * int32(int8(x[j]))
	}
	return s
}

// sumQ4 is the exact integer dot product of a Q4_0 block's quants (nibble-8)
// with a Q8_0 block's.
func sumQ4(w *[q4b]byte, x *[q8b]byte) int32 {
	var s int32
	for j := 0; j < qk/2; j++ {
		s += (int32(w[2+j]&15) - 8) * int32(int8(x[2+j]))
		s += (int32(w[2+j]>>4) - 8) * int32(int8(x[2+qk/2+j]))
	}
	return s
}

// dotQ8Go is the dot product of len(w)/34 Q8_0 blocks with as many Q8_0
// blocks of x: sum += f16(d_w)*f16(d_x)*sumi per block, in block order.
func dotQ8Go(w, x []byte) float32 {
	nb := len(w) / q8b
	x = x[:nb*q8b]
	var acc float32
	for b := range nb {
		wb := (*[q8b]byte)(w[b*q8b:])
		xb := (*[q8b]byte)(x[b*q8b:])
		acc += f16(wb[:]) * f16(xb[:]) * float32(sumQ8(wb, xb))
	}
	return acc
}

// dotQ4Go is dotQ8Go for Q4_0 weights: len(w)/18 blocks against Q8_0 x.
func dotQ4Go(w, x []byte) float32 {
	nb := len(w) / q4b
	x = x[:nb*q8b]
	var acc float32
	for b := range nb {
		wb := (*[q4b]byte)(w[b*q4b:])
		xb := (*[q8b]byte)(x[b*q8b:])
		acc += f16(wb[:]) * f16(xb[:]) * float32(sumQ4(wb, xb))
	}
	return acc
}

// dotQ8x4Go computes dst[t] = dotQ8(w, x[t*stride:]) for t < 4: one weight
// row against four tokens' quantized activations.
func dotQ8x4Go(w, x []byte, stride int, dst *[4]float32) {
	n := len(w)
	for t := range 4 {
		dst[t] = dotQ8Go(w, x[t*stride:t*stride+n])
	}
}

// dotQ4x4Go is dotQ8x4Go for a Q4_0 weight row.
func dotQ4x4Go(w, x []byte, stride int, dst *[4]float32) {
	n := len(w) / q4b * q8b
	for t := range 4 {
		dst[t] = dotQ4Go(w, x[t*stride:t*stride+n])
	}
}

// quantizeQ8 quantizes activations to Q8_0 as llama.cpp does at run time
// on x86 (quantize_row_q8_0's AVX2 path, and the repacked kernels'
// quantize_mat_q8_0), which is not quite its reference
// quantize_row_q8_0_ref (quant.QuantizeQ8_0): per block of 32,
// d = amax/127 stored as f16, id = 127/amax (0 when amax is 0), and
// q = x*id rounded to nearest with ties to even. The golden logprobs were
// made that way; with the reference rounding some positions of the Q8_0 and
// Q4_0 goldens move by more than their 2e-2 tolerance, with this one they
// agree to 1e-5. Quants differ from quant.QuantizeQ8_0 by at most one, and
// only where x*id is within an ulp or two of a half.
func quantizeQ8(dst []byte, src []float32) {
	for b := 0; b < len(src)/qk; b++ {
		x := (*[qk]float32)(src[b*qk:])
		out := (*[q8b]byte)(dst[b*q8b:])
		// |v| as bits orders like |v| (NaN above Inf, as max gives), and an
		// integer max has no branches.
		var m0, m1, m2, m3 uint32 // four chains: max is a compare and a move
		for j := 0; j < qk; j += 4 {
			m0 = max(m0, math.Float32bits(x[j])&^(1<<31))
			m1 = max(m1, math.Float32bits(x[j+1])&^(1<<31))
			m2 = max(m2, math.Float32bits(x[j+2])&^(1<<31))
			m3 = max(m3, math.Float32bits(x[j+3])&^(1<<31))
		}
		amax := math.Float32frombits(max(m0, m1, m2, m3))
		binary.LittleEndian.PutUint16(out[:], quant.F32ToF16(amax/127))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		q := (*[qk]byte)(out[2:])
		for j, v := range x {
			q[j] = byte(int8(int32(math.RoundToEven(float64(float32(v * id))))))
		}
	}
}
