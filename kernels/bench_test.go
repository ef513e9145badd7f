package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMatMul reports weight bytes per second: decode (n=1) reads every
// weight once, so this is the figure to hold against memory bandwidth.
//
//	go test -run XXX -bench MatMul ./kernels
func BenchmarkMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	type shape struct{ rows, cols, n int }
	shapes := []shape{{2048, 8192, 1}, {2048, 8192, 2}, {2048, 2048, 64}}
	for _, wt := range []WType{Q4_0, Q8_0, F16, F32} {
		mats := map[[2]int]Mat{}
		for _, v := range variants() {
			for _, s := range shapes {
				if wt == F32 || wt == F16 {
					if s.n != 1 {
						continue
					}
				}
				m, ok := mats[[2]int{s.rows, s.cols}]
				if !ok {
					m, _ = randMat(r, wt, s.rows, s.cols)
					mats[[2]int{s.rows, s.cols}] = m
				}
				x := make([]float32, s.n*s.cols)
				randF32(r, x)
				dst := make([]float32, s.n*s.rows)
				for _, threads := range []int{1, 2} {
					name := fmt.Sprintf("%v/%s/%dx%d/n=%d/t=%d", wt, v.name, s.rows, s.cols, s.n, threads)
					b.Run(name, func(b *testing.B) {
						p := NewPool(threads)
						defer p.Close()
						b.SetBytes(int64(len(m.Data)))
						withVariant(v, func() {
							for b.Loop() {
								p.MatMul(dst, m, x, s.n)
							}
						})
						if s.n > 1 {
							b.ReportMetric(float64(b.N)*float64(s.n)/b.Elapsed().Seconds(), "tokens/s")
						}
					})
				}
			}
		}
	}
}

func BenchmarkDot(b *testing.B) {
	for _, v := range variants() {
		a := make([]float32, 4096)
		c := make([]float32, 4096)
		b.Run(fmt.Sprintf("%s/n=4096", v.name), func(b *testing.B) {
			b.SetBytes(2 * 4 * 4096)
			for b.Loop() {
				v.dot(a, c)
			}
		})
	}
}
