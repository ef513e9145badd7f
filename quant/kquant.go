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

// QuantizeQ4_K writes src as Q4_K blocks as llama-quantize does without an
// importance matrix (quantize_row_q4_K_ref): per sub-block of 32, a scale
// and min searched by makeQKX2 (weights av|x|+|x|, 20 steps from -1 by 0.1);
// the scales and mins quantized to six bits against the largest of each
// (d = maxScale/63, dmin = maxMin/63 as f16, sc = min(63, nearest_int(
// 63/maxScale*scale))); then q = clamp(nearest_int((x + f16(dmin)*m) /
// (f16(d)*sc)), 0, 15), or the search's quants where f16(d)*sc is 0.
func QuantizeQ4_K(dst []byte, src []float32) {
	checkRow("QuantizeQ4_K", len(src), len(dst), QKK, Q4_KBytes)
	for b := 0; b < len(src)/QKK; b++ {
		x := src[b*QKK : (b+1)*QKK]
		out := dst[b*Q4_KBytes : (b+1)*Q4_KBytes]
		var q [QKK]uint8
		quantizeKHeader(out, x, 15, -1, 20, &q)
		for k := range 4 {
			for l := range 32 {
				out[16+32*k+l] = q[64*k+l] | q[64*k+32+l]<<4
			}
		}
	}
}

// QuantizeQ5_K is QuantizeQ4_K for Q5_K (quantize_row_q5_K_ref): 5-bit
// quants, the search 15 steps from -0.5 by 0.1.
func QuantizeQ5_K(dst []byte, src []float32) {
	checkRow("QuantizeQ5_K", len(src), len(dst), QKK, Q5_KBytes)
	for b := 0; b < len(src)/QKK; b++ {
		x := src[b*QKK : (b+1)*QKK]
		out := dst[b*Q5_KBytes : (b+1)*Q5_KBytes]
		var q [QKK]uint8
		quantizeKHeader(out, x, 31, -0.5, 15, &q)
		qh, qs := out[16:48], out[48:]
		clear(qh)
		for k := range 4 {
			for l := range 32 {
				lo, hi := q[64*k+l], q[64*k+32+l]
				qs[32*k+l] = lo&15 | hi&15<<4
				qh[l] |= lo>>4<<(2*k) | hi>>4<<(2*k+1)
			}
		}
	}
}

// quantizeKHeader writes the d, dmin and scales of a Q4_K/Q5_K block of x
// to out[:16] and its quants (0..nmax) to q.
func quantizeKHeader(out []byte, x []float32, nmax int, rmin float32, nstep int, q *[QKK]uint8) {
	var scales, mins [8]float32
	var maxScale, maxMin float32
	var weights [32]float32
	var aux [32]uint8
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		av := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = av + abs32(v)
		}
		scales[j], mins[j] = makeQKX2(nmax, xs, weights[:], q[32*j:32*j+32], aux[:], rmin, 0.1, nstep)
		maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, mins[j])
	}
	var is, im float32
	if maxScale > 0 {
		is = 63 / maxScale
	}
	if maxMin > 0 {
		im = 63 / maxMin
	}
	var ls, lm [8]uint8
	for j := range 8 {
		ls[j] = min(63, uint8(nearestInt(is*scales[j])))
		lm[j] = min(63, uint8(nearestInt(im*mins[j])))
	}
	packScaleMinK4(out[4:16], &ls, &lm)
	putF16(out, maxScale/63)
	putF16(out[2:], maxMin/63)
	d, dmin := getF16(out), getF16(out[2:])
	for j := range 8 {
		dq := d * float32(ls[j])
		if dq == 0 {
			continue
		}
		dm := dmin * float32(lm[j])
		for l := range 32 {
			q[32*j+l] = uint8(min(nmax, max(0, nearestInt((x[32*j+l]+dm)/dq))))
		}
	}
}

// makeQKX2 finds a scale and a min (returned negated, >= 0) for x with
// quants L in [0, nmax] (make_qkx2_quants, squared error): start from the
// range [min(x, 0), max x]; then for each of nstep+1 trial steps
// iscale = (rmin + rdelta*is + nmax)/(max-min) take the quants, solve the
// weighted least-squares scale and min for them (min clamped to <= 0), and
// keep the trial if its weighted error is lower. Laux is scratch of len(x).
func makeQKX2(nmax int, x, w []float32, L, Laux []uint8, rmin, rdelta float32, nstep int) (scale, theMin float32) {
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < len(x); i++ {
		lo, hi = min(lo, x[i]), max(hi, x[i])
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	lo = min(lo, 0)
	if hi == lo {
		clear(L)
		return 0, -lo
	}
	quants := func(iscale float32, dst []uint8) {
		for i, v := range x {
			dst[i] = uint8(min(nmax, max(0, nearestInt(float32(iscale*float32(v-lo))))))
		}
	}
	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	quants(iscale, L)
	var best float32
	for i, v := range x {
		diff := float32(float32(scale*float32(L[i]))+lo) - v
		best += float32(w[i] * float32(diff*diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (hi - lo)
		quants(iscale, Laux)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := float32(Laux[i])
			sumL += float32(w[i] * l)
			sumL2 += float32(float32(w[i]*l) * l)
			sumXL += float32(float32(w[i]*l) * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if !(D > 0) {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var cur float32
		for i, v := range x {
			diff := float32(float32(thisScale*float32(Laux[i]))+thisMin) - v
			cur += float32(w[i] * float32(diff*diff))
		}
		if cur < best {
			copy(L, Laux)
			best, scale, lo = cur, thisScale, thisMin
		}
	}
	return scale, -lo
}

// makeQX finds a signed scale for x with quants in [-nmax, nmax-1], stored
// biased by nmax in L (make_qx_quants with rmse_type 1: weights x²): the
// scale of the value of largest magnitude, refined by least squares over 18
// nearby trial scales -(nmax + 0.1*is)/max, keeping the best.
func makeQX(nmax int, x []float32, L []int8) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < 1e-15 {
		clear(L)
		return 0
	}
	quant := func(iscale, v float32) int {
		return max(-nmax, min(nmax-1, nearestInt(float32(iscale*v))))
	}
	sums := func(iscale float32) (sumLX, sumL2 float32) {
		for _, v := range x {
			l := float32(quant(iscale, v))
			w := float32(v * v)
			sumLX += float32(float32(w*v) * l)
			sumL2 += float32(float32(w*l) * l)
		}
		return sumLX, sumL2
	}
	iscale := float32(-nmax) / mx
	for i, v := range x {
		L[i] = int8(quant(iscale, v) + nmax)
	}
	sumLX, sumL2 := sums(iscale)
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := float32(scale * sumLX)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(0.1*float32(is))) / mx
		sumLX, sumL2 = sums(iscale)
		if sumL2 > 0 && float32(sumLX*sumLX) > float32(best*sumL2) {
			for i, v := range x {
				L[i] = int8(quant(iscale, v) + nmax)
			}
			scale = sumLX / sumL2
			best = float32(scale * sumLX)
		}
	}
	return scale
}

// QuantizeQ6_K writes src as Q6_K blocks as llama-quantize does without an
// importance matrix (quantize_row_q6_K_ref): per sub-block of 16 a signed
// scale by makeQX; the scales quantized to int8 against the one of largest
// magnitude (iscale = -128/maxScale, d = 1/iscale as f16,
// sc = min(127, nearest_int(iscale*scale))); then q = clamp(nearest_int(x /
// (f16(d)*sc)), -32, 31) + 32, or the search's quants where f16(d)*sc is 0.
// A block whose scales are all below 1e-15 is all zero bytes.
func QuantizeQ6_K(dst []byte, src []float32) {
	checkRow("QuantizeQ6_K", len(src), len(dst), QKK, Q6_KBytes)
	for b := 0; b < len(src)/QKK; b++ {
		x := src[b*QKK : (b+1)*QKK]
		out := dst[b*Q6_KBytes : (b+1)*Q6_KBytes]
		clear(out)
		var L [QKK]int8
		var scales [16]float32
		var maxScale, maxAbs float32
		for j := range 16 {
			scales[j] = makeQX(32, x[16*j:16*j+16], L[16*j:16*j+16])
			if a := abs32(scales[j]); a > maxAbs {
				maxAbs, maxScale = a, scales[j]
			}
		}
		if maxAbs < 1e-15 {
			continue
		}
		iscale := -128 / maxScale
		putF16(out[Q6_KBytes-2:], 1/iscale)
		d := getF16(out[Q6_KBytes-2:])
		sc := out[QKK/2+QKK/4 : QKK/2+QKK/4+16]
		for j := range 16 {
			s := min(127, nearestInt(iscale*scales[j]))
			sc[j] = byte(int8(s))
			dq := d * float32(int8(s))
			if dq == 0 {
				continue
			}
			for l := range 16 {
				L[16*j+l] = int8(min(31, max(-32, nearestInt(x[16*j+l]/dq))) + 32)
			}
		}
		for e := range QKK {
			setQ6K(out, e, int(L[e]))
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
