package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"edgelm/internal/testshared"
	"edgelm/kernels"
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

// TestContextFull: with sink-window, generation goes on past the context with the cache bounded by
// it, keeping the sinks; with policy none it ends with ErrContextFull.
func TestContextFull(t *testing.T) {
	e := load(t, Options{ContextLength: 32})
	ids := e.Tokenize(prompts[1], true, false)
	res, text := gen(t, e, Request{Prompt: ids, MaxTokens: 100, IgnoreEOS: true, Trace: true})
	if res.FinishReason != "length" || len(res.Tokens) != 100 || len(text) == 0 {
		t.Fatalf("%d tokens, finish %s", len(res.Tokens), res.FinishReason)
	}
	for _, s := range res.Trace {
		if s.KVLen > 32 {
			t.Fatalf("step %d: cache holds %d tokens in a context of 32", s.Step, s.KVLen)
		}
	}
	if last := res.Trace[len(res.Trace)-1]; last.KVLen < 16 {
		t.Errorf("cache holds only %d tokens at the end", last.KVLen)
	}
	none := load(t, Options{ContextLength: 32, KVPolicy: "none"})
	_, err := none.Generate(context.Background(), Request{Prompt: ids, MaxTokens: 100, IgnoreEOS: true}, nil)
	if !errors.Is(err, ErrContextFull) {
		t.Fatalf("policy none: %v, want ErrContextFull", err)
	}
}

// TestPrefixReuseChat: each turn of a chat resends the history; only the new tokens are prefilled,
// and the answers equal those of an engine without the prefix cache.
func TestPrefixReuseChat(t *testing.T) {
	warm := load(t, Options{})
	cold := load(t, Options{NoPrefixCache: true})
	turns := []string{" The sky", " and the sea", " under a moon", " of silver", " at dawn"}
	history := warm.Tokenize(prompts[0], true, false)
	prevCached := 0
	for i, turn := range turns {
		prompt := append(append([]int32(nil), history...), warm.Tokenize(turn, false, false)...)
		res, text := gen(t, warm, Request{Prompt: prompt, MaxTokens: 12, Trace: true})
		base, baseText := gen(t, cold, Request{Prompt: prompt, MaxTokens: 12})
		if text != baseText || len(res.Tokens) != len(base.Tokens) {
			t.Fatalf("turn %d: %q with reuse, %q cold", i, text, baseText)
		}
		if res.Reused != prevCached || res.Trace[0].Tokens != len(prompt)-prevCached || res.Trace[0].Reused != prevCached {
			t.Fatalf("turn %d: reused %d (trace %d), computed %d of %d; want %d reused", i, res.Reused, res.Trace[0].Reused, res.Trace[0].Tokens, len(prompt), prevCached)
		}
		history = append(prompt, res.Tokens...)
		prevCached = len(history) - 1 // the last generated token was never fed
	}
	st := warm.Stats()
	if st.PrefixHits != int64(len(turns)-1) || st.PrefixTokens == 0 {
		t.Errorf("stats: %+v", st)
	}
}

// TestPrefixBudgetLRU: with a budget for two sequences, a third evicts the least recently used one.
func TestPrefixBudgetLRU(t *testing.T) {
	probe := load(t, Options{})
	a, b, c := probe.Tokenize(prompts[0], true, false), probe.Tokenize(prompts[2], true, false), probe.Tokenize(prompts[3], true, false)
	n := max(len(a), len(b), len(c))
	need := int64(n+8+1) * (probe.KVShape().BytesPerToken() + 8)
	e := load(t, Options{KVBudget: 2 * need})
	run := func(p []int32) *Result {
		res, _ := gen(t, e, Request{Prompt: p, MaxTokens: 8})
		return res
	}
	run(a)
	run(b)
	if r := run(a); r.Reused == 0 { // a is now the most recent, b the least
		t.Fatal("a not reused while the budget held it")
	}
	run(c) // evicts b
	common := func(x, y []int32) int {
		i := 0
		for i < len(x) && i < len(y) && x[i] == y[i] {
			i++
		}
		return i
	}
	// Only what b shares with a or c (the BOS) can still be reused.
	if r, want := run(b), max(common(b, a), common(b, c)); r.Reused != want {
		t.Fatalf("b reused %d tokens after it should have been evicted; it shares %d with the others", r.Reused, want)
	}
	if st := e.Stats(); st.PrefixEvictions == 0 || st.KVBytes > st.KVBudget {
		t.Fatalf("stats %+v", st)
	}
}

// TestAlive: the scheduler reports alive while idle and while serving, and not after Close.
func TestAlive(t *testing.T) {
	e, err := Load(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Alive() {
		t.Fatal("idle engine not alive")
	}
	gen(t, e, Request{Prompt: e.Tokenize("Once", true, false), MaxTokens: 4})
	if !e.Alive() {
		t.Fatal("engine not alive after a request")
	}
	e.Close()
	if e.Alive() {
		t.Fatal("closed engine alive")
	}
}

// TestStatsCount: the counters the daemon exports follow the requests.
func TestStatsCount(t *testing.T) {
	e := load(t, Options{})
	ids := e.Tokenize(prompts[0], true, false)
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		once := false
		e.Generate(context.Background(), Request{Prompt: ids, MaxTokens: 3000, IgnoreEOS: true}, func(Event) error {
			if !once {
				once = true
				close(started)
			}
			return nil
		})
	}()
	<-started
	if st := e.Stats(); st.ActiveSequences != 1 {
		t.Errorf("during a request: %d active sequences", st.ActiveSequences)
	}
	<-done
	gen(t, e, Request{Prompt: ids, MaxTokens: 5})
	st := e.Stats()
	if st.ActiveSequences != 0 || st.Requests != 2 || st.PromptTokens != int64(2*len(ids)) || st.GeneratedTokens != 3005 || st.PrefillTokens <= 0 || st.KVBytes <= 0 {
		t.Errorf("after two requests: %+v", st)
	}
	// The model's mapping: the file's size (stat'ed here), of which at most all in 2 MB pages.
	fi, err := os.Stat(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if st.ModelBytes != fi.Size() || st.ModelHugeBytes < 0 || st.ModelHugeBytes > st.ModelBytes {
		t.Errorf("model bytes %d (file %d), in 2 MB pages %d", st.ModelBytes, fi.Size(), st.ModelHugeBytes)
	}
}

// TestRereadSameTokens: a model loaded with Reread (its cached pages dropped, read again from disk)
// generates what it generates without.
func TestRereadSameTokens(t *testing.T) {
	a, b := load(t, Options{}), load(t, Options{Reread: true})
	ids := a.Tokenize(prompts[0], true, false)
	_, ta := gen(t, a, Request{Prompt: ids, MaxTokens: 20})
	_, tb := gen(t, b, Request{Prompt: ids, MaxTokens: 20})
	if ta == "" || ta != tb {
		t.Fatalf("without reread %q, with %q", ta, tb)
	}
}

// TestKernelsPerEngine: the kernel choice belongs to each engine. A model loaded with the generic
// kernels leaves the process's choice alone, a model loaded after it without a cap gets the best
// kernels (a reload from kernels = "generic" to the default), and the first keeps computing on
// the generic ones, bit for bit, while the second runs.
func TestKernelsPerEngine(t *testing.T) {
	best, err := kernels.Choose("")
	if err != nil {
		t.Fatal(err)
	}
	if best.Features() == "generic" {
		t.Skip("this CPU has no kernels but the generic ones")
	}
	process := kernels.Features()
	old := load(t, Options{Kernels: "generic"})
	if got := old.Info().Kernels; got != "generic" {
		t.Fatalf("loaded with kernels=generic: runs %q", got)
	}
	if got := kernels.Features(); got != process {
		t.Fatalf("loading a model with kernels=generic changed the process's kernels from %q to %q", process, got)
	}
	req := Request{Prompt: old.Tokenize(prompts[1], true, false), MaxTokens: 24, Logprobs: 3, Echo: true}
	before, _ := gen(t, old, req)

	for _, cap := range []string{"", "auto"} {
		nu := load(t, Options{Kernels: cap})
		if got := nu.Info().Kernels; got != best.Features() {
			t.Errorf("loaded with kernels=%q after a generic model: runs %q, want %q", cap, got, best.Features())
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			gen(t, nu, req)
		}()
		after, _ := gen(t, old, req)
		<-done
		for i := range before.Logprobs {
			if before.Logprobs[i].Logprob != after.Logprobs[i].Logprob {
				t.Fatalf("kernels=%q: the generic model's logprob %d went from %v to %v", cap, i, before.Logprobs[i].Logprob, after.Logprobs[i].Logprob)
			}
		}
	}
}
