package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The expected splits below are worked out by hand from each pre-tokenizer's regular
// expression (as published in the model's tokenizer.json and quoted in llama.cpp's
// llm_tokenizer_bpe), alternative by alternative; the comment names the rule a case is
// about.
func TestSplitWords(t *testing.T) {
	type tc struct {
		in   string
		want []string
		rule string
	}
	tables := map[string][]tc{
		// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
		"gpt-2": {
			{"Hello world", []string{"Hello", " world"}, "a space joins the letters after it"},
			{"I'm here", []string{"I", "'m", " here"}, "contraction"},
			{"I'M", []string{"I", "'", "M"}, "contractions are case-sensitive: ' is a symbol run"},
			{"'sup", []string{"'s", "up"}, "the contraction alternative comes first"},
			{"we'll", []string{"we", "'ll"}, "three-letter contraction"},
			{"a  b", []string{"a", " ", " b"}, `\s+(?!\S) leaves the last space to the word`},
			{"a   ", []string{"a", "   "}, "spaces at the end stay together"},
			{"x\n\ny", []string{"x", "\n", "\n", "y"}, `only " " is optional before a word; a lone \n is \s+`},
			{"\t\tfoo", []string{"\t", "\t", "foo"}, "tab before a word is not the optional space"},
			{"123abc", []string{"123", "abc"}, "digits and letters are separate runs"},
			{" 123", []string{" 123"}, " ?\\p{N}+"},
			{"3.14", []string{"3", ".", "14"}, "symbol run between digits"},
			{"hello!!! ?", []string{"hello", "!!!", " ?"}, " ?[^\\s\\p{L}\\p{N}]+"},
			{"ied 4 ½ months", []string{"ied", " 4", " ½", " months"}, "½ is \\p{N} (No)"},
			{"naïve café", []string{"naïve", " café"}, "non-ASCII letters"},
			{"a \u00a0b", []string{"a", " ", "\u00a0", "b"}, "no-break space is \\s but not the optional \" \": alone by \\s+"},
			{"a\xffb", []string{"a", "\xff", "b"}, "an invalid byte counts as a symbol"},
			{"", nil, "nothing"},
		},
		// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
		"llama-bpe": {
			{"12345", []string{"123", "45"}, `\p{N}{1,3}`},
			{"I'M here", []string{"I", "'M", " here"}, "contractions ignore case"},
			{"We'Ve", []string{"We", "'Ve"}, "contractions ignore case"},
			{"don't", []string{"don", "'t"}, "contraction"},
			{"$hello", []string{"$hello"}, `[^\r\n\p{L}\p{N}]? takes one symbol before letters`},
			{"\thello", []string{"\thello"}, "... or a tab"},
			{"\nhello", []string{"\n", "hello"}, "... but never a newline"},
			{"hello\n\nworld", []string{"hello", "\n\n", "world"}, `\s*[\r\n]+`},
			{"a  \n b", []string{"a", "  \n", " b"}, `\s*[\r\n]+ takes the spaces before the newline`},
			{"x!!\n\ny", []string{"x", "!!\n\n", "y"}, `symbols take the newlines after them`},
			{"a !!", []string{"a", " !!"}, "optional space before symbols"},
			{"  x", []string{" ", " x"}, `\s+(?!\S)`},
			{"1 2", []string{"1", " ", "2"}, "a space does not join digits"},
			{"3.14", []string{"3", ".", "14"}, "digits, symbol, digits"},
			{"end   ", []string{"end", "   "}, "trailing spaces"},
		},
		// as llama-bpe with \p{N} one digit at a time
		"qwen2": {
			{"12345", []string{"1", "2", "3", "4", "5"}, `\p{N}`},
			{"I'M 42", []string{"I", "'M", " ", "4", "2"}, "contractions ignore case; single digits"},
		},
		// \p{N} pieces first, then the GPT-2 expression within the rest
		"starcoder": {
			{"abc123", []string{"abc", "1", "2", "3"}, "digits are split one by one"},
			{" 42 apples", []string{" ", "4", "2", " apples"}, "the space before digits is left alone"},
			{"I'm", []string{"I", "'m"}, "GPT-2 contractions"},
		},
		"smollm": {
			{"x=10;", []string{"x", "=", "1", "0", ";"}, "digits alone, symbols by GPT-2's rule"},
		},
		// [\r\n], \s?\p{L}+, \s?\p{P}+, [一-龥ࠀ-一가-퟿]+, \p{N}
		"deepseek-coder": {
			{"def f(x):\n    return 1", []string{"def", " f", "(", "x", "):", "\n", "   ", " return", " ", "1"},
				"newlines alone, words with one space, punctuation runs, digits alone"},
			{"你好world", []string{"你好", "world"}, "CJK is split off a letter run"},
			{"a+b", []string{"a", "+", "b"}, "+ is a symbol, not \\p{P}: left as a gap"},
			{"12", []string{"1", "2"}, `\p{N}`},
		},
		// [\r\n], \s?[cased letters]+, \s?[!-/:-~...]+, \s+$, [一-龥ࠀ-一가-퟿]+, \p{N}+
		"deepseek-llm": {
			{"Hello, world!  ", []string{"Hello", ",", " world", "!", "  "}, `\s+$ at the end`},
			{"x 123", []string{"x", " ", "123"}, `a space before digits is not part of \p{N}+`},
			{"αβγ δ", []string{"αβγ", " δ"}, "Greek letters are cased letters"},
			{"日本", []string{"日本"}, "CJK run"},
		},
		// [\p{P}\$\+<=>\^~\|]+, GPT-2, \p{N}+, [0-9][0-9][0-9]
		"default": {
			{"a+=b", []string{"a", "+=", "b"}, "symbol run first"},
			{"12345", []string{"123", "45"}, "three ASCII digits"},
			{"Hello, world", []string{"Hello", ",", " world"}, "punctuation split before GPT-2"},
		},
	}
	for pre, cases := range tables {
		for _, c := range cases {
			got, ok := splitWords(pre, c.in)
			if !ok {
				t.Fatalf("no pre-tokenizer %q", pre)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s %q (%s):\n got %q\nwant %q", pre, c.in, c.rule, got, c.want)
			}
		}
	}
}

// TestSplitCoversText checks that every pre-tokenizer cuts any text into non-empty
// pieces that put back together give the text.
func TestSplitCoversText(t *testing.T) {
	inputs := []string{"", " ", "\n", "a\r\nb", "  Hello,\tWorld!! 123456 'S 'll\n\n  \xe2\x82", "日本語 テスト 한국어 ١٢٣"}
	for pre := range pretokenizers {
		for _, in := range inputs {
			words, _ := splitWords(pre, in)
			joined := ""
			for _, w := range words {
				if w == "" {
					t.Errorf("%s %q: empty piece in %q", pre, in, words)
				}
				joined += w
			}
			if joined != in {
				t.Errorf("%s %q: pieces %q do not join to the text", pre, in, words)
			}
		}
	}
}

// TestSplitGolden compares the scanners with the published expressions themselves:
// testdata/pretok_golden.json holds how Python's regex module splits llama.cpp's test
// strings and more (written by testdata/gen_pretok.py).
func TestSplitGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/pretok_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string][][2]json.RawMessage
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden) < 8 {
		t.Fatalf("only %d pre-tokenizers in the golden file", len(golden))
	}
	for pre, cases := range golden {
		for _, c := range cases {
			var in string
			var want []string
			if err := json.Unmarshal(c[0], &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(c[1], &want); err != nil {
				t.Fatal(err)
			}
			got, ok := splitWords(pre, in)
			if !ok {
				t.Fatalf("no pre-tokenizer %q", pre)
			}
			if len(want) == 0 {
				want = nil
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %q:\n got %q\nwant %q", pre, in, got, want)
			}
		}
	}
}
