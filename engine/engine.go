package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"edgelm/gguf"
	"edgelm/grammar"
	"edgelm/kernels"
	"edgelm/kvcache"
	"edgelm/model"
	"edgelm/tokenizer"
)

// Engine serves requests on one loaded model. Its methods are safe for concurrent use: requests are
// queued and a single scheduler goroutine runs each forward step over all active requests together.
type Engine struct {
	info  Info
	opt   Options
	file  *gguf.File
	model *model.Model
	tok   *tokenizer.Tokenizer
	pool  *kernels.Pool

	queue   chan *job
	quit    chan struct{}
	done    chan struct{}
	closing sync.Once
	closed  atomic.Bool
	waiting atomic.Int64
	beat    atomic.Int64 // unix nanoseconds of the scheduler's last loop
	idle    atomic.Bool  // the scheduler is waiting for work

	mu    sync.Mutex // guards stats
	stats Stats

	// KV cache state, owned by the scheduler goroutine.
	shape  kvcache.Shape
	budget int64
	live   int64 // bytes reserved by admitted sequences
	prefix *prefixCache
	held   *job // admitted from the queue but waiting for KV budget

	gvocab func() *grammar.Vocab // the tokenizer's vocabulary for grammars, indexed at first use
}

// Load maps the model at path, reads its tokenizer and starts the scheduler.
func Load(path string, opt Options) (*Engine, error) {
	if opt.Kernels != "" {
		if err := kernels.SetMaxFeatures(opt.Kernels); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	if opt.Reread {
		if err := f.Mapping().DropCache(); err != nil {
			f.Close()
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	e, err := newEngine(f, path, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	return e, nil
}

func newEngine(f *gguf.File, path string, opt Options) (*Engine, error) {
	m, err := model.Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if tok.VocabSize() > m.Vocab {
		return nil, fmt.Errorf("%s: tokenizer has %d tokens, the model's embedding %d", path, tok.VocabSize(), m.Vocab)
	}
	if opt.Threads <= 0 {
		opt.Threads = defaultThreads()
	}
	if opt.ContextLength <= 0 {
		opt.ContextLength = m.ContextLength
	}
	m.UseContext(opt.ContextLength)
	if opt.MaxSequences <= 0 {
		opt.MaxSequences = 4
	}
	if opt.MaxQueue <= 0 {
		opt.MaxQueue = 64
	}
	e := &Engine{
		opt:   opt,
		file:  f,
		model: m,
		tok:   tok,
		pool:  kernels.NewPool(opt.Threads),
		queue: make(chan *job, opt.MaxQueue),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	e.gvocab = sync.OnceValue(func() *grammar.Vocab { return grammar.VocabOf(tok) })
	var size int64
	if st, err := os.Stat(path); err == nil {
		size = st.Size()
	}
	name, _ := f.String("general.name")
	tmpl, _ := f.String("tokenizer.chat_template")
	e.info = Info{
		Path:            path,
		Model:           filepath.Base(path),
		Arch:            m.Arch,
		Name:            name,
		Kernels:         kernels.Features(),
		ContextLength:   opt.ContextLength,
		VocabSize:       m.Vocab,
		Params:          m.Params,
		FileBytes:       size,
		ChatTemplate:    tmpl,
		FileType:        fileType(f),
		EmbeddingLength: m.Dim,
		Pooling:         poolingOf(m).String(),
		AddEOS:          tok.AddEOS(),
		EOS:             tok.EOS(),
		Threads:         opt.Threads,
		LoadedAt:        time.Now(),
	}
	switch opt.KVPolicy {
	case "", "sink-window":
		opt.KVPolicy = "sink-window"
	case "none":
	default:
		return nil, fmt.Errorf("engine: unknown KV policy %q (want sink-window or none)", opt.KVPolicy)
	}
	if opt.KVSinks <= 0 {
		opt.KVSinks = 4
	}
	e.opt = opt
	tk, err := kvcache.ParseType(opt.KVTypeK)
	if err != nil {
		return nil, err
	}
	tv, err := kvcache.ParseType(opt.KVTypeV)
	if err != nil {
		return nil, err
	}
	e.shape = kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim, TypeK: tk, TypeV: tv}
	if err := e.shape.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.budget = opt.KVBudget
	if e.budget <= 0 {
		e.budget = 2 * int64(opt.MaxSequences) * int64(opt.ContextLength) * e.seqBytesPerToken()
	}
	e.prefix = newPrefixCache()
	e.stats.KVBudget = e.budget
	e.stats.KVBytesPerToken = e.shape.BytesPerToken()
	e.beat.Store(time.Now().UnixNano())
	go e.schedule()
	return e, nil
}

// defaultThreads is one thread per core the process may use (the Go runtime's view of the CPUs).
func defaultThreads() int { return runtime.GOMAXPROCS(0) }

// Close stops the scheduler, fails requests still queued or running with ErrClosed, and unmaps the
// model once the scheduler has stopped touching it.
func (e *Engine) Close() error {
	e.closing.Do(func() {
		e.closed.Store(true)
		close(e.quit)
		<-e.done
		e.pool.Close()
	})
	return e.file.Close()
}

// stallLimit is how long one scheduler step may take before Alive says the engine is wedged: a long
// prefill chunk on a slow board takes seconds, never minutes.
const stallLimit = 2 * time.Minute

// Alive reports whether the scheduler is running: waiting for work, or having finished a step within
// stallLimit. The service's watchdog pings systemd only while it is.
func (e *Engine) Alive() bool {
	select {
	case <-e.done:
		return false
	default:
	}
	return e.idle.Load() || time.Since(time.Unix(0, e.beat.Load())) < stallLimit
}

// Info describes the loaded model.
func (e *Engine) Info() Info { return e.info }

// Model returns the loaded model (read-only).
func (e *Engine) Model() *model.Model { return e.model }

// Tokenizer returns the model's tokenizer.
func (e *Engine) Tokenizer() *tokenizer.Tokenizer { return e.tok }

// Tokenize encodes text. addSpecial adds BOS when the model asks for it; parseSpecial turns the
// texts of special tokens into their ids.
func (e *Engine) Tokenize(text string, addSpecial, parseSpecial bool) []int32 {
	return e.tok.Encode(text, addSpecial && e.tok.AddBOS(), parseSpecial)
}

// MaxTextBytes bounds the bytes of text one token stands for (tokenizer.MaxTextBytes): a text
// longer than n times it is sure to be more than n tokens.
func (e *Engine) MaxTextBytes() int { return e.tok.MaxTextBytes() }

// Detokenize decodes ids to text; ids outside the vocabulary are skipped.
func (e *Engine) Detokenize(ids []int32) string { return e.tok.Decode(ids) }

// Stats returns the current counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	s := e.stats
	e.mu.Unlock()
	s.QueueDepth = int(e.waiting.Load())
	// The mapping's figures read /proc/self/smaps: outside the lock the scheduler takes every step.
	if m := e.file.Mapping(); m != nil {
		s.ModelBytes = int64(m.Len())
		if m.Mapped() {
			s.ModelHugeBytes, _ = m.HugeBytes()
		}
	}
	return s
}

// Generate runs req to completion, calling onToken for each generated token as it is sampled (on the
// caller's goroutine). An error from onToken (a client gone) or ctx ending stops the request at the
// next step and is returned.
func (e *Engine) Generate(ctx context.Context, req Request, onToken func(Event) error) (*Result, error) {
	if err := e.check(&req); err != nil {
		return nil, err
	}
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if req.Grammar != nil {
		e.grammarVocab() // indexed here, on the caller's goroutine, not in the scheduler's
	}
	j := &job{
		ctx:    ctx,
		req:    req,
		notify: make(chan struct{}, 1),
		result: make(chan jobResult, 1),
	}
	select {
	case e.queue <- j:
		e.waiting.Add(1)
	default:
		return nil, ErrQueueFull
	}
	var cbErr error
	deliver := func() {
		for _, ev := range j.take() {
			if cbErr == nil && onToken != nil {
				if cbErr = onToken(ev); cbErr != nil {
					j.cancel.Store(true)
				}
			}
		}
	}
	for {
		select {
		case <-j.notify:
			deliver()
		case r := <-j.result:
			deliver() // the last events arrive with the result
			if cbErr != nil {
				return r.res, cbErr
			}
			return r.res, r.err
		}
	}
}

// grammarVocab is the vocabulary as grammars see it, indexed once.
func (e *Engine) grammarVocab() *grammar.Vocab {
	return e.gvocab()
}

// Embed runs prompt through the model, without sampling, and pools the final hidden states of its
// tokens (after the output norm) into one vector, as the model's pooling_type says: the mean over
// the tokens when the file says nothing (or "none"), the first token's for "cls", the last token's
// for "last". It is scheduled with the other requests, its prompt prefilled in chunks among their
// steps. A reranker ("rank") cannot embed: ErrInvalidRequest.
func (e *Engine) Embed(ctx context.Context, prompt []int32) (*Embedding, error) {
	req := Request{Prompt: prompt}
	if err := e.check(&req); err != nil {
		return nil, err
	}
	pool := poolingOf(e.model)
	if pool == model.PoolRank {
		return nil, fmt.Errorf("%w: the model is a reranker (pooling_type rank), which gives no embeddings", ErrInvalidRequest)
	}
	if e.closed.Load() {
		return nil, ErrClosed
	}
	j := &job{
		ctx:    ctx,
		req:    req,
		embed:  pool,
		notify: make(chan struct{}, 1),
		result: make(chan jobResult, 1),
	}
	select {
	case e.queue <- j:
		e.waiting.Add(1)
	default:
		return nil, ErrQueueFull
	}
	r := <-j.result
	if r.err != nil {
		return nil, r.err
	}
	return &Embedding{Vector: j.vec, PromptTokens: len(prompt)}, nil
}

// fileTypes names llama.cpp's general.file_type values (enum llama_ftype), as its tools print them.
var fileTypes = map[uint64]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
	11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
	18: "Q6_K", 32: "BF16",
}

func fileType(f *gguf.File) string {
	if v, ok := f.Uint("general.file_type"); ok {
		return fileTypes[v]
	}
	return ""
}

// poolingOf is how Embed pools: a declared "none" means one vector per token in llama.cpp, which
// this API has no place for, so it is pooled by the mean as when nothing is declared.
func poolingOf(m *model.Model) model.Pooling {
	if m.Pooling == model.PoolNone {
		return model.PoolMean
	}
	return m.Pooling
}

func (e *Engine) check(r *Request) error {
	switch {
	case len(r.Prompt) == 0:
		return fmt.Errorf("%w: empty prompt", ErrInvalidRequest)
	case r.MaxTokens < 0:
		return fmt.Errorf("%w: max_tokens %d is negative", ErrInvalidRequest, r.MaxTokens)
	case r.Logprobs < 0 || r.Logprobs > 20:
		return fmt.Errorf("%w: logprobs %d outside [0, 20]", ErrInvalidRequest, r.Logprobs)
	case len(r.Prompt) > e.opt.ContextLength:
		return fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, len(r.Prompt), e.opt.ContextLength)
	}
	for _, t := range r.Prompt {
		if t < 0 || int(t) >= e.model.Vocab {
			return fmt.Errorf("%w: token %d outside the vocabulary [0, %d)", ErrInvalidRequest, t, e.model.Vocab)
		}
	}
	return nil
}

// seqBytesPerToken is what a sequence holds per token of capacity: keys, values, position and offset.
func (e *Engine) seqBytesPerToken() int64 { return e.shape.BytesPerToken() + 8 }

// KVShape is what the engine's caches store per token.
func (e *Engine) KVShape() kvcache.Shape { return e.shape }
