//go:build amd64 && !purego && gc

package kernels

import "slices"

// F16C comes with "avx2" (archFeatures requires it), so the variant in use
// decides, per call, as EDGELM_KERNELS and SetMaxFeatures want.

func halfToFloat(dst []float32, src []byte) {
	n := 0
	if slices.Contains(cur().needs, "avx2") {
		n = len(dst) &^ 7
		if n > 0 && halfToFloatF16C(dst[:n], src[:2*n]) {
			fixHalfNaNs(dst[:n], src[:2*n])
		}
	}
	halfToFloatGo(dst[n:], src[2*n:])
}

func floatToHalf(dst []byte, src []float32) {
	n := 0
	if slices.Contains(cur().needs, "avx2") {
		n = len(src) &^ 7
		if n > 0 && floatToHalfF16C(dst[:2*n], src[:n]) {
			fixFloatNaNs(dst[:2*n], src[:n])
		}
	}
	floatToHalfGo(dst[2*n:], src[n:])
}

// halfToFloatF16C converts len(dst) halves, a multiple of 8, with
// VCVTPH2PS and reports whether any result is a NaN.
//
//go:noescape
func halfToFloatF16C(dst []float32, src []byte) bool

// floatToHalfF16C converts len(src) floats, a multiple of 8, with
// VCVTPS2PH (round to nearest even) and reports whether any input is a NaN.
//
//go:noescape
func floatToHalfF16C(dst []byte, src []float32) bool
