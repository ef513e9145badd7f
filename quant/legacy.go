package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Q4_1, Q5_0 and Q5_1 are the 32-element block formats llama.cpp's K-quant
// mixes fall back to when a row is not a multiple of 256; Q8_1 is the
// activation format the Q4_1 and Q5_1 dot products take (ggml-common.h
// block_q4_1, block_q5_0, block_q5_1, block_q8_1). In every 4- and 5-bit
// block, byte j of the nibbles holds element j in its low and element j+16
// in its high nibble; in the 5-bit ones, bit j of the little-endian 32-bit
// qh is the fifth bit of element j.
const (
	Q4_1Bytes = 2 + 2 + QK/2     // d, m, nibbles: x ≈ d*q + m, q in [0,15]
	Q5_0Bytes = 2 + 4 + QK/2     // d, qh, nibbles: x ≈ d*(q-16), q in [0,31]
	Q5_1Bytes = 2 + 2 + 4 + QK/2 // d, m, qh, nibbles: x ≈ d*q + m, q in [0,31]
	Q8_1Bytes = 2 + 2 + QK       // d, s = d*Σq, 32 int8: x ≈ d*q
)

// checkRow panics unless n values and nb bytes are whole blocks of the same
// count (a programming error, not bad input).
func checkRow(name string, n, nb, blockSize, blockBytes int) {
	if n%blockSize != 0 || nb != n/blockSize*blockBytes {
		panic(fmt.Sprintf("quant: %s: %d values need %d bytes, have %d (values must be a multiple of %d)",
			name, n, n/blockSize*blockBytes, nb, blockSize))
	}
}

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, F32ToF16(f)) }
func getF16(b []byte) float32    { return F16ToF32(binary.LittleEndian.Uint16(b)) }

// minMax returns the smallest and largest of x (NaNs are skipped).
func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// truncClamp is C's (int8_t)(v) for v in range followed by MIN(hi, ·), kept
// in [0, hi] for NaN or out-of-range input so a nibble never spills.
func truncClamp(v float32, hi int) int {
	if !(v >= 0) {
		return 0
	}
	if v >= float32(hi) {
		return hi
	}
	return int(v)
}

// QuantizeQ4_1 writes src as Q4_1 blocks (quantize_row_q4_1_ref): per block
// of 32, min and max of the values, d = (max-min)/15, id = 1/d (0 when d
// is 0), q = min(15, trunc((x-min)*id + 0.5)); d and m = min as f16.
func QuantizeQ4_1(dst []byte, src []float32) {
	checkRow("QuantizeQ4_1", len(src), len(dst), QK, Q4_1Bytes)
	for b := 0; b < len(src)/QK; b++ {
		x := src[b*QK : b*QK+QK]
		out := dst[b*Q4_1Bytes : b*Q4_1Bytes+Q4_1Bytes]
		lo, hi := minMax(x)
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(out, d)
		putF16(out[2:], lo)
		for j := range QK / 2 {
			q0 := truncClamp(float32((x[j]-lo)*id)+0.5, 15)
			q1 := truncClamp(float32((x[j+QK/2]-lo)*id)+0.5, 15)
			out[4+j] = byte(q0) | byte(q1)<<4
		}
	}
}

// DequantizeQ4_1 expands Q4_1 blocks: dst[j] = q[j]*f16(d) + f16(m).
func DequantizeQ4_1(dst []float32, src []byte) {
	checkRow("DequantizeQ4_1", len(dst), len(src), QK, Q4_1Bytes)
	for b := 0; b < len(dst)/QK; b++ {
		in := src[b*Q4_1Bytes : b*Q4_1Bytes+Q4_1Bytes]
		d, m := getF16(in), getF16(in[2:])
		y := dst[b*QK : b*QK+QK]
		for j := range QK / 2 {
			y[j] = float32(float32(in[4+j]&15)*d) + m
			y[j+QK/2] = float32(float32(in[4+j]>>4)*d) + m
		}
	}
}

// q5 returns the 5-bit quants of a Q5_0 or Q5_1 block's qh and nibbles.
func q5(qh uint32, qs []byte, q *[QK]int) {
	for j := range QK / 2 {
		q[j] = int(qs[j]&15) | int(qh>>j&1)<<4
		q[j+QK/2] = int(qs[j]>>4) | int(qh>>(j+QK/2)&1)<<4
	}
}

// pack5 writes 32 five-bit quants as qh (4 bytes) then 16 nibble bytes.
func pack5(out []byte, q *[QK]int) {
	var qh uint32
	for j := range QK / 2 {
		out[4+j] = byte(q[j]&15) | byte(q[j+QK/2]&15)<<4
		qh |= uint32(q[j]>>4&1)<<j | uint32(q[j+QK/2]>>4&1)<<(j+QK/2)
	}
	binary.LittleEndian.PutUint32(out, qh)
}

// QuantizeQ5_0 writes src as Q5_0 blocks (quantize_row_q5_0_ref): per block
// max is the value of largest magnitude (the first on ties), d = max/-16,
// id = 1/d (0 when d is 0), q = min(31, trunc(x*id + 16.5)); d as f16.
func QuantizeQ5_0(dst []byte, src []float32) {
	checkRow("QuantizeQ5_0", len(src), len(dst), QK, Q5_0Bytes)
	for b := 0; b < len(src)/QK; b++ {
		x := src[b*QK : b*QK+QK]
		out := dst[b*Q5_0Bytes : b*Q5_0Bytes+Q5_0Bytes]
		var amax, mx float32
		for _, v := range x {
			if amax < abs32(v) {
				amax, mx = abs32(v), v
			}
		}
		d := mx / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(out, d)
		var q [QK]int
		for j, v := range x {
			q[j] = truncClamp(float32(v*id)+16.5, 31)
		}
		pack5(out[2:], &q)
	}
}

// DequantizeQ5_0 expands Q5_0 blocks: dst[j] = (q[j]-16)*f16(d).
func DequantizeQ5_0(dst []float32, src []byte) {
	checkRow("DequantizeQ5_0", len(dst), len(src), QK, Q5_0Bytes)
	var q [QK]int
	for b := 0; b < len(dst)/QK; b++ {
		in := src[b*Q5_0Bytes : b*Q5_0Bytes+Q5_0Bytes]
		d := getF16(in)
		q5(binary.LittleEndian.Uint32(in[2:]), in[6:], &q)
		for j := range QK {
			dst[b*QK+j] = float32(q[j]-16) * d
		}
	}
}

// QuantizeQ5_1 writes src as Q5_1 blocks (quantize_row_q5_1_ref): per block
// min and max, d = (max-min)/31, id = 1/d (0 when d is 0),
// q = trunc((x-min)*id + 0.5) (at most 31); d and m = min as f16.
func QuantizeQ5_1(dst []byte, src []float32) {
	checkRow("QuantizeQ5_1", len(src), len(dst), QK, Q5_1Bytes)
	for b := 0; b < len(src)/QK; b++ {
		x := src[b*QK : b*QK+QK]
		out := dst[b*Q5_1Bytes : b*Q5_1Bytes+Q5_1Bytes]
		lo, hi := minMax(x)
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(out, d)
		putF16(out[2:], lo)
		var q [QK]int
		for j, v := range x {
			q[j] = truncClamp(float32((v-lo)*id)+0.5, 31)
		}
		pack5(out[4:], &q)
	}
}

// DequantizeQ5_1 expands Q5_1 blocks: dst[j] = q[j]*f16(d) + f16(m).
func DequantizeQ5_1(dst []float32, src []byte) {
	checkRow("DequantizeQ5_1", len(dst), len(src), QK, Q5_1Bytes)
	var q [QK]int
	for b := 0; b < len(dst)/QK; b++ {
		in := src[b*Q5_1Bytes : b*Q5_1Bytes+Q5_1Bytes]
		d, m := getF16(in), getF16(in[2:])
		q5(binary.LittleEndian.Uint32(in[4:]), in[8:], &q)
		for j := range QK {
			dst[b*QK+j] = float32(float32(q[j])*d) + m
		}
	}
}

// QuantizeQ8_1 writes src as Q8_1 blocks (quantize_row_q8_1_ref): per block
// amax = max |x|, d = amax/127, id = 1/d (0 when d is 0), q = round(x*id)
// with halves away from zero, s = d*Σq; d and s as f16.
func QuantizeQ8_1(dst []byte, src []float32) {
	checkRow("QuantizeQ8_1", len(src), len(dst), QK, Q8_1Bytes)
	for b := 0; b < len(src)/QK; b++ {
		x := src[b*QK : b*QK+QK]
		out := dst[b*Q8_1Bytes : b*Q8_1Bytes+Q8_1Bytes]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		sum := 0
		for j, v := range x {
			q := int8(math.Round(float64(float32(v * id))))
			out[4+j] = byte(q)
			sum += int(q)
		}
		putF16(out, d)
		putF16(out[2:], float32(sum)*d)
	}
}
