//go:build amd64 && !purego && gc

package kernels

import "slices"

// dequantQ8 converts with AVX2 and F16C (VPMOVSXBD, VCVTDQ2PS, one VMULPS by the block's scale:
// the reference's one rounding per value) when the variant in use has them, except for a NaN
// scale, whose payload VCVTPH2PS would not keep as quant.F16ToF32 does: such rows go the
// reference way.
func dequantQ8(dst []float32, src []byte) {
	if nb := len(dst) / qk; nb > 0 && vectorScales(src, q8b, nb) {
		dequantQ8AVX2(&dst[0], &src[0], nb)
		return
	}
	dequantQ8Go(dst, src)
}

// dequantQ4 is dequantQ8 for Q4_0 blocks.
func dequantQ4(dst []float32, src []byte) {
	if nb := len(dst) / qk; nb > 0 && vectorScales(src, q4b, nb) {
		dequantQ4AVX2(&dst[0], &src[0], nb)
		return
	}
	dequantQ4Go(dst, src)
}

// vectorScales reports whether the variant in use converts with AVX2 and no scale of the nb blocks
// of bb bytes in src is a NaN.
func vectorScales(src []byte, bb, nb int) bool {
	if !slices.Contains(cur().needs, "avx2") {
		return false
	}
	for b := range nb {
		if h := uint16(src[b*bb]) | uint16(src[b*bb+1])<<8; h&0x7c00 == 0x7c00 && h&0x03ff != 0 {
			return false
		}
	}
	return true
}

//go:noescape
func dequantQ8AVX2(dst *float32, src *byte, nb int)

//go:noescape
func dequantQ4AVX2(dst *float32, src *byte, nb int)
