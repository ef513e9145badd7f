package synth

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/engine"
	"edgelm/gguf"
	"edgelm/internal/testshared"
	"edgelm/model"
	"edgelm/quant"
)

func vocab(t *testing.T) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testshared.Path(t, "vocab", "ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func build(t *testing.T, o Options) []byte {
	t.Helper()
	w, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// floats expands a tensor to float32 with the quant package (the oracle, not the kernels).
func floats(t *testing.T, x *gguf.Tensor) []float32 {
	t.Helper()
	out := make([]float32, x.Elements())
	switch x.Type {
	case gguf.F32:
		for i := range out {
			out[i] = math.Float32frombits(uint32(x.Data[4*i]) | uint32(x.Data[4*i+1])<<8 | uint32(x.Data[4*i+2])<<16 | uint32(x.Data[4*i+3])<<24)
		}
	case gguf.F16:
		for i := range out {
			out[i] = quant.F16ToF32(uint16(x.Data[2*i]) | uint16(x.Data[2*i+1])<<8)
		}
	case gguf.Q8_0:
		quant.DequantizeQ8_0(out, x.Data)
	case gguf.Q4_0:
		quant.DequantizeQ4_0(out, x.Data)
	default:
		t.Fatalf("tensor %q: type %s", x.Name, x.Type)
	}
	return out
}

func meanStd(x []float32) (float64, float64) {
	var s, ss float64
	for _, v := range x {
		s += float64(v)
		ss += float64(v) * float64(v)
	}
	m := s / float64(len(x))
	return m, math.Sqrt(ss/float64(len(x)) - m*m)
}

// TestTinyShapes writes every tiny shape in every type and checks the file: the tokenizer is the
// vocabulary's, the types follow the row-length rule, the weights have the stated distribution, and
// model.Load accepts it.
func TestTinyShapes(t *testing.T) {
	v := vocab(t)
	tokens, _ := v.Strings("tokenizer.ggml.tokens")
	for _, name := range tinyShapes {
		for _, typ := range []gguf.Type{gguf.F32, gguf.F16, gguf.Q8_0, gguf.Q4_0} {
			t.Run(name+"/"+typ.String(), func(t *testing.T) {
				shape, err := Lookup(name)
				if err != nil {
					t.Fatal(err)
				}
				f, err := gguf.Parse(build(t, Options{Shape: shape, Type: typ, Vocab: v, Seed: 7}))
				if err != nil {
					t.Fatal(err)
				}
				got, _ := f.Strings("tokenizer.ggml.tokens")
				if len(got) != len(tokens) || got[100] != tokens[100] {
					t.Errorf("tokenizer not copied: %d tokens", len(got))
				}
				m, err := model.Load(f)
				if err != nil {
					t.Fatal(err)
				}
				if m.Dim != shape.Dim || m.Layers != shape.Layers || m.FFN != shape.FFN || m.Vocab != len(tokens) || m.KVHeads != shape.KVHeads || m.HeadDim != shape.HeadDim {
					t.Errorf("loaded config %+v does not match shape %+v", m.Config, shape)
				}
				down, _ := f.Tensor("blk.0.ffn_down.weight") // rows of 176: not whole blocks
				q, ok := f.Tensor("blk.1.attn_q.weight")
				if !ok {
					q, _ = f.Tensor("blk.1.attn_qkv.weight") // phi3
				}
				norm, _ := f.Tensor("blk.0.ffn_norm.weight")
				wantQ := typ
				wantDown := typ
				if typ == gguf.Q8_0 || typ == gguf.Q4_0 {
					wantDown = gguf.F32
				}
				if down.Type != wantDown || q.Type != wantQ || norm.Type != gguf.F32 {
					t.Errorf("types: ffn_down %s (want %s), attn_q %s (want %s), norm %s", down.Type, wantDown, q.Type, wantQ, norm.Type)
				}
				tol := 0.002 // sampling error of ~4000 values, plus Q4_0's rounding
				if typ == gguf.Q4_0 {
					tol = 0.004
				}
				if mean, std := meanStd(floats(t, q)); math.Abs(mean) > 0.002 || math.Abs(std-0.02) > tol {
					t.Errorf("attn_q: mean %.4f std %.4f, want 0 and 0.02", mean, std)
				}
				embStd := 0.02
				if shape.Arch == "gemma2" {
					embStd = 0.1
				}
				if _, std := meanStd(floats(t, &f.Tensors[0])); math.Abs(std-embStd)/embStd > 0.05 {
					t.Errorf("token_embd std %.4f, want %.2f", std, embStd)
				}
				for _, x := range floats(t, norm) {
					if x < 0.9 || x > 1.1 {
						t.Fatalf("norm weight %g outside 1 ± 0.1", x)
					}
				}
			})
		}
	}
}

// TestDeterministic: the same seed gives the same file whatever the parallelism; another seed differs.
func TestDeterministic(t *testing.T) {
	v := vocab(t)
	shape, _ := Lookup("tiny")
	a := build(t, Options{Shape: shape, Type: gguf.Q4_0, Vocab: v, Seed: 1})
	b := build(t, Options{Shape: shape, Type: gguf.Q4_0, Vocab: v, Seed: 1})
	c := build(t, Options{Shape: shape, Type: gguf.Q4_0, Vocab: v, Seed: 2})
	if !bytes.Equal(a, b) {
		t.Error("same seed, different files")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same file")
	}
}

var tinyShapes = []string{"tiny", "tiny-llama3", "tiny-qwen2", "tiny-qwen3", "tiny-phi3", "tiny-phi3.5", "tiny-gemma2"}

// TestEngineRuns: the engine loads a written tiny file, with its tokenizer, and generates.
func TestEngineRuns(t *testing.T) {
	v := vocab(t)
	for _, name := range tinyShapes {
		shape, _ := Lookup(name)
		path := filepath.Join(t.TempDir(), name+".gguf")
		if err := Write(path, Options{Shape: shape, Type: gguf.Q8_0, Vocab: v, Seed: 3}); err != nil {
			t.Fatal(err)
		}
		e, err := engine.Load(path, engine.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Generate(context.Background(), engine.Request{Prompt: e.Tokenize("Hello world", true, false), MaxTokens: 5, IgnoreEOS: true}, nil)
		e.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tokens) != 5 {
			t.Errorf("%s: %d tokens generated, want 5", name, len(res.Tokens))
		}
	}
}

func TestBadOptions(t *testing.T) {
	v := vocab(t)
	shape, _ := Lookup("tiny")
	if _, err := Lookup("nope"); err == nil {
		t.Error("unknown shape accepted")
	}
	if _, err := Build(Options{Shape: shape, Type: gguf.BF16, Vocab: v}); err == nil {
		t.Error("BF16 accepted")
	}
	if _, err := Build(Options{Shape: shape, Type: gguf.Q4_0}); err == nil {
		t.Error("missing vocabulary accepted")
	}
	bad := shape
	bad.KVHeads = 3
	if _, err := Build(Options{Shape: bad, Type: gguf.Q4_0, Vocab: v}); err == nil {
		t.Error("4 heads over 3 KV heads accepted")
	}
}

// TestEngineNoCache: for each tiny shape, generating with the KV cache (prefill, then decodes) gives
// the tokens that recomputing the whole sequence at every step gives (edgelm run --no-cache).
func TestEngineNoCache(t *testing.T) {
	v := vocab(t)
	for _, name := range tinyShapes {
		shape, _ := Lookup(name)
		path := filepath.Join(t.TempDir(), name+".gguf")
		if err := Write(path, Options{Shape: shape, Type: gguf.F32, Vocab: v, Seed: 5}); err != nil {
			t.Fatal(err)
		}
		e, err := engine.Load(path, engine.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		prompt := e.Tokenize("The quick brown fox jumps over the lazy dog", true, false)
		var got [2][]int32
		for i, noCache := range []bool{false, true} {
			res, err := e.Generate(context.Background(), engine.Request{Prompt: prompt, MaxTokens: 12, IgnoreEOS: true, NoCache: noCache}, nil)
			if err != nil {
				e.Close()
				t.Fatal(err)
			}
			got[i] = res.Tokens
		}
		e.Close()
		if len(got[0]) != 12 || fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
			t.Errorf("%s: cached %v, no cache %v", name, got[0], got[1])
		}
	}
}

// TestRefusesOverwritingVocab: an output path that is the vocab file, or a link to it, is refused
// and the vocab file is left as it was.
func TestRefusesOverwritingVocab(t *testing.T) {
	src, err := os.ReadFile(testshared.Path(t, "vocab", "ggml-vocab-llama-spm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vp := filepath.Join(dir, "vocab.gguf")
	if err := os.WriteFile(vp, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(vp, filepath.Join(dir, "sym.gguf")); err != nil {
		t.Fatal(err)
	}
	v, err := gguf.Open(vp)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	shape, _ := Lookup("tiny")
	for _, out := range []string{vp, filepath.Join(dir, "sym.gguf")} {
		if err := Write(out, Options{Shape: shape, Type: gguf.Q8_0, Vocab: v, Seed: 1}); err == nil || !strings.Contains(err.Error(), "is the vocab file") {
			t.Errorf("output %s: %v, want a refusal", out, err)
		}
	}
	if got, err := os.ReadFile(vp); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("the vocab file changed (%v)", err)
	}
}
