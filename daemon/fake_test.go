package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"edgelm/engine"
)

// fakeBackend is a deterministic stand-in for the engine. Its vocabulary: 0 "<s>", 1 "</s>",
// 2 "<|im_start|>", 3 "<|im_end|>", then the printable ASCII bytes 32..126 as ids 4..98.
// Generate emits the characters of reply one token each.
type fakeBackend struct {
	tmpl  string
	reply string
	delay time.Duration // per generated token
	err   error         // returned by Generate before any token
	// holdBack is text sent after the last token in an event without a token (Token -1).
	holdBack string
	ctxLen   int    // context length; 0 means 128
	fault    string // Stats().Fault
	addEOS   bool   // Info says the tokenizer wants EOS (id 1) after a prompt

	mu        sync.Mutex
	lastText  string // last text tokenized
	lastParse bool
	lastReq   engine.Request
	canceled  chan struct{} // closed when a Generate sees its context end
	started   chan struct{} // receives when Generate starts
	onceCanc  sync.Once
}

func newFake() *fakeBackend {
	return &fakeBackend{reply: "Hello world", canceled: make(chan struct{}), started: make(chan struct{}, 16)}
}

var specials = []string{"<s>", "</s>", "<|im_start|>", "<|im_end|>"}

func (f *fakeBackend) Info() engine.Info {
	ctxLen := 128
	if f.ctxLen > 0 {
		ctxLen = f.ctxLen
	}
	return engine.Info{Path: "/models/fake.gguf", Model: "fake.gguf", Arch: "llama", Name: "Fake", Kernels: "generic",
		ContextLength: ctxLen, VocabSize: 99, ChatTemplate: f.tmpl, Threads: 2, LoadedAt: time.Unix(1700000000, 0),
		EmbeddingLength: fakeDim, Pooling: "mean", FileType: "Q8_0", Params: 260_000, FileBytes: 4096, AddEOS: f.addEOS, EOS: 1}
}

func (f *fakeBackend) Tokenize(text string, addSpecial, parseSpecial bool) []int32 {
	f.mu.Lock()
	f.lastText, f.lastParse = text, parseSpecial
	f.mu.Unlock()
	var ids []int32
	if addSpecial {
		ids = append(ids, 0)
	}
outer:
	for i := 0; i < len(text); {
		if parseSpecial {
			for id, sp := range specials {
				if strings.HasPrefix(text[i:], sp) {
					ids = append(ids, int32(id))
					i += len(sp)
					continue outer
				}
			}
		}
		if c := text[i]; c >= 32 && c <= 126 {
			ids = append(ids, int32(c)-32+4)
		}
		i++
	}
	return ids
}

// Detokenize drops a leading space, as SentencePiece decoding does.
func (f *fakeBackend) Detokenize(ids []int32) string {
	if len(ids) > 0 && ids[0] == 4 {
		ids = ids[1:]
	}
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id >= 0 && id < 4:
			b.WriteString(specials[id])
		case id >= 4 && id < 99:
			b.WriteByte(byte(id - 4 + 32))
		}
	}
	return b.String()
}

func (f *fakeBackend) Stats() engine.Stats {
	return engine.Stats{Requests: 3, PromptTokens: 30, PrefillTokens: 20, GeneratedTokens: 40, PrefillSeconds: 2, DecodeSeconds: 4, DecodeTokens: 36,
		QueueDepth: 1, ActiveSequences: 2, KVBytes: 4096, KVBudget: 8192, KVBytesPerToken: 64, PrefixHits: 5, PrefixTokens: 10, PrefixEvictions: 1,
		ModelBytes: 1000, ModelHugeBytes: 512, Fault: f.fault}
}

// fakeDim is the width of the fake's embeddings.
const fakeDim = 8

// Embed makes a vector of fakeDim floats from the tokens: element k is the sum over tokens t of
// (t*(k+1))%7 - 3, which tests recompute.
func (f *fakeBackend) Embed(ctx context.Context, prompt []int32) (*engine.Embedding, error) {
	f.mu.Lock()
	f.lastReq = engine.Request{Prompt: prompt}
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v := make([]float32, fakeDim)
	for _, t := range prompt {
		for k := range v {
			v[k] += float32(int(t)*(k+1)%7 - 3)
		}
	}
	return &engine.Embedding{Vector: v, PromptTokens: len(prompt)}, nil
}

func (f *fakeBackend) tokenOf(c byte) int32 { return int32(c) - 32 + 4 }

func (f *fakeBackend) Generate(ctx context.Context, req engine.Request, onToken func(engine.Event) error) (*engine.Result, error) {
	f.mu.Lock()
	f.lastReq = req
	f.mu.Unlock()
	select {
	case f.started <- struct{}{}:
	default:
	}
	if f.err != nil {
		return nil, f.err
	}
	res := &engine.Result{PromptTokens: len(req.Prompt), FinishReason: "stop", Trace: []engine.TraceStep{{Step: 0, Kind: "prefill", Tokens: len(req.Prompt), KVLen: len(req.Prompt), Batch: 1}}}
	if req.Echo {
		for i, t := range req.Prompt {
			p := engine.Position{Token: t}
			if i > 0 {
				p.Logprob = -0.25 // as the previous position's Top says
			}
			if i+1 < len(req.Prompt) {
				p.Top = []engine.TokenProb{{ID: req.Prompt[i+1], Logprob: -0.25}, {ID: 98, Logprob: -2}}
			}
			res.Logprobs = append(res.Logprobs, p)
		}
	}
	var text strings.Builder
	for i := 0; i < len(f.reply); i++ {
		if len(res.Tokens) == req.MaxTokens {
			res.FinishReason = "length"
			break
		}
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			f.onceCanc.Do(func() { close(f.canceled) })
			return res, ctx.Err()
		}
		piece := f.reply[i : i+1]
		stop := ""
		for _, s := range req.Stop {
			if strings.HasSuffix(text.String()+piece, s) {
				stop = s
			}
		}
		if stop != "" {
			full := text.String() + piece
			res.Text = full[:len(full)-len(stop)]
			return res, nil
		}
		id := f.tokenOf(f.reply[i])
		ev := engine.Event{Token: id, Text: piece}
		if req.Logprobs > 0 {
			ev.Logprob = -0.5
			for k := 0; k < req.Logprobs; k++ {
				ev.Top = append(ev.Top, engine.TokenProb{ID: id + int32(k), Logprob: -0.5 - float32(k)})
			}
		}
		if err := onToken(ev); err != nil {
			return res, err
		}
		text.WriteString(piece)
		res.Tokens = append(res.Tokens, id)
	}
	res.Text = text.String()
	if f.holdBack != "" {
		// As the engine does with text that might have become a stop string: sent at the end.
		if err := onToken(engine.Event{Token: -1, Text: f.holdBack}); err != nil {
			return res, err
		}
		res.Text += f.holdBack
	}
	return res, nil
}
