package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// The layout tests build blocks bit by bit from chosen integer quants and
// scales, following the field descriptions of ggml-common.h, and check that
// dequantization gives the values those describe (computed here in float64).

func randHalf(r *rand.Rand) (uint16, float64) {
	f := float32(r.Float64()*2 - 1)
	h := F32ToF16(f)
	return h, halfValue(h)
}

func TestQ4_1Q5_0Q5_1Layout(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		dh, d := randHalf(r)
		mh, m := randHalf(r)
		var q [QK]int
		for j := range q {
			q[j] = r.IntN(32)
		}
		// Q4_1: d, m, then byte j = q[j] | q[j+16]<<4.
		b41 := make([]byte, Q4_1Bytes)
		binary.LittleEndian.PutUint16(b41, dh)
		binary.LittleEndian.PutUint16(b41[2:], mh)
		for j := range 16 {
			b41[4+j] = byte(q[j]&15) | byte(q[j+16]&15)<<4
		}
		// Q5: qh bit j = bit 4 of q[j].
		var qh uint32
		for j := range QK {
			qh |= uint32(q[j]>>4) << j
		}
		b50 := make([]byte, Q5_0Bytes)
		binary.LittleEndian.PutUint16(b50, dh)
		binary.LittleEndian.PutUint32(b50[2:], qh)
		b51 := make([]byte, Q5_1Bytes)
		binary.LittleEndian.PutUint16(b51, dh)
		binary.LittleEndian.PutUint16(b51[2:], mh)
		binary.LittleEndian.PutUint32(b51[4:], qh)
		for j := range 16 {
			b50[6+j] = byte(q[j]&15) | byte(q[j+16]&15)<<4
			b51[8+j] = b50[6+j]
		}
		var y41, y50, y51 [QK]float32
		DequantizeQ4_1(y41[:], b41)
		DequantizeQ5_0(y50[:], b50)
		DequantizeQ5_1(y51[:], b51)
		for j := range QK {
			check := func(name string, got float32, want float64) {
				t.Helper()
				if math.Abs(float64(got)-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("%s value %d = %v, want %v", name, j, got, want)
				}
			}
			check("Q4_1", y41[j], float64(q[j]&15)*d+m)
			check("Q5_0", y50[j], float64(q[j]-16)*d)
			check("Q5_1", y51[j], float64(q[j])*d+m)
		}
	}
}

// packScales12 is the 12-byte scale layout of block_q4_K written out: the
// six bits of sub-blocks 0-3 in bytes j (scale) and j+4 (min), those of 4-7
// split into a low nibble (bytes 8-11: scale low, min high) and two high
// bits in the top of bytes j-4 (scale) and j (min).
func packScales12(sc, m [8]int) []byte {
	s := make([]byte, 12)
	for j := range 4 {
		s[j] = byte(sc[j]) | byte(sc[j+4]>>4)<<6
		s[j+4] = byte(m[j]) | byte(m[j+4]>>4)<<6
		s[8+j] = byte(sc[j+4]&15) | byte(m[j+4]&15)<<4
	}
	return s
}

func TestQ4_KQ5_KLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 30 {
		dh, d := randHalf(r)
		mh, dmin := randHalf(r)
		var sc, m [8]int
		for j := range 8 {
			sc[j], m[j] = r.IntN(64), r.IntN(64)
		}
		var q [QKK]int
		for i := range q {
			q[i] = r.IntN(32)
		}
		head := append(binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, dh), mh), packScales12(sc, m)...)
		for j := range 8 {
			gs, gm := ScaleMinK4(j, head[4:])
			if int(gs) != sc[j] || int(gm) != m[j] {
				t.Fatalf("ScaleMinK4(%d) = %d, %d, want %d, %d", j, gs, gm, sc[j], m[j])
			}
		}
		// Q4_K: 64 values per 32 bytes, the first 32 in the low nibbles.
		b4 := append([]byte{}, head...)
		for c := range 4 {
			for l := range 32 {
				b4 = append(b4, byte(q[64*c+l]&15)|byte(q[64*c+32+l]&15)<<4)
			}
		}
		// Q5_K: qh[l] bit j is the fifth bit of value l of sub-block j.
		qh := make([]byte, 32)
		for i := range QKK {
			qh[i%32] |= byte(q[i]>>4) << (i / 32)
		}
		b5 := append(append(append([]byte{}, head...), qh...), b4[16:]...)
		var y4, y5 [QKK]float32
		DequantizeQ4_K(y4[:], b4)
		DequantizeQ5_K(y5[:], b5)
		for i := range QKK {
			j := i / 32
			w4 := d*float64(sc[j])*float64(q[i]&15) - dmin*float64(m[j])
			w5 := d*float64(sc[j])*float64(q[i]) - dmin*float64(m[j])
			if math.Abs(float64(y4[i])-w4) > 1e-5*(1+math.Abs(w4)) {
				t.Fatalf("Q4_K value %d = %v, want %v", i, y4[i], w4)
			}
			if math.Abs(float64(y5[i])-w5) > 1e-5*(1+math.Abs(w5)) {
				t.Fatalf("Q5_K value %d = %v, want %v", i, y5[i], w5)
			}
		}
	}
}

func TestQ6_KLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 30 {
		dh, d := randHalf(r)
		var sc [16]int8
		for j := range sc {
			sc[j] = int8(r.IntN(256) - 128)
		}
		var q [QKK]int
		for i := range q {
			q[i] = r.IntN(64)
		}
		// block_q6_K: ql[128] low 4 bits, qh[64] high 2 bits, scales[16], d.
		// Per 128 values: ql[l] low nibble = value l, ql[l+32] low = l+32,
		// ql[l] high = l+64, ql[l+32] high = l+96; qh[l] bits 0-1, 2-3, 4-5,
		// 6-7 for l, l+32, l+64, l+96.
		b := make([]byte, Q6_KBytes)
		for h := range 2 {
			ql, qh, v := b[64*h:], b[128+32*h:], q[128*h:]
			for l := range 32 {
				ql[l] = byte(v[l]&15) | byte(v[l+64]&15)<<4
				ql[l+32] = byte(v[l+32]&15) | byte(v[l+96]&15)<<4
				qh[l] = byte(v[l]>>4) | byte(v[l+32]>>4)<<2 | byte(v[l+64]>>4)<<4 | byte(v[l+96]>>4)<<6
			}
		}
		for j := range sc {
			b[192+j] = byte(sc[j])
		}
		binary.LittleEndian.PutUint16(b[208:], dh)
		var y [QKK]float32
		DequantizeQ6_K(y[:], b)
		for i := range QKK {
			if got := Q6KQuant(b, i); got != q[i] {
				t.Fatalf("Q6KQuant(%d) = %d, want %d", i, got, q[i])
			}
			w := d * float64(sc[i/16]) * float64(q[i]-32)
			if math.Abs(float64(y[i])-w) > 1e-5*(1+math.Abs(w)) {
				t.Fatalf("Q6_K value %d = %v, want %v", i, y[i], w)
			}
		}
	}
}

func TestQuantizeQ8_K(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, 3*QKK)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for i := QKK; i < 2*QKK; i++ {
		x[i] = 0 // an all-zero block
	}
	x[2*QKK+5] = 9 // a positive extreme: d comes out negative
	b := make([]byte, 3*Q8_KBytes)
	QuantizeQ8_K(b, x)
	for blk := range 3 {
		in := b[blk*Q8_KBytes:]
		d := math.Float32frombits(binary.LittleEndian.Uint32(in))
		var amax float64
		for _, v := range x[blk*QKK : (blk+1)*QKK] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		if math.Abs(math.Abs(float64(d))-amax/127) > 1e-6*amax {
			t.Fatalf("block %d: d = %v, want ±%v", blk, d, amax/127)
		}
		for i := range QKK {
			q := int8(in[4+i])
			if err := math.Abs(float64(d)*float64(q) - float64(x[blk*QKK+i])); err > 0.5001*amax/127 {
				t.Fatalf("block %d value %d: d*q = %v, x = %v", blk, i, float64(d)*float64(q), x[blk*QKK+i])
			}
		}
		for g := range 16 {
			s := 0
			for i := range 16 {
				s += int(int8(in[4+16*g+i]))
			}
			if got := int16(binary.LittleEndian.Uint16(in[4+QKK+2*g:])); int(got) != s {
				t.Fatalf("block %d bsums[%d] = %d, want %d", blk, g, got, s)
			}
		}
	}
	if d := math.Float32frombits(binary.LittleEndian.Uint32(b[2*Q8_KBytes:])); d >= 0 {
		t.Errorf("block with a positive extreme: d = %v, want it negative (iscale = -127/max)", d)
	}
}

// TestKRoundTrip quantizes Gaussian rows with every weight format's
// quantizer and checks the dequantized values against a bound on each
// format's error: a fraction of the row's spread.
func TestKRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	n := 4 * QKK
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	cases := []struct {
		name   string
		bytes  int
		q      func([]byte, []float32)
		dq     func([]float32, []byte)
		maxRMS float64 // relative to the values' RMS (1)
	}{
		{"Q4_1", n / QK * Q4_1Bytes, QuantizeQ4_1, DequantizeQ4_1, 0.12},
		{"Q5_0", n / QK * Q5_0Bytes, QuantizeQ5_0, DequantizeQ5_0, 0.07},
		{"Q5_1", n / QK * Q5_1Bytes, QuantizeQ5_1, DequantizeQ5_1, 0.06},
		{"Q8_1", n / QK * Q8_1Bytes, QuantizeQ8_1, nil, 0.01},
		// The K quantizers search their scales (make_qkx2_quants, make_qx_quants): these bounds
		// fail for the plain range-based choice (0.0718, 0.0360, 0.0175 on this data).
		{"Q4_K", n / QKK * Q4_KBytes, QuantizeQ4_K, DequantizeQ4_K, 0.068},
		{"Q5_K", n / QKK * Q5_KBytes, QuantizeQ5_K, DequantizeQ5_K, 0.035},
		{"Q6_K", n / QKK * Q6_KBytes, QuantizeQ6_K, DequantizeQ6_K, 0.017},
	}
	for _, c := range cases {
		b := make([]byte, c.bytes)
		c.q(b, x)
		y := make([]float32, n)
		if c.dq == nil { // Q8_1: d, s, 32 int8
			for blk := range n / QK {
				in := b[blk*Q8_1Bytes:]
				d := F16ToF32(binary.LittleEndian.Uint16(in))
				s, sum := F16ToF32(binary.LittleEndian.Uint16(in[2:])), 0
				for j := range QK {
					y[blk*QK+j] = d * float32(int8(in[4+j]))
					sum += int(int8(in[4+j]))
				}
				if want := float64(d) * float64(sum); math.Abs(float64(s)-want) > 1e-3*math.Abs(want)+1e-6 {
					t.Fatalf("Q8_1 block %d: s = %v, want d*Σq = %v", blk, s, want)
				}
			}
		} else {
			c.dq(y, b)
		}
		var se float64
		for i := range x {
			e := float64(y[i] - x[i])
			se += e * e
		}
		rms := math.Sqrt(se / float64(n))
		t.Logf("%s: RMS error %.4f", c.name, rms)
		if rms > c.maxRMS || math.IsNaN(rms) {
			t.Errorf("%s: RMS error %.4f, want at most %.2f", c.name, rms, c.maxRMS)
		}
	}
}

// TestKBadInput: odd scales, NaN and Inf halves and any quants dequantize
// without a panic, and wrong sizes panic with a message.
func TestKSizeMismatchPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"Q4_K": func() { DequantizeQ4_K(make([]float32, QKK), make([]byte, Q4_KBytes-1)) },
		"Q6_K": func() { DequantizeQ6_K(make([]float32, QK), make([]byte, Q6_KBytes)) },
		"Q8_K": func() { QuantizeQ8_K(make([]byte, Q8_KBytes), make([]float32, QKK+1)) },
		"Q5_0": func() { DequantizeQ5_0(make([]float32, QK), make([]byte, Q5_1Bytes)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic on a size mismatch", name)
				}
			}()
			f()
		}()
	}
}
