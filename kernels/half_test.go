package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"edgelm/quant"
)

// The reference for both conversions is quant's scalar code, which is
// tested against IEEE rules in package quant.

// halfVariants returns the variants to test, logging which run so that a
// build without its assembly shows in -v output.
func halfVariants(t testing.TB) []*variant {
	vs := variants()
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.name
	}
	t.Logf("variants: %v", names)
	return vs
}

func TestHalfToFloatAllHalves(t *testing.T) {
	src := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(src[2*i:], uint16(i))
	}
	for _, v := range halfVariants(t) {
		dst := make([]float32, 1<<16)
		withVariant(v, func() { HalfToFloat(dst, src) })
		for i, got := range dst {
			want := quant.F16ToF32(uint16(i))
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s: half %#04x: got %#08x, want %#08x", v.name, i, math.Float32bits(got), math.Float32bits(want))
			}
		}
	}
}

// specialFloats are the values where a conversion to half is easy to get
// wrong: signed zeros, Inf, NaNs with every kind of payload, the edges of
// half's range, float32 subnormals and rounding ties in each range.
func specialFloats() []float32 {
	bits := []uint32{
		0x00000000, 0x80000000, // ±0
		0x7f800000, 0xff800000, // ±Inf
		0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, // quiet and signalling NaNs
		0x7fffffff, 0xffffffff, 0x7fa00000, 0x7fc02000, 0x7f802000, 0x7fbfffff, 0x7fe00001,
		0x00000001, 0x807fffff, 0x00400000, // float32 subnormals
		0x00800000, 0x80800000, // smallest float32 normals
		0x477fe000, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, // 65504, below/at the tie to Inf, 65536
		0xc77ff000, 0x7f7fffff, 0xff7fffff, // -65520, float32 max
		0x33800000, 0x33000000, 0x33000001, 0x32ffffff, 0x33c00000, 0x34200000, // 2^-24, 2^-25 (tie to 0), 1.5*2^-24, 2.5*2^-24
		0x38800000, 0x387fc000, 0x387fe000, 0x387ff000, 0x387fffff, // smallest half normal and subnormals rounding into it
		0x3f801000, 0x3f803000, 0x3f801001, 0x3f800fff, // 1+2^-11 (tie down), 1+3*2^-11 (tie up), either side
		0x3f7ff000, 0x3f7ff800, 0xbf801000, // just below 1, -tie
	}
	out := make([]float32, len(bits))
	for i, b := range bits {
		out[i] = math.Float32frombits(b)
	}
	return out
}

// randomFloats mixes every bit pattern with values inside half's range,
// where the rounding happens.
func randomFloats(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		b := r.Uint32()
		if i%2 == 1 {
			// exponents 97..144: half's subnormals up to past its overflow.
			b = b&0x807fffff | (97+r.Uint32N(48))<<23
		}
		out[i] = math.Float32frombits(b)
	}
	return out
}

func checkFloatToHalf(t *testing.T, name string, src []float32, dst []byte) {
	t.Helper()
	for i, x := range src {
		got := binary.LittleEndian.Uint16(dst[2*i:])
		if want := quant.F32ToF16(x); got != want {
			t.Fatalf("%s: n=%d: float %#08x at %d: got %#04x, want %#04x", name, len(src), math.Float32bits(x), i, got, want)
		}
	}
}

func TestFloatToHalfValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	special := specialFloats()
	// Specials in every lane position: rotate them through a block.
	var vals []float32
	for s := range 16 {
		for i := range special {
			vals = append(vals, special[(i+s)%len(special)])
		}
	}
	vals = append(vals, randomFloats(r, 1<<18)...)
	for _, v := range halfVariants(t) {
		dst := make([]byte, 2*len(vals))
		withVariant(v, func() { FloatToHalf(dst, vals) })
		checkFloatToHalf(t, v.name, vals, dst)
	}
}

// TestHalfLengths runs both conversions on every length 0..70 at every
// alignment, mixing NaNs and Infs into some rows so the assembly's fix-up
// meets them in blocks and in tails, and checks nothing past the end is
// written.
func TestHalfLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	special := specialFloats()
	for _, v := range halfVariants(t) {
		for n := 0; n <= 70; n++ {
			for off := 0; off < 4; off++ {
				for _, withSpecial := range []bool{false, true} {
					name := fmt.Sprintf("%s off=%d special=%v", v.name, off, withSpecial)
					fbuf := make([]float32, n+8)
					src := fbuf[off : off+n]
					copy(src, randomFloats(r, n))
					if withSpecial && n > 0 {
						for k := 0; k < 3; k++ {
							src[r.IntN(n)] = special[r.IntN(len(special))]
						}
					}
					// FloatToHalf, into an unaligned dst with a guard after it.
					hb := misaligned(2*n+2, 2*off+1)
					hb[2*n], hb[2*n+1] = 0xa5, 0x5a
					withVariant(v, func() { FloatToHalf(hb[:2*n], src) })
					checkFloatToHalf(t, name, src, hb)
					if hb[2*n] != 0xa5 || hb[2*n+1] != 0x5a {
						t.Fatalf("%s n=%d: FloatToHalf wrote past 2*len(src)", name, n)
					}
					// HalfToFloat, from those halves plus random ones, into an unaligned dst.
					for i := 0; i < n; i += 2 {
						binary.LittleEndian.PutUint16(hb[2*i:], uint16(r.Uint32()))
					}
					obuf := make([]float32, n+8)
					dst := obuf[off : off+n+1]
					guard := math.Float32frombits(0x7fc0dead)
					dst[n] = guard
					withVariant(v, func() { HalfToFloat(dst[:n], hb) })
					for i := range n {
						h := binary.LittleEndian.Uint16(hb[2*i:])
						if got, want := math.Float32bits(dst[i]), math.Float32bits(quant.F16ToF32(h)); got != want {
							t.Fatalf("%s n=%d: half %#04x at %d: got %#08x, want %#08x", name, n, h, i, got, want)
						}
					}
					if math.Float32bits(dst[n]) != math.Float32bits(guard) {
						t.Fatalf("%s n=%d: HalfToFloat wrote past len(dst)", name, n)
					}
				}
			}
		}
	}
}

func TestHalfShortBufferPanics(t *testing.T) {
	for _, f := range []func(){
		func() { HalfToFloat(make([]float32, 9), make([]byte, 17)) },
		func() { FloatToHalf(make([]byte, 17), make([]float32, 9)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("short buffer did not panic")
				}
			}()
			f()
		}()
	}
}

func BenchmarkHalf(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(5, 6))
	f := randomFloats(r, n)
	for i := range f {
		f[i] = float32(r.NormFloat64())
	}
	h := make([]byte, 2*n)
	FloatToHalf(h, f)
	for _, v := range variants() {
		b.Run(fmt.Sprintf("HalfToFloat/%s/n=%d", v.name, n), func(b *testing.B) {
			b.SetBytes(2 * n)
			withVariant(v, func() {
				for b.Loop() {
					HalfToFloat(f, h)
				}
			})
		})
		b.Run(fmt.Sprintf("FloatToHalf/%s/n=%d", v.name, n), func(b *testing.B) {
			b.SetBytes(4 * n)
			withVariant(v, func() {
				for b.Loop() {
					FloatToHalf(h, f)
				}
			})
		})
	}
}
