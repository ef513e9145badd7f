package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/internal/testshared"
)

// TestTruncatedModelFile: the model file shrinking under a running engine makes requests fail with a
// clear error instead of killing the process with SIGBUS; once the file is whole again, requests work.
func TestTruncatedModelFile(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(path, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ids := e.Tokenize("Once upon a time", true, false)
	want, _ := gen(t, e, Request{Prompt: ids, MaxTokens: 16})

	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	_, err = e.Generate(context.Background(), Request{Prompt: ids, MaxTokens: 16}, nil)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("generate on a truncated file: %v, want a fault error", err)
	}

	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := gen(t, e, Request{Prompt: ids, MaxTokens: 16})
	if len(got.Tokens) != len(want.Tokens) {
		t.Fatalf("after restoring: %d tokens, want %d", len(got.Tokens), len(want.Tokens))
	}
	for i := range got.Tokens {
		if got.Tokens[i] != want.Tokens[i] {
			t.Fatalf("after restoring, token %d differs", i)
		}
	}
}
