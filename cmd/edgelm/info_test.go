package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/internal/testshared"
)

// TestInfoArchitectures: edgelm info names each new architecture and what sets it apart, from
// small files written by edgelm synth.
func TestInfoArchitectures(t *testing.T) {
	vocab := filepath.Join(testshared.Dir(t), "vocab", "ggml-vocab-llama-spm.gguf")
	dir := t.TempDir()
	for _, c := range []struct {
		shape string
		want  []string
	}{
		{"tiny-qwen2", []string{"architecture:  qwen2", "(neox)", "variant:       q/k/v biases\n"}},
		{"tiny-qwen3", []string{"architecture:  qwen3", "variant:       per-head q/k RMSNorm, head dim 32 x 4 heads != dim 64\n"}},
		{"tiny-phi3", []string{"architecture:  phi3", "variant:       fused attn_qkv, fused gate+up in ffn_up\n"}},
		{"tiny-phi3.5", []string{"rope scaling:  LongRoPE factors: short up to 16 tokens of context, long beyond (long for 512, see --ctx); attention factor 1.5"}},
		{"tiny-llama3", []string{"architecture:  llama", "rope scaling:  llama3 (factor 8, low 1, high 4, original context 128)\n"}},
	} {
		path := filepath.Join(dir, c.shape+".gguf")
		var out bytes.Buffer
		if err := synthCmd([]string{"--shape", c.shape, "--type", "f16", "--out", path, "--vocab", vocab}, &out); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := infoCmd([]string{"--model", path}, &out); err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: info lacks %q:\n%s", c.shape, w, out.String())
			}
		}
		if strings.Contains(out.String(), "cannot run") {
			t.Errorf("%s: %s", c.shape, out.String())
		}
	}
}
