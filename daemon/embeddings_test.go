package daemon

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/engine"
	"edgelm/internal/testshared"
	"edgelm/kvcache"
	"edgelm/model"
)

// fakeVector recomputes the fake backend's embedding of ids, L2-normalized when norm is set.
func fakeVector(ids []int32, norm bool) []float64 {
	v := make([]float64, fakeDim)
	for _, t := range ids {
		for k := range v {
			v[k] += float64(int(t)*(k+1)%7 - 3)
		}
	}
	if norm {
		ss := 0.0
		for _, x := range v {
			ss += x * x
		}
		for k := range v {
			v[k] /= math.Sqrt(ss)
		}
	}
	return v
}

func floats(t *testing.T, v any) []float64 {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("embedding is %T, want an array", v)
	}
	out := make([]float64, len(arr))
	for i, x := range arr {
		out[i] = x.(float64)
	}
	return out
}

func near(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d floats, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s: element %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// TestEmbeddingsInputs: every form of "input" gives one normalized vector per input, in order,
// with usage counting the tokens.
func TestEmbeddingsInputs(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	f := ts.fake
	for _, tc := range []struct {
		input string
		want  [][]int32
	}{
		{`"hi"`, [][]int32{f.Tokenize("hi", true, false)}},
		{`["hi", "a b"]`, [][]int32{f.Tokenize("hi", true, false), f.Tokenize("a b", true, false)}},
		{`[5, 6, 7]`, [][]int32{{5, 6, 7}}},
		{`[[5, 6], [7], [8, 9, 10]]`, [][]int32{{5, 6}, {7}, {8, 9, 10}}},
	} {
		r := ts.post("/v1/embeddings", `{"model":"fake","input":`+tc.input+`}`, 200)
		data := r["data"].([]any)
		if r["object"] != "list" || r["model"] != "fake.gguf" || len(data) != len(tc.want) {
			t.Fatalf("input %s: %v", tc.input, r)
		}
		n := 0
		for i, d := range data {
			item := d.(map[string]any)
			if item["object"] != "embedding" || int(item["index"].(float64)) != i {
				t.Errorf("input %s: item %d: %v", tc.input, i, item)
			}
			got := floats(t, item["embedding"])
			near(t, fmt.Sprintf("input %s item %d", tc.input, i), got, fakeVector(tc.want[i], true), 1e-6)
			ss := 0.0
			for _, x := range got {
				ss += x * x
			}
			if math.Abs(ss-1) > 1e-5 {
				t.Errorf("input %s item %d: squared norm %g, want 1", tc.input, i, ss)
			}
			n += len(tc.want[i])
		}
		u := r["usage"].(map[string]any)
		if int(u["prompt_tokens"].(float64)) != n || int(u["total_tokens"].(float64)) != n {
			t.Errorf("input %s: usage %v, want %d tokens", tc.input, u, n)
		}
	}
	// normalize: false returns the pooled vector as it is.
	r := ts.post("/v1/embeddings", `{"input":[5,6,7],"normalize":false}`, 200)
	near(t, "unnormalized", floats(t, r["data"].([]any)[0].(map[string]any)["embedding"]), fakeVector([]int32{5, 6, 7}, false), 0)
}

// TestEmbeddingsEOS: a model whose tokenizer adds EOS after a prompt gets it after text inputs
// (last-token pooling reads it), not after token ids.
func TestEmbeddingsEOS(t *testing.T) {
	f := newFake()
	f.addEOS = true
	ts := start(t, f, Settings{})
	vec := func(input string) []float64 {
		return floats(t, ts.post("/v1/embeddings", `{"input":`+input+`}`, 200)["data"].([]any)[0].(map[string]any)["embedding"])
	}
	near(t, "text", vec(`"hi"`), fakeVector(append(f.Tokenize("hi", true, false), 1), true), 1e-6)
	near(t, "token ids", vec(`[5,6]`), fakeVector([]int32{5, 6}, true), 1e-6)
}

// TestEmbeddingsBase64 decodes encoding_format "base64" as a client does (little-endian float32)
// and requires the floats of the "float" answer.
func TestEmbeddingsBase64(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	plain := ts.post("/v1/embeddings", `{"input":["one","two"]}`, 200)
	enc := ts.post("/v1/embeddings", `{"input":["one","two"],"encoding_format":"base64"}`, 200)
	for i := range 2 {
		s, ok := enc["data"].([]any)[i].(map[string]any)["embedding"].(string)
		if !ok {
			t.Fatalf("item %d: base64 embedding is not a string: %v", i, enc)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 4*fakeDim {
			t.Fatalf("item %d: %d bytes, %v", i, len(b), err)
		}
		got := make([]float64, fakeDim)
		for k := range got {
			got[k] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:])))
		}
		// JSON carries the float32s in their shortest decimal form: equal once rounded to float32.
		want := floats(t, plain["data"].([]any)[i].(map[string]any)["embedding"])
		for k := range want {
			want[k] = float64(float32(want[k]))
		}
		near(t, fmt.Sprintf("item %d", i), got, want, 0)
	}
}

// TestEmbeddingsErrors: bad inputs are 400s naming the problem; an unknown model 404.
func TestEmbeddingsErrors(t *testing.T) {
	ts := start(t, newFake(), Settings{MaxPromptTokens: 10})
	for _, tc := range []struct {
		body   string
		status int
		says   string
	}{
		{`{}`, 400, `is required`},
		{`{"input":[]}`, 400, "empty array"},
		{`{"input":""}`, 400, "empty string"},
		{`{"input":[[]]}`, 400, "no tokens"},
		{`{"input":{"a":1}}`, 400, "want a string"},
		{`{"input":["a", 5]}`, 400, "want a string"},
		{`{"input":[1, 200]}`, 400, "outside the vocabulary"},
		{`{"input":"abcdefghijklmnop"}`, 400, "the limit is 10"},
		{`{"input":"a","encoding_format":"hex"}`, 400, "encoding_format"},
		{`{"input":"a","dimensions":4}`, 400, "dimensions 4"},
		{`{"input":"a","model":"other"}`, 404, "does not exist"},
		{`{"input":"a","model":"fake:latest","dimensions":8}`, 200, `"embedding"`},
	} {
		resp, b := ts.do("POST", "/v1/embeddings", tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s: %d %s; want %d saying %q", tc.body, resp.StatusCode, b, tc.status, tc.says)
		}
	}
	inputs := make([]string, maxEmbedInputs+1)
	for i := range inputs {
		inputs[i] = `"a"`
	}
	resp, b := ts.do("POST", "/v1/embeddings", `{"input":[`+strings.Join(inputs, ",")+`]}`)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "at most") {
		t.Errorf("too many inputs: %d %s", resp.StatusCode, b)
	}
	ts.fake.err = engine.ErrQueueFull
	if resp, b := ts.do("POST", "/v1/embeddings", `{"input":["a","b","c","d","e","f"]}`); resp.StatusCode != 429 {
		t.Errorf("engine queue full: %d %s, want 429", resp.StatusCode, b)
	}
}

// TestRealEmbeddings serves the small shared model and checks /v1/embeddings against the mean of
// the final hidden states computed by one plain forward step outside the engine, normalized here.
func TestRealEmbeddings(t *testing.T) {
	eng, err := engine.Load(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"), engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ts := startBackend(t, eng, Settings{})
	texts := []string{"Once upon a time", "I dreamed of a quiet city made of glass,", "A river"}
	r := ts.post("/v1/embeddings", `{"input":`+jsonOf(texts)+`}`, 200)
	m := eng.Model()
	n := 0
	for i, text := range texts {
		ids := eng.Tokenize(text, true, false)
		n += len(ids)
		runner := model.NewRunner(m, nil)
		seq := kvcache.NewSeq(kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}, len(ids))
		b := &model.Batch{Tokens: ids, Logits: make([]bool, len(ids)), Hidden: make([]bool, len(ids)), HiddenOut: make([]float32, len(ids)*m.Dim)}
		for p := range ids {
			b.Pos, b.Seqs, b.Hidden[p] = append(b.Pos, int32(p)), append(b.Seqs, seq), true
		}
		if err := runner.Forward(b, nil); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, m.Dim)
		for p := range ids {
			for k := range want {
				want[k] += float64(b.HiddenOut[p*m.Dim+k]) / float64(len(ids))
			}
		}
		ss := 0.0
		for _, x := range want {
			ss += x * x
		}
		for k := range want {
			want[k] /= math.Sqrt(ss)
		}
		near(t, text, floats(t, r["data"].([]any)[i].(map[string]any)["embedding"]), want, 1e-4)
	}
	if got := int(r["usage"].(map[string]any)["prompt_tokens"].(float64)); got != n {
		t.Errorf("usage.prompt_tokens %d, want %d", got, n)
	}
	var emb struct {
		Embeddings [][]float64 `json:"embeddings"`
	}
	b, _ := json.Marshal(ts.post("/api/embed", `{"model":"aidreams260K-q8_0:latest","input":`+jsonOf(texts)+`}`, 200))
	json.Unmarshal(b, &emb)
	for i := range texts {
		near(t, "/api/embed "+texts[i], emb.Embeddings[i], floats(t, r["data"].([]any)[i].(map[string]any)["embedding"]), 0)
	}
}
