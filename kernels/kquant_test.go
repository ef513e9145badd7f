package kernels

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"edgelm/quant"
)

// kTypes are the weight types that multiply through kdot, with package
// quant's quantizer and dequantizer (the oracle) for each.
var kTypes = []struct {
	t  WType
	q  func([]byte, []float32)
	dq func([]float32, []byte)
}{
	{Q4_1, quant.QuantizeQ4_1, quant.DequantizeQ4_1},
	{Q5_0, quant.QuantizeQ5_0, quant.DequantizeQ5_0},
	{Q5_1, quant.QuantizeQ5_1, quant.DequantizeQ5_1},
	{Q4_K, quant.QuantizeQ4_K, quant.DequantizeQ4_K},
	{Q5_K, quant.QuantizeQ5_K, quant.DequantizeQ5_K},
	{Q6_K, quant.QuantizeQ6_K, quant.DequantizeQ6_K},
}

// randKMat returns a rows×cols matrix of type wt and its values as
// dequantized by package quant.
func randKMat(r *rand.Rand, wt WType, rows, cols int) (Mat, []float32) {
	m := Mat{Type: wt, Rows: rows, Cols: cols}
	m.Data = make([]byte, rows*m.RowBytes())
	vals := make([]float32, rows*cols)
	randF32(r, vals)
	for i := range vals {
		vals[i] = vals[i]*0.05 + 0.01 // an offset, so the min terms count
	}
	for _, k := range kTypes {
		if k.t == wt {
			k.q(m.Data, vals)
			k.dq(vals, m.Data)
		}
	}
	return m, vals
}

// refAct returns what the kernels promise each activation becomes before
// the integer products, written from the formats' definitions: per block,
// the value d*q with d and q as llama.cpp's run-time quantizers make them.
// For Q8_1 it also returns each block's s = f16(d*Σq), which the Q4_1/Q5_1
// products use for the min term instead of the quants.
func refAct(t WType, x []float32) (vals []float64, s []float64) {
	vals = make([]float64, len(x))
	switch actOf(t) {
	case actQ8_0, actQ8_1:
		for b := 0; b < len(x)/qk; b++ {
			blk := x[b*qk : b*qk+qk]
			var amax float32
			for _, v := range blk {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			d := quant.F16ToF32(quant.F32ToF16(amax / 127))
			var id float32
			if amax != 0 {
				id = 127 / amax
			}
			sum := 0.0
			for j, v := range blk {
				q := math.RoundToEven(float64(v * id))
				vals[b*qk+j] = float64(d) * q
				sum += q
			}
			s = append(s, float64(quant.F16ToF32(quant.F32ToF16(amax/127*float32(sum)))))
		}
	case actQ8_K:
		for b := 0; b < len(x)/qkk; b++ {
			blk := x[b*qkk : b*qkk+qkk]
			var amax, mx float32
			for _, v := range blk {
				if a := float32(math.Abs(float64(v))); a > amax {
					amax, mx = a, v
				}
			}
			if amax == 0 {
				continue
			}
			iscale := -127 / mx
			for j, v := range blk {
				vals[b*qkk+j] = float64(1/iscale) * math.RoundToEven(float64(iscale*v))
			}
		}
	}
	return vals, s
}

// refKDot is row w (dequantized) · activations xv in float64, the Q4_1/Q5_1
// min term taken from the blocks' s as the formats prescribe, with the sum
// of magnitudes for a tolerance.
func refKDot(t WType, m Mat, row int, w []float32, xv, s []float64) (sum, mag float64) {
	cols := m.Cols
	wr := w[row*cols : (row+1)*cols]
	if t == Q4_1 || t == Q5_1 {
		// x ≈ d_w*q_w + m_w: the m_w part multiplies s, not Σ x.
		rb := m.Data[row*m.RowBytes():]
		bb := t.BlockBytes()
		for b := 0; b < cols/qk; b++ {
			mw := float64(quant.F16ToF32(binary.LittleEndian.Uint16(rb[b*bb+2:])))
			for j := range qk {
				p := (float64(wr[b*qk+j]) - mw) * xv[b*qk+j]
				sum += p
				mag += math.Abs(p)
			}
			sum += mw * s[b]
			mag += math.Abs(mw * s[b])
		}
		return sum, mag
	}
	for c := range cols {
		p := float64(wr[c]) * xv[c]
		sum += p
		mag += math.Abs(p)
	}
	return sum, mag
}

// TestKMatMul checks every variant's MatMul over each new type against the
// float64 product of the dequantized weights and the activations as
// quantized by definition, on serial and threaded pools, for decode and
// prefill batches and row counts with tails.
func TestKMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	pools := []*Pool{nil, NewPool(1), NewPool(3)}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	for _, v := range variants() {
		for _, k := range kTypes {
			for _, shape := range [][2]int{{37, 512}, {9, 256}} {
				rows, cols := shape[0], shape[1]
				m, w := randKMat(r, k.t, rows, cols)
				if err := m.Validate(); err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1, 3, 9, 33} {
					x := make([]float32, n*cols)
					randF32(r, x)
					var one []float32 // token 0 alone: the batch must not change its bits
					withVariant(v, func() {
						one = make([]float32, rows)
						pools[0].MatMul(one, m, x[:cols], 1)
					})
					for pi, p := range pools {
						dst := make([]float32, n*rows+1)
						dst[n*rows] = 42
						withVariant(v, func() { p.MatMul(dst, m, x, n) })
						if dst[n*rows] != 42 {
							t.Fatalf("MatMul wrote past n*Rows")
						}
						for tk := range n {
							xv, s := refAct(k.t, x[tk*cols:(tk+1)*cols])
							for rr := range rows {
								want, mag := refKDot(k.t, m, rr, w, xv, s)
								got := dst[tk*rows+rr]
								if math.Abs(float64(got)-want) > 1e-5*mag+1e-30 {
									t.Fatalf("%s %v %dx%d n=%d pool %d: dst[%d][%d] = %v, want %v (±%g)",
										v.name, k.t, rows, cols, n, pi, tk, rr, got, want, 1e-5*mag)
								}
							}
						}
						for rr := range rows {
							if math.Float32bits(dst[rr]) != math.Float32bits(one[rr]) {
								t.Fatalf("%s %v n=%d pool %d: row %d of token 0 is %v, alone %v", v.name, k.t, n, pi, rr, dst[rr], one[rr])
							}
						}
					}
				}
			}
		}
	}
}

// TestKDotVariants checks every variant's row dots against the generic
// ones bit for bit, over 1 to 9 blocks and unaligned rows, with extreme
// quants and scales as well as quantized Gaussian data.
func TestKDotVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, v := range variants()[1:] {
		for _, k := range kTypes {
			bs := k.t.BlockSize()
			for nb := 1; nb <= 9; nb++ {
				for trial := range 6 {
					cols := nb * bs
					wb := misaligned(nb*k.t.BlockBytes(), trial%4)
					x := make([]float32, cols)
					randF32(r, x)
					if trial < 3 {
						vals := make([]float32, cols)
						randF32(r, vals)
						k.q(wb, vals)
					} else {
						for i := range wb {
							wb[i] = byte(r.IntN(256))
						}
						// Finite scales, the extremes of everything else.
						for b := 0; b < nb; b++ {
							fixScales(k.t, wb[b*k.t.BlockBytes():(b+1)*k.t.BlockBytes()], r)
						}
					}
					a := actOf(k.t)
					xq := misaligned(actBytes(a, cols), (trial+1)%4)
					quantizeAct(a, xq, x, genericVariant.quant)
					want := genericKDots[k.t](wb, xq)
					if got := v.kdot[k.t](wb, xq); math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%s %v %d blocks trial %d: %v, generic %v", v.name, k.t, nb, trial, got, want)
					}
				}
			}
		}
	}
}

// fixScales makes the f16 scales of one block finite and small, leaving
// the random quants, 6-bit scales and mins as they are.
func fixScales(t WType, b []byte, r *rand.Rand) {
	h := func(o int) { binary.LittleEndian.PutUint16(b[o:], quant.F32ToF16(float32(r.Float64()-0.5)*0.02)) }
	switch t {
	case Q4_1, Q5_1, Q4_K, Q5_K:
		h(0)
		h(2)
	case Q5_0:
		h(0)
	case Q6_K:
		h(len(b) - 2)
	}
}

func TestKMatRow(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, k := range kTypes {
		m, w := randKMat(r, k.t, 3, 512)
		got := make([]float32, 512)
		for i := range 3 {
			m.Row(i, got)
			for j := range got {
				if got[j] != w[i*512+j] {
					t.Fatalf("%v Row(%d)[%d] = %v, want %v", k.t, i, j, got[j], w[i*512+j])
				}
			}
		}
		bad := Mat{Type: k.t, Rows: 1, Cols: k.t.BlockSize() / 2, Data: make([]byte, k.t.BlockBytes())}
		if bad.Validate() == nil {
			t.Errorf("%v: Validate accepts %d columns", k.t, bad.Cols)
		}
	}
}

func TestKMatMulNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	p := NewPool(2)
	defer p.Close()
	for _, k := range kTypes {
		m, _ := randKMat(r, k.t, 64, 256)
		for _, n := range []int{1, 9} {
			x := make([]float32, n*256)
			dst := make([]float32, n*64)
			p.MatMul(dst, m, x, n)
			if a := testing.AllocsPerRun(10, func() { p.MatMul(dst, m, x, n) }); a != 0 {
				t.Errorf("%v n=%d: %v allocations per MatMul", k.t, n, a)
			}
		}
	}
}

// BenchmarkKDot is one row of 4096 columns against one token, per variant:
// go test ./kernels -run X -bench KDot
func BenchmarkKDot(b *testing.B) {
	r := rand.New(rand.NewPCG(19, 20))
	const cols = 4096
	for _, k := range kTypes {
		m, _ := randKMat(r, k.t, 1, cols)
		x := make([]float32, cols)
		randF32(r, x)
		a := actOf(k.t)
		xq := make([]byte, actBytes(a, cols))
		quantizeAct(a, xq, x, genericVariant.quant)
		for _, v := range variants() {
			b.Run(k.t.String()+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(m.Data)))
				for range b.N {
					v.kdot[k.t](m.Data, xq)
				}
			})
		}
	}
}

// FuzzKDot: any bytes as a weight row of any new type (NaN or Inf scales, odd 6-bit scales) go
// through every variant's row dot without a panic, with the generic code's bits (or NaN where it
// gives NaN).
func FuzzKDot(f *testing.F) {
	f.Add(uint8(3), make([]byte, 300))
	f.Add(uint8(5), bytes.Repeat([]byte{0xff}, 500))
	f.Add(uint8(4), bytes.Repeat([]byte{0x00, 0x7c, 0x3f, 0xc0}, 100))
	f.Fuzz(func(t *testing.T, sel uint8, raw []byte) {
		k := kTypes[int(sel)%len(kTypes)]
		bb := k.t.BlockBytes()
		nb := min(len(raw)/bb, 8)
		if nb == 0 {
			return
		}
		w := raw[:nb*bb]
		x := make([]float32, nb*k.t.BlockSize())
		for i := range x {
			x[i] = float32(i%13) - 6
		}
		a := actOf(k.t)
		xq := make([]byte, actBytes(a, len(x)))
		quantizeAct(a, xq, x, genericVariant.quant)
		want := genericKDots[k.t](w, xq)
		for _, v := range variants()[1:] {
			got := v.kdot[k.t](w, xq)
			if math.Float32bits(got) != math.Float32bits(want) && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
				t.Fatalf("%s %v: %v, generic %v", v.name, k.t, got, want)
			}
		}
	})
}
