package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxOf holds maxOf to a plain loop with the builtin max, on lengths 0..40 with the largest
// value anywhere, negative values only, and -Inf entries (masked scores).
func TestMaxOf(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 31))
	for n := 0; n <= 40; n++ {
		for trial := range 20 {
			x := make([]float32, n)
			for i := range x {
				x[i] = r.Float32()*10 - 20
				if r.IntN(4) == 0 {
					x[i] = float32(math.Inf(-1))
				}
			}
			if n > 0 && trial%2 == 0 {
				x[r.IntN(n)] = 3 // a unique largest value at any index
			}
			want := float32(math.Inf(-1))
			for _, v := range x {
				want = max(want, v)
			}
			if got := maxOf(x); got != want {
				t.Fatalf("n=%d %v: maxOf %v, want %v", n, x, got, want)
			}
		}
	}
}

// TestDotHeadsRowsF16Groups holds DotHeadsRowsF16 and DotHeadsRows over several key heads to
// DotHeadsRows per key head (on the converted keys), bit for bit, in every variant (groups of 4
// are the fast path).
func TestDotHeadsRowsF16Groups(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 32))
	for _, v := range variants() {
		withVariant(v, func() {
			for _, c := range []struct{ heads, kvHeads, hd, n int }{
				{8, 2, 64, 7}, {32, 8, 64, 32}, {6, 3, 12, 5}, {16, 4, 8, 2}, {4, 1, 68, 9}, {12, 3, 4, 33},
			} {
				kstride := c.kvHeads*c.hd + 3
				k := make([]float32, (c.n-1)*kstride+c.kvHeads*c.hd)
				randF32(r, k)
				k16 := make([]byte, 2*len(k))
				FloatToHalf(k16, k)
				HalfToFloat(k, k16) // the values the halves hold
				q := misalignedF32(c.heads*c.hd, c.n%4*4)
				randF32(r, q)
				dstride := c.n + 1
				got := make([]float32, c.heads*dstride)
				want := make([]float32, c.heads*dstride)
				DotHeadsRowsF16(got, dstride, q, c.heads, c.kvHeads, k16, kstride, c.n)
				group := c.heads / c.kvHeads
				for kh := range c.kvHeads {
					DotHeadsRows(want[kh*group*dstride:], dstride, q[kh*group*c.hd:(kh+1)*group*c.hd], group, 1, k[kh*c.hd:], kstride, c.n)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %+v: at %d %v, per key head %v", v.name, c, i, got[i], want[i])
					}
				}
				// The float form over all the key heads at once.
				clear(got)
				DotHeadsRows(got, dstride, q, c.heads, c.kvHeads, k, kstride, c.n)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %+v: DotHeadsRows at %d %v, per key head %v", v.name, c, i, got[i], want[i])
					}
				}
			}
		})
	}
}
