// Package engine is what a user of the library calls: load a model and its tokenizer, run requests
// (tokenize, schedule, sample, detokenize, stream), and trace what each step did.
package engine

import (
	"errors"
	"fmt"
	"math"
	"time"

	"edgelm/grammar"
)

// Options configure an engine at load time.
type Options struct {
	Threads       int    // worker threads for the kernels; 0 means one per physical core
	ContextLength int    // tokens per sequence; 0 means the model's trained context
	MaxSequences  int    // sequences decoded together in one step; 0 means 4
	MaxQueue      int    // requests waiting for a sequence slot; 0 means 64
	Kernels       string // "" (best available) or a feature cap such as "generic"
	KVTypeK       string // cache type for keys: "f32" (default), "f16", "q8_0", "q4_0"
	KVTypeV       string // cache type for values
	KVBudget      int64  // bytes for all cached tokens of all sequences, live and kept for reuse; 0 means room for 2×MaxSequences full contexts
	KVPolicy      string // when a sequence fills its context: "sink-window" (default) drops the middle, "none" fails with ErrContextFull
	KVSinks       int    // tokens kept at the start by sink-window (BOS included); 0 means 4
	NoPrefixCache bool   // do not keep finished sequences' KV for reuse
	ChatTemplate  string // overrides the template detected from tokenizer.chat_template ("" = detect)
	// Reread drops the model file's cached pages that no process maps before the weights are read,
	// so they come from disk again, in 2 MB pages (mmap.Mapping.DropCache): faster decode for a
	// model the page cache holds in 4 KB pages, for one read of the file at load.
	Reread bool
}

// Info describes a loaded model.
type Info struct {
	Path            string `json:"-"`     // the host's business: clients see Model
	Model           string `json:"model"` // file base name, the id used by the API
	Arch            string `json:"architecture"`
	Name            string `json:"name,omitempty"` // general.name
	Kernels         string `json:"kernels"`
	ContextLength   int    `json:"context_length"`
	VocabSize       int    `json:"vocab_size"`
	Params          int64  `json:"parameters"`
	FileBytes       int64  `json:"file_bytes"`
	ChatTemplate    string `json:"-"`                   // the raw tokenizer.chat_template, "" if absent
	FileType        string `json:"file_type,omitempty"` // general.file_type as llama.cpp names it ("Q8_0", "Q4_K_M", ...); "" if absent or unknown
	EmbeddingLength int    `json:"embedding_length"`    // floats in an embedding (the model's width)
	Pooling         string `json:"pooling"`             // how Embed pools: "mean", "cls" or "last"; "rank" cannot embed
	// AddEOS says the tokenizer wants EOS (token EOS) after a prompt (tokenizer.ggml.add_eos_token),
	// as decoder embedding models that pool the last token do; the daemon appends it to embedding
	// inputs given as text, as llama.cpp does.
	AddEOS   bool      `json:"add_eos,omitempty"`
	EOS      int32     `json:"-"`
	Threads  int       `json:"threads"`
	LoadedAt time.Time `json:"loaded_at"`
}

// Sampling selects the next token from the logits. The zero value is greedy.
type Sampling struct {
	Temperature   float32 // 0 = greedy (argmax)
	TopK          int     // 0 = off
	TopP          float32 // 0 or 1 = off
	MinP          float32 // 0 = off
	RepeatPenalty float32 // 0 or 1 = off
	RepeatLastN   int     // tokens the penalty looks back at; 0 means 64
	Seed          uint64  // 0 = random
}

// Check bounds the parameters as the API does; every front end (daemon, CLI) uses it.
func (p Sampling) Check() error {
	bad := func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }
	switch {
	case bad(p.Temperature) || p.Temperature < 0 || p.Temperature > 100:
		return fmt.Errorf("temperature %g: want 0..100", p.Temperature)
	case bad(p.TopP) || p.TopP < 0 || p.TopP > 1:
		return fmt.Errorf("top_p %g: want 0..1", p.TopP)
	case bad(p.MinP) || p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("min_p %g: want 0..1", p.MinP)
	case p.TopK < 0:
		return fmt.Errorf("top_k %d: want >= 0", p.TopK)
	case bad(p.RepeatPenalty) || p.RepeatPenalty < 0 || p.RepeatPenalty > 10:
		return fmt.Errorf("repeat_penalty %g: want 0..10", p.RepeatPenalty)
	case p.RepeatLastN < 0:
		return fmt.Errorf("repeat_last_n %d: want >= 0", p.RepeatLastN)
	}
	return nil
}

// Request is one generation.
type Request struct {
	Prompt    []int32 // token ids, BOS included when the model wants it
	MaxTokens int     // tokens to generate; 0 with Echo returns only prompt logprobs
	Sampling  Sampling
	Stop      []string // generation ends before the first occurrence of any of these
	IgnoreEOS bool
	Logprobs  int  // >0: report this many top alternatives (and the chosen token's logprob)
	Echo      bool // with Logprobs: also report teacher-forced logprobs of the prompt tokens
	Trace     bool // record per-step shapes and timings in Result.Trace
	NoCache   bool // recompute the whole sequence every step instead of using the KV cache (slow)
	// Grammar, when set, constrains the output: each token is sampled among those the grammar
	// allows (sampling's top-k, top-p and min-p apply to those), end-of-generation tokens only once
	// the output is complete, and generation stops ("stop") when nothing may follow. Stop strings
	// and MaxTokens still apply: an output they cut may be incomplete.
	Grammar *grammar.Grammar
	// Trigger makes Grammar lazy: the output is free until it contains Trigger, and from there
	// (the trigger included) the grammar applies. With TriggerAtStart the trigger counts only at
	// the start of the output, after whitespace. Output the grammar rejects from the trigger on
	// leaves the request free, as if no trigger had come.
	Trigger        string
	TriggerAtStart bool
}

// TokenProb is a token and its natural-log probability.
type TokenProb struct {
	ID      int32   `json:"id"`
	Logprob float32 `json:"logprob"`
}

// Event is one generated token, delivered as soon as it is sampled. The Texts of a request's events
// concatenate to its Result.Text: text that may still turn into a stop string, or bytes of a character
// that spans tokens, are held back and sent with a later event — at the end in one with Token -1.
type Event struct {
	Token   int32       // -1: no token, only text held back until the end
	Text    string      // the text this token completes (may be "")
	Logprob float32     // of the chosen token (when Request.Logprobs > 0)
	Top     []TokenProb // the Request.Logprobs most likely tokens
}

// Position holds the distribution after one token of prompt+output, teacher-forced: Top are the most
// likely tokens to follow Token. (The distribution that predicted token i is Position i-1's.)
type Position struct {
	Token   int32       `json:"token"`
	Logprob float32     `json:"logprob"` // of Token given the tokens before it; 0 for the first token
	Top     []TokenProb `json:"top"`
}

// TraceStep records one forward step of a request.
type TraceStep struct {
	Step     int           `json:"step"`
	Kind     string        `json:"kind"`   // "prefill" or "decode"
	Tokens   int           `json:"tokens"` // tokens computed in this step for this request
	Reused   int           `json:"reused"` // prompt tokens taken from the prefix cache
	KVLen    int           `json:"kv_len"` // cache length after the step
	Batch    int           `json:"batch"`  // sequences in the step
	Layers   []LayerShapes `json:"layers,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// LayerShapes are the output shapes of one layer in a step, as (batch, tokens, hidden).
type LayerShapes struct {
	Attn [3]int `json:"attn"`
	MLP  [3]int `json:"mlp"`
}

// Result is what a finished request produced.
type Result struct {
	PromptTokens int
	Reused       int        // prompt tokens served from the prefix cache
	Tokens       []int32    // generated ids (without the prompt)
	Text         string     // generated text, stop string excluded
	FinishReason string     // "stop" (EOS or stop string) or "length"
	Logprobs     []Position // with Echo: one per prompt token, then one per generated token
	Trace        []TraceStep
	PrefillTime  time.Duration
	DecodeTime   time.Duration
}

// Stats are the engine's counters, read by the daemon's /metrics and /health.
type Stats struct {
	Requests        int64   // finished requests
	PromptTokens    int64   // prompt tokens submitted
	PrefillTokens   int64   // prompt tokens computed (not reused)
	GeneratedTokens int64   // tokens generated
	PrefillSeconds  float64 // time spent in steps that prefilled
	DecodeSeconds   float64 // time spent in decode-only steps
	// DecodeTokens are the tokens computed in those same steps, cancelled requests' included, so
	// that DecodeTokens/DecodeSeconds is the decode speed (GeneratedTokens counts finished
	// requests only).
	DecodeTokens int64
	// Fault is the first sign that the model itself is broken (non-finite logits); "" while none
	// was seen. It stays until the model is reloaded.
	Fault           string
	QueueDepth      int // requests waiting for a sequence slot
	ActiveSequences int
	KVBytes         int64 // bytes held by KV caches, live and prefix-cached
	KVBudget        int64
	KVBytesPerToken int64
	PrefixHits      int64
	PrefixTokens    int64 // prompt tokens reused from the prefix cache
	PrefixEvictions int64
	// ModelBytes is the size of the model file's mapping; ModelHugeBytes how much of it this
	// process has mapped in 2 MB pages (mmap.Mapping.HugeBytes; 0 where the kernel does not say, or
	// for a model read into memory): decode is faster the more of the model that is.
	ModelBytes     int64
	ModelHugeBytes int64
}

// Embedding is what Embed made of a prompt.
type Embedding struct {
	Vector       []float32 // Info.EmbeddingLength floats, pooled as Info.Pooling says; not normalized
	PromptTokens int
}

// Errors a caller can tell apart (errors.Is).
var (
	ErrQueueFull      = errors.New("engine: queue full")
	ErrClosed         = errors.New("engine: closed")
	ErrContextFull    = errors.New("engine: context full")
	ErrPromptTooLong  = errors.New("engine: prompt longer than the context")
	ErrInvalidRequest = errors.New("engine: invalid request")
	ErrBudget         = errors.New("engine: request needs more KV cache than the budget allows")
	ErrGrammar        = errors.New("engine: no token of the vocabulary can continue the constrained output")
	// ErrNonFinite: the forward pass produced NaN or infinite logits, which corrupt or
	// mis-converted weights do; sampling from them would be garbage.
	ErrNonFinite = errors.New("engine: the model produced non-finite logits (NaN or Inf); its weights may be corrupt")
)
