package kernels

import (
	"encoding/binary"
	"math"

	"edgelm/quant"
)

// The K-quants (Q4_K, Q5_K, Q6_K) and the other block types of llama.cpp's
// mixes (Q4_1, Q5_0, Q5_1) multiply as llama.cpp's CPU backend does: each
// token's activations are quantized once per MatMul to the type's
// activation format (actOf), then every weight row is dotted with them by
// the variant's kdot[type], block by block with exact integer sums.
//
// Where a kernel plugs in: a variant sets kdot[t] to a function with the
// bits of the generic one below (dotQ4KGo for Q4_K, ...); withTiles fills
// the types it leaves out from the generic variant. TestKDotVariants checks
// every variant's kdot against the generic one, bit for bit. MatMul's
// chunks (kRect) run one row against the chunk's tokens while it is in L1.

const (
	q41b = quant.Q4_1Bytes
	q50b = quant.Q5_0Bytes
	q51b = quant.Q5_1Bytes
	q81b = quant.Q8_1Bytes
	qkk  = quant.QKK
	q4kb = quant.Q4_KBytes
	q5kb = quant.Q5_KBytes
	q6kb = quant.Q6_KBytes
	q8kb = quant.Q8_KBytes
)

// act is an activation format: the right-hand side of a quantized dot.
type act uint8

const (
	actNone act = iota // float rows: no quantized activations
	actQ8_0            // Q8_0 and Q4_0 (their own kernels), Q5_0
	actQ8_1            // Q4_1, Q5_1: d and s = d*Σq per 32
	actQ8_K            // the K-quants: blocks of 256 with sums of 16
)

// actOf returns the activation format weights of type t are multiplied with.
func actOf(t WType) act {
	switch t {
	case Q8_0, Q4_0, Q5_0:
		return actQ8_0
	case Q4_1, Q5_1:
		return actQ8_1
	case Q4_K, Q5_K, Q6_K:
		return actQ8_K
	}
	return actNone
}

// actBytes is the size of n activations in format a.
func actBytes(a act, n int) int {
	switch a {
	case actQ8_0:
		return n / qk * q8b
	case actQ8_1:
		return n / qk * q81b
	case actQ8_K:
		return n / qkk * q8kb
	}
	return 0
}

// quantizeAct writes x in format a to dst (actBytes(a, len(x)) bytes); q8
// is the variant's Q8_0 quantizer.
func quantizeAct(a act, dst []byte, x []float32, q8 func([]byte, []float32)) {
	switch a {
	case actQ8_0:
		q8(dst, x)
	case actQ8_1:
		quantizeQ8_1(dst, x)
	case actQ8_K:
		// llama.cpp runs its reference quantizer here on every architecture.
		quant.QuantizeQ8_K(dst, x)
	}
}

// quantizeQ8_1 quantizes activations to Q8_1 as llama.cpp does at run time
// on x86 (quantize_row_q8_1's AVX2 path): per block of 32, d = amax/127,
// id = 127/amax (0 when amax is 0), q = x*id rounded to nearest with ties to
// even, s = d*Σq; d and s stored as f16. As quantizeQ8 is to
// quant.QuantizeQ8_0, quants differ from quant.QuantizeQ8_1's by at most one.
func quantizeQ8_1(dst []byte, src []float32) {
	for b := 0; b < len(src)/qk; b++ {
		x := (*[qk]float32)(src[b*qk:])
		out := (*[q81b]byte)(dst[b*q81b:])
		var amax float32
		for _, v := range x {
			amax = max(amax, math.Float32frombits(math.Float32bits(v)&^(1<<31)))
		}
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		var sum int32
		for j, v := range x {
			q := int8(int32(math.RoundToEven(float64(float32(v * id)))))
			out[4+j] = byte(q)
			sum += int32(q)
		}
		binary.LittleEndian.PutUint16(out[0:], quant.F32ToF16(d))
		binary.LittleEndian.PutUint16(out[2:], quant.F32ToF16(float32(d*float32(sum))))
	}
}

// dotQ4_1Go is the dot product of Q4_1 blocks w with as many Q8_1 blocks x:
// per block, with sumi = Σ q_w·q_x exact,
// sum += (f16(d_w)*f16(d_x))*sumi + f16(m_w)*f16(s_x), in block order
// (ggml_vec_dot_q4_1_q8_1), every product and sum rounded to float32.
func dotQ4_1Go(w, x []byte) float32 {
	nb := len(w) / q41b
	x = x[:nb*q81b]
	var acc float32
	for b := range nb {
		wb := (*[q41b]byte)(w[b*q41b:])
		xb := (*[q81b]byte)(x[b*q81b:])
		var s int32
		for j := range qk / 2 {
			s += int32(wb[4+j]&15) * int32(int8(xb[4+j]))
			s += int32(wb[4+j]>>4) * int32(int8(xb[4+qk/2+j]))
		}
		acc += float32(float32(f16(wb[0:])*f16(xb[0:]))*float32(s)) + float32(f16(wb[2:])*f16(xb[2:]))
	}
	return acc
}

// q5Sum is the exact integer dot of a 5-bit block's quants (qh, then 16
// nibble bytes at qs; minus off) with a Q8 block's 32 quants q8.
func q5Sum(qh uint32, qs, q8 []byte, off int32) int32 {
	var s int32
	for j := range qk / 2 {
		lo := int32(qs[j]&15) | int32(qh>>j&1)<<4
		hi := int32(qs[j]>>4) | int32(qh>>(j+16)&1)<<4
		s += (lo-off)*int32(int8(q8[j])) + (hi-off)*int32(int8(q8[j+16]))
	}
	return s
}

// dotQ5_0Go is dotQ8Go for Q5_0 weights (quants minus 16) against Q8_0 x:
// sum += (f16(d_w)*f16(d_x))*sumi per block (ggml_vec_dot_q5_0_q8_0).
func dotQ5_0Go(w, x []byte) float32 {
	nb := len(w) / q50b
	x = x[:nb*q8b]
	var acc float32
	for b := range nb {
		wb := (*[q50b]byte)(w[b*q50b:])
		xb := (*[q8b]byte)(x[b*q8b:])
		s := q5Sum(binary.LittleEndian.Uint32(wb[2:]), wb[6:], xb[2:], 16)
		acc += float32(float32(f16(wb[0:])*f16(xb[0:])) * float32(s))
	}
	return acc
}

// dotQ5_1Go is dotQ4_1Go for Q5_1 weights (ggml_vec_dot_q5_1_q8_1).
func dotQ5_1Go(w, x []byte) float32 {
	nb := len(w) / q51b
	x = x[:nb*q81b]
	var acc float32
	for b := range nb {
		wb := (*[q51b]byte)(w[b*q51b:])
		xb := (*[q81b]byte)(x[b*q81b:])
		s := q5Sum(binary.LittleEndian.Uint32(wb[4:]), wb[8:], xb[4:], 0)
		acc += float32(float32(f16(wb[0:])*f16(xb[0:]))*float32(s)) + float32(f16(wb[2:])*f16(xb[2:]))
	}
	return acc
}

// bsum returns the sum of Q8_K block xb's quants 16g..16g+15.
func bsum(xb *[q8kb]byte, g int) int32 {
	return int32(int16(binary.LittleEndian.Uint16(xb[4+qkk+2*g:])))
}

// dotQ4KGo is the dot product of Q4_K blocks w with as many Q8_K blocks x
// (ggml_vec_dot_q4_K_q8_K with each super-block's integers summed whole).
// Per super-block, with sc[j], m[j] the 6-bit scale and min of sub-block j
// (quant.ScaleMinK4):
//
//	sumi = Σ_j sc[j] * Σ_{l<32} q_w[32j+l]*q_x[32j+l]   (exact int32)
//	summ = Σ_j m[j] * (bsums[2j] + bsums[2j+1])         (exact int32)
//	acc  += (f16(d)*d_x) * sumi;  accm += (f16(dmin)*d_x) * summ
//
// each product and sum rounded to float32, and the result is acc - accm.
func dotQ4KGo(w, x []byte) float32 {
	nb := len(w) / q4kb
	x = x[:nb*q8kb]
	var acc, accm float32
	for b := range nb {
		wb := (*[q4kb]byte)(w[b*q4kb:])
		xb := (*[q8kb]byte)(x[b*q8kb:])
		var sumi, summ int32
		for k := range 4 {
			sc0, m0 := quant.ScaleMinK4(2*k, wb[4:16])
			sc1, m1 := quant.ScaleMinK4(2*k+1, wb[4:16])
			qs := (*[32]byte)(wb[16+32*k:])
			q8 := (*[64]byte)(xb[4+64*k:])
			var s0, s1 int32
			for l, v := range qs {
				s0 += int32(v&15) * int32(int8(q8[l]))
				s1 += int32(v>>4) * int32(int8(q8[32+l]))
			}
			sumi += int32(sc0)*s0 + int32(sc1)*s1
			summ += int32(m0)*(bsum(xb, 4*k)+bsum(xb, 4*k+1)) + int32(m1)*(bsum(xb, 4*k+2)+bsum(xb, 4*k+3))
		}
		dx := f32le(xb[:])
		acc += float32(float32(f16(wb[0:])*dx) * float32(sumi))
		accm += float32(float32(f16(wb[2:])*dx) * float32(summ))
	}
	return acc - accm
}

// dotQ5KGo is dotQ4KGo for Q5_K blocks: q_w = nibble + 16*(its qh bit).
func dotQ5KGo(w, x []byte) float32 {
	nb := len(w) / q5kb
	x = x[:nb*q8kb]
	var acc, accm float32
	for b := range nb {
		wb := (*[q5kb]byte)(w[b*q5kb:])
		xb := (*[q8kb]byte)(x[b*q8kb:])
		qh := (*[32]byte)(wb[16:])
		var sumi, summ int32
		for k := range 4 {
			sc0, m0 := quant.ScaleMinK4(2*k, wb[4:16])
			sc1, m1 := quant.ScaleMinK4(2*k+1, wb[4:16])
			qs := (*[32]byte)(wb[48+32*k:])
			q8 := (*[64]byte)(xb[4+64*k:])
			var s0, s1 int32
			for l, v := range qs {
				h := qh[l] >> (2 * k)
				s0 += int32(v&15|h&1<<4) * int32(int8(q8[l]))
				s1 += int32(v>>4|h&2<<3) * int32(int8(q8[32+l]))
			}
			sumi += int32(sc0)*s0 + int32(sc1)*s1
			summ += int32(m0)*(bsum(xb, 4*k)+bsum(xb, 4*k+1)) + int32(m1)*(bsum(xb, 4*k+2)+bsum(xb, 4*k+3))
		}
		dx := f32le(xb[:])
		acc += float32(float32(f16(wb[0:])*dx) * float32(sumi))
		accm += float32(float32(f16(wb[2:])*dx) * float32(summ))
	}
	return acc - accm
}

// dotQ6KGo is the dot product of Q6_K blocks w with as many Q8_K blocks x
// (ggml_vec_dot_q6_K_q8_K with each super-block's integers summed whole).
// Per super-block, with sc[g] the int8 scale of sub-block g (16 values) and
// q_w in [0,63] (quant.Q6KQuant):
//
//	sumi = Σ_g sc[g] * Σ_{l<16} (q_w[16g+l]-32)*q_x[16g+l]   (exact int32)
//	acc += (f16(d)*d_x) * sumi
//
// each product and sum rounded to float32.
func dotQ6KGo(w, x []byte) float32 {
	nb := len(w) / q6kb
	x = x[:nb*q8kb]
	var acc float32
	for b := range nb {
		wb := (*[q6kb]byte)(w[b*q6kb:])
		xb := (*[q8kb]byte)(x[b*q8kb:])
		var sumi int32
		for h := range 2 {
			ql := (*[64]byte)(wb[64*h:])
			qh := (*[32]byte)(wb[128+32*h:])
			q8 := (*[128]byte)(xb[4+128*h:])
			sc := wb[192+8*h : 192+8*h+8]
			for g := range 2 { // l in [16g, 16g+16): sub-blocks 2k+g of this half
				var s [4]int32
				for l := 16 * g; l < 16*g+16; l++ {
					hb := qh[l]
					s[0] += (int32(ql[l]&15|hb<<4&48) - 32) * int32(int8(q8[l]))
					s[1] += (int32(ql[l+32]&15|hb<<2&48) - 32) * int32(int8(q8[l+32]))
					s[2] += (int32(ql[l]>>4|hb&48) - 32) * int32(int8(q8[l+64]))
					s[3] += (int32(ql[l+32]>>4|hb>>2&48) - 32) * int32(int8(q8[l+96]))
				}
				for k := range 4 {
					sumi += int32(int8(sc[2*k+g])) * s[k]
				}
			}
		}
		acc += float32(float32(f16(wb[q6kb-2:])*f32le(xb[:])) * float32(sumi))
	}
	return acc
}

// genericKDots are the generic variant's kdot table.
var genericKDots = [numWTypes]func(w, x []byte) float32{
	Q4_1: dotQ4_1Go, Q5_0: dotQ5_0Go, Q5_1: dotQ5_1Go,
	Q4_K: dotQ4KGo, Q5_K: dotQ5KGo, Q6_K: dotQ6KGo,
}

// isKType reports whether t multiplies through kdot (not Q8_0/Q4_0's tiles).
func isKType(t WType) bool { return t >= Q4_1 && t < numWTypes }

// kRect computes rows [r0,r1) × tokens [t0,t1) of a job whose type
// multiplies through kdot: each row against every token of the chunk while
// it is in L1.
func (p *Pool) kRect(j *job, r0, r1, t0, t1 int) {
	m := j.m
	dot := j.v.kdot[m.Type]
	rb, rows, stride, xq := m.RowBytes(), m.Rows, j.stride, p.xq
	for r := r0; r < r1; r++ {
		w := m.Data[r*rb : (r+1)*rb]
		for t := t0; t < t1; t++ {
			j.dst[t*rows+r] = dot(w, xq[t*stride:(t+1)*stride])
		}
	}
}
