//go:build amd64 && !purego && gc

package kernels

import "slices"

// dequantQ8 converts with AVX2 and F16C (VPMOVSXBD, VCVTDQ2PS, one VMULPS by the block's scale:
// the reference's one rounding per value) when the variant in use has them, except for a NaN
// scale, whose payload VCVTPH2PS would not keep as quant.F16ToF32 does: such rows go the
// reference way.
func dequantQ8(dst []float32, src []byte) {
	nb := len(dst) / qk
	if nb == 0 || !slices.Contains(cur().needs, "avx2") {
		dequantQ8Go(dst, src)
		return
	}
	for b := range nb {
		if h := uint16(src[b*q8b]) | uint16(src[b*q8b+1])<<8; h&0x7c00 == 0x7c00 && h&0x03ff != 0 {
			dequantQ8Go(dst, src)
			return
		}
	}
	dequantQ8AVX2(&dst[0], &src[0], nb)
}

//go:noescape
func dequantQ8AVX2(dst *float32, src *byte, nb int)
