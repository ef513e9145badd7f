package quant

import (
	"encoding/binary"
	"math"
)

// The K-quants: super-blocks of QKK = 256 values in sub-blocks of 32 (Q4_K,
// Q5_K) or 16 (Q6_K) with their own quantized scales, and Q8_K, the
// activation format their dot products take (ggml-common.h block_q4_K,
// block_q5_K, block_q6_K, block_q8_K).
const (
	QKK = 256

	// Q4_K: f16 d, f16 dmin, 12 bytes of eight 6-bit scales and eight
	// 6-bit mins (ScaleMinK4), 128 bytes of nibbles. Value i of sub-block
	// j (32 each) is d*sc[j]*q - dmin*m[j], q in [0,15]; the 64 values of
	// sub-blocks 2k and 2k+1 share bytes 32k..32k+31, sub-block 2k in the
	// low nibbles.
	Q4_KBytes = 2 + 2 + 12 + QKK/2
	// Q5_K: Q4_K's header, then qh[32], then the nibbles; the fifth bit of
	// value l of sub-block j (l < 32) is bit j of qh[l].
	Q5_KBytes = 2 + 2 + 12 + QKK/8 + QKK/2
	// Q6_K: ql[128], qh[64], 16 int8 scales, f16 d. Value e is
	// d*sc[e/16]*(q-32), q in [0,63] (Q6KQuant gives q's bits).
	Q6_KBytes = QKK/2 + QKK/4 + QKK/16 + 2
	// Q8_K: float32 d, 256 int8 quants, 16 int16 sums of each 16 quants.
	Q8_KBytes = 4 + QKK + 2*QKK/16
)

// ScaleMinK4 returns the 6-bit scale and min of sub-block j (< 8) from a
// Q4_K/Q5_K block's 12 scale bytes s (get_scale_min_k4): sub-blocks 0-3 keep
// theirs in the low six bits of s[j] and s[j+4]; 4-7 keep their low four
// bits in the nibbles of s[j+4] and their top two in the top bits of s[j-4]
// (scale) and s[j] (min).
func ScaleMinK4(j int, s []byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&15 | s[j-4]>>6<<4, s[j+4]>>4 | s[j]>>6<<4
}

// packScaleMinK4 is ScaleMinK4's inverse for eight scales and mins < 64.
func packScaleMinK4(s []byte, sc, m *[8]uint8) {
	for j := range 4 {
		s[j] = sc[j] | sc[j+4]>>4<<6
		s[j+4] = m[j] | m[j+4]>>4<<6
		s[j+8] = sc[j+4]&15 | m[j+4]<<4
	}
}

// Q6KQuant returns the 6-bit quant (0..63) of value e (< 256) of a Q6_K
// block: in half h = e/128, at offset i = e%128, with l = i%32 and k = i/32,
// the low four bits are the low (k < 2) or high (k >= 2) nibble of
// ql[64h + l + 32*(k%2)] and the top two bits are bits 2k, 2k+1 of
// qh[32h + l].
func Q6KQuant(b []byte, e int) int {
	h, i := e/128, e%128
	l, k := i%32, i/32
	lo := b[64*h+l+32*(k%2)]
	if k >= 2 {
		lo >>= 4
	}
	hi := b[QKK/2+32*h+l] >> (2 * k) & 3
	return int(lo&15) | int(hi)<<4
}

// nearestInt rounds to nearest with ties to even, as ggml's nearest_int;
// out-of-range and NaN input give some value, never a panic.
func nearestInt(v float32) int {
	r := math.RoundToEven(float64(v))
	if !(r > -1<<30 && r < 1<<30) {
		return 0
	}
	return int(r)
}

// DequantizeQ4_K expands Q4_K blocks: per sub-block j, d1 = f16(d)*sc[j],
// m1 = f16(dmin)*m[j] and value = d1*q - m1, each product rounded to
// float32.
func DequantizeQ4_K(dst []float32, src []byte) {
	checkRow("DequantizeQ4_K", len(dst), len(src), QKK, Q4_KBytes)
	for b := 0; b < len(dst)/QKK; b++ {
		in := src[b*Q4_KBytes : (b+1)*Q4_KBytes]
		y := dst[b*QKK : (b+1)*QKK]
		d, dmin := getF16(in), getF16(in[2:])
		qs := in[16:]
		for k := range 4 {
			sc0, m0 := ScaleMinK4(2*k, in[4:16])
			sc1, m1 := ScaleMinK4(2*k+1, in[4:16])
			d0, n0 := d*float32(sc0), dmin*float32(m0)
			d1, n1 := d*float32(sc1), dmin*float32(m1)
			for l := range 32 {
				q := qs[32*k+l]
				y[64*k+l] = float32(d0*float32(q&15)) - n0
				y[64*k+32+l] = float32(d1*float32(q>>4)) - n1
			}
		}
	}
}

// DequantizeQ5_K expands Q5_K blocks as DequantizeQ4_K with q = nibble +
// 16*(fifth bit).
func DequantizeQ5_K(dst []float32, src []byte) {
	checkRow("DequantizeQ5_K", len(dst), len(src), QKK, Q5_KBytes)
	for b := 0; b < len(dst)/QKK; b++ {
		in := src[b*Q5_KBytes : (b+1)*Q5_KBytes]
		y := dst[b*QKK : (b+1)*QKK]
		d, dmin := getF16(in), getF16(in[2:])
		qh, qs := in[16:48], in[48:]
		for k := range 4 {
			sc0, m0 := ScaleMinK4(2*k, in[4:16])
			sc1, m1 := ScaleMinK4(2*k+1, in[4:16])
			d0, n0 := d*float32(sc0), dmin*float32(m0)
			d1, n1 := d*float32(sc1), dmin*float32(m1)
			for l := range 32 {
				q := qs[32*k+l]
				h0 := qh[l] >> (2 * k) & 1
				h1 := qh[l] >> (2*k + 1) & 1
				y[64*k+l] = float32(d0*float32(q&15|h0<<4)) - n0
				y[64*k+32+l] = float32(d1*float32(q>>4|h1<<4)) - n1
			}
		}
	}
}

// DequantizeQ6_K expands Q6_K blocks: value e = (f16(d)*sc[e/16]) * (q-32),
// each product rounded to float32.
func DequantizeQ6_K(dst []float32, src []byte) {
	checkRow("DequantizeQ6_K", len(dst), len(src), QKK, Q6_KBytes)
	for b := 0; b < len(dst)/QKK; b++ {
		in := src[b*Q6_KBytes : (b+1)*Q6_KBytes]
		y := dst[b*QKK : (b+1)*QKK]
		d := getF16(in[Q6_KBytes-2:])
		sc := in[QKK/2+QKK/4 : QKK/2+QKK/4+16]
		for e := range QKK {
			y[e] = float32(d*float32(int8(sc[e/16]))) * float32(Q6KQuant(in, e)-32)
		}
	}
}

// QuantizeQ8_K writes src as Q8_K blocks, as llama.cpp quantizes the
// activations of K-quant products (quantize_row_q8_K_ref, which its CPU
// backend runs on every architecture): per 256 values, max is the value of
// largest magnitude (the first on ties), iscale = -127/max,
// q = min(127, nearest_int(iscale*x)) (ties to even), d = 1/iscale as
// float32 (negative when max is positive: d*q keeps the sign), and bsums[i]
// the sum of quants 16i..16i+15. An all-zero block has d = 0 and zero quants.
func QuantizeQ8_K(dst []byte, src []float32) {
	checkRow("QuantizeQ8_K", len(src), len(dst), QKK, Q8_KBytes)
	for b := 0; b < len(src)/QKK; b++ {
		x := src[b*QKK : (b+1)*QKK]
		out := dst[b*Q8_KBytes : (b+1)*Q8_KBytes]
		var amax, mx float32
		for _, v := range x {
			if a := abs32(v); a > amax {
				amax, mx = a, v
			}
		}
		if amax == 0 {
			clear(out)
			continue
		}
		iscale := -127 / mx
		q := out[4 : 4+QKK]
		for j, v := range x {
			q[j] = byte(int8(min(127, max(-128, nearestInt(float32(iscale*v))))))
		}
		for i := range QKK / 16 {
			s := 0
			for _, v := range q[16*i : 16*i+16] {
				s += int(int8(v))
			}
			binary.LittleEndian.PutUint16(out[4+QKK+2*i:], uint16(int16(s)))
		}
		binary.LittleEndian.PutUint32(out, math.Float32bits(1/iscale))
	}
}

// QuantizeQ4_K writes src as Q4_K blocks with a plain round-to-nearest
// recipe (llama.cpp's quantize_row_q4_K_ref, but each sub-block's scale and
// min taken from its range instead of make_qkx2_quants' search): per
// sub-block of 32, min = -min(0, min x) and scale = (max x + min)/15; scales
// and mins quantized to six bits against the largest of each
// (d = maxScale/63, dmin = maxMin/63, as f16); q = clamp(nearest_int((x +
// f16(dmin)*m)/(f16(d)*sc)), 0, 15).
func QuantizeQ4_K(dst []byte, src []float32) {
	checkRow("QuantizeQ4_K", len(src), len(dst), QKK, Q4_KBytes)
	for b := 0; b < len(src)/QKK; b++ {
		x := src[b*QKK : (b+1)*QKK]
		out := dst[b*Q4_KBytes : (b+1)*Q4_KBytes]
		var q [QKK]int
		quantizeKHeader(out, x, 15, &q)
		for k := range 4 {
			for l := range 32 {
				out[16+32*k+l] = byte(q[64*k+l]) | byte(q[64*k+32+l])<<4
			}
		}
	}
}

// QuantizeQ5_K is QuantizeQ4_K with 5-bit quants (scale = range/31).
func QuantizeQ5_K(dst []byte, src []float32) {
	checkRow("QuantizeQ5_K", len(src), len(dst), QKK, Q5_KBytes)
	for b := 0; b < len(src)/QKK; b++ {
		x := src[b*QKK : (b+1)*QKK]
		out := dst[b*Q5_KBytes : (b+1)*Q5_KBytes]
		var q [QKK]int
		quantizeKHeader(out, x, 31, &q)
		qh, qs := out[16:48], out[48:]
		clear(qh)
		for k := range 4 {
			for l := range 32 {
				lo, hi := q[64*k+l], q[64*k+32+l]
				qs[32*k+l] = byte(lo&15) | byte(hi&15)<<4
				qh[l] |= byte(lo>>4)<<(2*k) | byte(hi>>4)<<(2*k+1)
			}
		}
	}
}

// quantizeKHeader writes the d, dmin and scales of a Q4_K/Q5_K block of x
// to out[:16] and the quants (0..nmax) to q.
func quantizeKHeader(out []byte, x []float32, nmax int, q *[QKK]int) {
	var scales, mins [8]float32
	var maxScale, maxMin float32
	for j := range 8 {
		lo, hi := minMax(x[32*j : 32*j+32])
		lo = min(lo, 0)
		scales[j] = (hi - lo) / float32(nmax)
		mins[j] = -lo
		maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, mins[j])
	}
	var ls, lm [8]uint8
	var is, im float32
	if maxScale > 0 {
		is = 63 / maxScale
	}
	if maxMin > 0 {
		im = 63 / maxMin
	}
	for j := range 8 {
		ls[j] = uint8(min(63, max(0, nearestInt(is*scales[j]))))
		lm[j] = uint8(min(63, max(0, nearestInt(im*mins[j]))))
	}
	putF16(out, maxScale/63)
	putF16(out[2:], maxMin/63)
	packScaleMinK4(out[4:16], &ls, &lm)
	d, dmin := getF16(out), getF16(out[2:])
	for j := range 8 {
		dq := d * float32(ls[j])
		dm := dmin * float32(lm[j])
		for l := range 32 {
			v := 0
			if dq != 0 {
				v = min(nmax, max(0, nearestInt((x[32*j+l]+dm)/dq)))
			}
			q[32*j+l] = v
		}
	}
}

// QuantizeQ6_K writes src as Q6_K blocks with a plain round-to-nearest
// recipe (quantize_row_q6_K_ref without make_qx_quants' search): per
// sub-block of 16, scale = max/-32 with max the value of largest magnitude;
// the scales quantized to int8 against the largest (iscale = -128/maxScale,
// d = 1/iscale as f16, sc = min(127, nearest_int(iscale*scale)));
// q = clamp(nearest_int(x/(f16(d)*sc)), -32, 31) + 32.
func QuantizeQ6_K(dst []byte, src []float32) {
	checkRow("QuantizeQ6_K", len(src), len(dst), QKK, Q6_KBytes)
	for b := 0; b < len(src)/QKK; b++ {
		x := src[b*QKK : (b+1)*QKK]
		out := dst[b*Q6_KBytes : (b+1)*Q6_KBytes]
		var scales [16]float32
		var maxScale, maxAbs float32
		for j := range 16 {
			var amax, mx float32
			for _, v := range x[16*j : 16*j+16] {
				if a := abs32(v); a > amax {
					amax, mx = a, v
				}
			}
			scales[j] = mx / -32
			if a := abs32(scales[j]); a > maxAbs {
				maxAbs, maxScale = a, scales[j]
			}
		}
		clear(out)
		if maxAbs == 0 {
			for e := range QKK {
				setQ6K(out, e, 32)
			}
			continue
		}
		iscale := -128 / maxScale
		putF16(out[Q6_KBytes-2:], 1/iscale)
		d := getF16(out[Q6_KBytes-2:])
		sc := out[QKK/2+QKK/4 : QKK/2+QKK/4+16]
		for j := range 16 {
			s := min(127, max(-128, nearestInt(iscale*scales[j])))
			sc[j] = byte(int8(s))
			dq := d * float32(s)
			for l := range 16 {
				v := 0
				if dq != 0 {
					v = min(31, max(-32, nearestInt(x[16*j+l]/dq)))
				}
				setQ6K(out, 16*j+l, v+32)
			}
		}
	}
}

// setQ6K stores quant q (0..63) as value e of a Q6_K block (see Q6KQuant);
// the block's ql and qh bits of e must be zero.
func setQ6K(b []byte, e, q int) {
	h, i := e/128, e%128
	l, k := i%32, i/32
	lo := byte(q & 15)
	if k >= 2 {
		lo <<= 4
	}
	b[64*h+l+32*(k%2)] |= lo
	b[QKK/2+32*h+l] |= byte(q>>4) << (2 * k)
}
