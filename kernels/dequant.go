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

// DequantQ4_0 is quant.DequantizeQ4_0, bit for bit (float32(nibble-8)·d per value), vectorized
// where the variant can. len(src) must be len(dst)/32 blocks.
func DequantQ4_0(dst []float32, src []byte) {
	if len(dst)%qk != 0 || len(src) != len(dst)/qk*q4b {
		panic(fmt.Sprintf("kernels: DequantQ4_0 of %d bytes into %d values", len(src), len(dst)))
	}
	dequantQ4(dst, src)
}

// dequantQ8Go and dequantQ4Go are the references, for the variants without a vector form and the blocks they leave.
func dequantQ8Go(dst []float32, src []byte) { quant.DequantizeQ8_0(dst, src) }

func dequantQ4Go(dst []float32, src []byte) { quant.DequantizeQ4_0(dst, src) }
