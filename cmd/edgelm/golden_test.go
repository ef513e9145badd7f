package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"edgelm/internal/testshared"
)

type golden struct {
	Model        string  `json:"model"`
	Prompt       string  `json:"prompt"`
	PromptTokens []int32 `json:"prompt_tokens"`
	Tokens       []int32 `json:"tokens"`
	Text         string  `json:"text"`
	Positions    []struct {
		Top [][2]float64 `json:"top"`
	} `json:"positions"`
}

// TestGolden runs `edgelm run --json --echo --logprobs 5` on every reference output in
// ../shared/golden and its sets (stories260K/, tinydoc/) and compares it field by field as
// golden/README.md prescribes.
func TestGolden(t *testing.T) {
	dir := testshared.Dir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "golden", "*.json"))
	sets, _ := filepath.Glob(filepath.Join(dir, "golden", "*", "*.json"))
	files = append(files, sets...)
	if len(files) == 0 {
		t.Fatalf("no golden files in %s/golden", dir)
	}
	var mu sync.Mutex
	var offFiles []string
	defer func() {
		if len(offFiles) > 2 {
			t.Errorf("%d quantized golden files have logprobs outside the tolerance (%v); at most two may", len(offFiles), offFiles)
		}
	}()
	for _, gf := range files {
		t.Run(filepath.Base(gf), func(t *testing.T) {
			raw, err := os.ReadFile(gf)
			if err != nil {
				t.Fatal(err)
			}
			var want golden
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			modelPath := filepath.Join(dir, "models", want.Model)
			if _, err := os.Stat(modelPath); err != nil && filepath.Dir(gf) != filepath.Join(dir, "golden") && strings.Contains(want.Model, "f32") {
				// golden/README.md: a set's f32 references are for comparison; their models are not shipped.
				t.Skipf("%s is a reference for comparison only (%s not shipped)", filepath.Base(gf), want.Model)
			}
			f32ref := f32Reference(gf, want.Model)
			var out, errb bytes.Buffer
			args := []string{"--model", modelPath, "--prompt", want.Prompt,
				"--max-tokens", "64", "--temperature", "0", "--json", "--echo", "--logprobs", "5"}
			if err := runCmd(args, &out, &errb); err != nil {
				t.Fatalf("run: %v\n%s", err, errb.String())
			}
			var got golden
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out.String())
			}
			if !equal(got.PromptTokens, want.PromptTokens) {
				t.Fatalf("prompt_tokens %v, want %v", got.PromptTokens, want.PromptTokens)
			}
			if !equal(got.Tokens, want.Tokens) {
				t.Errorf("tokens %v, want %v", got.Tokens, want.Tokens)
			}
			// The reference detokenizes the continuation alone, and a SentencePiece decoder drops the
			// space its first piece starts with; ours is the text that follows the prompt, space included.
			if got.Text != want.Text && got.Text != " "+want.Text {
				t.Errorf("text %q, want %q", got.Text, want.Text)
			}
			tol := 2e-3
			if !strings.Contains(want.Model, "f32") {
				tol = 2e-2
			}
			if len(got.Positions) != len(want.Positions) {
				t.Fatalf("%d positions, want %d", len(got.Positions), len(want.Positions))
			}
			worst, over := 0.0, map[int]bool{}
			for i, wp := range want.Positions {
				gp := got.Positions[i].Top
				if len(gp) != len(wp.Top) {
					t.Fatalf("position %d: %d top entries, want %d", i, len(gp), len(wp.Top))
				}
				for k, w := range wp.Top {
					// The order must agree wherever neighbours are more than 1e-3 apart.
					separated := (k == 0 || wp.Top[k-1][1]-w[1] > 1e-3) && (k == len(wp.Top)-1 || w[1]-wp.Top[k+1][1] > 1e-3)
					if separated && gp[k][0] != w[0] {
						over[i] = true
						t.Logf("position %d rank %d: token %v, want %v", i, k, gp[k][0], w[0])
					}
					// Compare the logprob of the same token, wherever it sits in our list.
					found := false
					for _, g := range gp {
						if g[0] == w[0] {
							found = true
							d := math.Abs(g[1] - w[1])
							worst = math.Max(worst, d)
							if d > tol {
								if f, ok := f32ref.logprob(i, w[0]); ok && math.Abs(g[1]-f) <= math.Abs(w[1]-f) {
									// golden/README.md: a borderline position is right if it is no further
									// from the f32 reference than the reference's own quantized run is.
									t.Logf("position %d token %v: logprob %.6f, want %.6f; f32 reference %.6f is as close to ours", i, w[0], g[1], w[1], f)
								} else {
									over[i] = true
									t.Logf("position %d token %v: logprob %.6f, want %.6f (tolerance %g)", i, w[0], g[1], w[1], tol)
								}
							}
							if d > 5*tol {
								t.Errorf("position %d token %v: logprob %.6f, want %.6f (hard limit %g)", i, w[0], g[1], w[1], 5*tol)
							}
						}
					}
					if !found && separated {
						over[i] = true
						t.Logf("position %d: token %v missing from the top list", i, w[0])
					}
				}
			}
			t.Logf("worst logprob difference %.2g (tolerance %g); %d of %d positions outside it", worst, tol, len(over), len(want.Positions))
			// F32 models must match everywhere, and so must quantized ones but for two files: with 8-bit
			// activations a last-bit difference somewhere upstream (the reference's evaluation order) can
			// round one activation to the neighbouring level; the changed key and value then stay in the
			// cache and later logprobs move by a few hundredths. aidreams260K-q4_0.p3 does this from
			// position 26 on amd64 (up to 0.074, tokens still equal), and the arm64 kernels' other
			// summation order moves q4_0.p1 by 0.022; see docs/correctness.md. Every
			// position stays within 5× the tolerance, and the tokens must match exactly.
			if len(over) > 0 {
				if tol <= 2e-3 {
					t.Errorf("%d positions outside the tolerance %g", len(over), tol)
				} else {
					mu.Lock()
					offFiles = append(offFiles, filepath.Base(gf))
					mu.Unlock()
				}
			}
		})
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// f32Positions are the positions of an f32 reference run of the same prompt, nil when there is none.
type f32Positions []struct {
	Top [][2]float64 `json:"top"`
}

// f32Reference loads the f32 reference beside golden file gf of a quantized model
// (tinydoc/tinydoc-q4_k_m.p1.json -> tinydoc/tinydoc-f32.p1.json), or nil.
func f32Reference(gf, model string) f32Positions {
	base := filepath.Base(gf)
	stem := strings.TrimSuffix(model, ".gguf")
	i := strings.LastIndex(stem, "-")
	if i < 0 || strings.Contains(model, "f32") || !strings.HasPrefix(base, stem+".") {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(gf), stem[:i]+"-f32"+strings.TrimPrefix(base, stem)))
	if err != nil {
		return nil
	}
	var ref golden
	if json.Unmarshal(raw, &ref) != nil {
		return nil
	}
	return f32Positions(ref.Positions)
}

// logprob is the reference's logprob of token tok at position i, if in its top list.
func (r f32Positions) logprob(i int, tok float64) (float64, bool) {
	if i >= len(r) {
		return 0, false
	}
	for _, e := range r[i].Top {
		if e[0] == tok {
			return e[1], true
		}
	}
	return 0, false
}
