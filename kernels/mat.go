// Package kernels holds the arithmetic of the forward pass: matrix-vector
// and matrix-matrix products over weights in their file formats (F32, F16,
// BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), and the vector
// operations around them.
//
// Each kernel has a plain Go version (the specification, in dot.go and
// vec.go) and, where it matters for speed, assembly for amd64 (AVX2+FMA,
// plus AVX-512 VNNI prefill tiles) and arm64 (NEON, SDOT). Which one runs is
// chosen once at start-up
// from the CPU's features (see Features); the environment variable
// EDGELM_KERNELS and SetMaxFeatures can only turn features off.
//
// Quantized products follow llama.cpp: activations are quantized to Q8_0
// (as its run-time quantizer does), each block's integer dot product is
// exact, and the block results are accumulated in float32 in block order as
// sum += f16(d_w)*f16(d_x)*sumi. The other block types take the activation
// format llama.cpp pairs them with (Q8_1, or Q8_K for the K-quants) and are
// specified by their generic row dots in kquant.go. On amd64 every variant gives the generic
// code's bits for these and for Dot; the arm64 kernels sum in their own
// lane order. Within a variant a row·token result never depends on the
// batch, tile or thread split around it.
package kernels

import (
	"fmt"

	"edgelm/quant"
)

// WType is the element format of a weight matrix.
type WType uint8

// Weight formats. Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 are llama.cpp's block
// formats of 32 elements, Q4_K, Q5_K and Q6_K its K-quants of 256 (see
// package quant); a row is whole blocks.
const (
	F32 WType = iota
	F16
	BF16
	Q8_0
	Q4_0
	Q4_1
	Q5_0
	Q5_1
	Q4_K
	Q5_K
	Q6_K
	numWTypes
)

func (t WType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	case Q8_0:
		return "Q8_0"
	case Q4_0:
		return "Q4_0"
	case Q4_1:
		return "Q4_1"
	case Q5_0:
		return "Q5_0"
	case Q5_1:
		return "Q5_1"
	case Q4_K:
		return "Q4_K"
	case Q5_K:
		return "Q5_K"
	case Q6_K:
		return "Q6_K"
	}
	return fmt.Sprintf("WType(%d)", uint8(t))
}

// BlockSize is the number of elements one block of t holds (1 for floats).
func (t WType) BlockSize() int {
	switch t {
	case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1:
		return quant.QK
	case Q4_K, Q5_K, Q6_K:
		return quant.QKK
	}
	return 1
}

// BlockBytes is the size in bytes of one block of t, 0 for an unknown type.
func (t WType) BlockBytes() int {
	switch t {
	case F32:
		return 4
	case F16, BF16:
		return 2
	case Q8_0:
		return quant.Q8_0Bytes
	case Q4_0:
		return quant.Q4_0Bytes
	case Q4_1:
		return quant.Q4_1Bytes
	case Q5_0:
		return quant.Q5_0Bytes
	case Q5_1:
		return quant.Q5_1Bytes
	case Q4_K:
		return quant.Q4_KBytes
	case Q5_K:
		return quant.Q5_KBytes
	case Q6_K:
		return quant.Q6_KBytes
	}
	return 0
}

// Mat is a row-major weight matrix in its file format: Rows rows of Cols
// elements, row i at Data[i*RowBytes():(i+1)*RowBytes()]. Data is usually a
// view into a memory-mapped model file and is never written.
type Mat struct {
	Type       WType
	Rows, Cols int
	Data       []byte
}

// RowBytes is the size of one row in bytes.
func (m Mat) RowBytes() int {
	return m.Cols / m.Type.BlockSize() * m.Type.BlockBytes()
}

// Validate reports whether m is well formed: a known type, non-negative
// shape, Cols a multiple of the block size (32, or 256 for K-quants), and len(Data) exactly
// Rows*RowBytes(). Kernels given an invalid Mat panic; callers building a
// Mat from a file call Validate first and turn a mismatch into an error.
func (m Mat) Validate() error {
	switch {
	case m.Type.BlockBytes() == 0:
		return fmt.Errorf("kernels: matrix type %v unknown", m.Type)
	case m.Rows < 0 || m.Cols < 0:
		return fmt.Errorf("kernels: %v matrix shape %dx%d negative", m.Type, m.Rows, m.Cols)
	case m.Cols%m.Type.BlockSize() != 0:
		return fmt.Errorf("kernels: %v matrix has %d columns, not a multiple of %d", m.Type, m.Cols, m.Type.BlockSize())
	case m.Rows > 0 && m.RowBytes() > 0 && len(m.Data)/m.RowBytes() < m.Rows:
		return fmt.Errorf("kernels: %v matrix %dx%d needs %d bytes, have %d", m.Type, m.Rows, m.Cols, m.Rows*m.RowBytes(), len(m.Data))
	case len(m.Data) != m.Rows*m.RowBytes():
		return fmt.Errorf("kernels: %v matrix %dx%d needs %d bytes, have %d", m.Type, m.Rows, m.Cols, m.Rows*m.RowBytes(), len(m.Data))
	}
	return nil
}

func (m Mat) mustValid() {
	if err := m.Validate(); err != nil {
		panic(err)
	}
}

// Row writes row i of m, dequantized, to dst[:m.Cols] (an embedding lookup).
// It panics if i is out of range or dst too short.
func (m Mat) Row(i int, dst []float32) {
	if i < 0 || i >= m.Rows {
		panic(fmt.Sprintf("kernels: row %d of a %d-row matrix", i, m.Rows))
	}
	rb := m.RowBytes()
	rowTo(m.Type, dst[:m.Cols], m.Data[i*rb:(i+1)*rb])
}

// rowTo dequantizes one row src of type t into dst.
func rowTo(t WType, dst []float32, src []byte) {
	switch t {
	case F32:
		for j := range dst {
			dst[j] = f32le(src[4*j:])
		}
	case F16:
		for j := range dst {
			dst[j] = f16tab[u16le(src[2*j:])]
		}
	case BF16:
		for j := range dst {
			dst[j] = quant.BF16ToF32(u16le(src[2*j:]))
		}
	case Q8_0:
		quant.DequantizeQ8_0(dst, src)
	case Q4_0:
		quant.DequantizeQ4_0(dst, src)
	case Q4_1:
		quant.DequantizeQ4_1(dst, src)
	case Q5_0:
		quant.DequantizeQ5_0(dst, src)
	case Q5_1:
		quant.DequantizeQ5_1(dst, src)
	case Q4_K:
		quant.DequantizeQ4_K(dst, src)
	case Q5_K:
		quant.DequantizeQ5_K(dst, src)
	case Q6_K:
		quant.DequantizeQ6_K(dst, src)
	default:
		panic(fmt.Sprintf("kernels: matrix type %v unknown", t))
	}
}
