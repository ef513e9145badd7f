package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestTile16 holds the 16×8 and 16×16 prefill tiles to the one-row kernel of the same variant, bit for bit,
// and to an independent float64 sum: sixteen different rows (scales and quants over their whole
// ranges, -128 included for Q8_0, subnormal and negative scales) against eight tokens at a stride
// longer than a row (sixteen for the 16×16 ones; with a block of all -127 and one of all 127), lengths 0..40 and a few long
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
				xs := misaligned(16*stride, (nb+3)%4)
				for tk := range 16 {
					randQ8(r, xs[tk*stride:tk*stride+nb*q8b], 0, -127, 127)
				}
				if nb > 1 { // the extremes of a token's block sum
					for i := range qk {
						xs[2*stride+q8b+2+i] = 0x81 // -127
						xs[7*stride+2+i] = 0x7f
						xs[13*stride+2+i] = 0x81
					}
				}
				a4 := auxOf(nil, xs, stride, 16, 8)
				a8 := auxOf(nil, xs, stride, 16, 128)
				// name, result (dst[16*t+k]) and tokens of each tile the variant has.
				type tile struct {
					name   string
					wt     WType
					got    []float32
					tokens int
				}
				var tiles []tile
				nan := func(n int) []float32 {
					s := make([]float32, n)
					for i := range s {
						s[i] = float32(math.NaN())
					}
					return s
				}
				if v.q4t168 != nil {
					var o [128]float32
					copy(o[:], nan(128))
					v.q4t168(w4, nb*q4b, xs, stride, a4, 16, w4, &o)
					tiles = append(tiles, tile{"q4t168", Q4_0, o[:], 8})
				}
				if v.q8t168 != nil {
					var o [128]float32
					copy(o[:], nan(128))
					v.q8t168(w8, nb*q8b, xs, stride, a8, 16, nil, &o)
					tiles = append(tiles, tile{"q8t168", Q8_0, o[:], 8})
				}
				if v.q4t1616 != nil {
					var o [256]float32
					copy(o[:], nan(256))
					v.q4t1616(w4, nb*q4b, xs, stride, a4, 16, nil, &o)
					tiles = append(tiles, tile{"q4t1616", Q4_0, o[:], 16})
				}
				if v.q8t1616 != nil {
					var o [256]float32
					copy(o[:], nan(256))
					v.q8t1616(w8, nb*q8b, xs, stride, a8, 16, w8, &o)
					tiles = append(tiles, tile{"q8t1616", Q8_0, o[:], 16})
				}
				for _, tl := range tiles {
					for k := range 16 {
						for tk := range tl.tokens {
							xt := xs[tk*stride : tk*stride+nb*q8b]
							var row []byte
							var one float32
							if tl.wt == Q4_0 {
								row = w4[k*nb*q4b : (k+1)*nb*q4b]
								one = v.q4(row, xt)
							} else {
								row = w8[k*nb*q8b : (k+1)*nb*q8b]
								one = v.q8(row, xt)
							}
							what := fmt.Sprintf("%s %d blocks row %d token %d", tl.name, nb, k, tk)
							if got := tl.got[16*tk+k]; math.Float32bits(one) != math.Float32bits(got) {
								t.Fatalf("%s: %v, one-row kernel %v", what, got, one)
							}
							s, m := refQ(tl.wt, row, xt)
							checkClose(t, what, tl.got[16*tk+k], s, m)
						}
					}
				}
			}
		})
	}
}
