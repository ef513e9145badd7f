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
			vs := variants()
			for _, v := range vs {
				if v.q4t168 != nil {
					// The same variant held to its 16×8 tiles, and to its 8-row ones, to time what the
					// wider ones add.
					v168, v8 := *v, *v
					v168.name, v168.q4t1616, v168.q8t1616 = v.name+"-16x8", nil, nil
					v8.name, v8.q4t1616, v8.q8t1616, v8.q4t168, v8.q8t168 = v.name+"-rows8", nil, nil, nil, nil
					vs = append(vs, &v168, &v8)
				}
			}
			for _, v := range vs {
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
