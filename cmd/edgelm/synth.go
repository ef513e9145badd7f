package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"edgelm/gguf"
	"edgelm/synth"
)

func init() {
	register("synth", "write a random-weight model of a named shape (for benchmarks and tests)", func(args []string) error {
		return synthCmd(args, os.Stdout)
	})
}

// defaultVocab is the llama SentencePiece vocabulary of the shared test data, when it can be found:
// $EDGELM_SHARED/vocab/..., else ../shared/vocab/... from the working directory (the repository
// root in a checkout). Elsewhere there is no default: the bench shapes are llama-bench's only with
// a 32000-token llama vocabulary, which is neither small nor ours to ship, so --vocab is asked for.
func defaultVocab() string {
	dir := os.Getenv("EDGELM_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "shared")
	}
	p := filepath.Join(dir, "vocab", "ggml-vocab-llama-spm.gguf")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func synthCmd(args []string, stdout io.Writer) error {
	fs := newFlags("synth", "--shape NAME --type q4_0|q8_0|f16|f32 --out FILE [--vocab VOCAB.gguf] [--seed N]")
	var names []string
	for _, s := range synth.Shapes {
		names = append(names, s.Name)
	}
	shapeName := fs.String("shape", "", "model shape: "+strings.Join(names, ", "))
	typ := fs.String("type", "q4_0", "weight type: q4_0, q8_0, f16 or f32")
	out := fs.String("out", "", "output GGUF file")
	vocabPath := fs.String("vocab", defaultVocab(), "GGUF file whose tokenizer is copied (any model's; the bench shapes assume a 32000-token llama vocabulary such as ggml-vocab-llama-spm.gguf)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *shapeName == "" || *out == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: --shape NAME and --out FILE are required", errUsage)
	}
	shape, err := synth.Lookup(*shapeName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	t, err := synth.ParseType(*typ)
	if err != nil {
		return fmt.Errorf("%w: --type: %v", errUsage, err)
	}
	if *vocabPath == "" {
		return usageError("no vocabulary: give --vocab FILE.gguf, a GGUF file whose tokenizer the model gets (e.g. ggml-vocab-llama-spm.gguf from llama.cpp's models/ folder, or any llama model), or set EDGELM_SHARED")
	}
	vocab, err := gguf.Open(*vocabPath)
	if err != nil {
		return fmt.Errorf("vocabulary: %w", err)
	}
	defer vocab.Close()
	start := time.Now()
	if err := synth.Write(*out, synth.Options{Shape: shape, Type: t, Vocab: vocab, Seed: *seed}); err != nil {
		return err
	}
	var size int64
	if st, err := os.Stat(*out); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(stdout, "%s: %s %s, %.2f GB, written in %s\n", *out, shape.Name, t, float64(size)/1e9, time.Since(start).Round(time.Millisecond))
	return nil
}
