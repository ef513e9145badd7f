package model

import (
	"fmt"
	"math"
	"unsafe"

	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/quant"
)

// Layer is one transformer block's weights. Matrices are views into the mapped file; norm weights are
// float32 views too when the file stores them as F32 (otherwise small converted copies). Fused
// tensors (phi3's attn_qkv and gate+up ffn_up) are bound as row ranges of the one mapped matrix.
type Layer struct {
	AttnNorm     []float32   // (dim)
	Wq           kernels.Mat // (heads*head_dim, dim)
	Wk           kernels.Mat // (kv_heads*head_dim, dim)
	Wv           kernels.Mat // (kv_heads*head_dim, dim)
	Wo           kernels.Mat // (dim, heads*head_dim)
	Bq, Bk, Bv   []float32   // (heads*head_dim) (kv_heads*head_dim) (kv_heads*head_dim), qwen2; nil when absent
	QNorm        []float32   // (head_dim), gemma3, qwen3
	KNorm        []float32   // (head_dim), gemma3, qwen3
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
	RopeFreqs []float32   // (rope_dim/2) divisors of each frequency in use (llama 3.x, phi3), nil when none

	// phi3 (LongRoPE): the divisors for contexts up to RopeOrigCtx and beyond; see UseContext.
	RopeShort, RopeLong []float32 // (rope_dim/2)
	Params              int64     // weights, counted in elements
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
	has := func(name string) bool { _, ok := f.Tensor(name); return ok }
	switch {
	case has("rope_freqs.weight"):
		m.RopeFreqs = b.vec("rope_freqs.weight", c.RopeDim/2)
		if err := checkDivisors("rope_freqs.weight", m.RopeFreqs); err != nil && b.err == nil {
			b.err = err
		}
	case c.Llama3Rope:
		m.RopeFreqs = llama3Divisors(c)
	case has("rope_factors_long.weight") || has("rope_factors_short.weight"):
		m.RopeLong = b.vec("rope_factors_long.weight", c.RopeDim/2)
		m.RopeShort = b.vec("rope_factors_short.weight", c.RopeDim/2)
		for _, d := range []struct {
			name string
			v    []float32
		}{{"rope_factors_long.weight", m.RopeLong}, {"rope_factors_short.weight", m.RopeShort}} {
			if err := checkDivisors(d.name, d.v); err != nil && b.err == nil {
				b.err = err
			}
		}
		m.UseContext(c.ContextLength)
	}
	qDim, kvDim := c.Heads*c.HeadDim, c.KVDim()
	m.Blocks = make([]Layer, c.Layers)
	for i := range m.Blocks {
		l := &m.Blocks[i]
		p := fmt.Sprintf("blk.%d.", i)
		l.AttnNorm = b.vec(p+"attn_norm.weight", c.Dim)
		if has(p + "attn_qkv.weight") {
			// phi3: q, k and v stacked by rows in one matrix.
			qkv := b.mat(p+"attn_qkv.weight", qDim+2*kvDim, c.Dim)
			l.Wq, l.Wk, l.Wv = rowRange(qkv, 0, qDim), rowRange(qkv, qDim, qDim+kvDim), rowRange(qkv, qDim+kvDim, qDim+2*kvDim)
		} else {
			l.Wq = b.mat(p+"attn_q.weight", qDim, c.Dim)
			l.Wk = b.mat(p+"attn_k.weight", kvDim, c.Dim)
			l.Wv = b.mat(p+"attn_v.weight", kvDim, c.Dim)
		}
		if c.QKVBias || has(p+"attn_q.bias") {
			l.Bq = b.vec(p+"attn_q.bias", qDim)
			l.Bk = b.vec(p+"attn_k.bias", kvDim)
			l.Bv = b.vec(p+"attn_v.bias", kvDim)
		}
		l.Wo = b.mat(p+"attn_output.weight", c.Dim, qDim)
		l.FFNNorm = b.vec(p+"ffn_norm.weight", c.Dim)
		if c.Arch == "phi3" && !has(p+"ffn_gate.weight") {
			// phi3: gate and up stacked by rows in ffn_up, the gate first (llama.cpp's fused SwiGLU).
			gu := b.mat(p+"ffn_up.weight", 2*c.FFN, c.Dim)
			l.Gate, l.Up = rowRange(gu, 0, c.FFN), rowRange(gu, c.FFN, 2*c.FFN)
		} else {
			l.Gate = b.mat(p+"ffn_gate.weight", c.FFN, c.Dim)
			l.Up = b.mat(p+"ffn_up.weight", c.FFN, c.Dim)
		}
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

// UseContext chooses the RoPE frequency divisors for sequences of up to n tokens where the model has
// two sets (phi3's LongRoPE), as llama.cpp does: the long factors when n exceeds the original context
// length (rope.scaling.original_context_length), else the short ones. Load chooses for the trained
// context; the engine calls this with its configured context before making any Runner.
func (m *Model) UseContext(n int) {
	if m.RopeLong == nil {
		return
	}
	if n > m.RopeOrigCtx {
		m.RopeFreqs = m.RopeLong
	} else {
		m.RopeFreqs = m.RopeShort
	}
}

// llama3Divisors computes the divisor of each RoPE frequency under Llama 3's scaling (Meta's
// apply_scaling, as llama.cpp's converter stores in rope_freqs): wavelengths shorter than
// orig_ctx/high_freq_factor keep their frequency, those longer than orig_ctx/low_freq_factor are
// divided by factor, and those between are blended linearly in orig_ctx/wavelength.
func llama3Divisors(c *Config) []float32 {
	half := c.RopeDim / 2
	out := make([]float32, half)
	orig := float64(c.RopeOrigCtx)
	lowWave, highWave := orig/c.RopeLowFreqFac, orig/c.RopeHighFreqFac
	for j := range out {
		freq := 1 / math.Pow(c.RopeBase, float64(2*j)/float64(c.RopeDim))
		wave := 2 * math.Pi / freq
		switch {
		case wave < highWave:
			out[j] = 1
		case wave > lowWave:
			out[j] = float32(c.RopeFactor)
		default:
			smooth := (orig/wave - c.RopeLowFreqFac) / (c.RopeHighFreqFac - c.RopeLowFreqFac)
			out[j] = float32(1 / ((1-smooth)/c.RopeFactor + smooth))
		}
	}
	return out
}

// checkDivisors refuses frequency divisors that would make every angle NaN or infinite.
func checkDivisors(name string, v []float32) error {
	for i, x := range v {
		if !(x > 0) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("model: tensor %q: frequency divisor %d is %g, want a positive number", name, i, x)
		}
	}
	return nil
}

// rowRange is rows [r0, r1) of m, a view of the same bytes.
func rowRange(m kernels.Mat, r0, r1 int) kernels.Mat {
	if m.Data == nil {
		return kernels.Mat{}
	}
	rb := m.RowBytes()
	return kernels.Mat{Type: m.Type, Rows: r1 - r0, Cols: m.Cols, Data: m.Data[r0*rb : r1*rb : r1*rb]}
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
	}
	return 0, fmt.Errorf("tensor type %s is not one edgelm computes with (F32, F16, BF16, Q8_0, Q4_0)", t)
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
