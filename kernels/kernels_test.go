package kernels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"edgelm/quant"
)

// withVariant runs f with v as the active variant.
func withVariant(v *variant, f func()) {
	old := active.Load()
	active.Store(v)
	defer active.Store(old)
	f()
}

// misaligned returns a []byte of n bytes starting off bytes past an aligned
// address, so kernels see every alignment.
func misaligned(n, off int) []byte {
	buf := make([]byte, n+64)
	base := int(uintptr(unsafe.Pointer(&buf[0])) % 32)
	start := (32-base)%32 + off
	return buf[start : start+n : start+n]
}

func misalignedF32(n, off int) []float32 {
	if n == 0 {
		return []float32{}
	}
	b := misaligned(4*n, off)
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

func randF32(r *rand.Rand, s []float32) {
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
}

// randQ8 fills Q8_0 blocks: scales from scale (0 = random positive f16),
// quants in [lo, hi].
func randQ8(r *rand.Rand, b []byte, scale uint16, lo, hi int) {
	for o := 0; o+q8b <= len(b); o += q8b {
		d := scale
		if d == 0 {
			d = quant.F32ToF16(float32(r.Float64()*0.1 + 1e-3))
		}
		binary.LittleEndian.PutUint16(b[o:], d)
		for j := range qk {
			b[o+2+j] = byte(int8(lo + r.IntN(hi-lo+1)))
		}
	}
}

func randQ4(r *rand.Rand, b []byte, scale uint16) {
	for o := 0; o+q4b <= len(b); o += q4b {
		d := scale
		if d == 0 {
			d = quant.F32ToF16(float32((r.Float64() - 0.5) * 0.1))
		}
		binary.LittleEndian.PutUint16(b[o:], d)
		for j := range qk / 2 {
			b[o+2+j] = byte(r.IntN(256))
		}
	}
}

// refQ computes a quantized dot product in float64 from dequantized blocks
// (package quant), with the sum of magnitudes for a tolerance.
func refQ(wt WType, w, x []byte) (sum, mag float64) {
	nb := len(x) / q8b
	wf := make([]float32, nb*qk)
	xf := make([]float32, nb*qk)
	if wt == Q8_0 {
		quant.DequantizeQ8_0(wf, w)
	} else {
		quant.DequantizeQ4_0(wf, w)
	}
	quant.DequantizeQ8_0(xf, x)
	for i := range wf {
		p := float64(wf[i]) * float64(xf[i])
		sum += p
		mag += math.Abs(p)
	}
	return sum, mag
}

// floatTol is the relative tolerance, against the sum of |terms|, for
// float32 sums taken in another order (and per-block rounding).
const floatTol = 2e-6

func checkClose(t *testing.T, what string, got float32, want, mag float64) {
	t.Helper()
	if math.Abs(float64(got)-want) > floatTol*mag+1e-30 {
		t.Fatalf("%s = %v, want %v (±%g)", what, got, want, floatTol*mag)
	}
}

// llamaQuantize is the activation quantization the kernels promise,
// written from its definition for the tests: d = amax/127 as f16,
// q = round-half-even(x*(127/amax)).
func llamaQuantize(dst []byte, src []float32) {
	for b := 0; b < len(src)/qk; b++ {
		var amax float32
		for _, v := range src[b*qk : b*qk+qk] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		binary.LittleEndian.PutUint16(dst[b*q8b:], quant.F32ToF16(amax/127))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		for j, v := range src[b*qk : b*qk+qk] {
			dst[b*q8b+2+j] = byte(int8(math.RoundToEven(float64(v * id))))
		}
	}
}

func TestQuantizeQ8MatchesOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const nb = 300
	src := make([]float32, 32*nb)
	for i := range src {
		switch i % 5 {
		case 0:
			src[i] = float32(r.IntN(255) - 127)
		case 1:
			src[i] = float32(r.IntN(255)-127) + 0.5
		default:
			src[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(8)-4)))
		}
	}
	// Blocks with amax 127 (id = 1, x*id = x): values at and a few ulps
	// around every k+0.5, where rounding modes differ.
	for b := 0; b < 100; b++ {
		blk := src[b*32 : b*32+32]
		blk[0] = 127
		for j := 1; j < 32; j++ {
			h := float32(r.IntN(254)-127) + 0.5
			for range r.IntN(4) {
				h = math.Nextafter32(h, float32(math.Inf(2*r.IntN(2)-1)))
			}
			blk[j] = h
		}
	}
	for b := 100; b < 110; b++ {
		clear(src[b*32 : b*32+32]) // d = 0
	}
	src[110*32+5] = 1e-30 // a tiny amax: d is an f16 zero but id is not
	want := make([]byte, nb*q8b)
	llamaQuantize(want, src)
	// Against the reference quantizer: the same scales, quants at most one apart.
	ref := make([]byte, nb*q8b)
	quant.QuantizeQ8_0(ref, src)
	for i := range ref {
		if i%q8b < 2 && ref[i] != want[i] {
			t.Fatalf("scale byte %d differs from quant.QuantizeQ8_0", i)
		}
		if d := int(int8(ref[i])) - int(int8(want[i])); i%q8b >= 2 && (d > 1 || d < -1) {
			t.Fatalf("quant %d is %d, quant.QuantizeQ8_0 gives %d", i, int8(want[i]), int8(ref[i]))
		}
	}
	for _, v := range variants() {
		for _, off := range []int{0, 1, 3} {
			got := misaligned(nb*q8b, off)
			s := misalignedF32(len(src), off)
			copy(s, src)
			v.quant(got, s)
			for i := range want {
				if want[i] != got[i] {
					t.Fatalf("%s: byte %d (block %d): got %#x, want %#x", v.name, i, i/q8b, got[i], want[i])
				}
			}
		}
	}
}

func TestBlockDotsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	one := quant.F32ToF16(1)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			// One block, full quant range, scales 1: the result is the
			// integer sum itself, exactly. Weights may hold -128.
			for i := range 2000 {
				w := misaligned(q8b, i%4)
				x := misaligned(q8b, (i/4)%4)
				randQ8(r, w, one, -128, 127)
				randQ8(r, x, one, -127, 127)
				if i < 4 { // extremes
					for j := range qk {
						w[2+j] = byte(int8([]int{-128, 127, -128, 127}[i]))
						x[2+j] = byte(int8([]int{-127, 127, 127, -127}[i]))
					}
				}
				var want int64
				for j := range qk {
					want += int64(int8(w[2+j])) * int64(int8(x[2+j]))
				}
				if got := v.q8(w, x); got != float32(want) {
					t.Fatalf("q8 block %d: got %v, want %d", i, got, want)
				}
				w4 := misaligned(q4b, i%4)
				randQ4(r, w4, one)
				want = 0
				for j := range qk / 2 {
					want += int64(int(w4[2+j]&15)-8) * int64(int8(x[2+j]))
					want += int64(int(w4[2+j]>>4)-8) * int64(int8(x[2+16+j]))
				}
				if got := v.q4(w4, x); got != float32(want) {
					t.Fatalf("q4 block %d: got %v, want %d", i, got, want)
				}
			}
			// Many blocks with small quants: every partial sum is an
			// integer below 2^24, so any summation order is exact.
			for nb := 0; nb <= 130; nb++ {
				w := misaligned(nb*q8b, nb%4)
				w4 := misaligned(nb*q4b, (nb+1)%4)
				x := misaligned(4*nb*q8b, (nb+2)%4)
				randQ8(r, w, one, -12, 12)
				randQ4(r, w4, one)
				randQ8(r, x, one, -12, 12)
				var got4, got44 [4]float32
				v.q8x4(w, x, nb*q8b, &got4)
				v.q4x4(w4, x, nb*q8b, &got44)
				for tk := range 4 {
					xt := x[tk*nb*q8b : (tk+1)*nb*q8b]
					want8, _ := refQ(Q8_0, w, xt)
					want4, _ := refQ(Q4_0, w4, xt)
					if g := v.q8(w, xt); g != float32(want8) || got4[tk] != float32(want8) {
						t.Fatalf("q8 %d blocks token %d: got %v and x4 %v, want %v", nb, tk, g, got4[tk], want8)
					}
					if g := v.q4(w4, xt); g != float32(want4) || got44[tk] != float32(want4) {
						t.Fatalf("q4 %d blocks token %d: got %v and x4 %v, want %v", nb, tk, g, got44[tk], want4)
					}
					var t8, t4 [16]float32
					v.q8t44(append(append(append(append([]byte(nil), w...), w...), w...), w...), nb*q8b, x, nb*q8b, &t8)
					v.q4t44(append(append(append(append([]byte(nil), w4...), w4...), w4...), w4...), nb*q4b, x, nb*q8b, &t4)
					for k := range 4 {
						if t8[4*k+tk] != float32(want8) || t4[4*k+tk] != float32(want4) {
							t.Fatalf("%d blocks row %d token %d: t44 kernels %v %v, want %v %v", nb, k, tk, t8[4*k+tk], t4[4*k+tk], want8, want4)
						}
					}
					var r8, r4 [4]float32
					v.q8r4(w, w, w, w, xt, &r8)
					v.q4r4(w4, w4, w4, w4, xt, &r4)
					w8s, w4s := float32(want8), float32(want4)
					if r8 != [4]float32{w8s, w8s, w8s, w8s} || r4 != [4]float32{w4s, w4s, w4s, w4s} {
						t.Fatalf("%d blocks token %d: r4 kernels %v %v, want %v %v", nb, tk, r8, r4, want8, want4)
					}
				}
			}
		})
	}
}

func TestBlockDotsScaled(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	lengths := []int{}
	for nb := 0; nb <= 130; nb++ {
		lengths = append(lengths, nb)
	}
	lengths = append(lengths, 256, 1000)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			for _, nb := range lengths {
				w := misaligned(nb*q8b, nb%4)
				w4 := misaligned(nb*q4b, (nb+3)%4)
				x := misaligned(4*nb*q8b+5, (nb+1)%4)[:4*nb*q8b+5] // 5: stride longer than a row
				stride := nb*q8b + 1
				randQ8(r, w, 0, -128, 127)
				randQ4(r, w4, 0)
				randQ8(r, x, 0, -127, 127)
				for tk := range 4 {
					copy(x[tk*stride:], x[tk*nb*q8b:(tk+1)*nb*q8b])
				}
				var got8, got4 [4]float32
				v.q8x4(w, x, stride, &got8)
				v.q4x4(w4, x, stride, &got4)
				for tk := range 4 {
					xt := x[tk*stride : tk*stride+nb*q8b]
					s8, m8 := refQ(Q8_0, w, xt)
					s4, m4 := refQ(Q4_0, w4, xt)
					checkClose(t, fmt.Sprintf("q8 %d blocks", nb), v.q8(w, xt), s8, m8)
					checkClose(t, fmt.Sprintf("q8x4 %d blocks token %d", nb, tk), got8[tk], s8, m8)
					checkClose(t, fmt.Sprintf("q4 %d blocks", nb), v.q4(w4, xt), s4, m4)
					checkClose(t, fmt.Sprintf("q4x4 %d blocks token %d", nb, tk), got4[tk], s4, m4)
					// Different rows: w4, its blocks in reverse order, and
					// each with every nibble byte complemented.
					rev := make([]byte, len(w4))
					for b := 0; b < nb; b++ {
						copy(rev[b*q4b:], w4[(nb-1-b)*q4b:(nb-b)*q4b])
					}
					flip := func(src []byte) []byte {
						out := append([]byte(nil), src...)
						for b := 0; b < nb; b++ {
							for j := 2; j < q4b; j++ {
								out[b*q4b+j] ^= 0xff
							}
						}
						return out
					}
					ws := [][]byte{w4, rev, flip(w4), flip(rev)}
					var r4 [4]float32
					v.q4r4(ws[0], ws[1], ws[2], ws[3], xt, &r4)
					var t4 [16]float32
					if tk == 0 {
						v.q4t44(slices.Concat(ws...), nb*q4b, x, stride, &t4)
					}
					for k, wk := range ws {
						sk, mk := refQ(Q4_0, wk, xt)
						checkClose(t, fmt.Sprintf("q4r4 row %d, %d blocks", k, nb), r4[k], sk, mk)
						if tk == 0 {
							for tt := range 4 {
								xtt := x[tt*stride : tt*stride+nb*q8b]
								s, mg := refQ(Q4_0, wk, xtt)
								checkClose(t, fmt.Sprintf("q4t44 row %d token %d, %d blocks", k, tt, nb), t4[4*k+tt], s, mg)
							}
						}
					}
					var r8 [4]float32
					v.q8r4(w, w, w, w, xt, &r8)
					if tk == 0 {
						// Four different Q8_0 rows, quants over the whole int8
						// range (-128 included), against four tokens.
						w8s := make([]byte, 4*nb*q8b)
						randQ8(r, w8s, 0, -128, 127)
						var t8 [16]float32
						v.q8t44(w8s, nb*q8b, x, stride, &t8)
						for k := range 4 {
							wk := w8s[k*nb*q8b : (k+1)*nb*q8b]
							for tt := range 4 {
								s, mg := refQ(Q8_0, wk, x[tt*stride:tt*stride+nb*q8b])
								checkClose(t, fmt.Sprintf("q8t44 row %d token %d, %d blocks", k, tt, nb), t8[4*k+tt], s, mg)
							}
						}
					}
					checkClose(t, fmt.Sprintf("q8r4 %d blocks", nb), r8[3], s8, m8)
				}
			}
		})
	}
}

func TestFloatKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	lengths := []int{}
	for n := 0; n <= 130; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1000, 4096, 100003)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			for _, n := range lengths {
				for off := range 4 {
					a := misalignedF32(n, off)
					b := misalignedF32(n, (off+1)%4)
					randF32(r, a)
					randF32(r, b)
					var want, mag float64
					for i := range a {
						want += float64(a[i]) * float64(b[i])
						mag += math.Abs(float64(a[i]) * float64(b[i]))
					}
					// float32 sums lose up to ~n/k ulps; scale the tolerance with n.
					got := v.dot(a, b)
					if runtime.GOARCH == "amd64" && got != dotGo(a, b) {
						// amd64 keeps dotGo's order: every variant, the same bits.
						t.Fatalf("dot n=%d off=%d: %v, dotGo %v", n, off, got, dotGo(a, b))
					}
					if math.Abs(float64(got)-want) > 1e-7*float64(n+16)*mag+1e-30 {
						t.Fatalf("dot n=%d off=%d: %v, want %v", n, off, got, want)
					}
					h16 := misaligned(2*n, (off+3)%4)
					hb := misaligned(2*n, off)
					var w16, wb, m16, mb float64
					for i := range a {
						binary.LittleEndian.PutUint16(h16[2*i:], quant.F32ToF16(a[i]))
						binary.LittleEndian.PutUint16(hb[2*i:], quant.F32ToBF16(a[i]))
						p16 := float64(quant.F16ToF32(quant.F32ToF16(a[i]))) * float64(b[i])
						pb := float64(quant.BF16ToF32(quant.F32ToBF16(a[i]))) * float64(b[i])
						w16, m16 = w16+p16, m16+math.Abs(p16)
						wb, mb = wb+pb, mb+math.Abs(pb)
					}
					if v.f16 != nil { // else MatMul converts rows and uses dot
						if g := v.f16(h16, b); math.Abs(float64(g)-w16) > 1e-7*float64(n+16)*m16+1e-30 {
							t.Fatalf("f16 dot n=%d off=%d: %v, want %v", n, off, g, w16)
						}
						if g := v.bf16(hb, b); math.Abs(float64(g)-wb) > 1e-7*float64(n+16)*mb+1e-30 {
							t.Fatalf("bf16 dot n=%d off=%d: %v, want %v", n, off, g, wb)
						}
					}
					y := misalignedF32(n, (off+2)%4)
					randF32(r, y)
					wantY := make([]float32, n)
					for i := range y {
						wantY[i] = y[i] + 0.75*a[i]
					}
					yGo := append([]float32(nil), y...)
					axpyGo(0.75, a, yGo)
					v.axpy(0.75, a, y)
					for i := range y {
						if runtime.GOARCH == "amd64" && y[i] != yGo[i] {
							t.Fatalf("axpy n=%d [%d]: %v, axpyGo %v", n, i, y[i], yGo[i])
						}
					}
					for i := range y {
						// With FMA the product is not rounded: allow one ulp of it.
						if math.Abs(float64(y[i]-wantY[i])) > 1e-6*(math.Abs(float64(wantY[i]))+math.Abs(float64(a[i]))) {
							t.Fatalf("axpy n=%d off=%d [%d]: %v, want %v", n, off, i, y[i], wantY[i])
						}
					}
				}
			}
		})
	}
}

// matBytes builds a random matrix of type wt and its dequantized values.
func randMat(r *rand.Rand, wt WType, rows, cols int) (Mat, []float32) {
	m := Mat{Type: wt, Rows: rows, Cols: cols}
	m.Data = make([]byte, rows*m.RowBytes())
	vals := make([]float32, rows*cols)
	randF32(r, vals)
	for i := range vals {
		vals[i] *= 0.05
	}
	switch wt {
	case F32:
		for i, v := range vals {
			binary.LittleEndian.PutUint32(m.Data[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range vals {
			binary.LittleEndian.PutUint16(m.Data[2*i:], quant.F32ToF16(v))
		}
	case BF16:
		for i, v := range vals {
			binary.LittleEndian.PutUint16(m.Data[2*i:], quant.F32ToBF16(v))
		}
	case Q8_0:
		quant.QuantizeQ8_0(m.Data, vals)
	case Q4_0:
		quant.QuantizeQ4_0(m.Data, vals)
	}
	// The reference uses what the file holds, through package quant.
	for i := range rows {
		row := vals[i*cols : (i+1)*cols]
		src := m.Data[i*m.RowBytes() : (i+1)*m.RowBytes()]
		switch wt {
		case F16:
			for j := range row {
				row[j] = quant.F16ToF32(binary.LittleEndian.Uint16(src[2*j:]))
			}
		case BF16:
			for j := range row {
				row[j] = quant.BF16ToF32(binary.LittleEndian.Uint16(src[2*j:]))
			}
		case Q8_0:
			quant.DequantizeQ8_0(row, src)
		case Q4_0:
			quant.DequantizeQ4_0(row, src)
		}
	}
	return m, vals
}

var allTypes = []WType{F32, F16, BF16, Q8_0, Q4_0}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	pools := []*Pool{nil, NewPool(1), NewPool(2)}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	for _, v := range variants() {
		for _, wt := range allTypes {
			for _, shape := range [][2]int{{37, 96}, {300, 256}} {
				rows, cols := shape[0], shape[1]
				m, w := randMat(r, wt, rows, cols)
				for _, n := range []int{1, 2, 3, 5, 8, 17} {
					x := make([]float32, n*cols)
					randF32(r, x)
					// Reference: float64 over the dequantized weights and,
					// for block types, the Q8_0-rounded activations.
					xr := append([]float32(nil), x...)
					if wt == Q8_0 || wt == Q4_0 {
						q := make([]byte, n*cols/qk*q8b)
						llamaQuantize(q, x)
						quant.DequantizeQ8_0(xr, q)
					}
					for pi, p := range pools {
						dst := make([]float32, n*rows+1)
						dst[n*rows] = 42 // must stay untouched
						withVariant(v, func() { p.MatMul(dst, m, x, n) })
						for tk := range n {
							for rr := range rows {
								var want, mag float64
								for c := range cols {
									pr := float64(w[rr*cols+c]) * float64(xr[tk*cols+c])
									want += pr
									mag += math.Abs(pr)
								}
								got := dst[tk*rows+rr]
								if math.Abs(float64(got)-want) > 1e-5*mag+1e-30 {
									gen := make([]float32, n*rows)
									withVariant(genericVariant, func() { p.MatMul(gen, m, x, n) })
									t.Fatalf("%s %v %dx%d n=%d pool %d: dst[%d][%d] = %v, want %v (generic %v)",
										v.name, wt, rows, cols, n, pi, tk, rr, got, want, gen[tk*rows+rr])
								}
							}
						}
						if dst[n*rows] != 42 {
							t.Fatalf("MatMul wrote past n*Rows")
						}
					}
				}
			}
		}
	}
}

func TestMatRow(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for _, wt := range allTypes {
		m, w := randMat(r, wt, 5, 64)
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 64)
		for i := range 5 {
			m.Row(i, got)
			for j := range got {
				if got[j] != w[i*64+j] {
					t.Fatalf("%v Row(%d)[%d] = %v, want %v", wt, i, j, got[j], w[i*64+j])
				}
			}
		}
	}
	bad := []Mat{
		{Type: Q8_0, Rows: 1, Cols: 33, Data: make([]byte, 34)},
		{Type: Q4_0, Rows: 2, Cols: 32, Data: make([]byte, 35)},
		{Type: F32, Rows: 1, Cols: 4, Data: make([]byte, 17)},
		{Type: numWTypes, Rows: 1, Cols: 4},
		{Type: F16, Rows: -1, Cols: 4},
	}
	for _, m := range bad {
		if m.Validate() == nil {
			t.Errorf("Validate(%v %dx%d, %d bytes) = nil", m.Type, m.Rows, m.Cols, len(m.Data))
		}
	}
}

func TestMatMulNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	p := NewPool(2)
	defer p.Close()
	for _, wt := range allTypes {
		m, _ := randMat(r, wt, 256, 256)
		for _, n := range []int{1, 9} {
			x := make([]float32, n*256)
			dst := make([]float32, n*256)
			p.MatMul(dst, m, x, n)
			if a := testing.AllocsPerRun(20, func() { p.MatMul(dst, m, x, n) }); a != 0 {
				t.Errorf("%v n=%d: %v allocations per MatMul", wt, n, a)
			}
		}
	}
}

var errBoom = errors.New("boom")

// boomVariant is the generic variant with Q8_0 kernels that panic with errBoom on a block whose
// first quant is 0x7f.
func boomVariant() variant {
	boom := *genericVariant
	boom.q8 = func(w, x []byte) float32 {
		if w[2] == 0x7f {
			panic(errBoom)
		}
		return dotQ8Go(w, x)
	}
	boom.q8r4 = rowsOf(boom.q8)
	boom.q8r8 = rows8Of(boom.q8r4)
	return boom
}

func TestMatMulWorkerPanic(t *testing.T) {
	// A kernel that panics on one row: the panic must reach the caller
	// whichever participant ran that row, and the pool must keep working.
	boom := boomVariant()
	p := NewPool(2)
	defer p.Close()
	m := Mat{Type: Q8_0, Rows: 64, Cols: 32, Data: make([]byte, 64*q8b)}
	x := make([]float32, 32)
	dst := make([]float32, 64)
	for _, bad := range []int{0, 63} {
		clear(m.Data)
		m.Data[bad*q8b+2] = 0x7f
		var got any
		func() {
			defer func() { got = recover() }()
			withVariant(&boom, func() { p.MatMul(dst, m, x, 1) })
		}()
		if got != errBoom {
			t.Fatalf("row %d: recovered %v, want %v", bad, got, errBoom)
		}
		m.Data[bad*q8b+2] = 0
		p.MatMul(dst, m, x, 1) // still works
	}
}

func TestVectorOps(t *testing.T) {
	x := []float32{1, -2, 3, 0.5, -0.25, 4}
	w := []float32{1, 2, 0.5, 1, 1, -1}
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := 1 / math.Sqrt(ss/6+1e-5)
	dst := make([]float32, 6)
	RMSNorm(dst, x, w, 1e-5)
	for i := range x {
		if want := float64(x[i]) * scale * float64(w[i]); math.Abs(float64(dst[i])-want) > 1e-6 {
			t.Errorf("RMSNorm[%d] = %v, want %v", i, dst[i], want)
		}
	}
	RMSNorm(dst, x, nil, 1e-5)
	if want := float64(x[2]) * scale; math.Abs(float64(dst[2])-want) > 1e-6 {
		t.Errorf("RMSNorm without weight [2] = %v, want %v", dst[2], want)
	}

	s := []float32{1000, 1001, float32(math.Inf(-1)), 999}
	Softmax(s)
	e := []float64{math.Exp(-1), 1, 0, math.Exp(-2)}
	tot := e[0] + e[1] + e[3]
	for i := range s {
		if math.Abs(float64(s[i])-e[i]/tot) > 1e-6 {
			t.Errorf("Softmax[%d] = %v, want %v", i, s[i], e[i]/tot)
		}
	}

	g := []float32{-3, -1, 0, 0.5, 2}
	si := append([]float32(nil), g...)
	gl := append([]float32(nil), g...)
	SiLU(si)
	GELU(gl)
	for i, v := range g {
		u := float64(v)
		if want := u / (1 + math.Exp(-u)); math.Abs(float64(si[i])-want) > 1e-6 {
			t.Errorf("SiLU(%v) = %v, want %v", v, si[i], want)
		}
		if want := 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u))); math.Abs(float64(gl[i])-want) > 1e-6 {
			t.Errorf("GELU(%v) = %v, want %v", v, gl[i], want)
		}
	}
	a := []float32{1, 2, 3}
	b := []float32{4, 5, 6}
	Add(a, a, b)
	Mul(b, a, b)
	Scale(b, 0.5)
	if a[2] != 9 || b[0] != 10 || b[2] != 27 {
		t.Errorf("Add/Mul/Scale: %v %v", a, b)
	}
	ax := []float32{1, 1, 1}
	Axpy(2, []float32{1, 2, 3}, ax)
	if ax[2] != 7 || Dot([]float32{1, 2}, []float32{3, 4}) != 11 {
		t.Errorf("Axpy/Dot: %v", ax)
	}
}

func TestDispatch(t *testing.T) {
	defer SetMaxFeatures("")
	if err := SetMaxFeatures("generic"); err != nil || Features() != "generic" {
		t.Fatalf("SetMaxFeatures(generic): %v, Features %q", err, Features())
	}
	if err := SetMaxFeatures("avx2,warp9"); err == nil || !strings.Contains(err.Error(), "warp9") {
		t.Fatalf("unknown feature: %v", err)
	}
	if Features() != "generic" {
		t.Fatalf("a failed SetMaxFeatures changed the choice to %q", Features())
	}
	if err := SetMaxFeatures(""); err != nil {
		t.Fatal(err)
	}
	t.Logf("available %q, running %q", Available(), Features())
	off := parseEnv("generic")
	for _, f := range allFeatures {
		if !off[f] {
			t.Errorf("EDGELM_KERNELS=generic leaves %s on", f)
		}
	}
	if off := parseEnv("avx512vnni, dotprod"); !off["avx512vnni"] || !off["dotprod"] || off["avx2"] {
		t.Errorf("parseEnv list: %v", off)
	}
	// Turning a feature off picks a variant that does not need it.
	for _, f := range allFeatures {
		v := choose(enabled(map[string]bool{f: false}))
		for _, n := range v.needs {
			if n == f {
				t.Errorf("with %s off, %s was chosen", f, v.name)
			}
		}
	}
}

// TestEnvTurnsFeaturesOff runs this test binary again with EDGELM_KERNELS
// set, since the variable is read once at start-up.
func TestEnvTurnsFeaturesOff(t *testing.T) {
	if os.Getenv("EDGELM_KERNELS_CHILD") == "1" {
		fmt.Printf("FEATURES=%s\n", Features())
		return
	}
	for _, c := range []struct{ env, notWant string }{
		{"generic", ""},
		{"avx2", "avx2"},
		{"dotprod", "dotprod"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvTurnsFeaturesOff$")
		cmd.Env = append(os.Environ(), "EDGELM_KERNELS_CHILD=1", "EDGELM_KERNELS="+c.env)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Skipf("cannot re-run the test binary (%v): %s", err, out)
		}
		_, after, ok := strings.Cut(string(out), "FEATURES=")
		if !ok {
			t.Fatalf("EDGELM_KERNELS=%s: no FEATURES line in %q", c.env, out)
		}
		got, _, _ := strings.Cut(after, "\n")
		if c.notWant == "" && got != "generic" || c.notWant != "" && strings.Contains(got, c.notWant) {
			t.Errorf("EDGELM_KERNELS=%s: running %q", c.env, got)
		}
		t.Logf("EDGELM_KERNELS=%s: running %q", c.env, got)
	}
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-86.6); x < 88.72; x += 0.0137 {
		for _, v := range []float32{x, math.Nextafter32(x, 0)} {
			got, want := float64(expf(v)), math.Exp(float64(v))
			if rel := math.Abs(got-want) / want; rel > worst {
				worst = rel
			}
		}
	}
	if worst > 3e-7 { // 2.5 ulp of float32
		t.Errorf("expf: worst relative error %g", worst)
	}
	t.Logf("expf: worst relative error %g", worst)
	for _, c := range []struct{ x, want float32 }{
		{0, 1}, {-1000, 0}, {1000, float32(math.Inf(1))}, {88.7, float32(math.Exp(float64(float32(88.7))))},
	} {
		if got := expf(c.x); got != c.want && math.Abs(float64(got-c.want)) > 3e-7*float64(c.want) {
			t.Errorf("expf(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Errorf("expf(NaN) = %v", v)
	}
}

func TestActivationsWide(t *testing.T) {
	var x []float32
	for v := float32(-40); v <= 40; v += 0.01 {
		x = append(x, v)
	}
	x = append(x, -200, 200, 0, -0.0)
	for _, v := range variants() {
		withVariant(v, func() {
			for _, n := range []int{0, 1, 7, 8, 9, 17, 130, len(x)} {
				si := append([]float32(nil), x[:n]...)
				gl := append([]float32(nil), x[:n]...)
				SiLU(si)
				GELU(gl)
				for i, xv := range x[:n] {
					u := float64(xv)
					ws := u / (1 + math.Exp(-u))
					wg := 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
					if math.Abs(float64(si[i])-ws) > 1e-6*math.Max(1, math.Abs(ws)) {
						t.Fatalf("%s: SiLU(%v) = %v, want %v", v.name, xv, si[i], ws)
					}
					if math.Abs(float64(gl[i])-wg) > 1e-6*math.Max(1, math.Abs(wg)) {
						t.Fatalf("%s: GELU(%v) = %v, want %v", v.name, xv, gl[i], wg)
					}
				}
			}
			// Softmax against float64, over a range wide enough to flush.
			r := rand.New(rand.NewPCG(15, 15))
			for n := 0; n <= 130; n++ {
				s := make([]float32, n)
				for i := range s {
					s[i] = float32(r.NormFloat64() * 20)
				}
				if n > 3 {
					s[3] = float32(math.Inf(-1))
				}
				want := make([]float64, n)
				mx, tot := math.Inf(-1), 0.0
				for _, e := range s {
					mx = math.Max(mx, float64(e))
				}
				for i, e := range s {
					want[i] = math.Exp(float64(e) - mx)
					tot += want[i]
				}
				d := append([]float32(nil), s...)
				Softmax(s)
				for i := range s {
					// float32's x-max carries up to |x-max|·2^-24 of
					// relative error into the exponential.
					tol := (1e-6 + 1.2e-7*math.Abs(float64(d[i])-mx)) * want[i] / tot
					if w := want[i] / tot; math.Abs(float64(s[i])-w) > tol+1e-37 {
						t.Fatalf("%s: Softmax n=%d [%d] = %v, want %v", v.name, n, i, s[i], w)
					}
				}
			}
		})
	}
}

// TestMatMulSameBitsAnyBatch checks, for every variant, that a token's
// results do not depend on the batch around it: one call of n tokens gives
// the bits of n calls of one token (single, four-row, four-token and tile
// kernels must all sum in one order). Odd widths exercise the float tails.
func TestMatMulSameBitsAnyBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 16))
	for _, v := range variants() {
		for _, wt := range allTypes {
			cols := 160
			if wt.BlockSize() == 1 {
				cols = 101
			}
			m, _ := randMat(r, wt, 23, cols)
			const n = 13
			x := make([]float32, n*cols)
			randF32(r, x)
			p := NewPool(2)
			all := make([]float32, n*m.Rows)
			one := make([]float32, m.Rows)
			gen := make([]float32, n*m.Rows)
			withVariant(genericVariant, func() { p.MatMul(gen, m, x, n) })
			withVariant(v, func() {
				p.MatMul(all, m, x, n)
				if wt == Q8_0 || wt == Q4_0 {
					// Block sums are exact and added in block order on amd64,
					// as in Go: every variant there gives the generic bits.
					for i := range all {
						if runtime.GOARCH == "amd64" && all[i] != gen[i] {
							t.Fatalf("%s %v: result %d is %v, generic %v", v.name, wt, i, all[i], gen[i])
						}
					}
				}
				for tk := range n {
					p.MatMul(one, m, x[tk*cols:(tk+1)*cols], 1)
					for rr := range m.Rows {
						if one[rr] != all[tk*m.Rows+rr] {
							t.Fatalf("%s %v: token %d row %d: %v alone, %v in a batch of %d", v.name, wt, tk, rr, one[rr], all[tk*m.Rows+rr], n)
						}
					}
				}
			})
			p.Close()
		}
	}
}

// TestRows8 holds the eight-row decode kernels and the 4×4, 8×4 and 8×8 prefill tiles to the one-row kernel of the
// same variant, bit for bit (a token's result must not depend on how many
// rows a kernel takes at once), and to an independent float64 sum. Rows
// differ (random scales and quants over the whole ranges, -128 included
// for Q8_0, subnormal and negative scales), lengths 0..70 and a few long
// ones, buffers misaligned.
func TestRows8(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 21))
	lengths := []int{}
	for nb := 0; nb <= 70; nb++ {
		lengths = append(lengths, nb)
	}
	lengths = append(lengths, 128, 257)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			for _, nb := range lengths {
				w8 := misaligned(8*nb*q8b, nb%4)
				w4 := misaligned(8*nb*q4b, (nb+1)%4)
				x := misaligned(nb*q8b, (nb+2)%4)
				randQ8(r, w8, 0, -128, 127)
				randQ4(r, w4, 0)
				randQ8(r, x, 0, -127, 127)
				if nb > 2 { // a subnormal and a negative weight scale
					binary.LittleEndian.PutUint16(w8[q8b:], 0x0003)
					binary.LittleEndian.PutUint16(w4[2*q4b:], 0x8123)
				}
				var got8, got4 [8]float32
				x8a, x4a := auxOf(nil, x, nb*q8b, 1, 128), auxOf(nil, x, nb*q8b, 1, 8)
				v.q8r8(w8, nb*q8b, x, x8a, 1, nil, &got8)
				v.q4r8(w4, nb*q4b, x, x4a, 1, w4[len(w4)/2:], &got4)
				for k := range 8 {
					row8 := w8[k*nb*q8b : (k+1)*nb*q8b]
					row4 := w4[k*nb*q4b : (k+1)*nb*q4b]
					if one := v.q8(row8, x); math.Float32bits(one) != math.Float32bits(got8[k]) {
						t.Fatalf("q8r8 %d blocks row %d: %v, one-row kernel %v", nb, k, got8[k], one)
					}
					if one := v.q4(row4, x); math.Float32bits(one) != math.Float32bits(got4[k]) {
						t.Fatalf("q4r8 %d blocks row %d: %v, one-row kernel %v", nb, k, got4[k], one)
					}
					s8, m8 := refQ(Q8_0, row8, x)
					s4, m4 := refQ(Q4_0, row4, x)
					checkClose(t, fmt.Sprintf("q8r8 %d blocks row %d", nb, k), got8[k], s8, m8)
					checkClose(t, fmt.Sprintf("q4r8 %d blocks row %d", nb, k), got4[k], s4, m4)
				}
				// Tiles: tokens at a stride longer than a row.
				stride := nb*q8b + 3
				xs := misaligned(8*stride, (nb+3)%4)
				for tk := range 8 {
					randQ8(r, xs[tk*stride:tk*stride+nb*q8b], 0, -127, 127)
				}
				// 4×4 tiles: rows 0-3 of w8 and w4 against tokens 0-3.
				var t44q4, t44q8 [16]float32
				v.q4t44(w4, nb*q4b, xs, stride, &t44q4)
				v.q8t44(w8, nb*q8b, xs, stride, &t44q8)
				for k := range 4 {
					for tk := range 4 {
						xt := xs[tk*stride : tk*stride+nb*q8b]
						if one := v.q4(w4[k*nb*q4b:(k+1)*nb*q4b], xt); math.Float32bits(one) != math.Float32bits(t44q4[4*k+tk]) {
							t.Fatalf("q4t44 %d blocks row %d token %d: %v, one-row kernel %v", nb, k, tk, t44q4[4*k+tk], one)
						}
						if one := v.q8(w8[k*nb*q8b:(k+1)*nb*q8b], xt); math.Float32bits(one) != math.Float32bits(t44q8[4*k+tk]) {
							t.Fatalf("q8t44 %d blocks row %d token %d: %v, one-row kernel %v", nb, k, tk, t44q8[4*k+tk], one)
						}
					}
				}
				if v.q4t84 == nil && v.q8t84 == nil && v.q4t88 == nil && v.q8t88 == nil {
					continue
				}
				if nb > 1 { // the extremes of a token's block sum
					for i := range qk {
						xs[2*stride+q8b+2+i] = 0x81 // -127
						xs[5*stride+2+i] = 0x7f
					}
				}
				a4 := auxOf(nil, xs, stride, 8, 8)
				a8 := auxOf(nil, xs, stride, 8, 128)
				var tile4, tile8 [32]float32
				var tile48, tile88 [64]float32
				// A variant may have some of the tiles: the others' results
				// are left NaN and not checked.
				for i := range tile4 {
					tile4[i], tile8[i] = float32(math.NaN()), float32(math.NaN())
				}
				if v.q4t84 != nil {
					v.q4t84(w4, nb*q4b, xs, stride, a4, 8, nil, &tile4)
				}
				if v.q8t84 != nil {
					v.q8t84(w8, nb*q8b, xs, stride, a8, 8, w8, &tile8)
				}
				if v.q4t88 != nil {
					v.q4t88(w4, nb*q4b, xs, stride, a4, 8, w4, &tile48)
				}
				if v.q8t88 != nil {
					v.q8t88(w8, nb*q8b, xs, stride, a8, 8, nil, &tile88)
				}
				for k := range 8 {
					row4 := w4[k*nb*q4b : (k+1)*nb*q4b]
					row8 := w8[k*nb*q8b : (k+1)*nb*q8b]
					for tk := range 8 {
						xt := xs[tk*stride : tk*stride+nb*q8b]
						one4, one8 := v.q4(row4, xt), v.q8(row8, xt)
						if tk < 4 {
							if v.q4t84 != nil && math.Float32bits(one4) != math.Float32bits(tile4[8*tk+k]) {
								t.Fatalf("q4t84 %d blocks row %d token %d: %v, one-row kernel %v", nb, k, tk, tile4[8*tk+k], one4)
							}
							if v.q8t84 != nil && math.Float32bits(one8) != math.Float32bits(tile8[8*tk+k]) {
								t.Fatalf("q8t84 %d blocks row %d token %d: %v, one-row kernel %v", nb, k, tk, tile8[8*tk+k], one8)
							}
						}
						if v.q4t88 != nil && math.Float32bits(one4) != math.Float32bits(tile48[8*tk+k]) {
							t.Fatalf("q4t88 %d blocks row %d token %d: %v, one-row kernel %v", nb, k, tk, tile48[8*tk+k], one4)
						}
						if v.q8t88 != nil && math.Float32bits(one8) != math.Float32bits(tile88[8*tk+k]) {
							t.Fatalf("q8t88 %d blocks row %d token %d: %v, one-row kernel %v", nb, k, tk, tile88[8*tk+k], one8)
						}
					}
				}
			}
		})
	}
}

// TestHeads holds DotHeads and AxpyHeads to Dot and Axpy per head, bit for
// bit, in every variant: any number of heads, head lengths 0..70 and the
// usual head dimensions, misaligned slices.
func TestHeads(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 22))
	dims := []int{}
	for n := 0; n <= 70; n++ {
		dims = append(dims, n)
	}
	dims = append(dims, 128, 256)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			withVariant(v, func() {
				for _, n := range dims {
					for heads := 0; heads <= 9; heads++ {
						q := misalignedF32(heads*n, (n+heads)%4*4)
						k := misalignedF32(n, n%4*4)
						randF32(r, q)
						randF32(r, k)
						got := make([]float32, heads)
						DotHeads(got, q, k)
						for h := range heads {
							want := v.dot(q[h*n:(h+1)*n], k)
							if math.Float32bits(got[h]) != math.Float32bits(want) {
								t.Fatalf("DotHeads n=%d heads=%d head %d: %v, Dot %v", n, heads, h, got[h], want)
							}
						}
						w := make([]float32, heads)
						randF32(r, w)
						out := misalignedF32(heads*n, (heads+1)%4*4)
						randF32(r, out)
						want := append([]float32(nil), out...)
						AxpyHeads(w, k, out)
						for h := range heads {
							v.axpy(w[h], k, want[h*n:(h+1)*n])
						}
						for i := range out {
							if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
								t.Fatalf("AxpyHeads n=%d heads=%d at %d: %v, Axpy %v", n, heads, i, out[i], want[i])
							}
						}
					}
				}
			})
		})
	}
}

// TestHeadsRows holds DotHeadsRows and AxpyHeadsRows to Dot and Axpy per head and key, in key order,
// bit for bit, in every variant: head counts 1..9 (4 is the fast path), head lengths with and without
// the kernels' widths, key counts odd and even, strides longer than a head, misaligned slices.
func TestHeadsRows(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 23))
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			withVariant(v, func() {
				for _, hd := range []int{1, 4, 8, 12, 16, 32, 40, 48, 64, 68, 128} {
					for heads := 1; heads <= 9; heads++ {
						for _, n := range []int{1, 2, 3, 7, 8, 33} {
							kstride := hd + (n % 3)
							k := misalignedF32((n-1)*kstride+hd, (hd+n)%4*4)
							q := misalignedF32(heads*hd, heads%4*4)
							randF32(r, k)
							randF32(r, q)
							dstride := n + 2
							dst := make([]float32, (heads-1)*dstride+n)
							DotHeadsRows(dst, dstride, q, heads, 1, k, kstride, n)
							for h := range heads {
								for j := range n {
									want := v.dot(q[h*hd:(h+1)*hd], k[j*kstride:j*kstride+hd])
									if got := dst[h*dstride+j]; math.Float32bits(got) != math.Float32bits(want) {
										t.Fatalf("DotHeadsRows hd=%d heads=%d n=%d head %d key %d: %v, Dot %v", hd, heads, n, h, j, got, want)
									}
								}
							}
							// The scores as weights, heads dstride apart.
							out := misalignedF32(heads*hd, (heads+hd)%4*4)
							randF32(r, out)
							want := append([]float32(nil), out...)
							AxpyHeadsRows(dst, dstride, heads, k, kstride, n, out)
							for j := range n {
								for h := range heads {
									v.axpy(dst[h*dstride+j], k[j*kstride:j*kstride+hd], want[h*hd:(h+1)*hd])
								}
							}
							for i := range out {
								if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
									t.Fatalf("AxpyHeadsRows hd=%d heads=%d n=%d at %d: %v, Axpy per key %v", hd, heads, n, i, out[i], want[i])
								}
							}
							// Keys and values stored as halves: the same bits as their float values.
							k16 := make([]byte, 2*len(k))
							FloatToHalf(k16, k)
							kf := make([]float32, len(k))
							for i := range kf {
								kf[i] = quant.F16ToF32(binary.LittleEndian.Uint16(k16[2*i:]))
							}
							wantD := make([]float32, len(dst))
							gotD := make([]float32, len(dst))
							DotHeadsRows(wantD, dstride, q, heads, 1, kf, kstride, n)
							DotHeadsRowsF16(gotD, dstride, q, heads, 1, k16, kstride, n)
							for i := range gotD {
								if math.Float32bits(gotD[i]) != math.Float32bits(wantD[i]) {
									t.Fatalf("DotHeadsRowsF16 hd=%d heads=%d n=%d at %d: %v, on floats %v", hd, heads, n, i, gotD[i], wantD[i])
								}
							}
							randF32(r, out)
							want16 := append([]float32(nil), out...)
							AxpyHeadsRows(wantD, dstride, heads, kf, kstride, n, want16)
							AxpyHeadsRowsF16(wantD, dstride, heads, k16, kstride, n, out)
							for i := range out {
								if math.Float32bits(out[i]) != math.Float32bits(want16[i]) {
									t.Fatalf("AxpyHeadsRowsF16 hd=%d heads=%d n=%d at %d: %v, on floats %v", hd, heads, n, i, out[i], want16[i])
								}
							}
						}
					}
				}
			})
		})
	}
}

// TestQuantSum holds quantSum to a plain loop over random and extreme blocks.
func TestQuantSum(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 30))
	q := make([]byte, qk)
	for i := range 2000 {
		for j := range q {
			switch i {
			case 0:
				q[j] = 0x80 // all -128
			case 1:
				q[j] = 0x7f // all 127
			default:
				q[j] = byte(r.Uint32())
			}
		}
		var want int32
		for _, b := range q {
			want += int32(int8(b))
		}
		if got := quantSum(q); got != want {
			t.Fatalf("block %x: %d, want %d", q, got, want)
		}
	}
}

// TestScale: every variant's Scale gives each element's float32 product exactly (an
// independent float64 product rounded once is the same number), on lengths 0..130 from
// unaligned starts, and leaves the elements around the slice alone.
func TestScale(t *testing.T) {
	r := rand.New(rand.NewPCG(24, 24))
	for _, v := range variants() {
		withVariant(v, func() {
			for n := 0; n <= 130; n++ {
				for _, off := range []int{0, 1, 3} {
					buf := make([]float32, n+off+1)
					randF32(r, buf)
					buf[0] = float32(math.Inf(1))
					s := float32(r.NormFloat64())
					orig := append([]float32(nil), buf...)
					Scale(buf[off:off+n], s)
					for i := range buf {
						want := orig[i]
						if i >= off && i < off+n {
							want = float32(float64(orig[i]) * float64(s))
						}
						if math.Float32bits(buf[i]) != math.Float32bits(want) {
							t.Fatalf("%s n=%d off=%d: [%d] = %v, want %v", v.name, n, off, i, buf[i], want)
						}
					}
				}
			}
		})
	}
}
