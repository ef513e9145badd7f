package kernels

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// TestThenClaims runs chains of decode products announced with Then (right, wrong, or
// followed by a Run instead) on pools of 1-3 threads: every result must be the serial
// MatMul's, bit for bit, and a rightly announced product must start from the claims.
func TestThenClaims(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 21))
	for _, wt := range []WType{Q4_0, Q8_0, F32} {
		mats := make([]Mat, 4)
		for i, shape := range [][2]int{{512, 256}, {136, 512}, {2048, 64}, {8, 32}} {
			mats[i], _ = randMat(r, wt, shape[0], shape[1])
		}
		for _, threads := range []int{1, 2, 3} {
			for _, n := range []int{1, 3} {
				t.Run(fmt.Sprintf("%v/t=%d/n=%d", wt, threads, n), func(t *testing.T) {
					p := NewPool(threads)
					defer p.Close()
					check := func(step string, m Mat) {
						t.Helper()
						x := make([]float32, n*m.Cols)
						randF32(r, x)
						got := make([]float32, n*m.Rows)
						want := make([]float32, n*m.Rows)
						p.MatMul(got, m, x, n)
						(*Pool)(nil).MatMul(want, m, x, n)
						for i := range got {
							if got[i] != want[i] {
								t.Fatalf("%s: dst[%d] = %v, serial %v", step, i, got[i], want[i])
							}
						}
						for id := range p.outs {
							if o := &p.outs[id]; p.job.pre && o.preLo < o.preHi && o.preFor == p.job.seq {
								t.Fatalf("%s: participant %d left claims %d..%d", step, id, o.preLo, o.preHi)
							}
						}
					}
					for i, m := range mats {
						next := mats[(i+1)%len(mats)]
						p.Then(next, n)
						check(fmt.Sprintf("product %d announcing %d", i, (i+1)%len(mats)), m)
						if p.pre.Load() == 0 || !sameProductHint(&p.claimed, next, n) {
							t.Fatalf("after product %d: %d claims for %v, want claims of the announced product", i, p.pre.Load(), p.claimed.m.Rows)
						}
						check(fmt.Sprintf("announced product %d", (i+1)%len(mats)), next)
						// Announced wrongly: the claims must be dropped.
						p.Then(mats[(i+2)%len(mats)], n)
						check(fmt.Sprintf("product %d announcing another", i), m)
						check(fmt.Sprintf("product %d not announced", (i+1)%len(mats)), next)
						// Claims made at the end of a Run serve the product after it.
						p.Then(m, n)
						p.Run(5, func(int, int) {})
						check(fmt.Sprintf("product %d after a Run", i), m)
						// Announced for another batch size: dropped.
						p.Then(next, n+1)
						check(fmt.Sprintf("product %d", i), m)
						check(fmt.Sprintf("product %d announced with n+1", (i+1)%len(mats)), next)
					}
				})
			}
		}
	}
}

// sameProductHint reports whether h is the announcement of m with n tokens.
func sameProductHint(h *hint, m Mat, n int) bool {
	return h.nChunks > 0 && h.n == n && len(h.m.Data) == len(m.Data) && &h.m.Data[0] == &m.Data[0]
}

// TestThenAfterPanic: a participant that panics inside its claimed chunks must not leave
// claims that a later call takes for its own.
func TestThenAfterPanic(t *testing.T) {
	boom := boomVariant()
	r := rand.New(rand.NewPCG(22, 22))
	p := NewPool(3)
	defer p.Close()
	a := Mat{Type: Q8_0, Rows: 512, Cols: 64, Data: make([]byte, 512*2*q8b)}
	for i := range a.Data {
		a.Data[i] = byte(i % 7) // never the 0x7f that boom panics on
	}
	b := Mat{Type: Q8_0, Rows: 512, Cols: 64, Data: make([]byte, 512*2*q8b)}
	x := make([]float32, 64)
	randF32(r, x)
	got, want := make([]float32, 512), make([]float32, 512)
	for _, bad := range []int{0, 8, 511} {
		clear(b.Data)
		b.Data[bad*2*q8b+2] = 0x7f
		withVariant(&boom, func() {
			p.Then(b, 1)
			p.MatMul(got, a, x, 1)
			var rec any
			func() {
				defer func() { rec = recover() }()
				p.Then(a, 1)
				p.MatMul(got, b, x, 1)
			}()
			if rec != errBoom {
				t.Fatalf("row %d: recovered %v, want %v", bad, rec, errBoom)
			}
			p.MatMul(got, a, x, 1)
			(*Pool)(nil).MatMul(want, a, x, 1)
		})
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("row %d: after the panic dst[%d] = %v, serial %v", bad, i, got[i], want[i])
			}
		}
	}
}

// TestThenEachRowOnce counts the rows a product computes: claims left over from an earlier call
// (here by a worker that sat out a one-chunk product) must not be run again beside the counter.
func TestThenEachRowOnce(t *testing.T) {
	var rows atomic.Int64
	counting := *genericVariant
	counting.q8 = func(w, x []byte) float32 {
		rows.Add(1)
		return dotQ8Go(w, x)
	}
	counting.q8r4 = rowsOf(counting.q8)
	counting.q8r8 = rows8Of(counting.q8r4)
	r := rand.New(rand.NewPCG(23, 23))
	a, _ := randMat(r, Q8_0, 512, 64)
	b, _ := randMat(r, Q8_0, 1024, 64)
	one, _ := randMat(r, Q8_0, 8, 64) // one chunk: the caller runs it alone
	x := make([]float32, 64)
	randF32(r, x)
	dst := make([]float32, 1024)
	p := NewPool(2)
	defer p.Close()
	withVariant(&counting, func() {
		for i := range 20 {
			p.Then(b, 1)
			p.MatMul(dst, a, x, 1)
			p.Then(b, 1)
			p.MatMul(dst, one, x, 1)
			rows.Store(0)
			p.MatMul(dst, b, x, 1)
			if got := rows.Load(); got != int64(b.Rows) {
				t.Fatalf("round %d: %d row dots for a %d-row product", i, got, b.Rows)
			}
		}
	})
}

// TestPrefetchRows: spans past the data's end are skipped, not touched (a prefetch itself never
// faults, but taking the address of a byte out of range would panic).
func TestPrefetchRows(t *testing.T) {
	data := make([]byte, 1000)
	for _, c := range []struct{ size, stride, n int }{
		{100, 100, 10}, {100, 100, 11}, {64, 1000, 3}, {1000, 0, 4}, {1001, 1, 1}, {0, 10, 200}, {10, -5, 3},
	} {
		PrefetchRows(data, c.size, c.stride, c.n)
		PrefetchRows(data[:0], c.size, c.stride, c.n)
	}
}
