package gguf

import (
	"os"
	"testing"

	"edgelm/internal/testshared"
)

// BenchmarkParseVocab parses the GPT-2 vocabulary file (50257 tokens, 50000
// merges): the metadata walk dominates model loading.
func BenchmarkParseVocab(b *testing.B) {
	data, err := os.ReadFile(testshared.Path(b, "vocab", "ggml-vocab-gpt-2.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
