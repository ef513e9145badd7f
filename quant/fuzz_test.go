package quant

import (
	"bytes"
	"math"
	"testing"
)

// The block decoders read weights straight from a model file: whatever the
// bytes (NaN or Inf halves, odd 6-bit scales, any quants), they must return
// values, never panic. Each family has its own target so a crasher names it.

func fuzzDecoder(f *testing.F, blockSize, blockBytes int, dq func([]float32, []byte)) {
	f.Add(make([]byte, blockBytes))
	f.Add(bytes.Repeat([]byte{0xff}, 2*blockBytes))                 // NaN halves, every bit set
	f.Add(bytes.Repeat([]byte{0x00, 0x7c}, blockBytes))             // +Inf halves
	f.Add(bytes.Repeat([]byte{0x3f, 0xc0, 0x01, 0xfe}, blockBytes)) // odd scale bits
	f.Fuzz(func(t *testing.T, b []byte) {
		n := len(b) / blockBytes
		dst := make([]float32, n*blockSize)
		dq(dst, b[:n*blockBytes])
	})
}

func FuzzDequantizeQ4_K(f *testing.F) { fuzzDecoder(f, QKK, Q4_KBytes, DequantizeQ4_K) }
func FuzzDequantizeQ5_K(f *testing.F) { fuzzDecoder(f, QKK, Q5_KBytes, DequantizeQ5_K) }
func FuzzDequantizeQ6_K(f *testing.F) { fuzzDecoder(f, QKK, Q6_KBytes, DequantizeQ6_K) }
func FuzzDequantizeQ4_1(f *testing.F) { fuzzDecoder(f, QK, Q4_1Bytes, DequantizeQ4_1) }
func FuzzDequantizeQ5_0(f *testing.F) { fuzzDecoder(f, QK, Q5_0Bytes, DequantizeQ5_0) }
func FuzzDequantizeQ5_1(f *testing.F) { fuzzDecoder(f, QK, Q5_1Bytes, DequantizeQ5_1) }

// FuzzQuantizeQ8_K: activations may hold NaN or Inf after a bad model; the
// quantizer must still fill its block.
func FuzzQuantizeQ8_K(f *testing.F) {
	f.Add([]byte{0, 0, 0xc0, 0x7f}, 3) // NaN
	f.Add([]byte{0, 0, 0x80, 0x7f}, 7) // +Inf
	f.Fuzz(func(t *testing.T, pat []byte, at int) {
		x := make([]float32, QKK)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		if len(pat) >= 4 {
			u := uint32(pat[0]) | uint32(pat[1])<<8 | uint32(pat[2])<<16 | uint32(pat[3])<<24
			x[uint(at)%QKK] = math.Float32frombits(u)
		}
		QuantizeQ8_K(make([]byte, Q8_KBytes), x)
	})
}
