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

// TestInfoWillRun: `edgelm info` says in one line whether a file runs and, if not, which tensor
// type or architecture edgelm lacks; `run` on such a file fails with one line naming it.
func TestInfoWillRun(t *testing.T) {
	shared := testshared.Dir(t)
	src, err := gguf.Open(filepath.Join(shared, "models", "aidreams260K-q4_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// The same model with two matrices retyped to IQ4_NL, whose blocks are Q4_0's size.
	w := gguf.NewWriter()
	for _, kv := range src.KV {
		w.SetValue(kv.Key, kv.Value)
	}
	for _, tn := range src.Tensors {
		typ := tn.Type
		if tn.Name == "blk.0.attn_q.weight" || tn.Name == "blk.1.attn_q.weight" {
			typ = gguf.IQ4_NL
		}
		w.AddTensor(tn.Name, typ, tn.Dims, tn.Data)
	}
	dir := t.TempDir()
	iq := filepath.Join(dir, "iq4nl.gguf")
	if err := w.WriteFile(iq); err != nil {
		t.Fatal(err)
	}
	arch := gguf.NewWriter()
	arch.Set("general.architecture", "mamba")
	mamba := filepath.Join(dir, "mamba.gguf")
	if err := arch.WriteFile(mamba); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want, runErr string }{
		{filepath.Join(shared, "models", "tinydoc-q4_k_m.gguf"), "will run:      yes\n", ""},
		{filepath.Join(shared, "models", "tinydoc-q5_k_m.gguf"), "will run:      yes\n", ""},
		{iq, "will run:      no: edgelm does not compute with tensor type IQ4_NL (2 tensors)\n", "tensor type IQ4_NL"},
		{mamba, `will run:      no: unknown architecture "mamba"`, `unknown architecture "mamba"`},
	} {
		var out bytes.Buffer
		if err := infoCmd([]string{"--model", c.file}, &out); err != nil {
			t.Fatalf("info %s: %v", filepath.Base(c.file), err)
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("info %s: no line %q in\n%s", filepath.Base(c.file), c.want, out.String())
		}
		if c.runErr == "" {
			continue
		}
		var o, e bytes.Buffer
		err := runCmd([]string{"--model", c.file, "--prompt", "hi", "--max-tokens", "1"}, &o, &e)
		if err == nil || !strings.Contains(err.Error(), c.runErr) || strings.Contains(err.Error(), "\n") {
			t.Errorf("run %s: got %v, want one line containing %q", filepath.Base(c.file), err, c.runErr)
		}
	}
}
