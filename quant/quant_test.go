package quant

import (
	"bytes"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// halfValue computes a binary16 value from its fields with float64 arithmetic,
// independently of F16ToF32's bit manipulation.
func halfValue(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0x1f:
		if m != 0 {
			return math.NaN()
		}
		return s * math.Inf(1)
	case 0:
		return s * math.Ldexp(m, -24)
	}
	return s * math.Ldexp(1+m/1024, e-15)
}

func TestF16ToF32AllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		want := halfValue(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
		if back := F32ToF16(got); back != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

// nearestHalf is the oracle for F32ToF16: the closest finite half by float64
// distance, ties to the even encoding, and Inf from 65520 (the midpoint
// between the largest half, 65504, and the next power 65536) up.
func nearestHalf(f float32, pos []float64) uint16 {
	v := math.Abs(float64(f))
	var sign uint16
	if math.Signbit(float64(f)) {
		sign = 0x8000
	}
	if v >= 65520 {
		return sign | 0x7c00
	}
	i := sort.SearchFloat64s(pos, v) // pos[i] >= v; pos[h] is the value of encoding h
	if i < len(pos) && pos[i] == v {
		return sign | uint16(i)
	}
	lo, hi := i-1, i
	dl, dh := v-pos[lo], pos[hi]-v
	switch {
	case dl < dh:
		return sign | uint16(lo)
	case dh < dl:
		return sign | uint16(hi)
	case lo%2 == 0:
		return sign | uint16(lo)
	}
	return sign | uint16(hi)
}

func TestF32ToF16Rounding(t *testing.T) {
	pos := make([]float64, 0x7c01) // non-negative halves, increasing with encoding
	for h := range pos {
		pos[h] = halfValue(uint16(h))
	}
	pos[0x7c00] = 65536 // stands in for Inf above the largest finite half
	var cases []float32
	// Every midpoint between neighbours and its float32 neighbours: the ties.
	for h := 0; h+1 < len(pos)-1; h++ {
		mid := float32((pos[h] + pos[h+1]) / 2) // exact in float32
		cases = append(cases, mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, 1e9))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		cases = append(cases, math.Float32frombits(r.Uint32()&0x7fffffff)) // any non-negative float32
	}
	cases = append(cases, 0, 65504, 65519.99, 65520, 1e10, float32(math.Inf(1)), 1e-8, 2.98e-8, 2.9802322e-08)
	for _, c := range cases {
		for _, f := range []float32{c, -c} {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				continue
			}
			if got, want := F32ToF16(f), nearestHalf(f, pos); got != want {
				t.Fatalf("F32ToF16(%g [%#08x]) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
			}
		}
	}
	if got := F32ToF16(float32(math.Inf(-1))); got != 0xfc00 {
		t.Errorf("F32ToF16(-Inf) = %#04x", got)
	}
	if got := F32ToF16(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("F32ToF16(NaN) = %#04x, not a NaN", got)
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81}, // above the tie
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // overflow to Inf
		{float32(math.Inf(-1)), 0xff80},
	} {
		if got := F32ToBF16(c.f); got != c.h {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(c.f), got, c.h)
		}
	}
	if h := F32ToBF16(float32(math.NaN())); !math.IsNaN(float64(BF16ToF32(h))) {
		t.Errorf("F32ToBF16(NaN) = %#04x, not a NaN", h)
	}
	for i := 0; i < 1<<16; i++ {
		f := BF16ToF32(uint16(i))
		if math.IsNaN(float64(f)) {
			continue
		}
		if F32ToBF16(f) != uint16(i) {
			t.Fatalf("BF16 round trip of %#04x", i)
		}
	}
}

func TestQ8_0Layout(t *testing.T) {
	// amax 127 gives d = 1 (f16 0x3c00) and q = round(x), halves away from zero.
	src := make([]float32, 64)
	want := make([]byte, 68)
	want[0], want[1] = 0x00, 0x3c
	src[0] = 127
	want[2] = 127
	src[1], want[3] = -127, 0x81
	src[2], want[4] = 2.5, 3
	src[3], want[5] = -2.5, 0xfd // -3
	src[4], want[6] = 0.49, 0
	src[5], want[7] = -1.5, 0xfe // -2
	// The second block is all zero: d = 0, q = 0.
	got := make([]byte, 68)
	QuantizeQ8_0(got, src)
	if !bytes.Equal(got, want) {
		t.Fatalf("QuantizeQ8_0:\n got % x\nwant % x", got, want)
	}
	// d = 0.5 (f16 0x3800): amax 63.5.
	src2 := make([]float32, 32)
	src2[7] = -63.5
	src2[8] = 1.25 // 2.5 units -> 3
	QuantizeQ8_0(got[:34], src2)
	if got[0] != 0x00 || got[1] != 0x38 || int8(got[9]) != -127 || got[10] != 3 {
		t.Fatalf("QuantizeQ8_0 half scale: % x", got[:34])
	}
	out := make([]float32, 32)
	DequantizeQ8_0(out, got[:34])
	if out[7] != -63.5 || out[8] != 1.5 || out[0] != 0 {
		t.Fatalf("DequantizeQ8_0: %v", out)
	}
}

func TestQ4_0Layout(t *testing.T) {
	// The value of largest magnitude is -8: d = 1 (0x3c00), q = trunc(x+8.5).
	src := make([]float32, 32)
	for j := range 16 {
		src[j] = float32(j - 8)    // q = j
		src[16+j] = float32(7 - j) // q = 15-j
	}
	src[16+3] = -0.6 // 7.9 -> 7
	src[16+4] = 0.49 // 8.99 -> 8
	want := make([]byte, 18)
	want[0], want[1] = 0x00, 0x3c
	for j := range 16 {
		want[2+j] = byte(j) | byte(15-j)<<4
	}
	want[2+3] = 3 | 7<<4
	want[2+4] = 4 | 8<<4
	got := make([]byte, 18)
	QuantizeQ4_0(got, src)
	if !bytes.Equal(got, want) {
		t.Fatalf("QuantizeQ4_0:\n got % x\nwant % x", got, want)
	}
	out := make([]float32, 32)
	DequantizeQ4_0(out, got)
	for j := range 16 {
		if out[j] != float32(j-8) {
			t.Fatalf("DequantizeQ4_0[%d] = %v", j, out[j])
		}
	}
	// The largest magnitude positive: d = -1 (0xbc00); -8 maps to 16.5, clamped to 15.
	src = make([]float32, 32)
	src[0], src[1], src[2] = 8, -8, 1
	QuantizeQ4_0(got, src)
	if got[0] != 0x00 || got[1] != 0xbc || got[2] != 0|8<<4 || got[3] != 15|8<<4 || got[4] != 7|8<<4 {
		t.Fatalf("QuantizeQ4_0 positive max: % x", got)
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 32 * 64
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(r.NormFloat64()) * float32(math.Pow(10, float64(r.IntN(6)-4)))
	}
	for b := 0; b < n/32; b += 7 {
		src[b*32+3] *= 1000 // an outlier in some blocks
	}
	q8 := make([]byte, n/32*Q8_0Bytes)
	q4 := make([]byte, n/32*Q4_0Bytes)
	d8 := make([]float32, n)
	d4 := make([]float32, n)
	QuantizeQ8_0(q8, src)
	DequantizeQ8_0(d8, q8)
	QuantizeQ4_0(q4, src)
	DequantizeQ4_0(d4, q4)
	for b := 0; b < n/32; b++ {
		var amax float64
		for _, v := range src[b*32 : b*32+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		// q*f16(d) - x: half a step from rounding, plus up to 127 (or 8) steps of
		// f16 scale error (2^-11 relative), plus float32 slack.
		d8s := amax / 127
		d4s := amax / 8
		for j := b * 32; j < b*32+32; j++ {
			if e := math.Abs(float64(d8[j] - src[j])); e > d8s*(0.5+127.0/2048)+1e-6*amax {
				t.Fatalf("Q8_0 element %d: %v -> %v, error %g > step %g", j, src[j], d8[j], e, d8s)
			}
			if e := math.Abs(float64(d4[j] - src[j])); e > d4s*(1+8.0/2048)+1e-6*amax {
				t.Fatalf("Q4_0 element %d: %v -> %v, error %g > step %g", j, src[j], d4[j], e, d4s)
			}
		}
	}
}

func TestSizeMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for 31 values")
		}
	}()
	QuantizeQ8_0(make([]byte, 34), make([]float32, 31))
}
