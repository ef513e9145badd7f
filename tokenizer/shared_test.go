package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
)

var (
	loadMu sync.Mutex
	loaded = map[string]*Tokenizer{}
)

// load builds (once per test binary) the tokenizer of a shared GGUF file.
func load(t testing.TB, elem ...string) *Tokenizer {
	t.Helper()
	path := testshared.Path(t, elem...)
	loadMu.Lock()
	defer loadMu.Unlock()
	if tk, ok := loaded[path]; ok {
		return tk
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tk, err := FromGGUF(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	loaded[path] = tk
	return tk
}

type vocabCase struct {
	text string
	ids  []int32
}

// readVocabCases reads llama.cpp's tokenizer test vectors: in the .inp file each string
// is followed by a line "__ggml_vocab_test__" (the string ends before that line's
// newline); the .out file has the ids of string i on line i.
func readVocabCases(t *testing.T, inp string) []vocabCase {
	t.Helper()
	in, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(strings.TrimSuffix(inp, ".inp") + ".out")
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	texts := strings.Split(string(in), sep)
	if texts[len(texts)-1] != "" {
		t.Fatalf("%s does not end with a separator", inp)
	}
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%d strings but %d lines of ids", len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i, text := range texts {
		cases[i].text = text
		for _, f := range strings.Fields(lines[i]) {
			id, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			cases[i].ids = append(cases[i].ids, int32(id))
		}
	}
	return cases
}

// cleanedByReference reports whether llama.cpp's clean_up_tokenization_spaces would
// change s, so that decoding it cannot give s back: it removes the space in " ?", " !",
// " .", " ,", " 's", " 'm", " 're", " 've" and around " ' ".
func cleanedByReference(s string) bool {
	for _, p := range []string{" ?", " !", " .", " ,", " 's", " 'm", " 're", " 've", " ' "} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func TestVocabVectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clean bool // the reference cleans up spaces when decoding
	}{
		{"ggml-vocab-llama-spm.gguf", false},
		{"ggml-vocab-gpt-2.gguf", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := load(t, "vocab", tc.name)
			cases := readVocabCases(t, testshared.Path(t, "vocab", tc.name+".inp"))
			roundTrips := 0
			for i, c := range cases {
				got := tk.Encode(c.text, false, false)
				if !slices.Equal(got, c.ids) {
					t.Errorf("string %d %q:\n got %v\nwant %v", i, c.text, got, c.ids)
					continue
				}
				if tc.clean && cleanedByReference(c.text) {
					continue
				}
				if dec := tk.Decode(got); dec != c.text {
					t.Errorf("string %d: Decode(Encode(%q)) = %q", i, c.text, dec)
				}
				roundTrips++
			}
			t.Logf("%d strings encoded, %d decoded back", len(cases), roundTrips)
		})
	}
}

// TestCleanSpacesGPT2 checks Decode's clean-up on the strings of the GPT-2 vectors
// that have something to clean, against the cleaned text written out by hand.
func TestCleanSpacesGPT2(t *testing.T) {
	tk := load(t, "vocab", "ggml-vocab-gpt-2.gguf")
	for _, c := range []struct{ in, want string }{
		{"Hello , world !", "Hello, world!"},
		{"it 's a 'n' b ' c", "it's a 'n' b'c"},
		{"we 're here , we 've been ; I 'll go .", "we're here, we've been ; I 'll go."},
	} {
		if got := tk.Decode(tk.Encode(c.in, false, false)); got != c.want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", c.in, got, c.want)
		}
	}
}

type golden struct {
	Model        string  `json:"model"`
	Prompt       string  `json:"prompt"`
	PromptTokens []int32 `json:"prompt_tokens"`
	Tokens       []int32 `json:"tokens"`
	Text         string  `json:"text"`
}

func TestGoldenPrompts(t *testing.T) {
	dir := testshared.Path(t, "golden")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s (%v)", dir, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var g golden
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			tk := load(t, "models", g.Model)
			if !tk.AddBOS() {
				t.Errorf("AddBOS() = false, the golden prompts start with BOS")
			}
			if got := tk.Encode(g.Prompt, tk.AddBOS(), false); !slices.Equal(got, g.PromptTokens) {
				t.Errorf("Encode(%q)\n got %v\nwant %v", g.Prompt, got, g.PromptTokens)
			}
			s := tk.NewStream()
			var b strings.Builder
			for _, id := range g.Tokens {
				b.WriteString(s.Push(id))
			}
			b.WriteString(s.Flush())
			if b.String() != g.Text {
				t.Errorf("streamed golden tokens:\n got %q\nwant %q", b.String(), g.Text)
			}
			if got := tk.Decode(g.Tokens); got != strings.TrimPrefix(g.Text, " ") {
				t.Errorf("Decode(golden tokens):\n got %q\nwant %q", got, g.Text)
			}
		})
	}
}

// TestAidreamsOnceUponATime pins the prompt the task names, independently of the json.
func TestAidreamsOnceUponATime(t *testing.T) {
	tk := load(t, "models", "aidreams260K-f32.gguf")
	want := []int32{1, 429, 491, 433, 295, 429, 444, 445, 265, 262, 263, 342, 430}
	if got := tk.Encode("Once upon a time", true, false); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if tk.BOS() != 1 || tk.EOS() != 2 || !tk.IsEOG(2) || tk.IsEOG(1) || tk.VocabSize() != 512 || tk.Model() != "llama" {
		t.Errorf("BOS %d EOS %d IsEOG(2) %v IsEOG(1) %v size %d model %q",
			tk.BOS(), tk.EOS(), tk.IsEOG(2), tk.IsEOG(1), tk.VocabSize(), tk.Model())
	}
}

// TestMaxTextBytes: no text of llama.cpp's test vectors, in any shared vocabulary, encodes (by
// llama.cpp's reference ids) to fewer tokens than MaxTextBytes promises, and neither does a
// run of one character that no piece merges far.
func TestMaxTextBytes(t *testing.T) {
	inps, _ := filepath.Glob(filepath.Join(testshared.Dir(t), "vocab", "*.gguf.inp"))
	if len(inps) == 0 {
		t.Skip("no vocab test vectors")
	}
	for _, inp := range inps {
		name := filepath.Base(strings.TrimSuffix(inp, ".inp"))
		tk := load(t, "vocab", name)
		m := tk.MaxTextBytes()
		if m < 4 {
			t.Errorf("%s: MaxTextBytes %d", name, m)
		}
		for i, c := range readVocabCases(t, inp) {
			if len(c.text) > m*len(c.ids) {
				t.Errorf("%s string %d: %d bytes in %d tokens, over %d bytes a token", name, i, len(c.text), len(c.ids), m)
			}
		}
		for _, s := range []string{strings.Repeat(" ", 4000), strings.Repeat("\n", 4000), strings.Repeat("=", 4000)} {
			if n := len(tk.Encode(s, false, true)); len(s) > m*n {
				t.Errorf("%s: %d bytes of %q in %d tokens, over %d bytes a token", name, len(s), s[:1], n, m)
			}
		}
	}
}
