// Package quant holds the number formats of GGUF weights in plain Go: IEEE
// half floats, bfloat16, and the Q8_0 and Q4_0 block formats of llama.cpp.
//
// It is the oracle the fast kernels are tested against, so every function is
// written as the simplest loop that gives the exact bits llama.cpp's reference
// code gives (ggml-quants.c: quantize_row_q8_0_ref, quantize_row_q4_0_ref).
// It imports nothing of edgelm.
package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// QK is the number of elements in one Q8_0 or Q4_0 block.
const QK = 32

// Block sizes in bytes: a little-endian f16 scale d followed by the quants.
const (
	Q8_0Bytes = 2 + QK   // d, then 32 int8: x[j] ≈ d*q[j]
	Q4_0Bytes = 2 + QK/2 // d, then 16 bytes: byte j = (q[j]) | (q[j+16])<<4, x ≈ d*(q-8)
)

// F16ToF32 converts an IEEE 754 binary16 value to float32, exactly (every
// half, including subnormals, infinities and NaNs, is representable).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or NaN; the payload moves to the top of the float32 mantissa
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: man * 2^-24, a normal float32. Shift the leading one
	// up to the implicit-bit position.
	e := uint32(127 - 15 + 1)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}

// F32ToF16 converts a float32 to IEEE binary16, rounding to nearest with
// ties to even. Values too large become ±Inf, values too small ±0 (through
// the subnormals), and every NaN becomes a quiet NaN 0x7e00 with its sign, as
// ggml's conversion does.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// The result is subnormal (or rounds up to the smallest normal).
		// f = m * 2^(exp-150) with m having its implicit bit; a half
		// subnormal counts units of 2^-24, so shift right by 126-exp.
		if exp == 0 {
			return sign // float32 subnormals are far below half's range
		}
		m := man | 0x800000
		shift := uint(14 - e)
		if shift > 24 {
			return sign
		}
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is right, up to Inf
	}
	return sign | uint16(h)
}

// BF16ToF32 converts a bfloat16 (the top half of a float32) to float32.
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// F32ToBF16 converts a float32 to bfloat16, rounding to nearest with ties to
// even; NaNs stay NaNs (quieted), overflow rounds to ±Inf.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

func checkBlocks(name string, nsrc, ndst, blockBytes int, quantize bool) {
	var n, nb int
	if quantize {
		n, nb = nsrc, ndst
	} else {
		n, nb = ndst, nsrc
	}
	if n%QK != 0 || nb != n/QK*blockBytes {
		panic(fmt.Sprintf("quant: %s: %d values need %d bytes, have %d (values must be a multiple of %d)",
			name, n, n/QK*blockBytes, nb, QK))
	}
}

// QuantizeQ8_0 writes src as Q8_0 blocks into dst. For each block of 32
// values: amax = max |x|, d = amax/127, id = 1/d (0 when d is 0),
// q[j] = round(x[j]*id) with halves away from zero; d is stored as f16.
// len(src) must be a multiple of 32 and len(dst) = len(src)/32*34, else it
// panics (a programming error, not bad input).
func QuantizeQ8_0(dst []byte, src []float32) {
	checkBlocks("QuantizeQ8_0", len(src), len(dst), Q8_0Bytes, true)
	for b := 0; b < len(src)/QK; b++ {
		x := src[b*QK : b*QK+QK]
		out := dst[b*Q8_0Bytes : b*Q8_0Bytes+Q8_0Bytes]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(out, F32ToF16(d))
		for j, v := range x {
			// float32() stops a compiler from fusing anything into the product.
			out[2+j] = byte(int8(math.Round(float64(float32(v * id)))))
		}
	}
}

// DequantizeQ8_0 expands Q8_0 blocks: dst[j] = f16(d) * q[j].
// len(dst) must be a multiple of 32 and len(src) = len(dst)/32*34.
func DequantizeQ8_0(dst []float32, src []byte) {
	checkBlocks("DequantizeQ8_0", len(src), len(dst), Q8_0Bytes, false)
	for b := 0; b < len(dst)/QK; b++ {
		in := src[b*Q8_0Bytes : b*Q8_0Bytes+Q8_0Bytes]
		d := F16ToF32(binary.LittleEndian.Uint16(in))
		for j := range QK {
			dst[b*QK+j] = float32(int8(in[2+j])) * d
		}
	}
}

// QuantizeQ4_0 writes src as Q4_0 blocks into dst. For each block of 32
// values: max is the value of largest magnitude (the first one on ties),
// d = max/-8, id = 1/d (0 when d is 0), q[j] = min(15, trunc(x[j]*id + 8.5));
// byte j holds q[j] in its low nibble and q[j+16] in its high nibble, and d
// is stored as f16. len(src) must be a multiple of 32 and
// len(dst) = len(src)/32*18.
func QuantizeQ4_0(dst []byte, src []float32) {
	checkBlocks("QuantizeQ4_0", len(src), len(dst), Q4_0Bytes, true)
	for b := 0; b < len(src)/QK; b++ {
		x := src[b*QK : b*QK+QK]
		out := dst[b*Q4_0Bytes : b*Q4_0Bytes+Q4_0Bytes]
		var amax, mx float32
		for _, v := range x {
			if amax < abs32(v) {
				amax = abs32(v)
				mx = v
			}
		}
		d := mx / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(out, F32ToF16(d))
		for j := range QK / 2 {
			out[2+j] = q4(x[j], id) | q4(x[j+QK/2], id)<<4
		}
	}
}

// q4 is one Q4_0 quant: C's (int8_t)(x*id + 8.5f) truncates toward zero, and
// x*id lies in [-8, 8], so the sum is non-negative and truncation is a floor.
func q4(x, id float32) byte {
	v := float32(x*id) + 8.5
	q := int(v) // v in [0.5, 16.5] for finite input
	if q > 15 {
		q = 15
	}
	if q < 0 { // only for NaN or Inf input; keep the nibble in range
		q = 0
	}
	return byte(q)
}

// DequantizeQ4_0 expands Q4_0 blocks: dst[j] = f16(d) * (q[j]-8).
// len(dst) must be a multiple of 32 and len(src) = len(dst)/32*18.
func DequantizeQ4_0(dst []float32, src []byte) {
	checkBlocks("DequantizeQ4_0", len(src), len(dst), Q4_0Bytes, false)
	for b := 0; b < len(dst)/QK; b++ {
		in := src[b*Q4_0Bytes : b*Q4_0Bytes+Q4_0Bytes]
		d := F16ToF32(binary.LittleEndian.Uint16(in))
		for j := range QK / 2 {
			dst[b*QK+j] = float32(int(in[2+j]&0x0f)-8) * d
			dst[b*QK+j+QK/2] = float32(int(in[2+j]>>4)-8) * d
		}
	}
}

func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
}
