//go:build arm64 && !purego && gc

package kernels

import "slices"

// The variant in use decides, per call, as EDGELM_KERNELS and
// SetMaxFeatures want: the NEON conversions run under "neon".

func halfToFloat(dst []float32, src []byte) {
	n := 0
	if slices.Contains(cur().needs, "neon") {
		n = len(dst) &^ 7
		if n > 0 && halfToFloatNEON(dst[:n], src[:2*n]) {
			fixHalfNaNs(dst[:n], src[:2*n])
		}
	}
	halfToFloatGo(dst[n:], src[2*n:])
}

func floatToHalf(dst []byte, src []float32) {
	n := 0
	if slices.Contains(cur().needs, "neon") {
		n = len(src) &^ 7
		if n > 0 && floatToHalfNEON(dst[:2*n], src[:n]) {
			fixFloatNaNs(dst[:2*n], src[:n])
		}
	}
	floatToHalfGo(dst[2*n:], src[n:])
}

// halfToFloatNEON converts len(dst) halves, a multiple of 8, with FCVTL and
// reports whether any of them is an Inf or NaN.
//
//go:noescape
func halfToFloatNEON(dst []float32, src []byte) bool

// floatToHalfNEON converts len(src) floats, a multiple of 8, with FCVTN
// (Go runs with FPCR's round to nearest even, IEEE halves and no flush to
// zero) and reports whether any input is an Inf or NaN.
//
//go:noescape
func floatToHalfNEON(dst []byte, src []float32) bool
