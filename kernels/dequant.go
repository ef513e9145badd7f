package kernels

import (
	"fmt"

	"edgelm/quant"
)

// DequantQ8_0 is quant.DequantizeQ8_0, bit for bit (float32(q)·d per value), vectorized where the
// variant can: how a q8_0 key and value cache is read. len(src) must be len(dst)/32 blocks.
func DequantQ8_0(dst []float32, src []byte) {
	if len(dst)%qk != 0 || len(src) != len(dst)/qk*q8b {
		panic(fmt.Sprintf("kernels: DequantQ8_0 of %d bytes into %d values", len(src), len(dst)))
	}
	dequantQ8(dst, src)
}

// dequantQ8Go is the reference, for the variants without a vector form and the blocks they leave.
func dequantQ8Go(dst []float32, src []byte) { quant.DequantizeQ8_0(dst, src) }
