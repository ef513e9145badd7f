package gguf

import (
	"fmt"
	"math/bits"
)

// Type is a ggml tensor type id, as stored in a GGUF tensor info.
type Type uint32

// The ggml tensor types (ggml.h enum ggml_type). Ids 4, 5, 31-33 and 36-38
// belonged to types that ggml has since removed; they keep their names so
// errors can say what a file contains.
const (
	F32        Type = 0
	F16        Type = 1
	Q4_0       Type = 2
	Q4_1       Type = 3
	Q4_2       Type = 4 // removed
	Q4_3       Type = 5 // removed
	Q5_0       Type = 6
	Q5_1       Type = 7
	Q8_0       Type = 8
	Q8_1       Type = 9
	Q2_K       Type = 10
	Q3_K       Type = 11
	Q4_K       Type = 12
	Q5_K       Type = 13
	Q6_K       Type = 14
	Q8_K       Type = 15
	IQ2_XXS    Type = 16
	IQ2_XS     Type = 17
	IQ3_XXS    Type = 18
	IQ1_S      Type = 19
	IQ4_NL     Type = 20
	IQ3_S      Type = 21
	IQ2_S      Type = 22
	IQ4_XS     Type = 23
	I8         Type = 24
	I16        Type = 25
	I32        Type = 26
	I64        Type = 27
	F64        Type = 28
	IQ1_M      Type = 29
	BF16       Type = 30
	Q4_0_4_4   Type = 31 // removed (repacked layouts are now made at load time)
	Q4_0_4_8   Type = 32 // removed
	Q4_0_8_8   Type = 33 // removed
	TQ1_0      Type = 34
	TQ2_0      Type = 35
	IQ4_NL_4_4 Type = 36 // removed
	IQ4_NL_4_8 Type = 37 // removed
	IQ4_NL_8_8 Type = 38 // removed
	MXFP4      Type = 39
	NVFP4      Type = 40
	Q1_0       Type = 41
	Q2_0       Type = 42
)

type typeInfo struct {
	name       string
	blockSize  int // elements per block; 0 for removed types
	blockBytes int // bytes per block
}

// types is ggml's type_traits table (block size, sizeof(block_*)). The block
// byte counts follow the block structs in ggml-common.h, e.g. Q4_0 is an f16
// scale plus 16 bytes of nibbles = 18 bytes for 32 elements, Q6_K is
// ql[128] + qh[64] + scales[16] + f16 d = 210 bytes for 256 elements.
var types = [...]typeInfo{
	F32:        {"F32", 1, 4},
	F16:        {"F16", 1, 2},
	Q4_0:       {"Q4_0", 32, 18},
	Q4_1:       {"Q4_1", 32, 20},
	Q4_2:       {"Q4_2", 0, 0},
	Q4_3:       {"Q4_3", 0, 0},
	Q5_0:       {"Q5_0", 32, 22},
	Q5_1:       {"Q5_1", 32, 24},
	Q8_0:       {"Q8_0", 32, 34},
	Q8_1:       {"Q8_1", 32, 36},
	Q2_K:       {"Q2_K", 256, 84},
	Q3_K:       {"Q3_K", 256, 110},
	Q4_K:       {"Q4_K", 256, 144},
	Q5_K:       {"Q5_K", 256, 176},
	Q6_K:       {"Q6_K", 256, 210},
	Q8_K:       {"Q8_K", 256, 292},
	IQ2_XXS:    {"IQ2_XXS", 256, 66},
	IQ2_XS:     {"IQ2_XS", 256, 74},
	IQ3_XXS:    {"IQ3_XXS", 256, 98},
	IQ1_S:      {"IQ1_S", 256, 50},
	IQ4_NL:     {"IQ4_NL", 32, 18},
	IQ3_S:      {"IQ3_S", 256, 110},
	IQ2_S:      {"IQ2_S", 256, 82},
	IQ4_XS:     {"IQ4_XS", 256, 136},
	I8:         {"I8", 1, 1},
	I16:        {"I16", 1, 2},
	I32:        {"I32", 1, 4},
	I64:        {"I64", 1, 8},
	F64:        {"F64", 1, 8},
	IQ1_M:      {"IQ1_M", 256, 56},
	BF16:       {"BF16", 1, 2},
	Q4_0_4_4:   {"Q4_0_4_4", 0, 0},
	Q4_0_4_8:   {"Q4_0_4_8", 0, 0},
	Q4_0_8_8:   {"Q4_0_8_8", 0, 0},
	TQ1_0:      {"TQ1_0", 256, 54},
	TQ2_0:      {"TQ2_0", 256, 66},
	IQ4_NL_4_4: {"IQ4_NL_4_4", 0, 0},
	IQ4_NL_4_8: {"IQ4_NL_4_8", 0, 0},
	IQ4_NL_8_8: {"IQ4_NL_8_8", 0, 0},
	MXFP4:      {"MXFP4", 32, 17},
	NVFP4:      {"NVFP4", 64, 36},
	Q1_0:       {"Q1_0", 128, 18},
	Q2_0:       {"Q2_0", 64, 18},
}

func (t Type) info() typeInfo {
	if uint64(t) < uint64(len(types)) {
		return types[t]
	}
	return typeInfo{}
}

// String is ggml's name for the type ("F32", "Q4_0", "Q6_K"), or "Type(N)"
// for an id ggml never defined.
func (t Type) String() string {
	if n := t.info().name; n != "" {
		return n
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for plain types such
// as F32, 32 for Q8_0, 256 for the K-quants); 0 for unknown or removed types.
func (t Type) BlockSize() int { return t.info().blockSize }

// BlockBytes is the size in bytes of one block; 0 for unknown or removed types.
func (t Type) BlockBytes() int { return t.info().blockBytes }

// Valid reports whether t is a type ggml currently defines, i.e. one whose
// data size can be computed.
func (t Type) Valid() bool { return t.info().blockSize > 0 }

// check returns an error naming t if its size cannot be computed.
func (t Type) check() error {
	info := t.info()
	switch {
	case info.name == "":
		return fmt.Errorf("unknown tensor type id %d", uint32(t))
	case info.blockSize == 0:
		return fmt.Errorf("tensor type %s (id %d) was removed from ggml; re-quantize the model", info.name, uint32(t))
	}
	return nil
}

// MaxDims is the largest number of dimensions a tensor may have (ggml's
// GGML_MAX_DIMS).
const MaxDims = 4

// TensorSize is the number of bytes a tensor of type t with dimensions dims
// occupies: (product of dims) / BlockSize * BlockBytes. It fails if t is not
// Valid, if there are no or more than MaxDims dimensions, if a dimension is
// 0, if dims[0] (the row length) is not a multiple of the block size, or if
// the element count or byte size overflows int64.
func TensorSize(t Type, dims []uint64) (uint64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return 0, fmt.Errorf("%d dimensions, want 1 to %d", len(dims), MaxDims)
	}
	n := uint64(1)
	for i, d := range dims {
		if d == 0 {
			return 0, fmt.Errorf("dimension %d is 0", i)
		}
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > 1<<63-1 {
			return 0, fmt.Errorf("dimensions %v: element count overflows", dims)
		}
		n = lo
	}
	bs := uint64(t.BlockSize())
	if dims[0]%bs != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of the %s block size %d", dims[0], t, bs)
	}
	hi, size := bits.Mul64(n/bs, uint64(t.BlockBytes()))
	if hi != 0 || size > 1<<63-1 {
		return 0, fmt.Errorf("dimensions %v: byte size overflows", dims)
	}
	return size, nil
}
