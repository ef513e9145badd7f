package tokenizer

import (
	"os"
	"strings"
	"testing"

	"edgelm/internal/testshared"
)

// benchText is a few KB of the llama.cpp test strings: prose, code, numbers, non-Latin
// scripts and odd whitespace.
func benchText(b *testing.B) string {
	data, err := os.ReadFile(testshared.Path(b, "vocab", "ggml-vocab-gpt-2.gguf.inp"))
	if err != nil {
		b.Fatal(err)
	}
	s := strings.ReplaceAll(string(data), "\n__ggml_vocab_test__\n", " ")
	for len(s) < 4096 {
		s += s
	}
	return s[:4096]
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range []struct{ name, file string }{
		{"spm", "ggml-vocab-llama-spm.gguf"},
		{"gpt2", "ggml-vocab-gpt-2.gguf"},
	} {
		b.Run(c.name, func(b *testing.B) {
			tk := load(b, "vocab", c.file)
			text := benchText(b)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				tk.Encode(text, true, true)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	tk := load(b, "vocab", "ggml-vocab-gpt-2.gguf")
	text := benchText(b)
	ids := tk.Encode(text, false, false)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tk.Decode(ids)
	}
}

func BenchmarkLoad(b *testing.B) {
	path := testshared.Path(b, "vocab", "ggml-vocab-gpt-2.gguf")
	_ = path
	b.ReportAllocs()
	for b.Loop() {
		loadMu.Lock()
		delete(loaded, path)
		loadMu.Unlock()
		load(b, "vocab", "ggml-vocab-gpt-2.gguf")
	}
}
