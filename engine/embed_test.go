package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
	"edgelm/kvcache"
	"edgelm/model"
)

// directStates runs prompt through a fresh runner of e's model in one step, outside the scheduler,
// and returns every token's final hidden state.
func directStates(t *testing.T, e *Engine, prompt []int32) [][]float32 {
	t.Helper()
	m := e.Model()
	r := model.NewRunner(m, nil)
	seq := kvcache.NewSeq(kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}, len(prompt))
	b := &model.Batch{Tokens: prompt, Logits: make([]bool, len(prompt)), Hidden: make([]bool, len(prompt)),
		HiddenOut: make([]float32, len(prompt)*m.Dim)}
	for i := range prompt {
		b.Pos = append(b.Pos, int32(i))
		b.Seqs = append(b.Seqs, seq)
		b.Hidden[i] = true
	}
	if err := r.Forward(b, nil); err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(prompt))
	for i := range out {
		out[i] = b.HiddenOut[i*m.Dim : (i+1)*m.Dim]
	}
	return out
}

func mean(states [][]float32) []float64 {
	out := make([]float64, len(states[0]))
	for _, s := range states {
		for i, v := range s {
			out[i] += float64(v)
		}
	}
	for i := range out {
		out[i] /= float64(len(states))
	}
	return out
}

func closeTo(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d floats, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*(1+math.Abs(want[i])) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: element %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// TestEmbedMeanOfStates: an embedding is the mean of the prompt's final hidden states computed in
// one plain step; a prompt longer than a prefill chunk (pooled over several steps) too; and
// embeddings made at once with generations, batched in the same steps, equal those made alone.
func TestEmbedMeanOfStates(t *testing.T) {
	e, err := Load(filepath.Join(testshared.Dir(t), "models", "tinydoc-q8_0.gguf"), Options{MaxSequences: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if info := e.Info(); info.Pooling != "mean" || info.EmbeddingLength != e.Model().Dim {
		t.Fatalf("info pooling %q, embedding length %d; want mean, %d", info.Pooling, info.EmbeddingLength, e.Model().Dim)
	}
	text, err := os.ReadFile(filepath.Join(testshared.Dir(t), "models", "tinydoc-valid.txt"))
	if err != nil {
		t.Fatal(err)
	}
	long := e.Tokenize(string(text[:4000]), true, false)[:prefillChunk+60]
	texts := []string{"The list type", "Return the number of items in a container.", "import os"}
	var inputs [][]int32
	for _, s := range texts {
		inputs = append(inputs, e.Tokenize(s, true, false))
	}
	inputs = append(inputs, long)
	alone := make([][]float32, len(inputs))
	for i, p := range inputs {
		emb, err := e.Embed(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if emb.PromptTokens != len(p) {
			t.Errorf("input %d: %d prompt tokens, want %d", i, emb.PromptTokens, len(p))
		}
		closeTo(t, fmt.Sprintf("input %d (%d tokens)", i, len(p)), emb.Vector, mean(directStates(t, e, p)), 1e-4)
		alone[i] = emb.Vector
	}
	if st := e.Stats(); st.KVBytes != 0 {
		t.Errorf("embeddings left %d bytes of KV cache behind (the prefix cache must not keep them)", st.KVBytes)
	}
	var wg sync.WaitGroup
	together := make([][]float32, len(inputs))
	for i, p := range inputs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			emb, err := e.Embed(context.Background(), p)
			if err != nil {
				t.Error(err)
				return
			}
			together[i] = emb.Vector
		}()
		go func() {
			defer wg.Done()
			if _, err := e.Generate(context.Background(), Request{Prompt: p[:min(len(p), 20)], MaxTokens: 8}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range inputs {
		want := make([]float64, len(alone[i]))
		for k, v := range alone[i] {
			want[k] = float64(v)
		}
		// Batched with others the products may be summed in another order: near, not equal.
		closeTo(t, fmt.Sprintf("input %d batched", i), together[i], want, 1e-3)
	}
}

// withPooling writes a copy of a shared model with <arch>.pooling_type set to p.
func withPooling(t *testing.T, name string, p model.Pooling) string {
	t.Helper()
	f, err := gguf.Open(filepath.Join(testshared.Dir(t), "models", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	arch, _ := f.String("general.architecture")
	w := gguf.NewWriter()
	for _, kv := range f.KV {
		if kv.Key != arch+".pooling_type" {
			w.SetValue(kv.Key, kv.Value)
		}
	}
	w.Set(arch+".pooling_type", uint32(p))
	for _, tn := range f.Tensors {
		w.AddTensor(tn.Name, tn.Type, tn.Dims, tn.Data)
	}
	path := filepath.Join(t.TempDir(), name)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEmbedPooling: a model declaring cls or last pooling gets its first or last token's state; one
// declaring none is pooled by the mean; a reranker is refused.
func TestEmbedPooling(t *testing.T) {
	for _, tc := range []struct {
		p    model.Pooling
		want string
	}{{model.PoolCLS, "cls"}, {model.PoolLast, "last"}, {model.PoolNone, "mean"}, {model.PoolRank, "rank"}} {
		t.Run(tc.want, func(t *testing.T) {
			e, err := Load(withPooling(t, "aidreams260K-q8_0.gguf", tc.p), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if got := e.Info().Pooling; got != tc.want {
				t.Errorf("info pooling %q, want %q", got, tc.want)
			}
			p := e.Tokenize("Once upon a time there was", true, false)
			emb, err := e.Embed(context.Background(), p)
			if tc.p == model.PoolRank {
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("reranker: got %v, want ErrInvalidRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			states := directStates(t, e, p)
			switch tc.p {
			case model.PoolCLS:
				states = states[:1]
			case model.PoolLast:
				states = states[len(states)-1:]
			}
			closeTo(t, tc.want, emb.Vector, mean(states), 1e-5)
		})
	}
}

// TestEmbedErrors: empty, too long and out-of-vocabulary prompts are refused before queueing; a
// cancelled context ends the request.
func TestEmbedErrors(t *testing.T) {
	e := load(t, Options{ContextLength: 32})
	for name, p := range map[string][]int32{"empty": nil, "too long": make([]int32, 33), "vocab": {1, 100000}, "negative": {-1}} {
		if _, err := e.Embed(context.Background(), p); !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrPromptTooLong) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, []int32{1, 2, 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	emb, err := e.Embed(context.Background(), make([]int32, 32)) // exactly the context
	if err != nil || len(emb.Vector) != e.Model().Dim {
		t.Errorf("a prompt of the whole context: %v", err)
	}
}
