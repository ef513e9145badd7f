package tokenizer

import (
	"strings"
	"testing"
	"time"
)

// TestLongRunsLinear guards against matchers that rescan a run from every position
// inside it (deepseek-llm's \s+$ did: 60k spaces took 5 s). A quadratic path
// takes seconds on these inputs, a linear one milliseconds.
func TestLongRunsLinear(t *testing.T) {
	tks := map[string]*Tokenizer{"spm": toySPM(t, true)}
	for _, pre := range []string{"default", "gpt-2", "falcon", "llama-bpe", "qwen2", "starcoder", "deepseek-coder", "deepseek-llm"} {
		tks[pre] = toyBPE(t, pre, fuzzExtra, fuzzMerges)
	}
	for _, unit := range []string{" ", "\n", "a", "1", "!", "\xff"} {
		for _, tail := range []string{"", "1"} {
			s := strings.Repeat(unit, 60000) + tail
			for name, tk := range tks {
				t0 := time.Now()
				tk.Encode(s, false, true)
				if d := time.Since(t0); d > 2*time.Second {
					t.Errorf("%s: %q x 60000 + %q took %v", name, unit, tail, d)
				}
			}
		}
	}
}
