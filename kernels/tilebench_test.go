package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkTile8 times the 8-row kernels on weights that stay in L2 (256
// rows of 2048), one thread: what the kernels cost when memory does not
// bound them. n=1 is decode; n=4 a daemon decoding four sequences; n=64
// prefill.
//
//	go test -run XXX -bench Tile8 ./kernels
func BenchmarkTile8(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	const rows, cols = 256, 2048
	for _, wt := range []WType{Q4_0, Q8_0} {
		m, _ := randMat(r, wt, rows, cols)
		for _, n := range []int{1, 4, 64} {
			x := make([]float32, n*cols)
			randF32(r, x)
			dst := make([]float32, n*rows)
			for _, v := range variants() {
				if v == genericVariant {
					continue
				}
				b.Run(fmt.Sprintf("%v/%s/n=%d", wt, v.name, n), func(b *testing.B) {
					b.SetBytes(int64(len(m.Data)) * int64(n))
					withVariant(v, func() {
						for b.Loop() {
							(*Pool)(nil).MatMul(dst, m, x, n)
						}
					})
				})
			}
		}
	}
}
