package tokenizer

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"edgelm/gguf"
)

// Toy SPM vocabulary: ids 0-2 are <unk> <s> </s>, 3..258 the byte tokens <0x00>..<0xFF>,
// then the pieces below.
const spmBase = 3 + 256

var spmPieces = []struct {
	text  string
	score float32
	typ   TokenType
}{
	{"▁", -1, TypeNormal},            // 259
	{"a", -1, TypeNormal},            // 260
	{"b", -1, TypeNormal},            // 261
	{"ab", -1, TypeNormal},           // 262
	{"▁a", -2, TypeNormal},           // 263
	{"▁ab", -0.5, TypeNormal},        // 264
	{"aa", -3, TypeNormal},           // 265
	{"<|user|>", 0, TypeUserDefined}, // 266
	{"<ctl>", 0, TypeControl},        // 267
}

func toySPM(t testing.TB, spacePrefix bool) *Tokenizer {
	t.Helper()
	v := Vocab{Model: "llama", BOS: 1, EOS: 2, EOT: -1, EOM: -1, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: spacePrefix}
	v.Tokens = []string{"<unk>", "<s>", "</s>"}
	v.Types = []TokenType{TypeUnknown, TypeControl, TypeControl}
	v.Scores = []float32{0, 0, 0}
	for b := range 256 {
		v.Tokens = append(v.Tokens, fmt.Sprintf("<0x%02X>", b))
		v.Types = append(v.Types, TypeByte)
		v.Scores = append(v.Scores, 0)
	}
	for _, p := range spmPieces {
		v.Tokens = append(v.Tokens, p.text)
		v.Types = append(v.Types, p.typ)
		v.Scores = append(v.Scores, p.score)
	}
	tk, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

const (
	sSpace = spmBase + iota
	sA
	sB
	sAB
	sSpaceA
	sSpaceAB
	sAA
	sUser
	sCtl
)

func byteID(b byte) int32 { return 3 + int32(b) }

func TestSPMEncode(t *testing.T) {
	withPrefix, noPrefix := toySPM(t, true), toySPM(t, false)
	for _, c := range []struct {
		tk      *Tokenizer
		in      string
		bos     bool
		special bool
		want    []int32
		why     string
	}{
		// ▁ a b: "ab" (-1) beats "▁a" (-2); then ▁+ab makes "▁ab".
		{withPrefix, "ab", false, false, []int32{sSpaceAB}, "highest score first"},
		{withPrefix, "ab", true, false, []int32{1, sSpaceAB}, "BOS"},
		// ▁ a a a: "▁a" (-2) first takes the first a, which leaves one "aa" pair.
		{withPrefix, "aaa", false, false, []int32{sSpaceA, sAA}, "the best pair takes a symbol from a worse one"},
		{noPrefix, "aaa", false, false, []int32{sAA, sA}, "ties go to the left pair"},
		{noPrefix, "aaaa", false, false, []int32{sAA, sAA}, "pairs merge left to right"},
		// " a" -> "▁▁a": "▁▁" is no token, "▁a" is.
		{withPrefix, " a", false, false, []int32{sSpace, sSpaceA}, "spaces become ▁"},
		{noPrefix, "é", false, false, []int32{byteID(0xC3), byteID(0xA9)}, "byte fallback"},
		{noPrefix, "", true, false, []int32{1}, "empty text with BOS"},
		{withPrefix, "", false, false, []int32{}, "empty text gives nothing, not ▁"},
		// Without parseSpecial "<ctl>" is text: byte tokens.
		{noPrefix, "<ctl>", false, false, []int32{byteID('<'), byteID('c'), byteID('t'), byteID('l'), byteID('>')}, "control text is plain text"},
		// With it, the text after a special token gets the space prefix again.
		{withPrefix, "a<ctl>b", false, true, []int32{sSpaceA, sCtl, sSpace, sB}, "control token parsed"},
		{withPrefix, "<s>ab", false, true, []int32{1, sSpaceAB}, "BOS text parsed"},
		// User-defined tokens are matched even without parseSpecial (llama.cpp).
		{withPrefix, "a<|user|>b", false, false, []int32{sSpaceA, sUser, sSpace, sB}, "user-defined token always matched"},
		{withPrefix, "<unk>", false, true, []int32{0}, "unknown token parsed"},
	} {
		if got := c.tk.Encode(c.in, c.bos, c.special); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q, %v, %v) (%s) = %v, want %v", c.in, c.bos, c.special, c.why, got, c.want)
		}
	}
}

func TestSPMDecode(t *testing.T) {
	tk := toySPM(t, true)
	for _, c := range []struct {
		ids  []int32
		want string
		why  string
	}{
		{[]int32{sSpaceAB}, "ab", "the first token loses its leading space"},
		{[]int32{1, sSpaceAB}, " ab", "a BOS first takes the stripping (llama.cpp)"},
		{[]int32{sSpace, sSpaceA}, " a", "only one space is stripped"},
		{[]int32{sA, sSpaceA}, "a a", "later spaces stay"},
		{[]int32{byteID(0xC3), byteID(0xA9)}, "é", "byte tokens"},
		{[]int32{sCtl, 2, 0}, "", "control and unknown tokens decode to nothing"},
		{[]int32{sUser}, "<|user|>", "user-defined tokens decode verbatim"},
		{[]int32{-5, 1 << 30}, "", "ids out of range decode to nothing"},
	} {
		if got := tk.Decode(c.ids); got != c.want {
			t.Errorf("Decode(%v) (%s) = %q, want %q", c.ids, c.why, got, c.want)
		}
	}
}

func TestStream(t *testing.T) {
	tk := toySPM(t, true)
	type step struct {
		id   int32 // -1: Flush
		want string
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"character across tokens", []step{{byteID(0xC3), ""}, {byteID(0xA9), "é"}, {sSpaceA, " a"}, {-1, ""}}},
		{"four bytes", []step{{byteID(0xF0), ""}, {byteID(0x9F), ""}, {byteID(0x98), ""}, {byteID(0x80), "😀"}}},
		{"impossible byte at once", []step{{byteID(0xFF), "\uFFFD"}, {sA, "a"}}},
		{"broken sequence", []step{{byteID(0xE2), ""}, {byteID(0x82), ""}, {sA, "\uFFFDa"}}},
		{"unfinished at flush", []step{{sA, "a"}, {byteID(0xE2), ""}, {byteID(0x82), ""}, {-1, "\uFFFD"}, {-1, ""}}},
		{"no stripping", []step{{sSpaceAB, " ab"}}},
		{"control", []step{{1, ""}, {sCtl, ""}, {sA, "a"}}},
		{"surrogate bytes", []step{{byteID(0xED), ""}, {byteID(0xA0), "\uFFFD\uFFFD"}, {byteID(0x80), "\uFFFD"}}},
	} {
		s := tk.NewStream()
		for i, st := range c.steps {
			var got string
			if st.id < 0 {
				got = s.Flush()
			} else {
				got = s.Push(st.id)
			}
			if got != st.want {
				t.Errorf("%s: step %d: got %q, want %q", c.name, i, got, st.want)
			}
		}
	}
}

// toyBPE is a byte-level vocabulary: token b (0..255) is byte b in GPT-2's alphabet,
// then extra tokens, with the given merges.
func toyBPE(t testing.TB, pre string, extra []string, merges []string) *Tokenizer {
	t.Helper()
	v := Vocab{Model: "gpt2", Pre: pre, Merges: merges, BOS: -1, EOS: -1, EOT: -1, EOM: -1, UNK: -1, PAD: -1}
	for b := range 256 {
		v.Tokens = append(v.Tokens, string(byteRune[b]))
	}
	v.Types = make([]TokenType, 256, 256+len(extra))
	for i := range v.Types {
		v.Types[i] = TypeNormal
	}
	for _, e := range extra {
		v.Tokens = append(v.Tokens, e)
		typ := TypeNormal
		if strings.HasPrefix(e, "<|") {
			typ = TypeControl
		}
		v.Types = append(v.Types, typ)
	}
	tk, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func ids(tk *Tokenizer, pieces ...string) []int32 {
	var out []int32
	for _, p := range pieces {
		id, ok := tk.ID(p)
		if !ok {
			panic("no token " + p)
		}
		out = append(out, id)
	}
	return out
}

func TestBPEEncode(t *testing.T) {
	extra := []string{"he", "ll", "el", "hell", "hello", "Ġw", "Ġwo", "xyz", "<|endoftext|>"}
	// "ll" before "el": h e l l -> h e ll -> he ll -> hell -> hello.
	llFirst := toyBPE(t, "gpt-2", extra, []string{"l l", "e l", "h e", "he ll", "hell o", "Ġ w", "Ġw o"})
	// "el" first: h el l, and no merge continues from there.
	elFirst := toyBPE(t, "gpt-2", extra, []string{"e l", "l l", "h e", "he ll", "hell o", "Ġ w", "Ġw o"})
	llama3 := toyBPE(t, "llama-bpe", extra, []string{"l l"})
	for _, c := range []struct {
		tk   *Tokenizer
		in   string
		want []int32
		why  string
	}{
		{llFirst, "hello", ids(llFirst, "hello"), "lowest rank first"},
		{elFirst, "hello", ids(elFirst, "h", "el", "l", "o"), "lowest rank first"},
		{llFirst, "hello world", ids(llFirst, "hello", "Ġwo", "r", "l", "d"), "words merge separately; space is Ġ"},
		{llFirst, "hellohello", ids(llFirst, "hello", "hello"), "repeated word"},
		{llFirst, "xyz", ids(llFirst, "x", "y", "z"), "gpt-2 merges even when the word is a token"},
		{llama3, "xyz", ids(llama3, "xyz"), "llama3 takes a word that is a token whole"},
		{llFirst, "a\xffb", []int32{'a', 0xFF, 'b'}, "invalid UTF-8 is encoded byte by byte"},
	} {
		if got := c.tk.Encode(c.in, false, false); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) (%s) = %v, want %v", c.in, c.why, got, c.want)
		}
	}
	eot := ids(llFirst, "<|endoftext|>")[0]
	got := llFirst.Encode("hello<|endoftext|>", false, true)
	if want := []int32{ids(llFirst, "hello")[0], eot}; !slices.Equal(got, want) {
		t.Errorf("with parseSpecial: %v, want %v", got, want)
	}
	if got := llFirst.Encode("<|endoftext|>", false, false); slices.Contains(got, eot) || llFirst.Decode(got) != "<|endoftext|>" {
		t.Errorf("without parseSpecial the control text must stay text: %v", got)
	}
	if !llFirst.IsEOG(eot) || llFirst.EOT() != eot {
		t.Errorf("<|endoftext|> is end of generation by its text: IsEOG %v EOT %d", llFirst.IsEOG(eot), llFirst.EOT())
	}
}

func TestBPEDecode(t *testing.T) {
	tk := toyBPE(t, "gpt-2", []string{"Ġwo", "<|endoftext|>"}, []string{"Ġ w", "Ġw o"})
	if got := tk.Decode([]int32{'h', 'i', ids(tk, "Ġwo")[0], ids(tk, "<|endoftext|>")[0]}); got != "hi wo" {
		t.Errorf("Decode = %q, want %q", got, "hi wo")
	}
	// gpt-2 cleans up spaces like llama.cpp; qwen2 does not.
	if got := tk.Decode(tk.Encode("a , b 's", false, false)); got != "a, b's" {
		t.Errorf("gpt-2 clean-up: %q", got)
	}
	q := toyBPE(t, "qwen2", nil, []string{"a b"})
	if got := q.Decode(q.Encode("a , b 's", false, false)); got != "a , b 's" {
		t.Errorf("qwen2 keeps spaces: %q", got)
	}
}

func TestCleanSpaces(t *testing.T) {
	// Expected strings worked out from the three passes of llama.cpp's clean-up.
	for in, want := range map[string]string{
		"":                           "",
		" ?":                         "?",
		"a ? b ! c . d , e":          "a? b! c. d, e",
		"x ' y":                      "x'y",
		"it 's I 'm we 're they 've": "it's I'm we're they've",
		"I 'll 'd 't":                "I 'll 'd 't",
		"a ' ' b":                    "a'' b",
		"  .":                        " .",
	} {
		if got := string(cleanSpaces([]byte(in))); got != want {
			t.Errorf("cleanSpaces(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	base := func() Vocab {
		return Vocab{Model: "gpt2", Pre: "gpt-2", Tokens: []string{"a", "b", "ab"}, Merges: []string{"a b"},
			BOS: -1, EOS: -1, EOT: -1, EOM: -1, UNK: -1, PAD: -1}
	}
	for _, c := range []struct {
		mod  func(*Vocab)
		want string
	}{
		{func(v *Vocab) { v.Pre = "nonesuch" }, `tokenizer: unknown pre-tokenizer "nonesuch"`},
		{func(v *Vocab) { v.Model = "bert" }, `unsupported tokenizer model "bert"`},
		{func(v *Vocab) { v.Tokens = nil }, "empty vocabulary"},
		{func(v *Vocab) { v.Tokens[1] = "a" }, "duplicate token"},
		{func(v *Vocab) { v.Merges = nil }, "without merges"},
		{func(v *Vocab) { v.BOS = 3 }, "BOS id 3 out of range"},
		{func(v *Vocab) { v.AddBOS = true }, "add_bos_token is true"},
		{func(v *Vocab) { v.Scores = []float32{0} }, "1 scores for 3 tokens"},
		{func(v *Vocab) { v.Types = []TokenType{1, 1} }, "2 token types for 3 tokens"},
	} {
		v := base()
		c.mod(&v)
		_, err := New(v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
	if _, err := New(base()); err != nil {
		t.Errorf("base vocabulary: %v", err)
	}
	// An empty token is renamed, as llama.cpp does, without touching the caller's slice.
	v := base()
	v.Tokens[1] = ""
	tk, err := New(v)
	if err != nil {
		t.Fatalf("empty token: %v", err)
	}
	if tk.Piece(1) != "[EMPTY_1]" || v.Tokens[1] != "" {
		t.Errorf("empty token: piece %q, caller's %q", tk.Piece(1), v.Tokens[1])
	}
}

// parseGGUF writes metadata with gguf.Writer and parses it back.
func parseGGUF(t *testing.T, kv map[string]any) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	for k, v := range kv {
		w.Set(k, v)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFromGGUFDefaults(t *testing.T) {
	spmTokens := []string{"<unk>", "<s>", "</s>", "▁a"}
	bpeTokens := []string{"a", "b", "ab", "<|endoftext|>"}
	for _, c := range []struct {
		name                string
		kv                  map[string]any
		bos, eos, unk, pad  int32
		addBOS, spacePrefix bool
		err                 string
	}{
		{name: "llama defaults", kv: map[string]any{
			"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": spmTokens,
		}, bos: 1, eos: 2, unk: 0, pad: -1, addBOS: true, spacePrefix: true},
		{name: "llama metadata", kv: map[string]any{
			"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": spmTokens,
			"tokenizer.ggml.bos_token_id": uint32(3), "tokenizer.ggml.padding_token_id": uint32(4294967295),
			"tokenizer.ggml.add_bos_token": false, "tokenizer.ggml.add_space_prefix": false,
		}, bos: 3, eos: 2, unk: 0, pad: -1},
		{name: "gpt2 gpt-2", kv: map[string]any{
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.ggml.tokens": bpeTokens,
			"tokenizer.ggml.merges": []string{"a b"}, "tokenizer.ggml.eos_token_id": uint32(3),
		}, bos: -1, eos: 3, unk: -1, pad: -1}, // default BOS 11 is out of range
		{name: "gpt2 llama-bpe adds BOS", kv: map[string]any{
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe", "tokenizer.ggml.tokens": bpeTokens,
			"tokenizer.ggml.merges": []string{"a b"}, "tokenizer.ggml.bos_token_id": uint32(3),
		}, bos: 3, eos: -1, unk: -1, pad: -1, addBOS: true},
		// The pre-tokenizers of Qwen2/2.5/3 and SmolLM/SmolLM2 GGUFs; neither adds BOS.
		{name: "gpt2 qwen2", kv: map[string]any{
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2", "tokenizer.ggml.tokens": bpeTokens,
			"tokenizer.ggml.merges": []string{"a b"}, "tokenizer.ggml.eos_token_id": uint32(2), "tokenizer.ggml.add_bos_token": false,
		}, bos: -1, eos: 2, unk: -1, pad: -1},
		{name: "gpt2 smollm", kv: map[string]any{
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm", "tokenizer.ggml.tokens": bpeTokens,
			"tokenizer.ggml.merges": []string{"a b"}, "tokenizer.ggml.bos_token_id": uint32(1), "tokenizer.ggml.eos_token_id": uint32(2),
		}, bos: 1, eos: 2, unk: -1, pad: -1},
		{name: "unknown pre", kv: map[string]any{
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "nonesuch", "tokenizer.ggml.tokens": bpeTokens,
			"tokenizer.ggml.merges": []string{"a b"},
		}, err: `tokenizer: unknown pre-tokenizer "nonesuch" (tokenizer.ggml.pre); edgelm knows codeshell, command-r,`},
		{name: "no merges", kv: map[string]any{
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": bpeTokens,
		}, err: "tokenizer.ggml.merges"},
		{name: "no model", kv: map[string]any{"tokenizer.ggml.tokens": bpeTokens}, err: "tokenizer.ggml.model missing"},
		{name: "integer scores", kv: map[string]any{
			"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": spmTokens, "tokenizer.ggml.scores": []int32{0, 0, 0, -1},
		}, bos: 1, eos: 2, unk: 0, pad: -1, addBOS: true, spacePrefix: true},
		{name: "scores wrong type", kv: map[string]any{
			"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": spmTokens, "tokenizer.ggml.scores": []string{"x", "y", "z", "w"},
		}, err: "tokenizer.ggml.scores"},
		{name: "short token types", kv: map[string]any{
			"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": spmTokens, "tokenizer.ggml.token_type": []int32{2, 3},
		}, err: "has 2 entries for 4 tokens"},
		{name: "add_bos without bos", kv: map[string]any{
			"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": bpeTokens, "tokenizer.ggml.merges": []string{"a b"},
			"tokenizer.ggml.add_bos_token": true,
		}, err: "add_bos_token is true"},
	} {
		tk, err := FromGGUF(parseGGUF(t, c.kv))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if tk.BOS() != c.bos || tk.EOS() != c.eos || tk.UNK() != c.unk || tk.PAD() != c.pad ||
			tk.AddBOS() != c.addBOS || tk.addSpacePrefix != c.spacePrefix {
			t.Errorf("%s: bos %d eos %d unk %d pad %d addBOS %v prefix %v, want %d %d %d %d %v %v", c.name,
				tk.BOS(), tk.EOS(), tk.UNK(), tk.PAD(), tk.AddBOS(), tk.addSpacePrefix,
				c.bos, c.eos, c.unk, c.pad, c.addBOS, c.spacePrefix)
		}
	}
}

// TestConcurrentEncode runs Encode from several goroutines on one Tokenizer (run with
// -race): the scratch pools must not leak state between calls.
func TestConcurrentEncode(t *testing.T) {
	spm := toySPM(t, true)
	bpe := toyBPE(t, "llama-bpe", fuzzExtra, fuzzMerges)
	inputs := []string{"hello world", "ab aaa é", "the in hello\n\n12345", strings.Repeat("hellohello ", 50)}
	want := map[string][2][]int32{}
	for _, in := range inputs {
		want[in] = [2][]int32{spm.Encode(in, true, false), bpe.Encode(in, false, false)}
	}
	done := make(chan bool)
	for g := range 4 {
		go func() {
			defer func() { done <- true }()
			for i := range 200 {
				in := inputs[(g+i)%len(inputs)]
				if got := spm.Encode(in, true, false); !slices.Equal(got, want[in][0]) {
					t.Errorf("SPM %q: %v, want %v", in, got, want[in][0])
					return
				}
				if got := bpe.Encode(in, false, false); !slices.Equal(got, want[in][1]) {
					t.Errorf("BPE %q: %v, want %v", in, got, want[in][1])
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
