package kvcache

import (
	"math"
	"math/rand/v2"
	"testing"

	"edgelm/quant"
)

// TestQuantizeQ4_0 checks that the cache's Q4_0 rows decode with the plain GGUF decoder and that
// no block has a larger squared error than ggml's rounding (quant.QuantizeQ4_0), on Gaussian
// rows, rows with outlier channels, constant and zero blocks; and that it is smaller overall.
func TestQuantizeQ4_0(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 64 * quant.QK
	var sumOurs, sumRef float64
	for trial := range 200 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if trial%2 == 1 && i%17 == 3 {
				x[i] *= 12 // outlier channels, as keys have
			}
		}
		if trial == 0 {
			clear(x[:quant.QK])
			for i := quant.QK; i < 2*quant.QK; i++ {
				x[i] = 0.75
			}
		}
		ours, ref := make([]byte, n/quant.QK*quant.Q4_0Bytes), make([]byte, n/quant.QK*quant.Q4_0Bytes)
		quantizeQ4_0(ours, x)
		quant.QuantizeQ4_0(ref, x)
		yo, yr := make([]float32, n), make([]float32, n)
		quant.DequantizeQ4_0(yo, ours)
		quant.DequantizeQ4_0(yr, ref)
		for b := 0; b < n/quant.QK; b++ {
			var eo, er float64
			for i := b * quant.QK; i < (b+1)*quant.QK; i++ {
				eo += math.Pow(float64(x[i]-yo[i]), 2)
				er += math.Pow(float64(x[i]-yr[i]), 2)
			}
			if eo > er*(1+1e-6)+1e-12 {
				t.Fatalf("trial %d block %d: squared error %g, ggml's rounding %g", trial, b, eo, er)
			}
			sumOurs += eo
			sumRef += er
		}
	}
	if sumOurs > 0.97*sumRef {
		t.Errorf("total squared error %g against ggml's %g: want at least 3%% less", sumOurs, sumRef)
	}
	t.Logf("squared error %.4g against ggml's rounding %.4g (%.1f%%)", sumOurs, sumRef, 100*sumOurs/sumRef)
}

// TestHadamard checks the size-32 transform against its definition, H[i][j] = (-1)^popcount(i&j)/√32,
// computed here in float64, and that applying it twice gives the input back.
func TestHadamard(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := append([]float32(nil), x...)
	hadamard(y)
	for i := range 32 {
		s := 0.0
		for j := range 32 {
			sign := 1.0
			for b := i & j; b != 0; b &= b - 1 {
				sign = -sign
			}
			s += sign * float64(x[j])
		}
		s /= math.Sqrt(32)
		if math.Abs(float64(y[i])-s) > 1e-5 {
			t.Fatalf("element %d: %g, want %g", i, y[i], s)
		}
	}
	hadamard(y)
	for i := range x {
		if math.Abs(float64(y[i]-x[i])) > 1e-5 {
			t.Fatalf("twice: element %d is %g, was %g", i, y[i], x[i])
		}
	}
}

// TestRotationOutliers: keys or values with a few large channels (as trained models' have) attend
// closer to exact float64 attention when stored as 4-bit rows rotated than when not, and a rotated
// cache reads its keys back (Key) in the original basis.
func TestRotationOutliers(t *testing.T) {
	const heads, kvHeads, hd, n = 4, 2, 64, 96
	for _, which := range []string{"keys", "values"} {
		rng := rand.New(rand.NewPCG(5, 6))
		ks, vs, pos := make([][]float32, n), make([][]float32, n), make([]float64, n)
		for j := range ks {
			ks[j], vs[j], pos[j] = randVec(rng, kvHeads*hd), randVec(rng, kvHeads*hd), float64(j)
			x := ks[j]
			if which == "values" {
				x = vs[j]
			}
			for _, c := range []int{5, 40, 64 + 9, 64 + 50} {
				x[c] += 8 // outlier channels
			}
		}
		shape := Shape{Layers: 1, KVHeads: kvHeads, HeadDim: hd, TypeK: Q4_0, TypeV: F32}
		if which == "values" {
			shape.TypeK, shape.TypeV = F32, Q4_0
		}
		errs := map[bool]float64{}
		for _, rot := range []bool{false, true} {
			rotateKeys, rotateValues = rot, rot
			s := NewSeq(shape, n)
			for j := range ks {
				slot, _ := s.Append(int32(j))
				k := append([]float32(nil), ks[j]...)
				rope(k, hd, pos[j])
				s.Store(0, slot, k, vs[j])
			}
			if rot && which == "keys" {
				got, want := make([]float32, kvHeads*hd), append([]float32(nil), ks[7]...)
				rope(want, hd, pos[7])
				s.Key(0, 7, got)
				if d := maxDiff(got, toF64(want)); d > 0.5 {
					t.Errorf("Key of a rotated cache differs from the key stored by %g", d)
				}
			}
			for trial := range 20 {
				q := randVec(rng, heads*hd)
				for i := range q {
					q[i] *= 3 // sharper attention, where key errors show
				}
				qpos := float64(n - 1 - trial)
				want := attendRef(q, qpos, ks[:n-trial], vs[:n-trial], pos[:n-trial], heads, kvHeads, hd)
				qr := append([]float32(nil), q...)
				rope(qr, hd, qpos)
				out := make([]float32, heads*hd)
				s.Attend(0, Attention{Heads: heads, Scale: float32(1 / math.Sqrt(hd))}, qr, int32(qpos), out, &Scratch{})
				for i := range out {
					errs[rot] += math.Pow(float64(out[i])-want[i], 2)
				}
			}
		}
		rotateKeys, rotateValues = true, true
		t.Logf("%s: squared attention error plain %.4g, rotated %.4g", which, errs[false], errs[true])
		if errs[true] > 0.7*errs[false] {
			t.Errorf("rotated 4-bit %s: squared error %g, plain %g; want at least 30%% less", which, errs[true], errs[false])
		}
	}
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// BenchmarkQuantizeQ4_0 is the cost of storing one bench-1b key row (8 heads × 64) in 4 bits:
// ggml's rounding, the scale search, the search after the rotation.
func BenchmarkQuantizeQ4_0(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 512)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	dst := make([]byte, 512/quant.QK*quant.Q4_0Bytes)
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"ggml", func() { quant.QuantizeQ4_0(dst, x) }},
		{"search", func() { quantizeQ4_0(dst, x) }},
		{"rotated64", func() { quantizeQ4_0Rotated(dst, x, 64) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				c.fn()
			}
		})
	}
}
