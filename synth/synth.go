// Package synth writes random-weight GGUF models of named shapes, with a real tokenizer copied from a
// vocabulary GGUF, for benchmarks and tests: files of the size and layout of real models that both
// edgelm and llama.cpp load, without having to download any.
//
// Weights are drawn from a normal distribution (std 0.02; the embeddings of gemma-family models 0.1),
// norm weights uniformly from [0.9, 1.1]. The draw is a pure function of the seed, the tensor and the
// row, so a file is the same whatever the number of threads that wrote it.
package synth

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"

	"edgelm/gguf"
	"edgelm/quant"
	"edgelm/quantize"
)

// Shape is a model architecture and its sizes.
type Shape struct {
	Name          string
	Arch          string // "llama", "qwen2", "qwen3", "phi3" or "gemma2"
	Dim           int
	Layers        int
	Heads         int
	KVHeads       int
	HeadDim       int
	FFN           int
	Vocab         int // the vocabulary the shape is documented with; the file uses the vocab GGUF's size
	Context       int
	AttnSoftcap   float32 // gemma2
	FinalSoftcap  float32 // gemma2
	SlidingWindow int     // gemma2
	RopeBase      float32 // 0: the architecture's usual (10000 llama/phi3, 1e6 qwen)
	// Llama3Rope writes rope.scaling.type "llama3" keys (factor 8, low 1, high 4, original context a
	// quarter of Context for the tiny shape, 8192 for the bench one), as llama.cpp's converter
	// would put in a rope_freqs tensor instead.
	Llama3Rope bool
	Tied       bool // no output.weight: the output is the embedding (always so for gemma2)
	// LongRoPE (phi3, as Phi-3.5-mini and Phi-3-mini-128k): rope_factors_short/long tensors, an
	// original context of Context/32 and the attention factor llama.cpp's converter derives from
	// that ratio. The factors are drawn as norm weights are, from [0.9, 1.1].
	LongRoPE bool
}

// Shapes are the named shapes (../shared/REFERENCE.md lists the bench ones). The tiny ones are for
// tests: their FFN width (176) is not a multiple of 32, so ffn_down rows stay F32 when quantized.
var Shapes = []Shape{
	{Name: "bench-1b", Arch: "llama", Dim: 2048, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64, FFN: 8192, Vocab: 32000, Context: 4096},
	{Name: "bench-gemma2", Arch: "gemma2", Dim: 2304, Layers: 26, Heads: 8, KVHeads: 4, HeadDim: 256, FFN: 9216, Vocab: 32000, Context: 8192,
		AttnSoftcap: 50, FinalSoftcap: 30, SlidingWindow: 4096},
	// The shapes of Qwen2.5-0.5B, Qwen3-0.6B, Phi-3-mini and Llama-3.2-1B (with the file's vocabulary).
	{Name: "bench-qwen2", Arch: "qwen2", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64, FFN: 4864, Vocab: 151936, Context: 32768, Tied: true},
	{Name: "bench-qwen3", Arch: "qwen3", Dim: 1024, Layers: 28, Heads: 16, KVHeads: 8, HeadDim: 128, FFN: 3072, Vocab: 151936, Context: 40960, Tied: true},
	{Name: "bench-phi3", Arch: "phi3", Dim: 3072, Layers: 32, Heads: 32, KVHeads: 32, HeadDim: 96, FFN: 8192, Vocab: 32064, Context: 4096},
	{Name: "bench-phi3.5", Arch: "phi3", Dim: 3072, Layers: 32, Heads: 32, KVHeads: 32, HeadDim: 96, FFN: 8192, Vocab: 32064, Context: 131072, LongRoPE: true},
	{Name: "bench-llama3", Arch: "llama", Dim: 2048, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64, FFN: 8192, Vocab: 128256, Context: 131072,
		RopeBase: 500000, Llama3Rope: true, Tied: true},
	{Name: "tiny", Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 176, Vocab: 32000, Context: 512},
	{Name: "tiny-llama3", Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 176, Vocab: 32000, Context: 512, Llama3Rope: true},
	{Name: "tiny-qwen2", Arch: "qwen2", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 176, Vocab: 32000, Context: 512, Tied: true},
	{Name: "tiny-qwen3", Arch: "qwen3", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 32, FFN: 176, Vocab: 32000, Context: 512},
	{Name: "tiny-phi3", Arch: "phi3", Dim: 64, Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 16, FFN: 176, Vocab: 32000, Context: 512},
	{Name: "tiny-phi3.5", Arch: "phi3", Dim: 64, Layers: 2, Heads: 4, KVHeads: 4, HeadDim: 16, FFN: 176, Vocab: 32000, Context: 512, LongRoPE: true},
	{Name: "tiny-gemma2", Arch: "gemma2", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 32, FFN: 176, Vocab: 32000, Context: 512,
		AttnSoftcap: 50, FinalSoftcap: 30, SlidingWindow: 16},
}

// Lookup returns the shape called name.
func Lookup(name string) (Shape, error) {
	var names []string
	for _, s := range Shapes {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Shape{}, fmt.Errorf("synth: unknown shape %q (known: %s)", name, strings.Join(names, ", "))
}

// ParseType maps a type name (f32, f16, q8_0, q4_0; any case) to a GGUF tensor type.
func ParseType(s string) (gguf.Type, error) {
	switch strings.ToLower(s) {
	case "f32":
		return gguf.F32, nil
	case "f16":
		return gguf.F16, nil
	case "q8_0":
		return gguf.Q8_0, nil
	case "q4_0":
		return gguf.Q4_0, nil
	}
	return 0, fmt.Errorf("unknown type %q (want f32, f16, q8_0 or q4_0)", s)
}

// StorageType is the type a tensor of dims is stored as when the file's type is t: vectors (norms)
// stay F32, and so do matrices whose rows do not split into whole blocks of t (llama-quantize's rule).
func StorageType(t gguf.Type, dims []uint64) gguf.Type {
	if len(dims) < 2 || dims[0]%uint64(t.BlockSize()) != 0 {
		return gguf.F32
	}
	return t
}

// Options say what Write makes.
type Options struct {
	Shape Shape
	Type  gguf.Type  // F32, F16, Q8_0 or Q4_0
	Vocab *gguf.File // the tokenizer.* metadata is copied from it; it must stay open until Write returns
	Seed  uint64
}

// tensorSpec is one tensor to generate.
type tensorSpec struct {
	name string
	dims []uint64 // dims[0] is the row length
	norm bool     // 1 ± 0.1 instead of normal
	std  float64
}

func (o *Options) tensors(vocab int) []tensorSpec {
	s := o.Shape
	d, q, kv, ff := uint64(s.Dim), uint64(s.Heads*s.HeadDim), uint64(s.KVHeads*s.HeadDim), uint64(s.FFN)
	embedStd := 0.02
	if strings.HasPrefix(s.Arch, "gemma") {
		embedStd = 0.1
	}
	mat := func(name string, cols, rows uint64) tensorSpec {
		return tensorSpec{name: name, dims: []uint64{cols, rows}, std: 0.02}
	}
	vec := func(name string) tensorSpec { return tensorSpec{name: name, dims: []uint64{d}, norm: true} }
	ts := []tensorSpec{{name: "token_embd.weight", dims: []uint64{d, uint64(vocab)}, std: embedStd}, vec("output_norm.weight")}
	if s.LongRoPE {
		half := []uint64{uint64(s.HeadDim / 2)}
		ts = append(ts, tensorSpec{name: "rope_factors_long.weight", dims: half, norm: true},
			tensorSpec{name: "rope_factors_short.weight", dims: half, norm: true})
	}
	if !s.Tied && s.Arch != "gemma2" {
		ts = append(ts, mat("output.weight", d, uint64(vocab)))
	}
	for i := range s.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts, vec(p+"attn_norm.weight"))
		if s.Arch == "phi3" {
			ts = append(ts, mat(p+"attn_qkv.weight", d, q+2*kv))
		} else {
			ts = append(ts, mat(p+"attn_q.weight", d, q), mat(p+"attn_k.weight", d, kv), mat(p+"attn_v.weight", d, kv))
		}
		if s.Arch == "qwen2" {
			ts = append(ts,
				tensorSpec{name: p + "attn_q.bias", dims: []uint64{q}, std: 0.02},
				tensorSpec{name: p + "attn_k.bias", dims: []uint64{kv}, std: 0.02},
				tensorSpec{name: p + "attn_v.bias", dims: []uint64{kv}, std: 0.02})
		}
		if s.Arch == "qwen3" {
			hd := []uint64{uint64(s.HeadDim)}
			ts = append(ts, tensorSpec{name: p + "attn_q_norm.weight", dims: hd, norm: true},
				tensorSpec{name: p + "attn_k_norm.weight", dims: hd, norm: true})
		}
		ts = append(ts, mat(p+"attn_output.weight", q, d))
		if s.Arch == "gemma2" {
			ts = append(ts, vec(p+"post_attention_norm.weight"))
		}
		ts = append(ts, vec(p+"ffn_norm.weight"))
		if s.Arch == "phi3" {
			ts = append(ts, mat(p+"ffn_up.weight", d, 2*ff))
		} else {
			ts = append(ts, mat(p+"ffn_gate.weight", d, ff), mat(p+"ffn_up.weight", d, ff))
		}
		ts = append(ts, mat(p+"ffn_down.weight", ff, d))
		if s.Arch == "gemma2" {
			ts = append(ts, vec(p+"post_ffw_norm.weight"))
		}
	}
	return ts
}

// Build prepares the file described by o: metadata now, weights generated tensor by tensor when the
// returned writer writes.
func Build(o Options) (*gguf.StreamWriter, error) {
	s := o.Shape
	switch {
	case s.Arch != "llama" && s.Arch != "qwen2" && s.Arch != "qwen3" && s.Arch != "phi3" && s.Arch != "gemma2":
		return nil, fmt.Errorf("synth: shape %q: architecture %q not supported (llama, qwen2, qwen3, phi3, gemma2)", s.Name, s.Arch)
	case s.Dim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.HeadDim <= 0 || s.FFN <= 0 || s.Context <= 0:
		return nil, fmt.Errorf("synth: shape %q has a zero size", s.Name)
	case s.LongRoPE && (s.Arch != "phi3" || s.Context < 64):
		return nil, fmt.Errorf("synth: shape %q: LongRoPE needs phi3 and a context of at least 64", s.Name)
	case s.Heads%s.KVHeads != 0:
		return nil, fmt.Errorf("synth: shape %q: %d heads not a multiple of %d KV heads", s.Name, s.Heads, s.KVHeads)
	case o.Vocab == nil:
		return nil, fmt.Errorf("synth: no vocabulary file")
	}
	ftype, ok := quantize.FileType(o.Type)
	if !ok || o.Type == gguf.BF16 {
		return nil, fmt.Errorf("synth: type %s not supported (f32, f16, q8_0, q4_0)", o.Type)
	}
	tokens, err := o.Vocab.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, fmt.Errorf("synth: vocabulary: %w", err)
	}
	vocab := len(tokens)
	if vocab == 0 {
		return nil, fmt.Errorf("synth: vocabulary has no tokens")
	}

	w := gguf.NewStreamWriter()
	a := s.Arch
	w.Set("general.architecture", a)
	w.Set("general.name", s.Name)
	w.Set("general.file_type", ftype)
	if o.Type == gguf.Q8_0 || o.Type == gguf.Q4_0 {
		w.Set("general.quantization_version", uint32(2))
	}
	w.Set(a+".context_length", uint32(s.Context))
	w.Set(a+".embedding_length", uint32(s.Dim))
	w.Set(a+".block_count", uint32(s.Layers))
	w.Set(a+".feed_forward_length", uint32(s.FFN))
	w.Set(a+".attention.head_count", uint32(s.Heads))
	w.Set(a+".attention.head_count_kv", uint32(s.KVHeads))
	w.Set(a+".attention.key_length", uint32(s.HeadDim))
	w.Set(a+".attention.value_length", uint32(s.HeadDim))
	w.Set(a+".vocab_size", uint32(vocab))
	switch a {
	case "llama", "phi3":
		w.Set(a+".rope.dimension_count", uint32(s.HeadDim))
		w.Set(a+".rope.freq_base", float32(10000))
		w.Set(a+".attention.layer_norm_rms_epsilon", float32(1e-5))
	case "qwen2", "qwen3":
		w.Set(a+".rope.freq_base", float32(1e6))
		w.Set(a+".attention.layer_norm_rms_epsilon", float32(1e-6))
	case "gemma2":
		w.Set(a+".attention.layer_norm_rms_epsilon", float32(1e-6))
		w.Set(a+".attn_logit_softcapping", s.AttnSoftcap)
		w.Set(a+".final_logit_softcapping", s.FinalSoftcap)
		w.Set(a+".attention.sliding_window", uint32(s.SlidingWindow))
	}
	if s.RopeBase > 0 {
		w.Set(a+".rope.freq_base", s.RopeBase)
	}
	if s.Llama3Rope {
		w.Set(a+".rope.scaling.type", "llama3")
		w.Set(a+".rope.scaling.factor", float32(8))
		w.Set(a+".rope.scaling.low_freq_factor", float32(1))
		w.Set(a+".rope.scaling.high_freq_factor", float32(4))
		w.Set(a+".rope.scaling.original_context_length", uint32(min(8192, s.Context/4)))
	}
	if s.LongRoPE {
		orig := s.Context / 32
		w.Set(a+".rope.scaling.original_context_length", uint32(orig))
		w.Set(a+".rope.scaling.attn_factor", float32(math.Sqrt(1+math.Log(32)/math.Log(float64(orig)))))
	}
	for _, kv := range o.Vocab.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			w.SetValue(kv.Key, kv.Value)
		}
	}
	for i, t := range o.tensors(vocab) {
		st := StorageType(o.Type, t.dims)
		w.AddTensor(t.name, st, t.dims, func(dst []byte) error {
			fill(dst, st, t, o.Seed, uint64(i))
			return nil
		})
	}
	if err := w.Err(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return w, nil
}

// Write writes the model described by o to path (atomically: a temporary file renamed into place).
// A path naming the vocab file (by device and inode: symlinks and hard links too) is refused.
func Write(path string, o Options) error {
	if o.Vocab != nil && o.Vocab.Mapping() != nil && o.Vocab.Mapping().FileInfo() != nil {
		if fi, err := os.Stat(path); err == nil && os.SameFile(fi, o.Vocab.Mapping().FileInfo()) {
			return fmt.Errorf("synth: output %s is the vocab file; choose another output path", path)
		}
	}
	w, err := Build(o)
	if err != nil {
		return err
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// chunkElems is the work unit of fill: about this many elements, in whole rows. It depends on the
// row length only, so the random streams (one per chunk) are the same for any number of threads.
const chunkElems = 1 << 16

// fill generates tensor t (index idx) as type st into dst, on all CPUs.
func fill(dst []byte, st gguf.Type, t tensorSpec, seed, idx uint64) {
	rowLen := int(t.dims[0])
	rows := 1
	for _, d := range t.dims[1:] {
		rows *= int(d)
	}
	rowBytes := len(dst) / rows
	per := max(1, chunkElems/rowLen)
	chunks := (rows + per - 1) / per
	workers := min(runtime.GOMAXPROCS(0), chunks)
	var next sync.Mutex
	c := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, per*rowLen)
			for {
				next.Lock()
				k := c
				c++
				next.Unlock()
				if k >= chunks {
					return
				}
				r0, r1 := k*per, min(rows, (k+1)*per)
				x := buf[:(r1-r0)*rowLen]
				rng := rand.New(rand.NewPCG(seed, idx<<32|uint64(k)))
				if t.norm {
					for i := range x {
						x[i] = float32(0.9 + 0.2*rng.Float64())
					}
				} else {
					for i := range x {
						x[i] = float32(rng.NormFloat64() * t.std)
					}
				}
				encode(dst[r0*rowBytes:r1*rowBytes], st, x)
			}
		}()
	}
	wg.Wait()
}

// encode stores x as type st into dst (exactly its size).
func encode(dst []byte, st gguf.Type, x []float32) {
	switch st {
	case gguf.F32:
		for i, v := range x {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case gguf.F16:
		for i, v := range x {
			binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(v))
		}
	case gguf.Q8_0:
		quant.QuantizeQ8_0(dst, x)
	case gguf.Q4_0:
		quant.QuantizeQ4_0(dst, x)
	default:
		panic(fmt.Sprintf("synth: encode: type %s", st)) // Build admits only the types above
	}
}
