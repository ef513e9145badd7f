package kernels

import (
	"math"
	"math/rand/v2"
	"strings"
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
				{16, 2, 64, 9}, {12, 2, 32, 6}, {8, 4, 256, 33}, {32, 4, 64, 5}, {8, 1, 256, 4},
				{4, 4, 64, 9}, {3, 3, 32, 5}, {2, 2, 256, 7}, {8, 8, 48, 12},
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
				// Each score as the variant's Dot of the query head and its key head's values.
				group := c.heads / c.kvHeads
				for h := range c.heads {
					for j := range c.n {
						o := j*kstride + h/group*c.hd
						want[h*dstride+j] = v.dot(q[h*c.hd:(h+1)*c.hd], k[o:o+c.hd])
					}
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %+v: at %d %v, Dot %v", v.name, c, i, got[i], want[i])
					}
				}
				// The float form over all the key heads at once.
				clear(got)
				DotHeadsRows(got, dstride, q, c.heads, c.kvHeads, k, kstride, c.n)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %+v: DotHeadsRows at %d %v, Dot %v", v.name, c, i, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestHeadsRowsBounds: each Rows form accepts operands of exactly the length its heads and keys
// reach, and refuses with its own panic (before any kernel reads) an operand one float, or one
// byte of halves, short: the assembly forms read what these checks let through.
func TestHeadsRowsBounds(t *testing.T) {
	const heads, kvHeads, hd, n, kstride, dstride = 8, 2, 8, 4, 20, 7
	kn := (n-1)*kstride + kvHeads*hd // key floats DotHeadsRows reaches
	vn := (n-1)*kstride + hd         // value floats AxpyHeadsRows reaches
	dn := (heads-1)*dstride + n      // score (or weight) floats
	// refused reports whether f panicked with the kernels' own message (not a Go bounds check).
	refused := func(f func()) (r bool) {
		defer func() {
			msg, ok := recover().(string)
			r = ok && strings.HasPrefix(msg, "kernels: ")
		}()
		f()
		return false
	}
	for _, v := range variants() {
		withVariant(v, func() {
			q := make([]float32, heads*hd)
			out := make([]float32, heads*hd)
			for _, c := range []struct {
				name   string
				dk, dd int // short by: keys or values (floats; halves one byte), scores or weights
			}{
				{"exact", 0, 0}, {"keys short", 1, 0}, {"scores short", 0, 1},
			} {
				want := c.name != "exact"
				d := make([]float32, dn-c.dd)
				for _, r := range []struct {
					name string
					f    func()
				}{
					{"DotHeadsRows", func() { DotHeadsRows(d, dstride, q, heads, kvHeads, make([]float32, kn-c.dk), kstride, n) }},
					{"DotHeadsRowsF16", func() { DotHeadsRowsF16(d, dstride, q, heads, kvHeads, make([]byte, 2*kn-c.dk), kstride, n) }},
					{"AxpyHeadsRows", func() { AxpyHeadsRows(d, dstride, heads, make([]float32, vn-c.dk), kstride, n, out) }},
					{"AxpyHeadsRowsF16", func() { AxpyHeadsRowsF16(d, dstride, heads, make([]byte, 2*vn-c.dk), kstride, n, out) }},
				} {
					if got := refused(r.f); got != want {
						t.Errorf("%s: %s with %s: refused %v, want %v", v.name, r.name, c.name, got, want)
					}
				}
			}
		})
	}
}

// TestHeadsRowsNoAllocs: the Rows forms run on every decode step, so none of them allocates, with
// or without a kernel for the shape (odd key counts leave keys to the per-key loops; three query
// heads to a key head and 20-float heads have no kernel).
func TestHeadsRowsNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers on purpose under the race detector")
	}
	for _, v := range variants() {
		withVariant(v, func() {
			for _, c := range []struct{ heads, kvHeads, hd, n int }{
				{8, 2, 64, 7}, {8, 4, 256, 5}, {4, 4, 64, 3}, {6, 2, 32, 9}, {4, 1, 20, 5},
			} {
				q := make([]float32, c.heads*c.hd)
				k := make([]float32, c.n*c.kvHeads*c.hd)
				k16 := make([]byte, 2*len(k))
				dst := make([]float32, c.heads*c.n)
				out := make([]float32, c.heads*c.hd)
				group := c.heads / c.kvHeads
				for name, f := range map[string]func(){
					"DotHeadsRows":     func() { DotHeadsRows(dst, c.n, q, c.heads, c.kvHeads, k, c.kvHeads*c.hd, c.n) },
					"DotHeadsRowsF16":  func() { DotHeadsRowsF16(dst, c.n, q, c.heads, c.kvHeads, k16, c.kvHeads*c.hd, c.n) },
					"AxpyHeadsRows":    func() { AxpyHeadsRows(dst, c.n, group, k, c.kvHeads*c.hd, c.n, out[:group*c.hd]) },
					"AxpyHeadsRowsF16": func() { AxpyHeadsRowsF16(dst, c.n, group, k16, c.kvHeads*c.hd, c.n, out[:group*c.hd]) },
				} {
					if a := testing.AllocsPerRun(20, f); a != 0 {
						t.Errorf("%s %s %+v: %v allocations a call", v.name, name, c, a)
					}
				}
			}
		})
	}
}
