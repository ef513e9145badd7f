package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"edgelm/quant"
)

// TestDequantQ8 holds DequantQ8_0 and DequantQ4_0 to quant.DequantizeQ8_0 and DequantizeQ4_0, bit
// for bit, in every variant: random quants (every byte), scales random, subnormal, negative, zero,
// infinite and NaN.
func TestDequantQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 33))
	scales := []uint16{0x0000, 0x8000, 0x0001, 0x83ff, 0x7c00, 0xfc00, 0x3c00, 0x7e01}
	for _, v := range variants() {
		withVariant(v, func() {
			for nb := 0; nb <= 9; nb++ {
				for trial := range 8 {
					src := make([]byte, nb*q8b)
					for i := range src {
						src[i] = byte(r.IntN(256))
					}
					for b := range nb {
						h := uint16(r.IntN(0x7c00)) // any finite half
						if b == trial%max(nb, 1) {
							h = scales[trial]
						}
						binary.LittleEndian.PutUint16(src[b*q8b:], h)
					}
					got, want := make([]float32, nb*qk), make([]float32, nb*qk)
					DequantQ8_0(got, src)
					quant.DequantizeQ8_0(want, src)
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s %d blocks, trial %d, value %d: %v, quant %v", v.name, nb, trial, i, got[i], want[i])
						}
					}
					// The same bytes as Q4_0 blocks: 18 bytes each, scale first.
					src4 := make([]byte, nb*q4b)
					for b := range nb {
						copy(src4[b*q4b:(b+1)*q4b], src[b*q8b:])
					}
					DequantQ4_0(got, src4)
					quant.DequantizeQ4_0(want, src4)
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("Q4_0 %s %d blocks, trial %d, value %d: %v, quant %v", v.name, nb, trial, i, got[i], want[i])
						}
					}
				}
			}
		})
	}
}
