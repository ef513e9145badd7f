package kvcache

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"edgelm/kernels"
	"edgelm/quant"
)

// rope rotates every head of x (pairs (2i, 2i+1), base 10000) to position p: the test's own RoPE.
func rope(x []float32, hd int, p float64) {
	for h := 0; h < len(x)/hd; h++ {
		for i := 0; i < hd/2; i++ {
			th := p * math.Pow(10000, -2*float64(i)/float64(hd))
			a, b := float64(x[h*hd+2*i]), float64(x[h*hd+2*i+1])
			x[h*hd+2*i] = float32(a*math.Cos(th) - b*math.Sin(th))
			x[h*hd+2*i+1] = float32(a*math.Sin(th) + b*math.Cos(th))
		}
	}
}

// attendRef is softmax(q·k/sqrt(hd))·v in float64 over keys given unrotated, rotated here at kpos.
func attendRef(q []float32, qpos float64, ks, vs [][]float32, kpos []float64, heads, kvHeads, hd int) []float64 {
	out := make([]float64, heads*hd)
	qr := append([]float32(nil), q...)
	rope(qr, hd, qpos)
	for h := 0; h < heads; h++ {
		kh := h * kvHeads / heads
		sc := make([]float64, len(ks))
		mx := math.Inf(-1)
		for j := range ks {
			k := append([]float32(nil), ks[j]...)
			rope(k, hd, kpos[j])
			s := 0.0
			for d := 0; d < hd; d++ {
				s += float64(qr[h*hd+d]) * float64(k[kh*hd+d])
			}
			sc[j] = s / math.Sqrt(float64(hd))
			mx = math.Max(mx, sc[j])
		}
		sum := 0.0
		for j := range sc {
			sc[j] = math.Exp(sc[j] - mx)
			sum += sc[j]
		}
		for j := range sc {
			for d := 0; d < hd; d++ {
				out[h*hd+d] += sc[j] / sum * float64(vs[j][kh*hd+d])
			}
		}
	}
	return out
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

var tolerance = map[Type]float64{F32: 1e-5, F16: 2e-3, Q8_0: 2e-2, Q4_0: 1.5e-1}

func maxDiff(got []float32, want []float64) float64 {
	w := 0.0
	for i := range want {
		w = math.Max(w, math.Abs(float64(got[i])-want[i]))
	}
	return w
}

// TestAttendTypes: every storage type, for keys and values separately, attends like float64 math
// over the unquantized vectors, within the type's precision.
func TestAttendTypes(t *testing.T) {
	const heads, kvHeads, hd, n = 4, 2, 32, 40
	rng := rand.New(rand.NewPCG(1, 2))
	ks, vs, pos := make([][]float32, n), make([][]float32, n), make([]float64, n)
	for j := range ks {
		ks[j], vs[j], pos[j] = randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd), float64(j)
	}
	q := randVec(rng, heads*hd)
	want := attendRef(q, n-1, ks, vs, pos, heads, kvHeads, hd)
	for _, tk := range []Type{F32, F16, Q8_0, Q4_0} {
		for _, tv := range []Type{F32, F16, Q8_0, Q4_0} {
			s := NewSeq(Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: tk, TypeV: tv}, 64)
			for j := range ks {
				slot, err := s.Append(int32(j))
				if err != nil {
					t.Fatal(err)
				}
				k := append([]float32(nil), ks[j]...)
				rope(k, hd, pos[j])
				s.Store(0, slot, k, vs[j])
			}
			qr := append([]float32(nil), q...)
			rope(qr, hd, n-1)
			out := make([]float32, heads*hd)
			s.Attend(0, Attention{Heads: heads, Scale: float32(1 / math.Sqrt(hd))}, qr, n-1, out, &Scratch{})
			tol := math.Max(tolerance[tk], tolerance[tv])
			if d := maxDiff(out, want); d > tol {
				t.Errorf("K %s V %s: max difference %g, tolerance %g", tk, tv, d, tol)
			}
			if want := int64(n) * int64(tk.RowBytes(kvHeads*hd)+tv.RowBytes(kvHeads*hd)); s.Shape().BytesPerToken()*int64(n) != want {
				t.Errorf("bytes per token %d", s.Shape().BytesPerToken())
			}
		}
	}
}

// TestShiftNoDrift: after dropping tokens from the middle (once, or 20 times in a long stream), the
// kept keys attend exactly like keys computed at their new positions: K shifted by d equals K at p-d.
func TestShiftNoDrift(t *testing.T) {
	const heads, kvHeads, hd, capacity, sinks = 2, 1, 32, 48, 4
	rotate := func(q []float32, delta int32) { rope(q, hd, float64(delta)) }
	for _, typ := range []Type{F32, F16, Q8_0, Q4_0} {
		for _, shifts := range []int{1, 20} {
			t.Run(fmt.Sprintf("%s/%d", typ, shifts), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, uint64(shifts)))
				s := NewSeq(Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: typ, TypeV: typ}, capacity)
				var ks, vs [][]float32 // what the sequence logically holds, unrotated
				next := int32(0)       // next logical position
				done := 0
				for done < shifts {
					if s.Len() == capacity {
						d := 10 + done%7 // a different discard each time
						s.Shift(sinks, d)
						ks = append(ks[:sinks], ks[sinks+d:]...)
						vs = append(vs[:sinks], vs[sinks+d:]...)
						next -= int32(d)
						done++
						continue
					}
					k, v := randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd)
					slot, _ := s.Append(next)
					kr := append([]float32(nil), k...)
					rope(kr, hd, float64(next))
					s.Store(0, slot, kr, v)
					ks, vs = append(ks, k), append(vs, v)
					next++
				}
				if s.Len() != len(ks) {
					t.Fatalf("cache holds %d, model %d", s.Len(), len(ks))
				}
				// Fresh: the same keys computed at their current logical positions, same storage type.
				fresh := NewSeq(s.Shape(), capacity)
				pos := make([]float64, len(ks))
				for j, p := range s.Positions() {
					if int(p) != j {
						t.Fatalf("slot %d has position %d after shifting", j, p)
					}
					pos[j] = float64(p)
					slot, _ := fresh.Append(p)
					kr := append([]float32(nil), ks[j]...)
					rope(kr, hd, float64(p))
					fresh.Store(0, slot, kr, vs[j])
				}
				q := randVec(rng, heads*hd)
				qpos := int32(len(ks) - 1)
				qr := append([]float32(nil), q...)
				rope(qr, hd, float64(qpos))
				a := Attention{Heads: heads, Scale: float32(1 / math.Sqrt(hd)), Rotate: rotate}
				got, base := make([]float32, heads*hd), make([]float32, heads*hd)
				s.Attend(0, a, qr, qpos, got, &Scratch{})
				fresh.Attend(0, a, qr, qpos, base, &Scratch{})
				exact := attendRef(q, float64(qpos), ks, vs, pos, heads, kvHeads, hd)
				tol := tolerance[typ]
				if d := maxDiff(got, exact); d > tol {
					t.Errorf("shifted cache vs exact: %g > %g", d, tol)
				}
				b64 := make([]float64, len(base))
				for i := range base {
					b64[i] = float64(base[i])
				}
				if d := maxDiff(got, b64); d > tol {
					t.Errorf("shifted cache vs keys computed at the new positions: %g > %g", d, tol)
				}
			})
		}
	}
}

// TestMaskAndWindow: future tokens and tokens outside the window get no attention.
func TestMaskAndWindow(t *testing.T) {
	s := NewSeq(Shape{Layers: 1, KVHeads: 1, HeadDim: 32}, 8)
	for j := 0; j < 6; j++ {
		slot, _ := s.Append(int32(j))
		v := make([]float32, 32)
		v[0] = float32(j) // value 0 tells which slot contributed
		s.Store(0, slot, make([]float32, 32), v)
	}
	out := make([]float32, 32)
	// Equal keys: uniform weights over the visible slots. Query at 3 sees 0..3: mean 1.5.
	s.Attend(0, Attention{Heads: 1, Scale: 1}, make([]float32, 32), 3, out, &Scratch{})
	if math.Abs(float64(out[0])-1.5) > 1e-6 {
		t.Errorf("causal mask: %g, want 1.5", out[0])
	}
	// Window 2 at position 5 sees 4 and 5: mean 4.5.
	s.Attend(0, Attention{Heads: 1, Scale: 1, Window: 2}, make([]float32, 32), 5, out, &Scratch{})
	if math.Abs(float64(out[0])-4.5) > 1e-6 {
		t.Errorf("window: %g, want 4.5", out[0])
	}
}

func TestParseType(t *testing.T) {
	for _, s := range []string{"f32", "f16", "q8_0", "q4_0"} {
		if ty, err := ParseType(s); err != nil || ty.String() != s {
			t.Errorf("%s: %v %v", s, ty, err)
		}
	}
	if _, err := ParseType("q5_1"); err == nil {
		t.Error("q5_1 accepted")
	}
	if err := (Shape{Layers: 1, KVHeads: 1, HeadDim: 16, TypeK: Q8_0}).Check(); err == nil {
		t.Error("q8_0 rows of 16 accepted")
	}
}

// TestF16MatchesRoundedF32: an f16 cache stores quant.F32ToF16 of each value and reads back
// quant.F16ToF32 of it, bit for bit, so it attends exactly like an f32 cache holding those rounded
// values, under every kernel choice (the conversions are vectorized per CPU feature). Rows of 72
// values leave a tail after the vector blocks; the inputs include NaN, Inf, overflow and subnormals.
func TestF16MatchesRoundedF32(t *testing.T) {
	const heads, kvHeads, hd, n = 4, 2, 36, 21
	t.Cleanup(func() { kernels.SetMaxFeatures("auto") })
	special := []float32{float32(math.Inf(1)), float32(math.NaN()), math.Float32frombits(0xffa00001), 70000, -65520,
		65519, 1e-8, 2.9802322e-08, 6.1e-5, -0, math.Float32frombits(1)}
	for _, feat := range []string{"generic", "auto"} {
		if err := kernels.SetMaxFeatures(feat); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		h := NewSeq(Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: F16, TypeV: F16}, n+1)
		f := NewSeq(Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: F32, TypeV: F32}, n+1)
		got := make([]float32, kvHeads*hd)
		for j := 0; j <= n; j++ {
			k, v := randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd)
			if j == n { // a row of specials, read back but kept out of attention
				for i := range k {
					k[i] = special[i%len(special)]
				}
			}
			kr, vr := make([]float32, len(k)), make([]float32, len(v))
			for i := range k {
				kr[i] = quant.F16ToF32(quant.F32ToF16(k[i]))
				vr[i] = quant.F16ToF32(quant.F32ToF16(v[i]))
			}
			hs, _ := h.Append(int32(j))
			fs, _ := f.Append(int32(j))
			h.Store(0, hs, k, v)
			f.Store(0, fs, kr, vr)
			h.Key(0, hs, got)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(kr[i]) {
					t.Fatalf("%s: key %d[%d] = %#08x, want %#08x (from %#08x)", feat, j, i,
						math.Float32bits(got[i]), math.Float32bits(kr[i]), math.Float32bits(k[i]))
				}
			}
		}
		q := randVec(rng, heads*hd)
		a := Attention{Heads: heads, Scale: float32(1 / math.Sqrt(hd))}
		oh, of := make([]float32, heads*hd), make([]float32, heads*hd)
		h.Attend(0, a, q, n-1, oh, &Scratch{})
		f.Attend(0, a, q, n-1, of, &Scratch{})
		for i := range oh {
			if math.Float32bits(oh[i]) != math.Float32bits(of[i]) {
				t.Fatalf("%s: out[%d] = %v from the f16 cache, %v from the f32 one", feat, i, oh[i], of[i])
			}
		}
	}
}

// BenchmarkAttend: one query over 512 cached tokens in a 1B llama's layer shape (32 heads, 8 key
// heads of 64), per storage type, plus the Store of one token.
func BenchmarkAttend(b *testing.B) {
	// Query heads, key heads and head size of bench-1b (four query heads to a key head), of
	// bench-gemma2 (two), of a TinyLlama-1.1B-like model (eight) and of multi-head attention (one).
	for _, sh := range []struct {
		name               string
		heads, kvHeads, hd int
	}{{"g4", 32, 8, 64}, {"g2", 8, 4, 256}, {"g8", 32, 4, 64}, {"g1", 16, 16, 128}} {
		const n = 512
		heads, kvHeads, hd := sh.heads, sh.kvHeads, sh.hd
		rng := rand.New(rand.NewPCG(9, 10))
		for _, typ := range []Type{F32, F16, Q8_0} {
			s := NewSeq(Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: typ, TypeV: typ}, n)
			for j := range n {
				slot, _ := s.Append(int32(j))
				s.Store(0, slot, randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd))
			}
			q, out := randVec(rng, heads*hd), make([]float32, heads*hd)
			a := Attention{Heads: heads, Scale: float32(1 / math.Sqrt(float64(hd)))}
			name := fmt.Sprintf("%s/n=%d", typ, n)
			if sh.name != "g4" {
				name = sh.name + "/" + name
			}
			b.Run(name, func(b *testing.B) {
				var sc Scratch
				for b.Loop() {
					s.Attend(0, a, q, n-1, out, &sc)
				}
			})
			if sh.name != "g4" {
				continue
			}
			k, v := randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd)
			b.Run(fmt.Sprintf("%s/store", typ), func(b *testing.B) {
				for b.Loop() {
					s.Store(0, n/2, k, v)
				}
			})
		}
	}
}

func BenchmarkAttendDeep(b *testing.B) {
	const heads, kvHeads, hd, n, layers = 32, 8, 64, 2048, 16
	rng := rand.New(rand.NewPCG(9, 11))
	for _, typ := range []Type{F32, F16, Q8_0, Q4_0} {
		s := NewSeq(Shape{Layers: layers, KVHeads: kvHeads, HeadDim: hd, TypeK: typ, TypeV: typ}, n)
		k, v := randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd)
		for j := range n {
			slot, _ := s.Append(int32(j))
			for l := range layers {
				k[j%len(k)], v[(j+l)%len(v)] = float32(j), float32(l) // rows differ
				s.Store(l, slot, k, v)
			}
		}
		q, out := randVec(rng, heads*hd), make([]float32, heads*hd)
		a := Attention{Heads: heads, Scale: float32(1 / math.Sqrt(hd))}
		b.Run(fmt.Sprintf("%s/n=%d", typ, n), func(b *testing.B) {
			var sc Scratch
			l := 0
			for b.Loop() {
				s.Attend(l, a, q, n-1, out, &sc)
				l = (l + 1) % layers
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/slot")
		})
	}
}

// TestPrefillSameBitsAsDecode: a query at position p over a cache that already holds later tokens
// (a prompt's token during prefill) gives the bits it gives over the cache ending at p (the same
// token decoded), with and without a window, for every cache type. Greedy decoding relies on it: a
// prompt prefilled whole and one fed token by token must not flip a near tie.
func TestPrefillSameBitsAsDecode(t *testing.T) {
	const heads, kvHeads, hd, n = 8, 2, 64, 45
	rng := rand.New(rand.NewPCG(3, 4))
	ks, vs := make([][]float32, n), make([][]float32, n)
	for j := range ks {
		ks[j], vs[j] = randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd)
	}
	q := randVec(rng, heads*hd)
	for _, typ := range []Type{F32, F16, Q8_0, Q4_0} {
		shape := Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: typ, TypeV: typ}
		full := NewSeq(shape, n)
		for j := range n {
			slot, err := full.Append(int32(j))
			if err != nil {
				t.Fatal(err)
			}
			full.Store(0, slot, ks[j], vs[j])
		}
		for _, window := range []int{0, 7} {
			a := Attention{Heads: heads, Scale: 0.125, Window: window}
			for _, p := range []int{0, 1, 8, 9, 23, 31, 44} {
				prefix := NewSeq(shape, n)
				for j := 0; j <= p; j++ {
					slot, _ := prefix.Append(int32(j))
					prefix.Store(0, slot, ks[j], vs[j])
				}
				got, want := make([]float32, heads*hd), make([]float32, heads*hd)
				full.Attend(0, a, q, int32(p), got, &Scratch{})
				prefix.Attend(0, a, q, int32(p), want, &Scratch{})
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s window %d query at %d: out[%d] %v with later slots, %v without", typ, window, p, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestAttendHeadsSplit: attention computed in disjoint key-head ranges (as participants of a pool
// compute one token's attention) gives Attend's bits for every head, touches only its own heads of
// out, and holds for every cache type, head dimensions on and off the 32-element block boundary,
// with a window and with keys beyond the query.
func TestAttendHeadsSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, hd := range []int{64, 16, 48} {
		const heads, kvHeads, n = 8, 4, 30
		// Mixed pairs too: a block-typed V makes a head range straddle blocks, so whole rows are
		// decoded while K (f16 or f32) is read in place.
		for _, kv := range [][2]Type{{F32, F32}, {F16, F16}, {Q8_0, Q8_0}, {Q4_0, Q4_0}, {F16, Q8_0}, {F32, Q4_0}, {Q8_0, F16}} {
			typ := kv[0]
			shape := Shape{Layers: 2, KVHeads: kvHeads, HeadDim: hd, TypeK: kv[0], TypeV: kv[1]}
			if shape.Check() != nil {
				continue
			}
			s := NewSeq(shape, n)
			for j := range n {
				slot, _ := s.Append(int32(j))
				s.Store(1, slot, randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd))
			}
			q := randVec(rng, heads*hd)
			for _, window := range []int{0, 5} {
				a := Attention{Heads: heads, Scale: 0.2, Window: window, Softcap: 30}
				want := make([]float32, heads*hd)
				s.Attend(1, a, q, 20, want, &Scratch{})
				for _, split := range [][]int{{0, 1, 2, 3, 4}, {0, 2, 4}, {0, 3, 4}} {
					got := make([]float32, heads*hd)
					for i := range got {
						got[i] = 7 // must be overwritten, range by range
					}
					for r := 0; r+1 < len(split); r++ {
						s.AttendHeads(1, a, q, 20, got, &Scratch{}, split[r], split[r+1])
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("hd %d %s/%s window %d split %v: out[%d] %v, Attend %v", hd, typ, kv[1], window, split, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestAttendBlockSameBits: AttendBlock over several queries (a prompt's tokens, some ahead of part of
// the cache, with and without a window and a soft cap) gives each query the bits Attend gives it alone,
// for every mix of cache types, and after a Shift (where it falls back to one query at a time).
func TestAttendBlockSameBits(t *testing.T) {
	const heads, kvHeads, hd, n = 8, 2, 64, 37
	rng := rand.New(rand.NewPCG(7, 8))
	rotate := func(q []float32, delta int32) { rope(q, hd, float64(delta)) }
	for _, tk := range []Type{F32, F16, Q8_0, Q4_0} {
		for _, tv := range []Type{F32, F16, Q8_0} {
			s := NewSeq(Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: tk, TypeV: tv}, n+4)
			for j := range n {
				slot, _ := s.Append(int32(j))
				s.Store(0, slot, randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd))
			}
			for _, shift := range []bool{false, true} {
				if shift {
					s.Shift(3, 2)
				}
				qpos := []int32{0, 5, 6, 7, 20, 30, 31, 33}
				q := randVec(rng, len(qpos)*heads*hd)
				for _, a := range []Attention{
					{Heads: heads, Scale: 0.125, Rotate: rotate},
					{Heads: heads, Scale: 0.125, Window: 6, Softcap: 20, Rotate: rotate},
				} {
					got := make([]float32, len(q))
					s.AttendBlock(0, a, q, qpos, got, &Scratch{})
					sc := &Scratch{}
					for g, p := range qpos {
						want := make([]float32, heads*hd)
						s.Attend(0, a, q[g*heads*hd:(g+1)*heads*hd], p, want, sc)
						for i, w := range want {
							if x := got[g*heads*hd+i]; math.Float32bits(x) != math.Float32bits(w) {
								t.Fatalf("K %s V %s shift %v window %d query %d at %d: out[%d] %v, Attend %v", tk, tv, shift, a.Window, g, p, i, x, w)
							}
						}
					}
				}
			}
		}
	}
}
