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
