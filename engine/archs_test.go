package engine

import (
	"context"
	"path/filepath"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
	"edgelm/synth"
)

// TestArchitecturesNoCache: for each architecture added after llama and gemma, a small random
// model written by synth generates through the engine (prefill, then cached decodes) exactly the
// tokens it generates recomputing the whole sequence at every step. For Phi-3.5's LongRoPE the
// engine's context chooses the factors.
func TestArchitecturesNoCache(t *testing.T) {
	vocab, err := gguf.Open(filepath.Join(testshared.Dir(t), "vocab", "ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer vocab.Close()
	for _, name := range []string{"tiny-qwen2", "tiny-qwen3", "tiny-phi3", "tiny-phi3.5", "tiny-llama3"} {
		t.Run(name, func(t *testing.T) {
			shape, err := synth.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), name+".gguf")
			if err := synth.Write(path, synth.Options{Shape: shape, Type: gguf.Q8_0, Vocab: vocab, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			// Phi-3.5's long RoPE factors are for contexts beyond the original 512/32 tokens; a
			// 16-token engine takes the short ones and a 17-token one the long (as llama.cpp does).
			if shape.LongRoPE {
				for ctx, long := range map[int]bool{16: false, 17: true} {
					e, err := Load(path, Options{ContextLength: ctx})
					if err != nil {
						t.Fatal(err)
					}
					m := e.model
					if m.RopeFreqs == nil || m.RopeShort == nil || m.RopeLong == nil {
						t.Fatalf("context %d: RoPE divisors in use %v, short %v, long %v", ctx, m.RopeFreqs, m.RopeShort, m.RopeLong)
					}
					if got := &m.RopeFreqs[0] == &m.RopeLong[0]; got != long {
						t.Errorf("context %d: long factors in use %v, want %v", ctx, got, long)
					}
					e.Close()
				}
			}
			e, err := Load(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			ids := e.Tokenize(prompts[1], true, false)
			// Sampled, so that a tied-output model does not repeat one token; the seed makes both runs
			// draw the same numbers. Top-k keeps the sampler cheap under qemu.
			samp := Sampling{Temperature: 1, TopK: 8, Seed: 7}
			run := func(noCache bool) (toks []int32, lps []float32) {
				req := Request{Prompt: ids, MaxTokens: 12, IgnoreEOS: true, Sampling: samp, Logprobs: 1, NoCache: noCache}
				_, err := e.Generate(context.Background(), req, func(ev Event) error {
					toks, lps = append(toks, ev.Token), append(lps, ev.Logprob)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return toks, lps
			}
			a, la := run(false)
			b, lb := run(true)
			if len(a) != 12 || len(b) != 12 {
				t.Fatalf("%d and %d tokens, want 12", len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("token %d: cache %d, no cache %d (%v vs %v)", i, a[i], b[i], a, b)
				}
				if d := la[i] - lb[i]; d > 1e-4 || d < -1e-4 {
					t.Errorf("token %d: logprob %g with the cache, %g without", i, la[i], lb[i])
				}
			}
		})
	}
}
