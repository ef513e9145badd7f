package kernels

import (
	"encoding/binary"

	"edgelm/quant"
)

// HalfToFloat converts the len(dst) little-endian IEEE binary16 values at
// the start of src to float32. It is
//
//	for i := range dst { dst[i] = quant.F16ToF32(binary.LittleEndian.Uint16(src[2*i:])) }
//
// bit for bit, NaN payloads included, on every variant. It panics if src
// holds fewer than 2*len(dst) bytes.
func HalfToFloat(dst []float32, src []byte) {
	halfToFloat(dst, src[:2*len(dst)])
}

// FloatToHalf converts src to little-endian IEEE binary16 in the first
// 2*len(src) bytes of dst. It is
//
//	for i, x := range src { binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(x)) }
//
// bit for bit on every variant: round to nearest even, overflow to ±Inf,
// underflow through the subnormals to ±0, and every NaN to 0x7e00 with its
// sign. It panics if dst holds fewer than 2*len(src) bytes.
func FloatToHalf(dst []byte, src []float32) {
	floatToHalf(dst[:2*len(src)], src)
}

// halfToFloatGo is HalfToFloat in Go, through the table of every half.
func halfToFloatGo(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = f16tab[u16le(src[2*i:])]
	}
}

// floatToHalfGo is FloatToHalf in Go.
func floatToHalfGo(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(x))
	}
}

// The hardware conversions differ from quant's only on NaNs: they quiet a
// signalling NaN half (quant keeps its payload as it is) and keep a NaN
// float's payload in the half (quant makes every NaN 0x7e00). The assembly
// reports whether it met a NaN, and these redo those lanes in Go.

// fixHalfNaNs redoes the NaN lanes of dst, converted from src.
func fixHalfNaNs(dst []float32, src []byte) {
	for i, x := range dst {
		if x != x {
			dst[i] = f16tab[u16le(src[2*i:])]
		}
	}
}

// fixFloatNaNs redoes the halves of dst converted from NaNs of src.
func fixFloatNaNs(dst []byte, src []float32) {
	for i, x := range src {
		if x != x {
			binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(x))
		}
	}
}
