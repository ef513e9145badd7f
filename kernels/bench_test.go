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
	// 16384x8192 is larger than a 32 MiB L3 in both quantized formats: its n=1
	// figure is the one DRAM bounds, as in a model's decode, and n=4 is the
	// daemon decoding four sequences at once.
	shapes := []shape{{2048, 8192, 1}, {16384, 8192, 1}, {16384, 8192, 4}, {2048, 8192, 2}, {2048, 2048, 64}}
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

// BenchmarkPoolOverhead is a MatMul too small to split well: what a call
// costs beyond the arithmetic (quantizing x, waking and joining workers).
func BenchmarkPoolOverhead(b *testing.B) {
	r := rand.New(rand.NewPCG(10, 10))
	m, _ := randMat(r, Q8_0, 256, 256)
	x := make([]float32, 256)
	dst := make([]float32, 256)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t=%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			for b.Loop() {
				p.MatMul(dst, m, x, 1)
			}
		})
	}
}

// BenchmarkBlockDot runs the block kernels alone on L1-resident data:
// MB/s counts weight bytes, so x4 kernels do 4 tokens' work per byte.
func BenchmarkBlockDot(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 11))
	const nb = 64
	w8 := make([]byte, nb*q8b)
	w4 := make([]byte, nb*q4b)
	x := make([]byte, 4*nb*q8b)
	randQ8(r, w8, 0, -127, 127)
	randQ4(r, w4, 0)
	randQ8(r, x, 0, -127, 127)
	var out [4]float32
	for _, v := range variants() {
		b.Run(v.name+"/q8", func(b *testing.B) {
			b.SetBytes(int64(len(w8)))
			for b.Loop() {
				out[0] = v.q8(w8, x[:nb*q8b])
			}
		})
		b.Run(v.name+"/q4", func(b *testing.B) {
			b.SetBytes(int64(len(w4)))
			for b.Loop() {
				out[0] = v.q4(w4, x[:nb*q8b])
			}
		})
		b.Run(v.name+"/q4r4", func(b *testing.B) {
			b.SetBytes(int64(4 * len(w4)))
			for b.Loop() {
				v.q4r4(w4, w4, w4, w4, x[:nb*q8b], &out)
			}
		})
		b.Run(v.name+"/q8x4", func(b *testing.B) {
			b.SetBytes(int64(len(w8)))
			for b.Loop() {
				v.q8x4(w8, x, nb*q8b, &out)
			}
		})
		b.Run(v.name+"/q4x4", func(b *testing.B) {
			b.SetBytes(int64(len(w4)))
			for b.Loop() {
				v.q4x4(w4, x, nb*q8b, &out)
			}
		})
	}
}

func BenchmarkQuantizeQ8(b *testing.B) {
	x := make([]float32, 8192)
	randF32(rand.New(rand.NewPCG(12, 12)), x)
	q := make([]byte, 8192/qk*q8b)
	for _, v := range variants() {
		b.Run(v.name+"/n=8192", func(b *testing.B) {
			b.SetBytes(4 * 8192)
			for b.Loop() {
				v.quant(q, x)
			}
		})
	}
}

// BenchmarkDecodeStep alternates a decode MatMul with serial vector work on
// the caller, as a forward pass does: workers must still be awake for the
// next call (spinning), or pay a wake-up.
func BenchmarkDecodeStep(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 13))
	m, _ := randMat(r, Q4_0, 2048, 2048)
	x := make([]float32, 2048)
	randF32(r, x)
	dst := make([]float32, 2048)
	for _, serial := range []int{0, 20, 200} { // RMSNorm passes between matmuls
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("between=%dnorms/t=%d", serial, threads), func(b *testing.B) {
				p := NewPool(threads)
				defer p.Close()
				for b.Loop() {
					p.MatMul(dst, m, x, 1)
					for range serial {
						RMSNorm(x, x, nil, 1e-5)
					}
				}
			})
		}
	}
}

func BenchmarkVectorOps(b *testing.B) {
	x := make([]float32, 8192)
	randF32(rand.New(rand.NewPCG(14, 14)), x)
	y := make([]float32, len(x))
	for _, op := range []struct {
		name string
		f    func()
	}{
		{"SiLU", func() { copy(y, x); SiLU(y) }},
		{"GELU", func() { copy(y, x); GELU(y) }},
		{"Softmax", func() { copy(y, x); Softmax(y) }},
		{"RMSNorm", func() { RMSNorm(y, x, x, 1e-6) }},
	} {
		b.Run(op.name+"/n=8192", func(b *testing.B) {
			for b.Loop() {
				op.f()
			}
		})
	}
}

// BenchmarkMatMulModelShapes runs decode (one token) over bench-1b's matrix
// shapes, cycling through 160 MB of each so every product reads from DRAM
// as in a model's forward pass (one 2-9 MB matrix per call, not one large one).
//
//	go test -run XXX -bench MatMulModelShapes ./kernels
func BenchmarkMatMulModelShapes(b *testing.B) {
	r := rand.New(rand.NewPCG(14, 14))
	for _, s := range [][2]int{{2048, 2048}, {8192, 2048}, {2048, 8192}} {
		n := (160 << 20) / (s[0] * s[1] / qk * q4b)
		mats := make([]Mat, n)
		for i := range mats {
			mats[i], _ = randMat(r, Q4_0, s[0], s[1])
		}
		x := make([]float32, s[1])
		randF32(r, x)
		dst := make([]float32, s[0])
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("Q4_0/%dx%d/t=%d", s[0], s[1], threads), func(b *testing.B) {
				p := NewPool(threads)
				defer p.Close()
				b.SetBytes(int64(len(mats[0].Data)))
				i := 0
				for b.Loop() {
					p.MatMul(dst, mats[i%n], x, 1)
					i++
				}
			})
		}
	}
}
