// Package model holds the transformer architectures edgelm runs (llama, qwen2, qwen3, phi3, gemma,
// gemma2, gemma3): a
// Config read from GGUF metadata, weights as views into the mapped file, and one forward pass over a
// batch of (sequence, position, token) entries that covers prefill, decode and continuous batching.
package model

import (
	"fmt"
	"math"

	"edgelm/gguf"
)

// Activation is the FFN gate's non-linearity.
type Activation int

const (
	SiLU Activation = iota // llama: silu(gate) * up
	GELU                   // gemma family: gelu_tanh(gate) * up
)

// Config is everything about an architecture that the forward pass needs, read from GGUF metadata.
type Config struct {
	Arch          string
	Dim           int // n_embd: width of the residual stream
	Layers        int
	Heads         int
	KVHeads       int // < Heads: grouped-query attention
	HeadDim       int // key/query width per head
	ValueDim      int // value width per head
	FFN           int
	Vocab         int
	ContextLength int // trained context

	RMSEps float32

	RopeDim       int     // leading dimensions of each head that RoPE rotates
	RopeBase      float64 // theta base of global layers
	RopeScale     float64 // position multiplier of global layers (1/linear scaling factor)
	RopeBaseLocal float64 // theta base of sliding-window layers
	RopeNeox      bool    // rotate (x[i], x[i+d/2]) instead of (x[2i], x[2i+1])
	RopeMScale    float32 // multiplies RoPE's cos and sin (phi3's rope.scaling.attn_factor); 1 = none
	RopeOrigCtx   int     // rope.scaling.original_context_length: phi3 uses its long factors beyond it

	// Llama-3 frequency scaling (rope.scaling.type "llama3"), used when the file has no rope_freqs
	// tensor: the divisors are computed from these as Meta's reference code does.
	Llama3Rope                                  bool
	RopeFactor, RopeLowFreqFac, RopeHighFreqFac float64

	AttnScale    float32 // multiplies q·k
	AttnSoftcap  float32 // 0 = none; else scores = cap*tanh(scores/cap)
	FinalSoftcap float32 // 0 = none; same on the logits

	SlidingWindow int // keys with pos <= q_pos - SlidingWindow are masked on local layers
	SWAPattern    int // 0 = no local layers; else layer il is local when il%SWAPattern < SWAPattern-1

	EmbedScale float32 // multiplies the token embedding (sqrt(Dim) for the gemma family)
	Act        Activation
	PostNorms  bool // gemma2/3: RMSNorm on the attention and FFN outputs before the residual add
	QKNorm     bool // gemma3, qwen3: RMSNorm per head on q and k before RoPE
	QKVBias    bool // qwen2: q, k and v have biases (optional for llama, qwen3 and phi3)

	Pooling Pooling // how an embedding is made of a prompt's hidden states (<arch>.pooling_type)
}

// Pooling turns the final hidden states of a prompt's tokens into one embedding, as GGUF's
// <arch>.pooling_type numbers it (llama.cpp's enum llama_pooling_type).
type Pooling int

const (
	PoolNone Pooling = 0 // declared "none": llama.cpp returns one vector per token
	PoolMean Pooling = 1 // the mean over the tokens; what edgelm does when the file says nothing
	PoolCLS  Pooling = 2 // the first token's
	PoolLast Pooling = 3 // the last token's (decoder embedding models such as Qwen3-Embedding)
	PoolRank Pooling = 4 // a reranker's classification head, which edgelm does not run
)

func (p Pooling) String() string {
	switch p {
	case PoolNone:
		return "none"
	case PoolMean:
		return "mean"
	case PoolCLS:
		return "cls"
	case PoolLast:
		return "last"
	case PoolRank:
		return "rank"
	}
	return fmt.Sprintf("pooling(%d)", int(p))
}

// KVDim is the width of one token's keys (or values) in one layer.
func (c *Config) KVDim() int { return c.KVHeads * c.HeadDim }

// Local reports whether layer il uses the sliding window.
func (c *Config) Local(il int) bool {
	return c.SWAPattern > 0 && c.SlidingWindow > 0 && il%c.SWAPattern < c.SWAPattern-1
}

// Architectures lists what Load accepts.
var Architectures = []string{"llama", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3"}

// ReadConfig builds the Config of f from its metadata, with each architecture's defaults.
func ReadConfig(f *gguf.File) (*Config, error) {
	arch, ok := f.String("general.architecture")
	if !ok {
		return nil, fmt.Errorf("model: general.architecture missing")
	}
	known := false
	for _, a := range Architectures {
		known = known || a == arch
	}
	if !known {
		return nil, fmt.Errorf("model: unknown architecture %q (edgelm runs %v)", arch, Architectures)
	}
	c := &Config{Arch: arch}
	var err error
	req := func(key string) int {
		if err != nil {
			return 0
		}
		v, ok := f.Uint(arch + "." + key)
		if !ok {
			err = fmt.Errorf("model: %s.%s missing", arch, key)
			return 0
		}
		if v == 0 || v > 1<<24 {
			err = fmt.Errorf("model: %s.%s = %d out of range", arch, key, v)
			return 0
		}
		return int(v)
	}
	opt := func(key string, def int) int {
		if v, ok := f.Uint(arch + "." + key); ok && v > 0 && v <= 1<<24 {
			return int(v)
		}
		return def
	}
	optF := func(key string, def float64) float64 {
		if v, ok := f.Float(arch + "." + key); ok {
			return v
		}
		return def
	}
	c.Dim = req("embedding_length")
	c.Layers = req("block_count")
	c.Heads = req("attention.head_count")
	c.FFN = req("feed_forward_length")
	if err != nil {
		return nil, err
	}
	c.KVHeads = opt("attention.head_count_kv", c.Heads)
	c.HeadDim = opt("attention.key_length", c.Dim/c.Heads)
	c.ValueDim = opt("attention.value_length", c.HeadDim)
	c.ContextLength = opt("context_length", 2048)
	c.RopeDim = opt("rope.dimension_count", c.HeadDim)
	c.RopeBase = optF("rope.freq_base", 10000)
	c.RopeScale = 1
	c.RopeMScale = 1
	c.RopeOrigCtx = opt("rope.scaling.original_context_length", c.ContextLength)
	scaling, _ := f.String(arch + ".rope.scaling.type")
	switch scaling {
	case "", "none", "linear", "llama3", "longrope", "su":
	case "yarn":
		// YaRN changes every frequency and the attention magnitude even in short contexts:
		// ignoring it would compute another model.
		return nil, fmt.Errorf("model: %s.rope.scaling.type %q is not supported (YaRN)", arch, scaling)
	default:
		return nil, fmt.Errorf("model: %s.rope.scaling.type %q is not supported", arch, scaling)
	}
	switch s := optF("rope.scaling.factor", 0); {
	case scaling == "llama3":
		// Defaults are Llama 3.1's; llama.cpp's converter writes the rope_freqs tensor instead.
		c.Llama3Rope = true
		c.RopeFactor = optF("rope.scaling.factor", 8)
		c.RopeLowFreqFac = optF("rope.scaling.low_freq_factor", 1)
		c.RopeHighFreqFac = optF("rope.scaling.high_freq_factor", 4)
		c.RopeOrigCtx = opt("rope.scaling.original_context_length", 8192)
	case s > 0 && (scaling == "" || scaling == "linear"):
		c.RopeScale = 1 / s
	}
	c.RopeBaseLocal = optF("rope.freq_base_swa", c.RopeBase)
	c.RMSEps = float32(optF("attention.layer_norm_rms_epsilon", 1e-5))
	c.AttnScale = float32(1 / math.Sqrt(float64(c.HeadDim)))
	c.EmbedScale = 1
	c.Act = SiLU
	c.Pooling = PoolMean
	if v, ok := f.Uint(arch + ".pooling_type"); ok {
		if v > uint64(PoolRank) {
			return nil, fmt.Errorf("model: %s.pooling_type = %d unknown (0..4)", arch, v)
		}
		c.Pooling = Pooling(v)
	}

	switch arch {
	case "llama":
	case "qwen2", "qwen3", "phi3":
		c.RopeNeox = true
		c.QKVBias = arch == "qwen2"
		c.QKNorm = arch == "qwen3"
		if arch == "phi3" {
			// phi3.attention.sliding_window is not applied: llama.cpp ignores it for phi3 too
			// (its converter writes no layer pattern), and llama.cpp's outputs are our reference.
			if a, ok := f.Float(arch + ".rope.scaling.attn_factor"); ok && a > 0 {
				c.RopeMScale = float32(a)
			}
		}
	case "gemma", "gemma2", "gemma3":
		c.RopeNeox = true
		c.Act = GELU
		c.EmbedScale = float32(math.Sqrt(float64(c.Dim)))
		if arch == "gemma" {
			break
		}
		c.PostNorms = true
		c.SlidingWindow = opt("attention.sliding_window", 0)
		if arch == "gemma2" {
			c.SWAPattern = 2
			c.AttnSoftcap = float32(optF("attn_logit_softcapping", 0))
			c.FinalSoftcap = float32(optF("final_logit_softcapping", 0))
			if c.Layers == 46 { // the 27B scales by its model width per head, not by head_dim
				c.AttnScale = float32(1 / math.Sqrt(float64(c.Dim/c.Heads)))
			}
		} else {
			c.QKNorm = true
			c.SWAPattern = opt("attention.sliding_window_pattern", 6)
			c.RopeBaseLocal = optF("rope.freq_base_swa", 10000)
			c.FinalSoftcap = float32(optF("final_logit_softcapping", 0))
			if c.Layers == 62 {
				c.AttnScale = float32(1 / math.Sqrt(float64(c.Dim/c.Heads)))
			}
		}
		if c.SlidingWindow == 0 {
			c.SWAPattern = 0
		}
		if s, ok := f.Float(arch + ".attention.scale"); ok && s > 0 {
			c.AttnScale = float32(s)
		}
	}
	switch {
	case c.Heads%c.KVHeads != 0:
		return nil, fmt.Errorf("model: %d heads not a multiple of %d KV heads", c.Heads, c.KVHeads)
	case c.RopeDim > c.HeadDim || c.RopeDim%2 != 0:
		return nil, fmt.Errorf("model: rope dimension %d does not fit head dimension %d", c.RopeDim, c.HeadDim)
	case c.ValueDim != c.HeadDim:
		return nil, fmt.Errorf("model: value width %d differs from key width %d (not supported)", c.ValueDim, c.HeadDim)
	case !(c.RMSEps > 0):
		return nil, fmt.Errorf("model: rms epsilon %g must be positive", c.RMSEps)
	case c.Llama3Rope && !(c.RopeFactor >= 1 && c.RopeLowFreqFac > 0 && c.RopeHighFreqFac > c.RopeLowFreqFac):
		return nil, fmt.Errorf("model: llama3 rope scaling factor %g, low %g, high %g out of range (want factor >= 1, 0 < low < high)",
			c.RopeFactor, c.RopeLowFreqFac, c.RopeHighFreqFac)
	case !(c.RopeMScale > 0 && c.RopeMScale < 100):
		return nil, fmt.Errorf("model: rope attention factor %g out of range", c.RopeMScale)
	}
	return c, nil
}
