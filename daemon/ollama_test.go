package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"edgelm/engine"
)

func (ts *testServer) getJSON(path string) map[string]any {
	ts.t.Helper()
	resp, b := ts.do("GET", path, "")
	if resp.StatusCode != 200 {
		ts.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		ts.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return m
}

// ndjson posts body and reads an NDJSON stream: one JSON object a line.
func (ts *testServer) ndjson(path, body string) []map[string]any {
	ts.t.Helper()
	resp, err := ts.client.Post("http://edgelm"+path, "application/json", strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		b, _ := io.ReadAll(resp.Body)
		ts.t.Fatalf("POST %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			ts.t.Fatalf("POST %s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// ollamaError requires an Ollama-shaped error {"error": ...} with the status and words given.
func (ts *testServer) ollamaError(path, body string, status int, says string) {
	ts.t.Helper()
	resp, b := ts.do("POST", path, body)
	var e map[string]any
	json.Unmarshal(b, &e)
	msg, _ := e["error"].(string)
	if resp.StatusCode != status || len(e) != 1 || !strings.Contains(msg, says) {
		ts.t.Errorf("POST %s %s: %d %s; want %d {\"error\"} saying %q", path, body, resp.StatusCode, b, status, says)
	}
}

func isTime(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// TestOllamaModels: /, /api/version, /api/tags, /api/ps and /api/show describe the model in
// Ollama's shapes, under the name /api/tags gives, which every endpoint accepts.
func TestOllamaModels(t *testing.T) {
	ts := start(t, newFake(), Settings{ChatTemplate: "chatml"})
	if resp, b := ts.do("GET", "/", ""); resp.StatusCode != 200 || string(b) != "Ollama is running" {
		t.Errorf("GET /: %d %q", resp.StatusCode, b)
	}
	if v := ts.getJSON("/api/version"); v["version"] != ollamaVersion {
		t.Errorf("/api/version: %v", v)
	}
	details := map[string]any{"parent_model": "", "format": "gguf", "family": "llama", "families": []any{"llama"},
		"parameter_size": "260K", "quantization_level": "Q8_0"}
	tags := ts.getJSON("/api/tags")["models"].([]any)
	if len(tags) != 1 {
		t.Fatalf("/api/tags: %v", tags)
	}
	m := tags[0].(map[string]any)
	if m["name"] != "fake:latest" || m["model"] != "fake:latest" || m["size"] != 4096.0 || !isTime(m["modified_at"]) ||
		!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(m["digest"].(string)) || jsonOf(m["details"]) != jsonOf(details) {
		t.Errorf("/api/tags entry: %v", m)
	}
	ps := ts.getJSON("/api/ps")["models"].([]any)
	p := ps[0].(map[string]any)
	if len(ps) != 1 || p["name"] != "fake:latest" || p["size_vram"] != 0.0 || p["size"] != 4096.0+4096 ||
		p["context_length"] != 128.0 || p["digest"] != m["digest"] || jsonOf(p["details"]) != jsonOf(details) {
		t.Errorf("/api/ps entry: %v", p)
	}
	if exp, err := time.Parse(time.RFC3339Nano, p["expires_at"].(string)); err != nil || time.Until(exp) < 50*365*24*time.Hour {
		t.Errorf("/api/ps expires_at %v: want far ahead (%v)", p["expires_at"], err)
	}
	for _, name := range []string{"fake:latest", "fake", "fake.gguf", "Fake"} {
		show := ts.post("/api/show", `{"model":"`+name+`"}`, 200)
		info, _ := show["model_info"].(map[string]any)
		caps, _ := show["capabilities"].([]any)
		if info["general.architecture"] != "llama" || info["llama.context_length"] != 128.0 || info["llama.embedding_length"] != 8.0 ||
			jsonOf(caps) != `["completion","embedding"]` || jsonOf(show["details"]) != jsonOf(details) ||
			!strings.Contains(show["parameters"].(string), `stop "<|im_end|>"`) || !isTime(show["modified_at"]) {
			t.Errorf("/api/show %s: %v", name, show)
		}
	}
	for _, path := range []string{"/api/tags", "/api/ps"} {
		if resp, b := ts.do("GET", path, ""); resp.StatusCode != 200 || strings.Contains(string(b), "/models/") {
			t.Errorf("%s shows the host path: %s", path, b)
		}
	}
	if show := ts.post("/api/show", `{"name":"fake"}`, 200); strings.Contains(jsonOf(show), "/models/") { // the field's older name
		t.Errorf("/api/show shows the host path: %v", show)
	}
	ts.ollamaError("/api/show", `{"model":"llama3.2"}`, 404, `model "llama3.2" not found; this daemon serves fake:latest`)
	ts.ollamaError("/api/show", `{}`, 400, "is required")
}

// TestOllamaGenerate: a non-streamed answer is one object with the text and Ollama's statistics;
// the prompt goes through the chat format (with system), or as it is with raw.
func TestOllamaGenerate(t *testing.T) {
	ts := start(t, newFake(), Settings{ChatTemplate: "chatml"})
	r := ts.post("/api/generate", `{"model":"fake:latest","prompt":"Hi","system":"Be brief.","stream":false}`, 200)
	prompt := ts.fake.Tokenize("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", true, true)
	if ts.fake.lastText != "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" {
		t.Errorf("prompt sent: %q", ts.fake.lastText)
	}
	want := append(append([]int32{}, prompt...), ts.fake.Tokenize("Hello world", false, false)...)
	if r["model"] != "fake:latest" || r["response"] != "Hello world" || r["done"] != true || r["done_reason"] != "stop" ||
		r["eval_count"] != 11.0 || r["prompt_eval_count"] != float64(len(prompt)) || !isTime(r["created_at"]) ||
		jsonOf(r["context"]) != jsonOf(want) {
		t.Errorf("answer: %v", r)
	}
	for _, k := range []string{"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"} {
		if v, ok := r[k].(float64); !ok || v < 0 || v != math.Trunc(v) {
			t.Errorf("%s = %v: want integer nanoseconds", k, r[k])
		}
	}
	if r["total_duration"].(float64) <= 0 {
		t.Errorf("total_duration %v", r["total_duration"])
	}
	if r := ts.post("/api/generate", `{"prompt":"<|im_start|>Hi","raw":true,"stream":false}`, 200); r["context"] != nil {
		t.Errorf("raw answers carry no context (as Ollama's): %v", r)
	}
	if ts.fake.lastText != "<|im_start|>Hi" || ts.fake.lastParse != true {
		t.Errorf("raw prompt sent as %q", ts.fake.lastText)
	}
	// "context" from an answer continues the conversation: prepended, no second BOS.
	ts.post("/api/generate", `{"prompt":"Hi","raw":true,"stream":false,"context":[0,40,41]}`, 200)
	if got := ts.fake.lastReq.Prompt; jsonOf(got) != jsonOf([]int32{0, 40, 41, ts.fake.tokenOf('H'), ts.fake.tokenOf('i')}) {
		t.Errorf("prompt with context: %v", got)
	}
	// Empty prompts load or unload the model, as Ollama's clients expect.
	if r := ts.post("/api/generate", `{"model":"fake"}`, 200); r["done"] != true || r["done_reason"] != "load" {
		t.Errorf("empty prompt: %v", r)
	}
	if r := ts.post("/api/generate", `{"model":"fake","keep_alive":0}`, 200); r["done_reason"] != "unload" {
		t.Errorf("keep_alive 0: %v", r)
	}
}

// TestOllamaGenerateNoTemplate: without a chat format the prompt is completed as it is, after the
// system text.
func TestOllamaGenerateNoTemplate(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	ts.post("/api/generate", `{"prompt":"Hi","system":"S","stream":false}`, 200)
	if ts.fake.lastText != "S\n\nHi" {
		t.Errorf("prompt sent: %q", ts.fake.lastText)
	}
	ts.ollamaError("/api/chat", `{"messages":[{"role":"user","content":"Hi"}]}`, 400, "configure a format")
}

// TestOllamaStreams: by default both endpoints stream NDJSON: text lines with done false whose
// texts make the answer, then one line with done true and the statistics.
func TestOllamaStreams(t *testing.T) {
	ts := start(t, newFake(), Settings{ChatTemplate: "chatml"})
	for _, tc := range []struct{ path, body string }{
		{"/api/generate", `{"model":"fake","prompt":"Hi"}`},
		{"/api/chat", `{"model":"fake","messages":[{"role":"user","content":"Hi"}]}`},
	} {
		lines := ts.ndjson(tc.path, tc.body)
		if len(lines) < 3 {
			t.Fatalf("%s: %d lines", tc.path, len(lines))
		}
		var text strings.Builder
		for i, l := range lines {
			last := i == len(lines)-1
			if l["done"] != last || l["model"] != "fake" || !isTime(l["created_at"]) {
				t.Errorf("%s line %d: %v", tc.path, i, l)
			}
			_, stats := l["eval_count"]
			if stats != last {
				t.Errorf("%s line %d: statistics %v, want them on the last line only", tc.path, i, l)
			}
			if tc.path == "/api/chat" {
				msg := l["message"].(map[string]any)
				if msg["role"] != "assistant" {
					t.Errorf("line %d: %v", i, l)
				}
				text.WriteString(msg["content"].(string))
			} else {
				text.WriteString(l["response"].(string))
			}
		}
		end := lines[len(lines)-1]
		if text.String() != "Hello world" || end["done_reason"] != "stop" || end["eval_count"] != 11.0 {
			t.Errorf("%s: text %q, last line %v", tc.path, text.String(), end)
		}
		if _, ok := end["context"]; ok != (tc.path == "/api/generate") {
			t.Errorf("%s: context on the last line: %v", tc.path, ok)
		}
	}
	r := ts.post("/api/chat", `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}],"stream":false}`, 200)
	if msg := r["message"].(map[string]any); msg["content"] != "Hello world" || msg["role"] != "assistant" || r["done"] != true || r["model"] != "fake:latest" {
		t.Errorf("chat stream:false: %v", r)
	}
	if !strings.HasPrefix(ts.fake.lastText, "<|im_start|>system\nS<|im_end|>") {
		t.Errorf("chat prompt: %q", ts.fake.lastText)
	}
	if r := ts.post("/api/chat", `{"model":"fake","messages":[]}`, 200); r["done_reason"] != "load" || r["message"].(map[string]any)["role"] != "assistant" {
		t.Errorf("chat without messages: %v", r)
	}
}

// TestOllamaOptions: options reach the engine's request as Ollama means them.
func TestOllamaOptions(t *testing.T) {
	ts := start(t, newFake(), Settings{ChatTemplate: "chatml", MaxTokensCap: 50})
	ts.post("/api/generate", `{"prompt":"Hi","raw":true,"stream":false,"options":{"num_predict":3,"temperature":0.5,"top_k":7,
		"top_p":0.9,"min_p":0.05,"seed":42,"stop":["wor","x"],"repeat_penalty":1.2,"repeat_last_n":-1,"num_gpu":99,"num_thread":1}}`, 200)
	q := ts.fake.lastReq
	s := q.Sampling
	if q.MaxTokens != 3 || s.Temperature != 0.5 || s.TopK != 7 || s.TopP != 0.9 || s.MinP != 0.05 || s.Seed != 42 ||
		s.RepeatPenalty != 1.2 || s.RepeatLastN != 128 || jsonOf(q.Stop) != `["wor","x"]` {
		t.Errorf("request %+v", q)
	}
	ts.post("/api/generate", `{"prompt":"Hi","stream":false,"options":{"repeat_last_n":0,"stop":"lo"}}`, 200)
	if q := ts.fake.lastReq; q.Sampling.RepeatPenalty != 1 || strings.Join(q.Stop, " ") != "lo <|im_end|>" {
		t.Errorf("repeat_last_n 0 and the template's stop: %+v", q)
	}
	// num_predict: absent or negative go to the cap; over the cap is the cap; 0 answers at once.
	for _, tc := range []struct {
		opt  string
		want int
	}{{`{}`, 50}, {`{"num_predict":-1}`, 50}, {`{"num_predict":-2}`, 50}, {`{"num_predict":1000}`, 50}, {`{"num_ctx":4}`, 1}} {
		ts.post("/api/generate", `{"prompt":"Hi","raw":true,"stream":false,"options":`+tc.opt+`}`, 200)
		if got := ts.fake.lastReq.MaxTokens; got != tc.want {
			t.Errorf("options %s: max tokens %d, want %d", tc.opt, got, tc.want)
		}
	}
	ts.fake.lastReq = engine.Request{}
	lines := ts.ndjson("/api/generate", `{"prompt":"Hi","options":{"num_predict":0}}`)
	r := lines[0]
	if len(lines) != 1 {
		t.Errorf("num_predict 0 streamed: %d lines", len(lines))
	}
	if r["done"] != true || r["response"] != "" || r["eval_count"] != 0.0 || r["done_reason"] != "length" || ts.fake.lastReq.Prompt != nil {
		t.Errorf("num_predict 0: %v", r)
	}
	// num_ctx larger than the loaded context is the loaded context; smaller caps the window.
	ts.post("/api/generate", `{"prompt":"Hi","raw":true,"stream":false,"options":{"num_ctx":100000}}`, 200)
	ts.ollamaError("/api/generate", `{"prompt":"Hello there","raw":true,"options":{"num_ctx":4}}`, 400, "the limit is 4")
	ts.ollamaError("/api/generate", `{"prompt":"Hi","options":{"num_ctx":0}}`, 400, "num_ctx 0")
	ts.ollamaError("/api/generate", `{"prompt":"Hi","options":{"temperature":-1}}`, 400, "temperature")
	ts.ollamaError("/api/generate", `{"prompt":"Hi","options":{"top_k":"many"}}`, 400, "top_k")
}

// TestOllamaRefusals: what edgelm cannot do is refused with Ollama's error shape, never ignored.
func TestOllamaRefusals(t *testing.T) {
	ts := start(t, newFake(), Settings{ChatTemplate: "chatml"})
	user := `"messages":[{"role":"user","content":"Hi"}]`
	for _, tc := range []struct {
		path, body string
		status     int
		says       string
	}{
		{"/api/generate", `{"prompt":"Hi","images":["aGVsbG8="]}`, 400, "images are not supported"},
		{"/api/chat", `{"messages":[{"role":"user","content":"Hi","images":["aGVsbG8="]}]}`, 400, "images are not supported"},
		{"/api/generate", `{"prompt":"Hi","format":"json"}`, 400, "format is not supported yet"},
		{"/api/chat", `{` + user + `,"format":{"type":"object","properties":{"a":{"type":"string"}}}}`, 400, "format is not supported yet"},
		{"/api/generate", `{"prompt":"Hi","format":"yaml"}`, 400, `want "json" or a JSON schema`},
		{"/api/generate", `{"prompt":"Hi","format":42}`, 400, `want "json" or a JSON schema`},
		{"/api/chat", `{` + user + `,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`, 400, "tools are not supported yet"},
		{"/api/chat", `{` + user + `,"tools":[{"type":"function","function":{}}]}`, 400, "function.name is required"},
		{"/api/chat", `{"messages":[{"role":"tool","content":"22C"}]}`, 400, "tool calls are not supported yet"},
		{"/api/chat", `{"messages":[{"role":"robot","content":"Hi"}]}`, 400, `role "robot"`},
		{"/api/generate", `{"prompt":"Hi","think":true}`, 400, `"fake:latest" does not support thinking`},
		{"/api/generate", `{"prompt":"Hi","logprobs":true}`, 400, "logprobs are not supported"},
		{"/api/generate", `{"prompt":"Hi","suffix":"end"}`, 400, "suffix"},
		{"/api/generate", `{"prompt":"Hi","template":"{{ .Prompt }}"}`, 400, "template is not supported"},
		{"/api/generate", `{"prompt":"Hi","context":[1000]}`, 400, "outside the vocabulary"},
		{"/api/generate", `{"model":"llama3","prompt":"Hi"}`, 404, `model "llama3" not found`},
		{"/api/chat", `{"model":"llama3",` + user + `}`, 404, `model "llama3" not found`},
		{"/api/generate", `{"prompt":`, 400, "truncated JSON"},
		{"/api/embed", `{"model":"llama3","input":"a"}`, 404, `model "llama3" not found`},
	} {
		ts.ollamaError(tc.path, tc.body, tc.status, tc.says)
	}
	ts.fake.err = engine.ErrQueueFull
	ts.ollamaError("/api/chat", `{`+user+`}`, 429, "too many requests")
	ts.ollamaError("/api/generate", `{"prompt":"Hi","stream":false}`, 429, "too many requests")
}

// TestOllamaEmbed: /api/embed gives normalized vectors for a string or strings and cuts long
// inputs unless truncate is false; /api/embeddings gives one vector, not normalized.
func TestOllamaEmbed(t *testing.T) {
	ts := start(t, newFake(), Settings{MaxPromptTokens: 6})
	f := ts.fake
	r := ts.post("/api/embed", `{"model":"fake","input":["ab","cd"]}`, 200)
	embs := r["embeddings"].([]any)
	if r["model"] != "fake" || len(embs) != 2 || r["prompt_eval_count"] != 6.0 || r["load_duration"] != 0.0 || r["total_duration"].(float64) <= 0 {
		t.Fatalf("/api/embed: %v", r)
	}
	near(t, "ab", floats(t, embs[0]), fakeVector(f.Tokenize("ab", true, false), true), 1e-6)
	near(t, "cd", floats(t, embs[1]), fakeVector(f.Tokenize("cd", true, false), true), 1e-6)
	r = ts.post("/api/embed", `{"input":"abcdefghij"}`, 200)
	near(t, "truncated", floats(t, r["embeddings"].([]any)[0]), fakeVector(f.Tokenize("abcdefghij", true, false)[:6], true), 1e-6)
	ts.ollamaError("/api/embed", `{"input":"abcdefghij","truncate":false}`, 400, "the limit is 6")
	ts.ollamaError("/api/embed", `{"input":"a","dimensions":3}`, 400, "dimensions 3")
	if r := ts.post("/api/embed", `{"input":[]}`, 200); len(r["embeddings"].([]any)) != 0 {
		t.Errorf("empty input: %v", r)
	}
	r = ts.post("/api/embeddings", `{"model":"fake:latest","prompt":"ab"}`, 200)
	near(t, "/api/embeddings", floats(t, r["embedding"]), fakeVector(f.Tokenize("ab", true, false), false), 0)
	if r := ts.post("/api/embeddings", `{"prompt":""}`, 200); len(r["embedding"].([]any)) != 0 {
		t.Errorf("empty prompt: %v", r)
	}
}

// TestOllamaMethods: the routes take the methods Ollama's do; wrong methods and the endpoints
// edgelm does not have get Ollama's error shape.
func TestOllamaMethods(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	for path, method := range map[string]string{"/api/tags": "POST", "/api/version": "POST", "/api/generate": "GET", "/api/show": "GET"} {
		if resp, b := ts.do(method, path, ""); resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(string(b), `{"error":"`) {
			t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	ts.ollamaError("/api/pull", `{"model":"llama3"}`, 404, "does not pull")
}

// TestRealOllamaGreedy: /api/generate with raw prompts at temperature 0 continues the golden
// prompts as llama.cpp does, streamed and not.
func TestRealOllamaGreedy(t *testing.T) {
	ts, gs := realServer(t)
	for _, g := range gs {
		body := func(stream bool) string {
			return fmt.Sprintf(`{"model":"%s","prompt":%q,"raw":true,"stream":%v,"options":{"temperature":0,"num_predict":%d}}`,
				strings.TrimSuffix(g.Model, ".gguf")+":latest", g.Prompt, stream, len(g.Tokens))
		}
		r := ts.post("/api/generate", body(false), 200)
		if r["response"] != g.Text || r["eval_count"] != float64(len(g.Tokens)) || r["prompt_eval_count"] != float64(len(g.PromptTokens)) {
			t.Errorf("%q: %v; reference %q", g.Prompt, r, g.Text)
		}
		var text strings.Builder
		for _, l := range ts.ndjson("/api/generate", body(true)) {
			text.WriteString(l["response"].(string))
		}
		if text.String() != g.Text {
			t.Errorf("%q streamed: %q; reference %q", g.Prompt, text.String(), g.Text)
		}
	}
}

// TestOllamaTCP: the Ollama endpoints answer on the --tcp listener too, where Ollama's clients
// usually look for them.
func TestOllamaTCP(t *testing.T) {
	srv := New(newFake(), Settings{ChatTemplate: "chatml"}, nil)
	l, err := ListenTCP(Settings{TCPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/api/tags", "", `"name":"fake:latest"`},
		{"POST", "/api/chat", `{"model":"fake","messages":[{"role":"user","content":"Hi"}],"stream":false}`, `"content":"Hello world"`},
		{"POST", "/api/embed", `{"model":"fake","input":"Hi"}`, `"embeddings":[[`},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s over TCP: %d %s", tc.method, tc.path, resp.StatusCode, b)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestOllamaDisconnect: a client that hangs up mid-stream cancels its request in the engine.
func TestOllamaDisconnect(t *testing.T) {
	f := newFake()
	f.reply = strings.Repeat("x", 50)
	f.delay = 20 * time.Millisecond
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	resp, err := ts.client.Post("http://edgelm/api/chat", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"Hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"done":false`) {
		t.Fatalf("first line %q: %v", line, err)
	}
	resp.Body.Close()
	ts.client.CloseIdleConnections()
	select {
	case <-f.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's context was not canceled after the client left")
	}
}
