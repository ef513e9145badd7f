package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"edgelm/quant"
)

// TestMatMulBatchInvariant: a token's output row does not depend on how many other tokens share the
// call or where it falls in a tile, bit for bit. The engine relies on this: a prompt prefilled in
// chunks, a prefix reused from another request, and a sequence decoded alone or batched with others
// must all give the same logits, or greedy decoding can flip at a near tie.
func TestMatMulBatchInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, typ := range []WType{Q8_0, Q4_0, F32, F16} {
		rows, cols := 40, 256
		w := make([]float32, rows*cols)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.05)
		}
		var data []byte
		switch typ {
		case Q8_0:
			data = make([]byte, rows*cols/32*34)
			quant.QuantizeQ8_0(data, w)
		case Q4_0:
			data = make([]byte, rows*cols/32*18)
			quant.QuantizeQ4_0(data, w)
		case F32:
			data = make([]byte, 4*len(w))
			for i, v := range w {
				u := math.Float32bits(v)
				data[4*i], data[4*i+1], data[4*i+2], data[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
			}
		case F16:
			data = make([]byte, 2*len(w))
			for i, v := range w {
				h := quant.F32ToF16(v)
				data[2*i], data[2*i+1] = byte(h), byte(h>>8)
			}
		}
		m := Mat{Type: typ, Rows: rows, Cols: cols, Data: data}
		const n = 37
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for _, threads := range []int{1, 2} {
			p := NewPool(threads)
			all := make([]float32, n*rows)
			p.MatMul(all, m, x, n)
			for _, sub := range []int{1, 2, 3, 4, 5, 8, 9, 16, 33} {
				for start := 0; start+sub <= n; start += sub + 3 {
					part := make([]float32, sub*rows)
					p.MatMul(part, m, x[start*cols:(start+sub)*cols], sub)
					for tk := 0; tk < sub; tk++ {
						for r := 0; r < rows; r++ {
							if a, b := part[tk*rows+r], all[(start+tk)*rows+r]; a != b {
								t.Fatalf("%v threads %d: token %d row %d is %v in a call of %d tokens, %v in one of %d (%s)",
									typ, threads, start+tk, r, a, sub, b, n, fmt.Sprint(Features()))
							}
						}
					}
				}
			}
			p.Close()
		}
	}
}
