package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzExtra = []string{"he", "ll", "hell", "hello", "Ġw", "Ġwo", "th", "Ġth", "Ġthe", "in", "Ġin", "<|endoftext|>"}
var fuzzMerges = []string{"h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o", "t h", "Ġ th", "Ġth e", "i n", "Ġ in"}

// FuzzEncodeDecode feeds arbitrary bytes to an SPM tokenizer and to a byte-level BPE
// tokenizer per pre-tokenizer. Nothing may panic or give ids out of range; BPE gives
// the bytes back exactly (a complete byte alphabet is in the vocabulary, and the
// splitting keeps invalid UTF-8 bytes), SPM does for valid UTF-8 where llama.cpp would,
// and the streamed text is always valid UTF-8, equal to the decoded text when that is.
//
// Each input runs ten tokenizers, so minimising a new input takes long: fuzz with
// -fuzzminimizetime 1s, or the progress line shows 0 execs/s for a minute at a time.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", "Hello world", " leading", "it's 12345 'RE\n\n\tx", "\xff\xfe", "é日本😀",
		"<|endoftext|>a", "a<|user|>b<ctl>", "\xe2\x82", "  \r\n  "} {
		f.Add(s, false)
		f.Add(s, true)
	}
	spm := toySPM(f, true)
	type bpe struct {
		pre string
		tk  *Tokenizer
	}
	var bpes []bpe
	for _, pre := range []string{"default", "gpt-2", "falcon", "llama-bpe", "qwen2", "starcoder", "smollm", "deepseek-coder", "deepseek-llm"} {
		bpes = append(bpes, bpe{pre, toyBPE(f, pre, fuzzExtra, fuzzMerges)})
	}
	inRange := func(t *testing.T, tk *Tokenizer, ids []int32) {
		for _, id := range ids {
			if id < 0 || int(id) >= tk.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
		}
	}
	stream := func(tk *Tokenizer, ids []int32) string {
		s := tk.NewStream()
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(s.Push(id))
		}
		b.WriteString(s.Flush())
		return b.String()
	}
	f.Fuzz(func(t *testing.T, s string, parseSpecial bool) {
		ids := spm.Encode(s, true, parseSpecial)
		inRange(t, spm, ids)
		if st := stream(spm, ids); !utf8.ValidString(st) {
			t.Fatalf("SPM stream of %q is not valid UTF-8: %q", s, st)
		}
		// llama.cpp's SPM puts a "▁" after every special token and reads "▁" in the text
		// as a space, so only text without either decodes back.
		if !parseSpecial && utf8.ValidString(s) && !strings.Contains(s, "<|user|>") && !strings.Contains(s, spaceMark) {
			if d := spm.Decode(spm.Encode(s, false, false)); d != s {
				t.Fatalf("SPM: Decode(Encode(%q)) = %q", s, d)
			}
		}
		for _, b := range bpes {
			ids := b.tk.Encode(s, false, parseSpecial)
			inRange(t, b.tk, ids)
			if parseSpecial {
				continue // <|endoftext|> would decode to nothing
			}
			d := b.tk.Decode(ids)
			if want := s; b.tk.cleanSpaces {
				want = string(cleanSpaces([]byte(s)))
				if d != want {
					t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q", b.pre, s, d, want)
				}
			} else if d != s {
				t.Fatalf("%s: Decode(Encode(%q)) = %q", b.pre, s, d)
			}
			st := stream(b.tk, ids)
			if !utf8.ValidString(st) || utf8.ValidString(s) && st != s {
				t.Fatalf("%s: stream of %q gave %q", b.pre, s, st)
			}
		}
	})
}
