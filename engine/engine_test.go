package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"edgelm/internal/testshared"
)

func load(t *testing.T, opt Options) *Engine {
	t.Helper()
	e, err := Load(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func gen(t *testing.T, e *Engine, req Request) (*Result, string) {
	t.Helper()
	var sb strings.Builder
	res, err := e.Generate(context.Background(), req, func(ev Event) error { sb.WriteString(ev.Text); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return res, sb.String()
}

var prompts = []string{"Once upon a time", "I dreamed of a quiet city made of glass,", "The machine woke up and", "A river of light"}

// TestBatchedEqualsAlone: requests decoded together in one step (continuous batching, with prompts
// of different lengths prefilled alongside decodes) produce what each produces alone.
func TestBatchedEqualsAlone(t *testing.T) {
	e := load(t, Options{MaxSequences: 4})
	alone := make([][]int32, len(prompts))
	for i, p := range prompts {
		res, _ := gen(t, e, Request{Prompt: e.Tokenize(p, true, false), MaxTokens: 40})
		alone[i] = res.Tokens
	}
	var wg sync.WaitGroup
	got := make([][]int32, len(prompts))
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.Generate(context.Background(), Request{Prompt: e.Tokenize(p, true, false), MaxTokens: 40, Trace: true}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = res.Tokens
		}()
	}
	wg.Wait()
	for i := range prompts {
		if len(got[i]) != len(alone[i]) {
			t.Fatalf("prompt %d: %d tokens batched, %d alone", i, len(got[i]), len(alone[i]))
		}
		for k := range got[i] {
			if got[i][k] != alone[i][k] {
				t.Fatalf("prompt %d token %d: batched %d, alone %d", i, k, got[i][k], alone[i][k])
			}
		}
	}
}

// TestNoCacheSameTokens: recomputing the whole sequence each step gives the tokens the cache gives.
func TestNoCacheSameTokens(t *testing.T) {
	e := load(t, Options{})
	for _, p := range prompts[:2] {
		ids := e.Tokenize(p, true, false)
		a, ta := gen(t, e, Request{Prompt: ids, MaxTokens: 30})
		b, tb := gen(t, e, Request{Prompt: ids, MaxTokens: 30, NoCache: true, Trace: true})
		if ta != tb || len(a.Tokens) != len(b.Tokens) {
			t.Fatalf("cache %q, no cache %q", ta, tb)
		}
		last := b.Trace[len(b.Trace)-1]
		if want := len(ids) + len(b.Tokens) - 1; last.Tokens != want {
			t.Errorf("no-cache last step computed %d tokens, want the whole sequence %d", last.Tokens, want)
		}
	}
}

// TestTraceShapes: prefill is (1, n, dim), every decode (1, 1, dim), and the cache grows by one.
func TestTraceShapes(t *testing.T) {
	e := load(t, Options{})
	ids := e.Tokenize(prompts[0], true, false)
	res, _ := gen(t, e, Request{Prompt: ids, MaxTokens: 5, Trace: true})
	if len(res.Trace) != 5 {
		t.Fatalf("%d steps, want 5", len(res.Trace))
	}
	dim := e.Model().Dim
	for i, s := range res.Trace {
		n, kind := 1, "decode"
		if i == 0 {
			n, kind = len(ids), "prefill"
		}
		if s.Kind != kind || s.KVLen != len(ids)+i || len(s.Layers) != e.Model().Layers {
			t.Fatalf("step %d: %+v", i, s)
		}
		if s.Layers[0].MLP != [3]int{1, n, dim} || s.Layers[0].Attn != [3]int{1, n, dim} {
			t.Fatalf("step %d shapes %v, want (1, %d, %d)", i, s.Layers[0], n, dim)
		}
	}
}

// TestStopStrings: generation ends before the stop string, which never reaches the client.
func TestStopStrings(t *testing.T) {
	e := load(t, Options{})
	ids := e.Tokenize(prompts[0], true, false)
	_, full := gen(t, e, Request{Prompt: ids, MaxTokens: 64})
	i := strings.Index(full, "like")
	if i < 0 {
		t.Fatalf("test prompt no longer produces %q: %q", "like", full)
	}
	res, streamed := gen(t, e, Request{Prompt: ids, MaxTokens: 64, Stop: []string{"zzz", "like"}})
	if res.Text != full[:i] || streamed != full[:i] || res.FinishReason != "stop" {
		t.Fatalf("stopped text %q (streamed %q, %s), want %q", res.Text, streamed, res.FinishReason, full[:i])
	}
}

// TestSamplingSeed: the same seed gives the same text; sampling stays within top-k.
func TestSamplingSeed(t *testing.T) {
	e := load(t, Options{})
	ids := e.Tokenize(prompts[1], true, false)
	s := Sampling{Temperature: 1, TopK: 40, TopP: 0.95, MinP: 0.05, Seed: 42}
	_, a := gen(t, e, Request{Prompt: ids, MaxTokens: 40, Sampling: s})
	_, b := gen(t, e, Request{Prompt: ids, MaxTokens: 40, Sampling: s})
	s.Seed = 43
	_, c := gen(t, e, Request{Prompt: ids, MaxTokens: 40, Sampling: s})
	if a != b {
		t.Errorf("same seed, different text: %q vs %q", a, b)
	}
	if a == c {
		t.Errorf("different seeds, same text %q", a)
	}
}

// TestCancel: a callback error stops the request and is returned; the engine keeps serving.
func TestCancel(t *testing.T) {
	e := load(t, Options{})
	ids := e.Tokenize(prompts[0], true, false)
	stop := errors.New("client gone")
	n := 0
	_, err := e.Generate(context.Background(), Request{Prompt: ids, MaxTokens: 100, IgnoreEOS: true}, func(Event) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("got %v, want the callback's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Generate(ctx, Request{Prompt: ids, MaxTokens: 10}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}
	gen(t, e, Request{Prompt: ids, MaxTokens: 5})
}

// TestInvalidRequests are refused before they reach the scheduler.
func TestInvalidRequests(t *testing.T) {
	e := load(t, Options{})
	long := make([]int32, e.Info().ContextLength+1)
	for _, c := range []struct {
		req  Request
		want error
	}{
		{Request{}, ErrInvalidRequest},
		{Request{Prompt: []int32{1, 99999}}, ErrInvalidRequest},
		{Request{Prompt: []int32{1}, MaxTokens: -1}, ErrInvalidRequest},
		{Request{Prompt: long}, ErrPromptTooLong},
	} {
		if _, err := e.Generate(context.Background(), c.req, nil); !errors.Is(err, c.want) {
			t.Errorf("%+v: got %v, want %v", c.req, err, c.want)
		}
	}
}

// TestContextFull: generation past the context ends with "length", not an error.
func TestContextFull(t *testing.T) {
	e := load(t, Options{ContextLength: 32})
	ids := e.Tokenize(prompts[1], true, false)
	res, _ := gen(t, e, Request{Prompt: ids, MaxTokens: 100, IgnoreEOS: true})
	if res.FinishReason != "length" || len(ids)+len(res.Tokens) > 33 {
		t.Fatalf("%d prompt + %d tokens in a context of 32, finish %s", len(ids), len(res.Tokens), res.FinishReason)
	}
}

// TestEchoLogprobs: with echo, every prompt and output token has a position, and each token's own
// logprob agrees with the previous position's list when it appears there.
func TestEchoLogprobs(t *testing.T) {
	e := load(t, Options{})
	ids := e.Tokenize(prompts[2], true, false)
	res, _ := gen(t, e, Request{Prompt: ids, MaxTokens: 8, Echo: true, Logprobs: 5})
	if len(res.Logprobs) != len(ids)+len(res.Tokens) {
		t.Fatalf("%d positions for %d tokens", len(res.Logprobs), len(ids)+len(res.Tokens))
	}
	checked := 0
	for i := 1; i < len(res.Logprobs); i++ {
		p := res.Logprobs[i]
		if !(p.Logprob <= 0) {
			t.Fatalf("position %d: logprob %g", i, p.Logprob)
		}
		for _, tp := range res.Logprobs[i-1].Top {
			if tp.ID == p.Token {
				checked++
				if tp.Logprob != p.Logprob {
					t.Fatalf("position %d: logprob %g, previous list says %g", i, p.Logprob, tp.Logprob)
				}
			}
		}
	}
	if checked < len(res.Tokens) { // greedy tokens are always first in the list before them
		t.Fatalf("only %d tokens found in the lists before them", checked)
	}
}
