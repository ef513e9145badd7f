package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
)

// TestBadModelFiles: a model edgelm cannot use gives one line naming the problem, through the CLI.
func TestBadModelFiles(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.gguf")
	os.WriteFile(truncated, src[:len(src)/2], 0o644)
	w := gguf.NewWriter()
	w.Set("general.architecture", "mamba")
	unknown := filepath.Join(dir, "mamba.gguf")
	if err := w.WriteFile(unknown); err != nil {
		t.Fatal(err)
	}
	notGGUF := filepath.Join(dir, "text.gguf")
	os.WriteFile(notGGUF, []byte("hello, this is not a model file at all"), 0o644)
	for _, c := range []struct{ file, want string }{
		{truncated, "past end of file"},
		{unknown, `unknown architecture "mamba"`},
		{notGGUF, "magic"},
		{filepath.Join(dir, "missing.gguf"), "no such file"},
	} {
		var out, errb bytes.Buffer
		err := runCmd([]string{"--model", c.file, "--prompt", "hi", "--max-tokens", "1"}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line containing %q", filepath.Base(c.file), err, c.want)
		}
	}
}
