package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestTile16 holds the 16×8 prefill tiles to the one-row kernel of the same variant, bit for bit,
// and to an independent float64 sum: sixteen different rows (scales and quants over their whole
// ranges, -128 included for Q8_0, subnormal and negative scales) against eight tokens at a stride
// longer than a row (with a block of all -127 and one of all 127), lengths 0..40 and a few long
// ones, buffers misaligned. A variant without the tiles is skipped.
func TestTile16(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 8))
	lengths := []int{}
	for nb := 0; nb <= 40; nb++ {
		lengths = append(lengths, nb)
	}
	lengths = append(lengths, 64, 129, 256)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			if v.q4t168 == nil && v.q8t168 == nil {
				t.Skip("no 16×8 tiles in this variant")
			}
			for _, nb := range lengths {
				w8 := misaligned(16*nb*q8b, nb%4)
				w4 := misaligned(16*nb*q4b, (nb+1)%4)
				randQ8(r, w8, 0, -128, 127)
				randQ4(r, w4, 0)
				if nb > 2 { // a subnormal and a negative scale, in rows of the upper half
					binary.LittleEndian.PutUint16(w8[9*nb*q8b+q8b:], 0x0003)
					binary.LittleEndian.PutUint16(w4[13*nb*q4b+2*q4b:], 0x8123)
					binary.LittleEndian.PutUint16(w8[15*nb*q8b+2*q8b:], 0x8123)
				}
				stride := nb*q8b + 5
				xs := misaligned(8*stride, (nb+3)%4)
				for tk := range 8 {
					randQ8(r, xs[tk*stride:tk*stride+nb*q8b], 0, -127, 127)
				}
				if nb > 1 { // the extremes of a token's block sum
					for i := range qk {
						xs[2*stride+q8b+2+i] = 0x81 // -127
						xs[7*stride+2+i] = 0x7f
					}
				}
				a4 := auxOf(nil, xs, stride, 8, 8)
				a8 := auxOf(nil, xs, stride, 8, 128)
				var got4, got8 [128]float32
				for i := range got4 {
					got4[i], got8[i] = float32(math.NaN()), float32(math.NaN())
				}
				if v.q4t168 != nil {
					v.q4t168(w4, nb*q4b, xs, stride, a4, 8, w4, &got4)
				}
				if v.q8t168 != nil {
					v.q8t168(w8, nb*q8b, xs, stride, a8, 8, nil, &got8)
				}
				for k := range 16 {
					row4 := w4[k*nb*q4b : (k+1)*nb*q4b]
					row8 := w8[k*nb*q8b : (k+1)*nb*q8b]
					for tk := range 8 {
						xt := xs[tk*stride : tk*stride+nb*q8b]
						what := fmt.Sprintf("%d blocks row %d token %d", nb, k, tk)
						if v.q4t168 != nil {
							if one := v.q4(row4, xt); math.Float32bits(one) != math.Float32bits(got4[16*tk+k]) {
								t.Fatalf("q4t168 %s: %v, one-row kernel %v", what, got4[16*tk+k], one)
							}
							s, m := refQ(Q4_0, row4, xt)
							checkClose(t, "q4t168 "+what, got4[16*tk+k], s, m)
						}
						if v.q8t168 != nil {
							if one := v.q8(row8, xt); math.Float32bits(one) != math.Float32bits(got8[16*tk+k]) {
								t.Fatalf("q8t168 %s: %v, one-row kernel %v", what, got8[16*tk+k], one)
							}
							s, m := refQ(Q8_0, row8, xt)
							checkClose(t, "q8t168 "+what, got8[16*tk+k], s, m)
						}
					}
				}
			}
		})
	}
}
