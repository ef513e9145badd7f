package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/kvcache"
	"edgelm/quant"
)

// shape of a random test model.
type shape struct {
	arch                                 string
	dim, layers, heads, kvHeads, headDim int
	ffn, vocab, window                   int
	wtype                                gguf.Type
	// rope variant: "" plain; "freqs" a rope_freqs tensor (llama 3.1 as converted by llama.cpp);
	// "llama3" rope.scaling.type llama3 keys only; "long" or "short" phi3 factors with an original
	// context below or at the trained one.
	rope string
}

// randomModel writes a GGUF file of random weights for s with the gguf writer and parses it back.
func randomModel(t testing.TB, s shape, seed uint64) *gguf.File {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	w := gguf.NewWriter()
	a := s.arch
	w.Set("general.architecture", a)
	w.Set(a+".embedding_length", uint32(s.dim))
	w.Set(a+".block_count", uint32(s.layers))
	w.Set(a+".attention.head_count", uint32(s.heads))
	w.Set(a+".attention.head_count_kv", uint32(s.kvHeads))
	w.Set(a+".attention.key_length", uint32(s.headDim))
	w.Set(a+".attention.value_length", uint32(s.headDim))
	w.Set(a+".feed_forward_length", uint32(s.ffn))
	w.Set(a+".context_length", uint32(64))
	w.Set(a+".attention.layer_norm_rms_epsilon", float32(1e-6))
	w.Set(a+".rope.freq_base", float32(10000))
	if s.window > 0 {
		w.Set(a+".attention.sliding_window", uint32(s.window))
	}
	if a == "gemma2" {
		w.Set(a+".attn_logit_softcapping", float32(5))
		w.Set(a+".final_logit_softcapping", float32(3))
	}
	if a == "gemma3" || a == "qwen2" || a == "qwen3" {
		w.Set(a+".rope.freq_base", float32(1e6))
	}
	vec := func(name string, n int, center float32) {
		v := make([]float32, n)
		for i := range v {
			v[i] = center + float32(rng.NormFloat64())*0.1
		}
		w.AddTensor(name, gguf.F32, []uint64{uint64(n)}, f32bytes(v))
	}
	// divisors writes rope_dim/2 frequency divisors in [1, 6).
	divisors := func(name string) {
		v := make([]float32, s.headDim/2)
		for i := range v {
			v[i] = 1 + 5*rng.Float32()
		}
		w.AddTensor(name, gguf.F32, []uint64{uint64(len(v))}, f32bytes(v))
	}
	switch s.rope {
	case "freqs":
		divisors("rope_freqs.weight")
	case "llama3":
		// Small original context so that the test's head dims fall in all three bands.
		w.Set(a+".rope.scaling.type", "llama3")
		w.Set(a+".rope.scaling.factor", float32(8))
		w.Set(a+".rope.scaling.low_freq_factor", float32(1))
		w.Set(a+".rope.scaling.high_freq_factor", float32(4))
		w.Set(a+".rope.scaling.original_context_length", uint32(64))
	case "long", "short":
		orig := 32 // below the trained 64: the long factors are used
		if s.rope == "short" {
			orig = 64
		}
		w.Set(a+".rope.scaling.original_context_length", uint32(orig))
		w.Set(a+".rope.scaling.attn_factor", float32(1.19))
		divisors("rope_factors_long.weight")
		divisors("rope_factors_short.weight")
	}
	mat := func(name string, rows, cols int, std float64) {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		typ := s.wtype
		if cols%32 != 0 {
			typ = gguf.F32
		}
		w.AddTensor(name, typ, []uint64{uint64(cols), uint64(rows)}, encode(typ, v))
	}
	qd, kvd := s.heads*s.headDim, s.kvHeads*s.headDim
	mat("token_embd.weight", s.vocab, s.dim, 0.5)
	vec("output_norm.weight", s.dim, 1)
	if a == "llama" || a == "qwen3" || a == "phi3" { // qwen2 ties its output to the embedding
		mat("output.weight", s.vocab, s.dim, 0.2)
	}
	for i := 0; i < s.layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		vec(p+"attn_norm.weight", s.dim, 1)
		if a == "phi3" {
			mat(p+"attn_qkv.weight", qd+2*kvd, s.dim, 0.3)
		} else {
			mat(p+"attn_q.weight", qd, s.dim, 0.3)
			mat(p+"attn_k.weight", kvd, s.dim, 0.3)
			mat(p+"attn_v.weight", kvd, s.dim, 0.3)
		}
		if a == "qwen2" {
			for _, b := range []struct {
				name string
				n    int
			}{{"attn_q.bias", qd}, {"attn_k.bias", kvd}, {"attn_v.bias", kvd}} {
				v := make([]float32, b.n)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				w.AddTensor(p+b.name, gguf.F32, []uint64{uint64(b.n)}, f32bytes(v))
			}
		}
		mat(p+"attn_output.weight", s.dim, qd, 0.2)
		vec(p+"ffn_norm.weight", s.dim, 1)
		if a == "phi3" {
			mat(p+"ffn_up.weight", 2*s.ffn, s.dim, 0.2)
		} else {
			mat(p+"ffn_gate.weight", s.ffn, s.dim, 0.2)
			mat(p+"ffn_up.weight", s.ffn, s.dim, 0.2)
		}
		mat(p+"ffn_down.weight", s.dim, s.ffn, 0.2)
		if a == "gemma2" || a == "gemma3" {
			vec(p+"post_attention_norm.weight", s.dim, 1)
			vec(p+"post_ffw_norm.weight", s.dim, 1)
		}
		if a == "gemma3" || a == "qwen3" {
			vec(p+"attn_q_norm.weight", s.headDim, 1)
			vec(p+"attn_k_norm.weight", s.headDim, 1)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func encode(t gguf.Type, v []float32) []byte {
	switch t {
	case gguf.F32:
		return f32bytes(v)
	case gguf.F16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], quant.F32ToF16(x))
		}
		return b
	case gguf.Q8_0:
		b := make([]byte, len(v)/32*quant.Q8_0Bytes)
		quant.QuantizeQ8_0(b, v)
		return b
	case gguf.Q4_0:
		b := make([]byte, len(v)/32*quant.Q4_0Bytes)
		quant.QuantizeQ4_0(b, v)
		return b
	}
	panic("type")
}

// ref is a straightforward float64 implementation of the same equations, written from the papers and
// model cards, not from the Runner: it recomputes the whole sequence and returns the logits after
// every token.
type ref struct {
	c       *Config
	weights func(name string) ([]float64, int, int) // values, rows, cols
	quantX  bool                                    // quantize activations to Q8_0 before products with quantized weights
	f       *gguf.File

	// RoPE, read from the file here rather than taken from Config.
	neox   bool      // every family but llama rotates halves
	div    []float64 // divisor of each frequency (1 without scaling)
	mscale float64   // phi3's attn_factor on cos and sin
}

func newRef(t testing.TB, f *gguf.File, c *Config) *ref {
	r := &ref{c: c, f: f, neox: c.Arch != "llama", mscale: 1}
	r.weights = func(name string) ([]float64, int, int) {
		tn, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("reference: no tensor %s", name)
		}
		cols := int(tn.Dims[0])
		rows := 1
		if len(tn.Dims) > 1 {
			rows = int(tn.Dims[1])
		}
		n := rows * cols
		v32 := make([]float32, n)
		switch tn.Type {
		case gguf.F32:
			for i := range v32 {
				v32[i] = math.Float32frombits(binary.LittleEndian.Uint32(tn.Data[4*i:]))
			}
		case gguf.F16:
			for i := range v32 {
				v32[i] = quant.F16ToF32(binary.LittleEndian.Uint16(tn.Data[2*i:]))
			}
		case gguf.Q8_0:
			quant.DequantizeQ8_0(v32, tn.Data)
		case gguf.Q4_0:
			quant.DequantizeQ4_0(v32, tn.Data)
		default:
			t.Fatalf("reference: type %v", tn.Type)
		}
		v := make([]float64, n)
		for i, x := range v32 {
			v[i] = float64(x)
		}
		return v, rows, cols
	}
	r.initRope()
	return r
}

// initRope reads the RoPE variant from the file's keys and tensors.
func (r *ref) initRope() {
	c, f := r.c, r.f
	a := c.Arch
	meta := func(key string, def float64) float64 {
		if v, ok := f.Float(a + "." + key); ok {
			return v
		}
		return def
	}
	d := c.RopeDim
	r.div = make([]float64, d/2)
	for j := range r.div {
		r.div[j] = 1
	}
	tensor := func(name string) bool {
		if _, ok := f.Tensor(name); !ok {
			return false
		}
		v, _, _ := r.weights(name)
		copy(r.div, v)
		return true
	}
	ctx, orig := meta("context_length", 0), meta("rope.scaling.original_context_length", 0)
	scaling, _ := f.String(a + ".rope.scaling.type")
	switch {
	case tensor("rope_freqs.weight"):
	case scaling == "llama3":
		// Meta's apply_scaling: keep high frequencies, slow low ones by factor, blend between.
		factor, lo, hi := meta("rope.scaling.factor", 0), meta("rope.scaling.low_freq_factor", 0), meta("rope.scaling.high_freq_factor", 0)
		base := meta("rope.freq_base", 0)
		for j := range r.div {
			freq := math.Pow(base, -float64(2*j)/float64(d))
			wavelen := 2 * math.Pi / freq
			newFreq := freq
			if wavelen > orig/lo {
				newFreq = freq / factor
			} else if wavelen >= orig/hi {
				smooth := (orig/wavelen - lo) / (hi - lo)
				newFreq = (1-smooth)*freq/factor + smooth*freq
			}
			r.div[j] = freq / newFreq
		}
	case ctx > orig && tensor("rope_factors_long.weight"):
		r.mscale = meta("rope.scaling.attn_factor", 1)
	case tensor("rope_factors_short.weight"):
		r.mscale = meta("rope.scaling.attn_factor", 1)
	}
}

// matvecBias is matvec plus the named bias when the file has it.
func (r *ref) matvecBias(name, bias string, x []float64) []float64 {
	out := r.matvec(name, x)
	if _, ok := r.f.Tensor(bias); ok {
		b, _, _ := r.weights(bias)
		for i := range out {
			out[i] += b[i]
		}
	}
	return out
}

// matvec is W·x for the named (rows, cols) weight; quantized weights see x rounded as llama.cpp does.
func (r *ref) matvec(name string, x []float64) []float64 {
	w, rows, cols := r.weights(name)
	tn, _ := r.f.Tensor(name)
	if tn.Type == gguf.Q8_0 || tn.Type == gguf.Q4_0 {
		x32 := make([]float32, len(x))
		for i := range x {
			x32[i] = float32(x[i])
		}
		q := make([]byte, len(x)/32*quant.Q8_0Bytes)
		quant.QuantizeQ8_0(q, x32)
		quant.DequantizeQ8_0(x32, q)
		x = make([]float64, len(x))
		for i := range x {
			x[i] = float64(x32[i])
		}
	}
	out := make([]float64, rows)
	for i := 0; i < rows; i++ {
		s := 0.0
		for j := 0; j < cols; j++ {
			s += w[i*cols+j] * x[j]
		}
		out[i] = s
	}
	return out
}

func (r *ref) rmsnorm(x []float64, name string) []float64 {
	w, _, _ := r.weights(name)
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	k := 1 / math.Sqrt(ss/float64(len(x))+float64(r.c.RMSEps))
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] * k * w[i]
	}
	return out
}

// rope rotates head vector x (length head_dim) for position p.
func (r *ref) rope(x []float64, p int, base float64, scale float64) {
	d := r.c.RopeDim
	for j := 0; j < d/2; j++ {
		theta := float64(p) * scale / math.Pow(base, float64(2*j)/float64(d)) / r.div[j]
		a, b := 2*j, 2*j+1
		if r.neox {
			a, b = j, j+d/2
		}
		co, si := r.mscale*math.Cos(theta), r.mscale*math.Sin(theta)
		x0, x1 := x[a], x[b]
		x[a] = x0*co - x1*si
		x[b] = x0*si + x1*co
	}
}

func (r *ref) logits(tokens []int32) [][]float64 {
	c := r.c
	hs := r.hidden(tokens)
	out := make([][]float64, len(hs))
	outName := "output.weight"
	if _, ok := r.f.Tensor(outName); !ok {
		outName = "token_embd.weight"
	}
	for i, h := range hs {
		out[i] = r.matvec(outName, h)
		if c.FinalSoftcap > 0 {
			for k := range out[i] {
				out[i][k] = float64(c.FinalSoftcap) * math.Tanh(out[i][k]/float64(c.FinalSoftcap))
			}
		}
	}
	return out
}

// hidden is each token's final hidden state, after the output norm.
func (r *ref) hidden(tokens []int32) [][]float64 {
	c := r.c
	n := len(tokens)
	emb, _, dim := r.weights("token_embd.weight")
	xs := make([][]float64, n)
	for i, t := range tokens {
		xs[i] = append([]float64(nil), emb[int(t)*dim:(int(t)+1)*dim]...)
		if strings.HasPrefix(c.Arch, "gemma") {
			for k := range xs[i] {
				xs[i][k] *= math.Sqrt(float64(dim))
			}
		}
	}
	hd := c.HeadDim
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		// gemma2 alternates local and global layers starting with local; gemma3 has five local
		// layers, then one global; local gemma3 layers rotate with base 10000.
		local := (c.Arch == "gemma2" && l%2 == 0) || (c.Arch == "gemma3" && l%6 != 5)
		base, scale := c.RopeBase, 1.0
		if local && c.Arch == "gemma3" {
			base = 10000
		}
		qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range xs {
			h := r.rmsnorm(xs[i], p+"attn_norm.weight")
			if _, fused := r.f.Tensor(p + "attn_qkv.weight"); fused {
				qkv := r.matvec(p+"attn_qkv.weight", h)
				qd, kvd := c.Heads*hd, c.KVHeads*hd
				qs[i], ks[i], vs[i] = qkv[:qd], qkv[qd:qd+kvd], qkv[qd+kvd:]
			} else {
				qs[i] = r.matvecBias(p+"attn_q.weight", p+"attn_q.bias", h)
				ks[i] = r.matvecBias(p+"attn_k.weight", p+"attn_k.bias", h)
				vs[i] = r.matvecBias(p+"attn_v.weight", p+"attn_v.bias", h)
			}
			qkNorm := c.Arch == "gemma3" || c.Arch == "qwen3"
			for hh := 0; hh < c.Heads; hh++ {
				q := qs[i][hh*hd : (hh+1)*hd]
				if qkNorm {
					copy(q, r.rmsnorm(q, p+"attn_q_norm.weight"))
				}
				r.rope(q, i, base, scale)
			}
			for hh := 0; hh < c.KVHeads; hh++ {
				k := ks[i][hh*hd : (hh+1)*hd]
				if qkNorm {
					copy(k, r.rmsnorm(k, p+"attn_k_norm.weight"))
				}
				r.rope(k, i, base, scale)
			}
		}
		for i := range xs {
			att := make([]float64, c.Heads*hd)
			for hh := 0; hh < c.Heads; hh++ {
				kh := hh * c.KVHeads / c.Heads
				scores := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					s := 0.0
					for d := 0; d < hd; d++ {
						s += qs[i][hh*hd+d] * ks[j][kh*hd+d]
					}
					s /= math.Sqrt(float64(hd))
					if c.AttnSoftcap > 0 {
						s = float64(c.AttnSoftcap) * math.Tanh(s/float64(c.AttnSoftcap))
					}
					if local && i-j >= 4 { // the test models' window
						s = math.Inf(-1)
					}
					scores[j] = s
					mx = math.Max(mx, s)
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - mx)
					sum += scores[j]
				}
				for j := range scores {
					for d := 0; d < hd; d++ {
						att[hh*hd+d] += scores[j] / sum * vs[j][kh*hd+d]
					}
				}
			}
			o := r.matvec(p+"attn_output.weight", att)
			if c.PostNorms {
				o = r.rmsnorm(o, p+"post_attention_norm.weight")
			}
			for k := range o {
				xs[i][k] += o[k]
			}
		}
		for i := range xs {
			h := r.rmsnorm(xs[i], p+"ffn_norm.weight")
			var g, u []float64
			if _, ok := r.f.Tensor(p + "ffn_gate.weight"); ok {
				g, u = r.matvec(p+"ffn_gate.weight", h), r.matvec(p+"ffn_up.weight", h)
			} else { // phi3: gate rows, then up rows
				gu := r.matvec(p+"ffn_up.weight", h)
				g, u = gu[:len(gu)/2], gu[len(gu)/2:]
			}
			for k := range g {
				if c.Act == GELU {
					g[k] = 0.5 * g[k] * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(g[k]+0.044715*g[k]*g[k]*g[k])))
				} else {
					g[k] = g[k] / (1 + math.Exp(-g[k]))
				}
				g[k] *= u[k]
			}
			o := r.matvec(p+"ffn_down.weight", g)
			if c.PostNorms {
				o = r.rmsnorm(o, p+"post_ffw_norm.weight")
			}
			for k := range o {
				xs[i][k] += o[k]
			}
		}
	}
	out := make([][]float64, n)
	for i := range xs {
		out[i] = r.rmsnorm(xs[i], "output_norm.weight")
	}
	return out
}

var shapes = []shape{
	{arch: "llama", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.F32},
	{arch: "llama", dim: 64, layers: 2, heads: 4, kvHeads: 4, headDim: 16, ffn: 80, vocab: 50, wtype: gguf.F16},
	{arch: "llama", dim: 64, layers: 2, heads: 4, kvHeads: 1, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.Q8_0},
	{arch: "llama", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.Q4_0},
	{arch: "gemma", dim: 64, layers: 2, heads: 2, kvHeads: 1, headDim: 32, ffn: 96, vocab: 50, wtype: gguf.F32},
	{arch: "gemma2", dim: 64, layers: 3, heads: 4, kvHeads: 2, headDim: 32, ffn: 96, vocab: 50, window: 4, wtype: gguf.F32},
	{arch: "gemma3", dim: 64, layers: 7, heads: 4, kvHeads: 2, headDim: 32, ffn: 96, vocab: 50, window: 4, wtype: gguf.F32},
	{arch: "gemma3", dim: 64, layers: 7, heads: 4, kvHeads: 2, headDim: 32, ffn: 96, vocab: 50, window: 4, wtype: gguf.Q8_0},
	{arch: "llama", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.F32, rope: "freqs"},
	{arch: "llama", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.F16, rope: "llama3"},
	{arch: "qwen2", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.F32},
	{arch: "qwen2", dim: 64, layers: 2, heads: 4, kvHeads: 1, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.Q8_0},
	{arch: "qwen3", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 32, ffn: 96, vocab: 50, wtype: gguf.F32},
	{arch: "qwen3", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 32, ffn: 96, vocab: 50, wtype: gguf.F16},
	{arch: "phi3", dim: 64, layers: 2, heads: 4, kvHeads: 4, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.F32},
	{arch: "phi3", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.F32, rope: "long"},
	{arch: "phi3", dim: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 50, wtype: gguf.Q8_0, rope: "short"},
}

// TestForwardMatchesReference runs each architecture three ways — prefill then one-token decodes
// against the cache, the whole sequence recomputed every step (no cache), and the float64 reference —
// and requires the same logits at every position.
func TestForwardMatchesReference(t *testing.T) {
	for _, s := range shapes {
		t.Run(fmt.Sprintf("%s/%v/%s", s.arch, s.wtype, s.rope), func(t *testing.T) {
			f := randomModel(t, s, 1)
			m, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			const n, prompt = 12, 5
			tokens := make([]int32, n)
			for i := range tokens {
				tokens[i] = int32(rng.IntN(s.vocab))
			}
			want := newRef(t, f, &m.Config).logits(tokens)

			tol := 2e-3 // float32 sums against float64 ones
			if s.wtype == gguf.Q8_0 || s.wtype == gguf.Q4_0 {
				// An activation within 1e-7 of a rounding boundary of its 8-bit quantization may round
				// one way in float32 and the other in float64: one step of one element, which these
				// large random weights amplify to a few percent of a logit. Allow that, not more.
				tol = 0.15
			}
			for _, threads := range []int{1, 2} {
				pool := kernels.NewPool(threads)
				defer pool.Close()
				r := NewRunner(m, pool)
				seq := kvcache.NewSeq(kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}, 64)
				// Prefill: logits for every prompt token.
				b := &Batch{Logits: make([]bool, prompt)}
				for i := 0; i < prompt; i++ {
					b.Tokens = append(b.Tokens, tokens[i])
					b.Pos = append(b.Pos, int32(i))
					b.Seqs = append(b.Seqs, seq)
					b.Logits[i] = true
				}
				got := make([]float32, prompt*m.Vocab)
				if err := r.Forward(b, got); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < prompt; i++ {
					compare(t, fmt.Sprintf("threads %d prefill pos %d", threads, i), got[i*m.Vocab:(i+1)*m.Vocab], want[i], tol)
				}
				if r.Shapes[0].MLP != prompt {
					t.Errorf("prefill MLP rows %d, want %d", r.Shapes[0].MLP, prompt)
				}
				// Decode: one token at a time against the cache.
				lg := make([]float32, m.Vocab)
				for i := prompt; i < n; i++ {
					b := &Batch{Tokens: tokens[i : i+1], Pos: []int32{int32(i)}, Seqs: []*kvcache.Seq{seq}}
					if err := r.Forward(b, lg); err != nil {
						t.Fatal(err)
					}
					compare(t, fmt.Sprintf("threads %d decode pos %d", threads, i), lg, want[i], tol)
					if r.Shapes[0].MLP != 1 {
						t.Errorf("decode MLP rows %d, want 1", r.Shapes[0].MLP)
					}
					// No cache: the whole sequence again in a fresh cache.
					fresh := kvcache.NewSeq(kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}, 64)
					all := &Batch{Tokens: tokens[:i+1], Seqs: make([]*kvcache.Seq, i+1)}
					for k := 0; k <= i; k++ {
						all.Pos = append(all.Pos, int32(k))
						all.Seqs[k] = fresh
					}
					nc := make([]float32, m.Vocab)
					if err := r.Forward(all, nc); err != nil {
						t.Fatal(err)
					}
					compare(t, fmt.Sprintf("threads %d no-cache pos %d", threads, i), nc, want[i], tol)
				}
				if seq.Len() != n {
					t.Errorf("cache holds %d tokens, want %d", seq.Len(), n)
				}
			}
		})
	}
}

// compare requires |got-want| <= tol*(1+|want|) elementwise, and a mean error far below tol.
func compare(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	sum := 0.0
	for k := range want {
		d := math.Abs(float64(got[k]) - want[k])
		if d > tol*(1+math.Abs(want[k])) || math.IsNaN(float64(got[k])) {
			t.Fatalf("%s: logit %d = %g, reference %g", what, k, got[k], want[k])
		}
		sum += d
	}
	if mean := sum / float64(len(want)); mean > tol/5 {
		t.Fatalf("%s: mean logit error %g above %g", what, mean, tol/5)
	}
}

// TestBatchOfSequences checks that a continuous-batching step (one token of each of several
// sequences) gives each sequence what it would get alone.
func TestBatchOfSequences(t *testing.T) {
	s := shapes[0]
	f := randomModel(t, s, 2)
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(m, nil)
	sh := kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}
	prompts := [][]int32{{1, 2, 3}, {4, 5}, {6, 7, 8, 9}}
	next := []int32{10, 11, 12}
	alone := make([][]float32, len(prompts))
	seqs := make([]*kvcache.Seq, len(prompts))
	for i, p := range prompts {
		one := kvcache.NewSeq(sh, 16)
		seqs[i] = kvcache.NewSeq(sh, 16)
		for _, sq := range []*kvcache.Seq{one, seqs[i]} {
			b := &Batch{Tokens: p, Seqs: make([]*kvcache.Seq, len(p))}
			for k := range p {
				b.Pos = append(b.Pos, int32(k))
				b.Seqs[k] = sq
			}
			if err := r.Forward(b, make([]float32, m.Vocab)); err != nil {
				t.Fatal(err)
			}
		}
		alone[i] = make([]float32, m.Vocab)
		b := &Batch{Tokens: next[i : i+1], Pos: []int32{int32(len(p))}, Seqs: []*kvcache.Seq{one}}
		if err := r.Forward(b, alone[i]); err != nil {
			t.Fatal(err)
		}
	}
	b := &Batch{Tokens: next, Seqs: seqs, Logits: []bool{true, true, true}}
	for _, p := range prompts {
		b.Pos = append(b.Pos, int32(len(p)))
	}
	got := make([]float32, 3*m.Vocab)
	if err := r.Forward(b, got); err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		for k := 0; k < m.Vocab; k++ {
			if d := math.Abs(float64(got[i*m.Vocab+k] - alone[i][k])); d > 1e-4 {
				t.Fatalf("sequence %d logit %d: batched %g, alone %g", i, k, got[i*m.Vocab+k], alone[i][k])
			}
		}
	}
}

// TestLoadErrors checks that a model the runner cannot run is refused with an error naming why.
func TestLoadErrors(t *testing.T) {
	w := gguf.NewWriter()
	w.Set("general.architecture", "mamba")
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(f); err == nil || !bytes.Contains([]byte(err.Error()), []byte(`unknown architecture "mamba"`)) {
		t.Errorf("unknown architecture: got %v", err)
	}
}

// TestConfigErrors: RoPE settings edgelm cannot compute as written are refused with the key named.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		kv   map[string]any
		want string
	}{
		{map[string]any{"rope.scaling.type": "yarn", "rope.scaling.factor": float32(4)}, `rope.scaling.type "yarn" is not supported`},
		{map[string]any{"rope.scaling.type": "dynamic"}, `rope.scaling.type "dynamic" is not supported`},
		{map[string]any{"rope.scaling.type": "llama3", "rope.scaling.low_freq_factor": float32(4)}, "llama3 rope scaling"},
		{map[string]any{"rope.scaling.attn_factor": float32(1e9)}, "rope attention factor"},
	} {
		w := gguf.NewWriter()
		w.Set("general.architecture", "phi3")
		for k, v := range map[string]any{"embedding_length": uint32(64), "block_count": uint32(1), "attention.head_count": uint32(4), "feed_forward_length": uint32(96)} {
			w.Set("phi3."+k, v)
		}
		for k, v := range c.kv {
			w.Set("phi3."+k, v)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadConfig(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error containing %q", c.kv, err, c.want)
		}
	}
}

// TestPrefillBlocksSameBits: with caches whose rows are decoded (f16, q8_0), two prompts prefilled in
// one batch (their tokens attended in blocks of consecutive tokens of one sequence) give, at each
// prompt's last token, the logits that feeding the prompts one token at a time gives, bit for bit;
// a batch that interleaves the two sequences must not put them in one block.
func TestPrefillBlocksSameBits(t *testing.T) {
	s := shapes[0]
	f := randomModel(t, s, 2)
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(m, kernels.NewPool(2))
	prompts := [][]int32{{1, 2, 3, 4, 5, 6, 7}, {8, 9, 10, 11, 12}}
	for _, typ := range []kvcache.Type{kvcache.F16, kvcache.Q8_0} {
		sh := kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim, TypeK: typ, TypeV: typ}
		want := make([][]float32, len(prompts))
		for i, p := range prompts {
			sq := kvcache.NewSeq(sh, 16)
			want[i] = make([]float32, m.Vocab)
			for k, tok := range p {
				b := &Batch{Tokens: []int32{tok}, Pos: []int32{int32(k)}, Seqs: []*kvcache.Seq{sq}}
				if err := r.Forward(b, want[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, interleave := range []bool{false, true} {
			seqs := []*kvcache.Seq{kvcache.NewSeq(sh, 16), kvcache.NewSeq(sh, 16)}
			b := &Batch{}
			last := make([]int, len(prompts))
			add := func(i, k int) {
				b.Tokens = append(b.Tokens, prompts[i][k])
				b.Pos = append(b.Pos, int32(k))
				b.Seqs = append(b.Seqs, seqs[i])
				b.Logits = append(b.Logits, k == len(prompts[i])-1)
				if k == len(prompts[i])-1 {
					last[i] = len(b.Tokens) - 1
				}
			}
			if interleave {
				for k := 0; k < 7; k++ {
					for i := range prompts {
						if k < len(prompts[i]) {
							add(i, k)
						}
					}
				}
			} else {
				for i, p := range prompts {
					for k := range p {
						add(i, k)
					}
				}
			}
			got := make([]float32, len(prompts)*m.Vocab)
			if err := r.Forward(b, got); err != nil {
				t.Fatal(err)
			}
			// Logits rows come in batch order of the entries that asked for them.
			row := 0
			for e := range b.Tokens {
				if !b.Logits[e] {
					continue
				}
				i := 0
				if e == last[1] {
					i = 1
				}
				for k := 0; k < m.Vocab; k++ {
					if g, w := got[row*m.Vocab+k], want[i][k]; math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("%s interleave %v: prompt %d logit %d: %v prefilled, %v fed one by one", typ, interleave, i, k, g, w)
					}
				}
				row++
			}
		}
	}
}

// TestHiddenStates asks one prefill for the final hidden states of some tokens, the logits of
// others and both of a few, and compares the hidden states with the float64 reference and the
// logits with those of a step that asks for logits only.
func TestHiddenStates(t *testing.T) {
	for _, s := range shapes {
		t.Run(fmt.Sprintf("%s/%v", s.arch, s.wtype), func(t *testing.T) {
			f := randomModel(t, s, 5)
			m, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if m.Pooling != PoolMean {
				t.Errorf("pooling %v without pooling_type, want mean", m.Pooling)
			}
			const n = 9
			tokens := make([]int32, n)
			for i := range tokens {
				tokens[i] = int32((i*7 + 3) % s.vocab)
			}
			want := newRef(t, f, &m.Config).hidden(tokens)
			tol := 2e-3
			if s.wtype == gguf.Q8_0 || s.wtype == gguf.Q4_0 {
				tol = 0.15 // see TestForwardMatchesReference
			}
			shape := kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}
			batch := func(logits, hidden func(i int) bool) *Batch {
				b := &Batch{Logits: make([]bool, n), Hidden: make([]bool, n)}
				seq := kvcache.NewSeq(shape, 64)
				for i := 0; i < n; i++ {
					b.Tokens = append(b.Tokens, tokens[i])
					b.Pos = append(b.Pos, int32(i))
					b.Seqs = append(b.Seqs, seq)
					b.Logits[i], b.Hidden[i] = logits(i), hidden(i)
				}
				return b
			}
			r := NewRunner(m, nil)
			b := batch(func(i int) bool { return i%3 == 0 }, func(i int) bool { return i%2 == 0 })
			b.HiddenOut = make([]float32, 5*m.Dim)
			lg := make([]float32, 3*m.Vocab)
			if err := r.Forward(b, lg); err != nil {
				t.Fatal(err)
			}
			for h, i := 0, 0; i < n; i += 2 {
				compare(t, fmt.Sprintf("hidden state of token %d", i), b.HiddenOut[h*m.Dim:(h+1)*m.Dim], want[i], tol)
				h++
			}
			only := batch(func(i int) bool { return i%3 == 0 }, func(int) bool { return false })
			only.Hidden = nil
			lg2 := make([]float32, 3*m.Vocab)
			if err := r.Forward(only, lg2); err != nil {
				t.Fatal(err)
			}
			for k := range lg {
				if lg[k] != lg2[k] {
					t.Fatalf("logit %d: %g with hidden states asked, %g without", k, lg[k], lg2[k])
				}
			}
			// Hidden states alone: no logits buffer needed.
			hs := batch(func(int) bool { return false }, func(i int) bool { return i == n-1 })
			hs.HiddenOut = make([]float32, m.Dim)
			if err := r.Forward(hs, nil); err != nil {
				t.Fatal(err)
			}
			compare(t, "hidden state of the last token alone", hs.HiddenOut, want[n-1], tol)
			short := batch(func(int) bool { return false }, func(int) bool { return true })
			short.HiddenOut = make([]float32, n*m.Dim-1)
			if err := r.Forward(short, nil); err == nil {
				t.Error("a hidden-state buffer one float short was accepted")
			}
		})
	}
}

// TestPoolingType reads <arch>.pooling_type with llama.cpp's numbering and refuses unknown ones.
func TestPoolingType(t *testing.T) {
	for _, tc := range []struct {
		v    uint32
		want Pooling
		err  bool
	}{{0, PoolNone, false}, {1, PoolMean, false}, {2, PoolCLS, false}, {3, PoolLast, false}, {4, PoolRank, false}, {5, 0, true}} {
		w := gguf.NewWriter()
		w.Set("general.architecture", "llama")
		w.Set("llama.embedding_length", uint32(64))
		w.Set("llama.block_count", uint32(1))
		w.Set("llama.attention.head_count", uint32(4))
		w.Set("llama.feed_forward_length", uint32(96))
		w.Set("llama.pooling_type", tc.v)
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		c, err := ReadConfig(f)
		switch {
		case tc.err && err == nil:
			t.Errorf("pooling_type %d accepted as %v", tc.v, c.Pooling)
		case !tc.err && err != nil:
			t.Errorf("pooling_type %d: %v", tc.v, err)
		case !tc.err && c.Pooling != tc.want:
			t.Errorf("pooling_type %d read as %v, want %v", tc.v, c.Pooling, tc.want)
		}
	}
}

// TestForwardAllocs: asking a decode step for its hidden state allocates nothing more than the
// step itself does.
func TestForwardAllocs(t *testing.T) {
	f := randomModel(t, shapes[0], 9)
	m, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(m, nil)
	seq := kvcache.NewSeq(kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}, 64)
	lg := make([]float32, m.Vocab)
	b := &Batch{Tokens: []int32{1}, Pos: []int32{0}, Seqs: []*kvcache.Seq{seq}}
	// The same position every time, so that the cache and the scratch stay the same size.
	step := func() {
		seq.Truncate(0)
		if err := r.Forward(b, lg); err != nil {
			t.Fatal(err)
		}
	}
	step()
	plain := testing.AllocsPerRun(20, step)
	t.Logf("a decode step allocates %v times", plain)
	b.Hidden, b.HiddenOut = []bool{true}, make([]float32, m.Dim)
	if n := testing.AllocsPerRun(20, step); n > plain {
		t.Errorf("decode step with its hidden state: %v allocations, %v without", n, plain)
	}
}

// TestFusedViews: phi3's fused attn_qkv and gate+up ffn_up are bound as row ranges of the mapped
// tensor (no copies), and a decode step of every new architecture allocates nothing once the
// runner has grown.
func TestFusedViews(t *testing.T) {
	for _, s := range shapes {
		if s.arch == "gemma" || s.arch == "gemma2" || s.arch == "gemma3" {
			continue
		}
		f := randomModel(t, s, 1)
		m, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if s.arch == "phi3" {
			qkv, _ := f.Tensor("blk.1.attn_qkv.weight")
			up, _ := f.Tensor("blk.1.ffn_up.weight")
			l := &m.Blocks[1]
			for _, v := range []struct {
				name  string
				m     kernels.Mat
				whole []byte
				row   int
			}{
				{"q", l.Wq, qkv.Data, 0}, {"k", l.Wk, qkv.Data, m.Heads * m.HeadDim},
				{"v", l.Wv, qkv.Data, (m.Heads + m.KVHeads) * m.HeadDim},
				{"gate", l.Gate, up.Data, 0}, {"up", l.Up, up.Data, m.FFN},
			} {
				if &v.m.Data[0] != &v.whole[v.row*v.m.RowBytes()] {
					t.Errorf("phi3 %s: not a view of row %d of the fused tensor", v.name, v.row)
				}
			}
		}
		pool := kernels.NewPool(2)
		defer pool.Close()
		r := NewRunner(m, pool)
		seq := kvcache.NewSeq(kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}, 64)
		lg := make([]float32, m.Vocab)
		pos := int32(0)
		b := &Batch{Tokens: []int32{1}, Pos: []int32{0}, Seqs: []*kvcache.Seq{seq}}
		step := func() {
			b.Pos[0] = pos
			pos++
			if err := r.Forward(b, lg); err != nil {
				t.Fatal(err)
			}
		}
		for range 40 { // grow the runner's and the attention's scratch to a longer sequence
			step()
		}
		seq.Truncate(0)
		pos = 0
		if a := testing.AllocsPerRun(10, step); a != 0 {
			t.Errorf("%s/%v/%s: %v allocations per decode step", s.arch, s.wtype, s.rope, a)
		}
	}
}
