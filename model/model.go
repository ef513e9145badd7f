package model

import (
	"fmt"
	"unsafe"

	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/quant"
)

// Layer is one transformer block's weights. Matrices are views into the mapped file; norm weights are
// float32 views too when the file stores them as F32 (otherwise small converted copies).
type Layer struct {
	AttnNorm     []float32   // (dim)
	Wq           kernels.Mat // (heads*head_dim, dim)
	Wk           kernels.Mat // (kv_heads*head_dim, dim)
	Wv           kernels.Mat // (kv_heads*head_dim, dim)
	Wo           kernels.Mat // (dim, heads*head_dim)
	QNorm        []float32   // (head_dim), gemma3
	KNorm        []float32   // (head_dim), gemma3
	PostAttnNorm []float32   // (dim), gemma2/3
	FFNNorm      []float32   // (dim)
	Gate         kernels.Mat // (ffn, dim)
	Up           kernels.Mat // (ffn, dim)
	Down         kernels.Mat // (dim, ffn)
	PostFFNNorm  []float32   // (dim), gemma2/3
}

// Model is a loaded architecture: config and weights. It is read-only after Load and safe to share;
// the mutable state of a forward pass lives in a Runner.
type Model struct {
	Config
	Embed     kernels.Mat // (vocab, dim)
	Blocks    []Layer     // (layers)
	OutNorm   []float32   // (dim)
	Output    kernels.Mat // (vocab, dim); the embedding when tied
	RopeFreqs []float32   // (rope_dim/2) divisors of each frequency (llama 3.1), nil when absent
	Params    int64       // weights, counted in elements
}

// Load reads the config and binds every weight of f. f must stay open while the Model is used.
func Load(f *gguf.File) (*Model, error) {
	c, err := ReadConfig(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: *c}
	b := binder{f: f, m: m}
	// The vocabulary size is the embedding's row count (metadata rarely states it).
	if t, ok := f.Tensor("token_embd.weight"); ok && len(t.Dims) == 2 && t.Dims[1] <= 1<<24 {
		m.Vocab = int(t.Dims[1])
	}
	m.Embed = b.mat("token_embd.weight", m.Vocab, c.Dim)
	m.OutNorm = b.vec("output_norm.weight", c.Dim)
	if _, ok := f.Tensor("output.weight"); ok {
		m.Output = b.mat("output.weight", m.Vocab, c.Dim)
	} else {
		m.Output = m.Embed
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		m.RopeFreqs = b.vec("rope_freqs.weight", c.RopeDim/2)
	}
	qDim, kvDim := c.Heads*c.HeadDim, c.KVDim()
	m.Blocks = make([]Layer, c.Layers)
	for i := range m.Blocks {
		l := &m.Blocks[i]
		p := fmt.Sprintf("blk.%d.", i)
		l.AttnNorm = b.vec(p+"attn_norm.weight", c.Dim)
		l.Wq = b.mat(p+"attn_q.weight", qDim, c.Dim)
		l.Wk = b.mat(p+"attn_k.weight", kvDim, c.Dim)
		l.Wv = b.mat(p+"attn_v.weight", kvDim, c.Dim)
		l.Wo = b.mat(p+"attn_output.weight", c.Dim, qDim)
		l.FFNNorm = b.vec(p+"ffn_norm.weight", c.Dim)
		l.Gate = b.mat(p+"ffn_gate.weight", c.FFN, c.Dim)
		l.Up = b.mat(p+"ffn_up.weight", c.FFN, c.Dim)
		l.Down = b.mat(p+"ffn_down.weight", c.Dim, c.FFN)
		if c.PostNorms {
			l.PostAttnNorm = b.vec(p+"post_attention_norm.weight", c.Dim)
			l.PostFFNNorm = b.vec(p+"post_ffw_norm.weight", c.Dim)
		}
		if c.QKNorm {
			l.QNorm = b.vec(p+"attn_q_norm.weight", c.HeadDim)
			l.KNorm = b.vec(p+"attn_k_norm.weight", c.HeadDim)
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	m.Params = b.params
	return m, nil
}

// binder binds tensors by name, checking shape and type; the first error sticks.
type binder struct {
	f      *gguf.File
	m      *Model
	err    error
	params int64
}

func (b *binder) tensor(name string, dims ...int) *gguf.Tensor {
	if b.err != nil {
		return nil
	}
	t, ok := b.f.Tensor(name)
	if !ok {
		b.err = fmt.Errorf("model: tensor %q missing", name)
		return nil
	}
	same := len(t.Dims) == len(dims)
	for i := 0; same && i < len(dims); i++ {
		same = t.Dims[i] == uint64(dims[i])
	}
	if !same {
		b.err = fmt.Errorf("model: tensor %q has shape %v, want %v", name, t.Dims, dims)
		return nil
	}
	n := int64(1)
	for _, d := range dims {
		n *= int64(d)
	}
	b.params += n
	return t
}

// computedTypes lists the tensor types WType accepts, for error messages.
const computedTypes = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"

// WType maps a GGUF tensor type to the kernels' weight type.
func WType(t gguf.Type) (kernels.WType, error) {
	switch t {
	case gguf.F32:
		return kernels.F32, nil
	case gguf.F16:
		return kernels.F16, nil
	case gguf.BF16:
		return kernels.BF16, nil
	case gguf.Q8_0:
		return kernels.Q8_0, nil
	case gguf.Q4_0:
		return kernels.Q4_0, nil
	case gguf.Q4_1:
		return kernels.Q4_1, nil
	case gguf.Q5_0:
		return kernels.Q5_0, nil
	case gguf.Q5_1:
		return kernels.Q5_1, nil
	case gguf.Q4_K:
		return kernels.Q4_K, nil
	case gguf.Q5_K:
		return kernels.Q5_K, nil
	case gguf.Q6_K:
		return kernels.Q6_K, nil
	}
	return 0, fmt.Errorf("tensor type %s is not one edgelm computes with (%s)", t, computedTypes)
}

// mat binds a (rows, cols) matrix: GGUF dims are (cols, rows), the row length first.
func (b *binder) mat(name string, rows, cols int) kernels.Mat {
	t := b.tensor(name, cols, rows)
	if t == nil {
		return kernels.Mat{}
	}
	wt, err := WType(t.Type)
	if err != nil {
		b.err = fmt.Errorf("model: tensor %q: %w", name, err)
		return kernels.Mat{}
	}
	return kernels.Mat{Type: wt, Rows: rows, Cols: cols, Data: t.Data}
}

// vec binds a vector as float32: a view of F32 data, a converted copy otherwise (vectors are small).
func (b *binder) vec(name string, n int) []float32 {
	t := b.tensor(name, n)
	if t == nil {
		return nil
	}
	if t.Type == gguf.F32 && uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(t.Data))), n)
	}
	out := make([]float32, n)
	switch t.Type {
	case gguf.F32:
		for i := range out {
			u := uint32(t.Data[4*i]) | uint32(t.Data[4*i+1])<<8 | uint32(t.Data[4*i+2])<<16 | uint32(t.Data[4*i+3])<<24
			out[i] = *(*float32)(unsafe.Pointer(&u))
		}
	case gguf.F16:
		for i := range out {
			out[i] = quant.F16ToF32(uint16(t.Data[2*i]) | uint16(t.Data[2*i+1])<<8)
		}
	case gguf.BF16:
		for i := range out {
			out[i] = quant.BF16ToF32(uint16(t.Data[2*i]) | uint16(t.Data[2*i+1])<<8)
		}
	default:
		b.err = fmt.Errorf("model: vector %q has type %s; want F32, F16 or BF16", name, t.Type)
		return nil
	}
	return out
}
