package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"edgelm/engine"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	t      *testing.T
	srv    *Server
	fake   *fakeBackend
	sock   string
	client *http.Client
	logs   *syncBuffer
}

// shortTempDir keeps socket paths under the 108-byte limit of sun_path.
func shortTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "edgelm-d")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// start serves fake (nil: loading) with set on a fresh Unix socket until the test ends.
func start(t *testing.T, fake *fakeBackend, set Settings) *testServer {
	t.Helper()
	var b Backend
	if fake != nil {
		b = fake
	}
	ts := startBackend(t, b, set)
	ts.fake = fake
	return ts
}

// startBackend serves b (nil: loading) with set on a fresh Unix socket until the test ends.
func startBackend(t *testing.T, b Backend, set Settings) *testServer {
	t.Helper()
	set.Socket = filepath.Join(shortTempDir(t), "d.sock")
	logs := &syncBuffer{}
	srv := New(b, set, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l, err := Listen(set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	ts := &testServer{t: t, srv: srv, sock: set.Socket, client: unixClient(set.Socket), logs: logs}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		l.Close()
		ts.client.CloseIdleConnections()
	})
	return ts
}

func (ts *testServer) do(method, path, body string) (*http.Response, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, "http://edgelm"+path, strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp, b
}

// post sends body and decodes the JSON answer, checking the status.
func (ts *testServer) post(path, body string, wantStatus int) map[string]any {
	ts.t.Helper()
	resp, b := ts.do("POST", path, body)
	if resp.StatusCode != wantStatus {
		ts.t.Fatalf("POST %s %s: status %d, want %d; body %s", path, body, resp.StatusCode, wantStatus, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		ts.t.Fatalf("POST %s: answer is not JSON: %v: %s", path, err, b)
	}
	return m
}

// get walks a decoded JSON value: get(m, "choices", 0, "text").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func TestHealthLoadingThenReady(t *testing.T) {
	ts := start(t, nil, Settings{})
	resp, b := ts.do("GET", "/health", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"loading"`) {
		t.Fatalf("loading health: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	for _, p := range []string{"/v1/completions", "/v1/chat/completions", "/v1/tokenize"} {
		r := ts.post(p, `{}`, 503)
		if get(r, "error", "code") != "model_loading" {
			t.Errorf("%s while loading: %v", p, r)
		}
	}
	if resp, b := ts.do("GET", "/metrics", ""); resp.StatusCode != 200 || !strings.Contains(string(b), "edgelm_model_loaded 0\n") {
		t.Errorf("metrics while loading: %d %s", resp.StatusCode, b)
	}
	f := newFake()
	f.tmpl = "{{'<|im_start|>' + message['role']}}"
	old, idle := ts.srv.SetBackend(f)
	if old != nil {
		t.Errorf("old backend %v, want nil", old)
	}
	<-idle
	resp, b = ts.do("GET", "/health", "")
	var h map[string]any
	json.Unmarshal(b, &h)
	if resp.StatusCode != 200 || h["status"] != "ok" || h["model"] != "fake.gguf" || h["architecture"] != "llama" ||
		h["kernels"] != "generic" || h["chat_template"] != "chatml" || get(h, "kv", "bytes") != 4096.0 || get(h, "kv", "budget") != 8192.0 {
		t.Errorf("ready health: %d %s", resp.StatusCode, b)
	}
}

func TestModels(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	resp, b := ts.do("GET", "/v1/models", "")
	var m map[string]any
	json.Unmarshal(b, &m)
	if resp.StatusCode != 200 || m["object"] != "list" || get(m, "data", 0, "id") != "fake.gguf" || get(m, "data", 0, "object") != "model" {
		t.Errorf("models: %d %s", resp.StatusCode, b)
	}
	if resp, b := ts.do("GET", "/v1/models/fake.gguf", ""); resp.StatusCode != 200 || !strings.Contains(string(b), `"id":"fake.gguf"`) {
		t.Errorf("model: %d %s", resp.StatusCode, b)
	}
	// Where the file lives on the host is not a client's business (the fake's is /models/fake.gguf).
	for _, p := range []string{"/v1/models", "/v1/models/fake.gguf"} {
		if _, b := ts.do("GET", p, ""); strings.Contains(string(b), "/models/fake.gguf") {
			t.Errorf("%s shows the model's path: %s", p, b)
		}
	}
	if resp, b := ts.do("GET", "/v1/models/other", ""); resp.StatusCode != 404 || !strings.Contains(string(b), "model_not_found") {
		t.Errorf("unknown model: %d %s", resp.StatusCode, b)
	}
}

func TestCompletion(t *testing.T) {
	ts := start(t, newFake(), Settings{Sampling: engine.Sampling{Temperature: 0.7, TopK: 40}})
	r := ts.post("/v1/completions", `{"model":"fake","prompt":"Hi","max_tokens":5,"temperature":0.5,"top_p":0.9,"top_k":7,"min_p":0.1,"repeat_penalty":1.1,"repeat_last_n":32,"seed":42,"user":"x"}`, 200)
	if r["object"] != "text_completion" || !strings.HasPrefix(r["id"].(string), "cmpl-") || r["model"] != "fake.gguf" {
		t.Errorf("envelope: %v", r)
	}
	if get(r, "choices", 0, "text") != "Hello" || get(r, "choices", 0, "finish_reason") != "length" || get(r, "choices", 0, "logprobs") != nil {
		t.Errorf("choice: %v", r["choices"])
	}
	if u := r["usage"]; get(u, "prompt_tokens") != 3.0 || get(u, "completion_tokens") != 5.0 || get(u, "total_tokens") != 8.0 {
		t.Errorf("usage: %v", u)
	}
	if _, ok := r["trace"]; ok {
		t.Errorf("trace without asking: %v", r["trace"])
	}
	req := ts.fake.lastReq
	want := engine.Sampling{Temperature: 0.5, TopP: 0.9, TopK: 7, MinP: 0.1, RepeatPenalty: 1.1, RepeatLastN: 32, Seed: 42}
	if req.Sampling != want || req.MaxTokens != 5 || fmt.Sprint(req.Prompt) != "[0 44 77]" || req.Logprobs != 0 || req.Echo {
		t.Errorf("engine request: %+v", req)
	}
	if !ts.fake.lastParse {
		t.Error("completion prompt tokenized without parseSpecial")
	}

	// Defaults: max_tokens 16 (the fake stops after 11), sampling from the settings.
	r = ts.post("/v1/completions", `{"prompt":"Hi"}`, 200)
	if get(r, "choices", 0, "text") != "Hello world" || get(r, "choices", 0, "finish_reason") != "stop" {
		t.Errorf("default completion: %v", r)
	}
	if req := ts.fake.lastReq; req.MaxTokens != 16 || req.Sampling != (engine.Sampling{Temperature: 0.7, TopK: 40}) {
		t.Errorf("defaults: %+v", req)
	}
	// seed 0 is a fixed seed, -1 random.
	ts.post("/v1/completions", `{"prompt":"Hi","seed":0}`, 200)
	if s := ts.fake.lastReq.Sampling.Seed; s == 0 {
		t.Error("seed 0 became the engine's random seed")
	}
	ts.post("/v1/completions", `{"prompt":"Hi","seed":-1}`, 200)
	if s := ts.fake.lastReq.Sampling.Seed; s != 0 {
		t.Errorf("seed -1 gave %d", s)
	}

	// Stop strings, as a string and a list.
	r = ts.post("/v1/completions", `{"prompt":"Hi","stop":"wor"}`, 200)
	if get(r, "choices", 0, "text") != "Hello " || fmt.Sprint(ts.fake.lastReq.Stop) != "[wor]" {
		t.Errorf("stop string: %v %v", r["choices"], ts.fake.lastReq.Stop)
	}
	ts.post("/v1/completions", `{"prompt":"Hi","stop":["a","","b"]}`, 200)
	if fmt.Sprint(ts.fake.lastReq.Stop) != "[a b]" {
		t.Errorf("stop list: %v", ts.fake.lastReq.Stop)
	}
	// Trace.
	r = ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":1,"trace":true}`, 200)
	if get(r, "trace", 0, "kind") != "prefill" || !ts.fake.lastReq.Trace {
		t.Errorf("trace: %v", r["trace"])
	}
	// max_tokens 0 without echo: an empty completion, no generation.
	ts.fake.lastReq = engine.Request{}
	r = ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":0}`, 200)
	if get(r, "choices", 0, "text") != "" || get(r, "usage", "prompt_tokens") != 3.0 || ts.fake.lastReq.Prompt != nil {
		t.Errorf("max_tokens 0: %v", r)
	}
}

func TestCompletionPromptForms(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	for _, tc := range []struct{ prompt, want string }{
		{`"Hi"`, "[0 44 77]"},
		{`["Hi"]`, "[0 44 77]"},
		{`[44, 77]`, "[44 77]"},
		{`[[44, 77]]`, "[44 77]"},
	} {
		ts.post("/v1/completions", `{"max_tokens":1,"prompt":`+tc.prompt+`}`, 200)
		if got := fmt.Sprint(ts.fake.lastReq.Prompt); got != tc.want {
			t.Errorf("prompt %s: engine got %s, want %s", tc.prompt, got, tc.want)
		}
	}
	r := ts.post("/v1/completions", `{"max_tokens":2,"echo":true,"prompt":[44,77]}`, 200)
	if get(r, "choices", 0, "text") != "HiHe" {
		t.Errorf("echo of token prompt: %v", r)
	}
	for _, p := range []string{`["a","b"]`, `[]`, `5`, `[1.5]`, `[99]`, `[-1]`, `{"a":1}`, `null`, `[null]`, `[44,null]`, `[[null]]`} {
		r := ts.post("/v1/completions", `{"prompt":`+p+`}`, 400)
		if get(r, "error", "type") != "invalid_request_error" {
			t.Errorf("prompt %s: %v", p, r)
		}
	}
	ts.post("/v1/completions", `{"max_tokens":1}`, 400)
}

func TestCompletionLogprobs(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	// Generated tokens: offsets continue after the prompt's 2 characters.
	r := ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":2,"logprobs":2}`, 200)
	lp := get(r, "choices", 0, "logprobs")
	if got := fmt.Sprint(get(lp, "tokens"), get(lp, "token_logprobs"), get(lp, "text_offset")); got != "[H e] [-0.5 -0.5] [2 3]" {
		t.Errorf("logprobs: %s", got)
	}
	if got := fmt.Sprint(get(lp, "top_logprobs")); got != "[map[H:-0.5 I:-1.5] map[e:-0.5 f:-1.5]]" {
		t.Errorf("top_logprobs: %s", got)
	}
	if ts.fake.lastReq.Logprobs != 2 {
		t.Errorf("engine logprobs %d", ts.fake.lastReq.Logprobs)
	}
	// logprobs 0: the chosen token's logprob, no alternatives.
	r = ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":1,"logprobs":0}`, 200)
	lp = get(r, "choices", 0, "logprobs")
	if got := fmt.Sprint(get(lp, "token_logprobs"), get(lp, "top_logprobs")); got != "[-0.5] [map[]]" || ts.fake.lastReq.Logprobs != 1 {
		t.Errorf("logprobs 0: %s (engine %d)", got, ts.fake.lastReq.Logprobs)
	}
	// echo + logprobs + max_tokens 0: the prompt's logprobs only; the first token has none.
	r = ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":0,"echo":true,"logprobs":1}`, 200)
	lp = get(r, "choices", 0, "logprobs")
	if get(r, "choices", 0, "text") != "Hi" || !ts.fake.lastReq.Echo || ts.fake.lastReq.MaxTokens != 0 {
		t.Errorf("echo text %v, request %+v", get(r, "choices", 0, "text"), ts.fake.lastReq)
	}
	if got := fmt.Sprint(get(lp, "tokens"), get(lp, "token_logprobs"), get(lp, "top_logprobs"), get(lp, "text_offset")); got != "[<s> H i] [<nil> -0.25 -0.25] [<nil> map[H:-0.25] map[i:-0.25]] [0 0 1]" { // "H" and "i" at 0 and 1 of "Hi"; "<s>" is not in the text
		t.Errorf("echo logprobs: %s", got)
	}
	// Token texts keep their leading spaces, which decoding a token alone would drop.
	r = ts.post("/v1/completions", `{"prompt":"a b","max_tokens":0,"echo":true,"logprobs":0}`, 200)
	if got := fmt.Sprint(get(r, "choices", 0, "logprobs", "tokens")); got != "[<s> a   b]" {
		t.Errorf("echo tokens: %s", got)
	}
	for _, body := range []string{`{"prompt":"Hi","logprobs":21}`, `{"prompt":"Hi","logprobs":-1}`, `{"prompt":"Hi","logprobs":true}`} {
		ts.post("/v1/completions", body, 400)
	}
}

func TestRequestErrors(t *testing.T) {
	ts := start(t, newFake(), Settings{MaxTokensCap: 100, MaxBodyBytes: 4096, MaxPromptTokens: 20})
	for _, tc := range []struct {
		path, body string
		status     int
		code, msg  string
	}{
		{"/v1/completions", `{"prompt":"Hi"`, 400, "invalid_json", "truncated"},
		{"/v1/completions", `{prompt:1}`, 400, "invalid_json", "not valid JSON"},
		{"/v1/completions", ``, 400, "invalid_json", "empty"},
		{"/v1/completions", `[1,2]`, 400, "invalid_type", "JSON object"},
		{"/v1/completions", `{"prompt":"Hi"} {}`, 400, "invalid_json", "after the JSON object"},
		{"/v1/completions", `{"prompt":"Hi","max_tokens":"5"}`, 400, "invalid_type", `"max_tokens": got string, want an integer`},
		{"/v1/completions", `{"prompt":"Hi","temperature":"hot"}`, 400, "invalid_type", "temperature"},
		{"/v1/completions", `{"prompt":"Hi","stream":"yes"}`, 400, "invalid_type", "stream"},
		{"/v1/completions", `{"prompt":"Hi","stop":5}`, 400, "invalid_type", "stop"},
		{"/v1/completions", `{"prompt":"Hi","max_tokens":101}`, 400, "invalid_value", "cap of 100"},
		{"/v1/completions", `{"prompt":"Hi","max_tokens":-1}`, 400, "invalid_value", "max_tokens"},
		{"/v1/completions", `{"prompt":"Hi","temperature":-1}`, 400, "invalid_value", "temperature"},
		{"/v1/completions", `{"prompt":"Hi","top_p":1.5}`, 400, "invalid_value", "top_p"},
		{"/v1/completions", `{"prompt":"Hi","top_k":-2}`, 400, "invalid_value", "top_k"},
		{"/v1/completions", `{"prompt":"Hi","min_p":2}`, 400, "invalid_value", "min_p"},
		{"/v1/completions", `{"prompt":"Hi","repeat_penalty":-1}`, 400, "invalid_value", "repeat_penalty"},
		{"/v1/completions", `{"prompt":"Hi","seed":-5}`, 400, "invalid_value", "seed"},
		{"/v1/completions", `{"prompt":"Hi","n":2}`, 400, "invalid_value", "n=1"},
		{"/v1/completions", `{"prompt":"Hi","stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]}`, 400, "invalid_value", "stop"},
		{"/v1/completions", `{"prompt":"` + strings.Repeat("a", 25) + `"}`, 400, "context_length_exceeded", "limit is 20"},
		{"/v1/completions", `{"model":"gpt-4","prompt":"Hi"}`, 404, "model_not_found", "gpt-4"},
		{"/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found", "gpt-4"},
		{"/v1/completions", `{"prompt":"` + strings.Repeat("a", 5000) + `"}`, 413, "request_too_large", "4096"},
		{"/v1/nothing", `{}`, 404, "not_found", "/v1/nothing"},
		{"/v1/tokenize", `{"content":5}`, 400, "invalid_type", "content"},
		{"/v1/detokenize", `{"tokens":"abc"}`, 400, "invalid_type", "tokens"},
		{"/v1/detokenize", `{"tokens":[1,500]}`, 400, "invalid_value", "500"},
	} {
		resp, b := ts.do("POST", tc.path, tc.body)
		var e errorBody
		if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != tc.status || e.Error.Code != tc.code ||
			!strings.Contains(e.Error.Message, tc.msg) || e.Error.Type == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %.60s: %d %s; want %d %s containing %q", tc.path, tc.body, resp.StatusCode, b, tc.status, tc.code, tc.msg)
		}
	}
	resp, b := ts.do("GET", "/v1/completions", "")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(string(b), "method_not_allowed") {
		t.Errorf("GET /v1/completions: %d %s", resp.StatusCode, b)
	}
	// A prompt that fills most of the context: max_tokens is cut to what is left.
	ts.srv.Apply(Settings{MaxTokensCap: 100})
	ts.post("/v1/completions", `{"prompt":"`+strings.Repeat("a", 120)+`","max_tokens":50}`, 200)
	if ts.fake.lastReq.MaxTokens != 128-121 {
		t.Errorf("max_tokens near the end of the context: %d, want 7", ts.fake.lastReq.MaxTokens)
	}
}

func TestEngineErrors(t *testing.T) {
	f := newFake()
	ts := start(t, f, Settings{})
	for _, tc := range []struct {
		err    error
		status int
		retry  bool
		code   string
	}{
		{fmt.Errorf("engine: submit: %w", engine.ErrQueueFull), 429, true, "queue_full"},
		{engine.ErrClosed, 503, true, "model_unavailable"},
		{engine.ErrContextFull, 400, false, "context_length_exceeded"},
		{engine.ErrBudget, 400, false, "kv_budget_exceeded"},
		{engine.ErrPromptTooLong, 400, false, "context_length_exceeded"},
		{engine.ErrInvalidRequest, 400, false, "invalid_value"},
		{errors.New("kernel exploded"), 500, false, "internal_error"},
	} {
		f.err = tc.err
		for _, stream := range []string{"false", "true"} {
			for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
				ts.srv.Apply(Settings{ChatTemplate: "chatml"})
				resp, b := ts.do("POST", path, `{"prompt":"Hi","messages":[{"role":"user","content":"Hi"}],"stream":`+stream+`}`)
				if resp.StatusCode != tc.status || (resp.Header.Get("Retry-After") != "") != tc.retry || !strings.Contains(string(b), tc.code) {
					t.Errorf("%v %s stream=%s: %d retry=%q %s", tc.err, path, stream, resp.StatusCode, resp.Header.Get("Retry-After"), b)
				}
			}
		}
	}
}

// readSSE parses an event stream, checking its framing: every event is one "data: " line and a
// blank line, the last one is [DONE].
func readSSE(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	br := bufio.NewReader(r)
	var out []map[string]any
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended without [DONE]: %v (line %q)", err, line)
		}
		blank, _ := br.ReadString('\n')
		if !strings.HasPrefix(line, "data: ") || blank != "\n" {
			t.Fatalf("bad SSE framing: %q then %q", line, blank)
		}
		data := strings.TrimSuffix(strings.TrimPrefix(line, "data: "), "\n")
		if data == "[DONE]" {
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("data after [DONE]: %q", rest)
			}
			return out
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("chunk is not JSON: %q", data)
		}
		out = append(out, m)
	}
}

func (ts *testServer) stream(path, body string) []map[string]any {
	ts.t.Helper()
	resp, err := ts.client.Post("http://edgelm"+path, "application/json", strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		ts.t.Fatalf("stream %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return readSSE(ts.t, resp.Body)
}

func TestCompletionStream(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	chunks := ts.stream("/v1/completions", `{"prompt":"Hi","max_tokens":5,"stream":true,"trace":true,"stream_options":{"include_usage":true}}`)
	var text strings.Builder
	for i, c := range chunks[:len(chunks)-2] {
		if c["object"] != "text_completion" || c["id"] != chunks[0]["id"] || get(c, "choices", 0, "finish_reason") != nil || c["trace"] != nil {
			t.Errorf("chunk %d: %v", i, c)
		}
		text.WriteString(get(c, "choices", 0, "text").(string))
	}
	if text.String() != "Hello" || len(chunks) != 7 {
		t.Errorf("streamed %q in %d chunks", text.String(), len(chunks))
	}
	last := chunks[len(chunks)-2]
	if get(last, "choices", 0, "finish_reason") != "length" || get(last, "choices", 0, "text") != "" || get(last, "trace", 0, "kind") != "prefill" {
		t.Errorf("final chunk: %v", last)
	}
	u := chunks[len(chunks)-1]
	if fmt.Sprint(u["choices"]) != "[]" || get(u, "usage", "total_tokens") != 8.0 {
		t.Errorf("usage chunk: %v", u)
	}

	// Echo and logprobs: the prompt (with its logprobs) first, then the tokens in order.
	chunks = ts.stream("/v1/completions", `{"prompt":"Hi","max_tokens":2,"stream":true,"echo":true,"logprobs":1}`)
	var got []string
	for _, c := range chunks {
		got = append(got, fmt.Sprint(get(c, "choices", 0, "text"), get(c, "choices", 0, "logprobs", "text_offset")))
	}
	// Offsets in the streamed text "HiHe": <s> is not in it, so "H" "i" "H" "e" start at 0 1 2 3.
	if s := strings.Join(got, "|"); s != "Hi[0 0 1]|H[2]|e[3]|<nil>" {
		t.Errorf("echo stream: %s", s)
	}
	// Echo without logprobs streams the prompt first too; max_tokens 0 still ends properly.
	chunks = ts.stream("/v1/completions", `{"prompt":"Hi","max_tokens":0,"stream":true}`)
	if len(chunks) != 1 || get(chunks[0], "choices", 0, "finish_reason") != "length" {
		t.Errorf("max_tokens 0 stream: %v", chunks)
	}
}

func TestChat(t *testing.T) {
	f := newFake()
	ts := start(t, f, Settings{})
	// No template in the model and none configured: a clear 400.
	r := ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}]}`, 400)
	if get(r, "error", "code") != "chat_template_unavailable" || !strings.Contains(get(r, "error", "message").(string), "chat_template") {
		t.Errorf("no template: %v", r)
	}
	f.tmpl = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}"
	r = ts.post("/v1/chat/completions", `{"model":"fake.gguf","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"!"}]}],"max_tokens":5,"temperature":0}`, 200)
	if r["object"] != "chat.completion" || !strings.HasPrefix(r["id"].(string), "chatcmpl-") ||
		get(r, "choices", 0, "message", "role") != "assistant" || get(r, "choices", 0, "message", "content") != "Hello" ||
		get(r, "choices", 0, "finish_reason") != "length" || get(r, "usage", "completion_tokens") != 5.0 {
		t.Errorf("chat: %v", r)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
	if f.lastText != want || !f.lastParse || f.lastReq.Prompt[0] != 0 || f.lastReq.Prompt[1] != 2 {
		t.Errorf("chat prompt %q (parseSpecial %v, ids %v), want %q", f.lastText, f.lastParse, f.lastReq.Prompt[:2], want)
	}
	if fmt.Sprint(f.lastReq.Stop) != "[<|im_end|>]" {
		t.Errorf("chat stops: %v", f.lastReq.Stop)
	}
	// Without max_tokens a chat runs to the cap or the end of the context.
	ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"stop":"x"}`, 200)
	if n := f.lastReq.MaxTokens; n != 128-len(f.lastReq.Prompt) || fmt.Sprint(f.lastReq.Stop) != "[x <|im_end|>]" {
		t.Errorf("chat default max_tokens %d, stops %v", n, f.lastReq.Stop)
	}
	ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":3}`, 200)
	if f.lastReq.MaxTokens != 3 {
		t.Errorf("max_completion_tokens: %d", f.lastReq.MaxTokens)
	}
	ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"max_completion_tokens":4}`, 200)
	if f.lastReq.MaxTokens != 4 {
		t.Errorf("max_tokens and max_completion_tokens both 4: %d", f.lastReq.MaxTokens)
	}
	// Logprobs in the chat format.
	r = ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":1,"logprobs":true,"top_logprobs":2}`, 200)
	c := get(r, "choices", 0, "logprobs", "content", 0)
	if get(c, "token") != "H" || get(c, "logprob") != -0.5 || fmt.Sprint(get(c, "bytes")) != "[72]" ||
		fmt.Sprint(get(c, "top_logprobs")) != "[map[bytes:[72] logprob:-0.5 token:H] map[bytes:[73] logprob:-1.5 token:I]]" {
		t.Errorf("chat logprobs: %v", c)
	}
	// Trace.
	r = ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":1,"trace":true}`, 200)
	if get(r, "trace", 0, "kind") != "prefill" {
		t.Errorf("chat trace: %v", r["trace"])
	}
	for _, body := range []string{
		`{"messages":[]}`, `{}`, `{"messages":"hi"}`,
		`{"messages":[{"role":"tool","content":"x"}]}`,
		`{"messages":[{"content":"x"}]}`,
		`{"messages":[{"role":"user","content":5}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`,
		`{"messages":[{"role":"user","content":"x"}],"max_tokens":0}`,
		`{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}`,
		`{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":30}`,
		`{"messages":[{"role":"user","content":"x"}],"logprobs":1}`,
		`{"messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":7}`,
	} {
		ts.post("/v1/chat/completions", body, 400)
	}
	// A configured template wins over the model's.
	ts.srv.Apply(Settings{ChatTemplate: "llama3"})
	ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":1}`, 200)
	if f.lastText != "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" {
		t.Errorf("llama3 prompt: %q", f.lastText)
	}
}

func TestChatStream(t *testing.T) {
	ts := start(t, newFake(), Settings{ChatTemplate: "chatml"})
	chunks := ts.stream("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"stream":true,"trace":true,"logprobs":true}`)
	if len(chunks) != 5 {
		t.Fatalf("%d chunks: %v", len(chunks), chunks)
	}
	first := chunks[0]
	if first["object"] != "chat.completion.chunk" || get(first, "choices", 0, "delta", "role") != "assistant" || get(first, "choices", 0, "delta", "content") != "" {
		t.Errorf("first chunk: %v", first)
	}
	var text strings.Builder
	for _, c := range chunks[1:4] {
		text.WriteString(get(c, "choices", 0, "delta", "content").(string))
		if get(c, "choices", 0, "logprobs", "content", 0, "logprob") != -0.5 || get(c, "choices", 0, "finish_reason") != nil {
			t.Errorf("token chunk: %v", c)
		}
	}
	last := chunks[4]
	if text.String() != "Hel" || get(last, "choices", 0, "finish_reason") != "length" || fmt.Sprint(get(last, "choices", 0, "delta")) != "map[]" || get(last, "trace", 0, "kind") != "prefill" {
		t.Errorf("text %q, last chunk %v", text.String(), last)
	}
	for _, c := range chunks {
		if c["id"] != first["id"] {
			t.Errorf("ids differ: %v %v", c["id"], first["id"])
		}
	}
}

func TestTokenize(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	r := ts.post("/v1/tokenize", `{"content":"Hi<|im_end|>","with_pieces":true}`, 200)
	if fmt.Sprint(r["tokens"], r["pieces"]) != "[0 44 77 3] [<s> H i <|im_end|>]" {
		t.Errorf("tokenize: %v", r)
	}
	r = ts.post("/v1/tokenize", `{"content":"Hi<","add_special":false,"parse_special":false}`, 200)
	if fmt.Sprint(r["tokens"]) != "[44 77 32]" || r["pieces"] != nil {
		t.Errorf("tokenize plain: %v", r)
	}
	r = ts.post("/v1/tokenize", `{"content":"","add_special":false}`, 200)
	if fmt.Sprint(r["tokens"]) != "[]" {
		t.Errorf("tokenize empty: %v", r)
	}
	// No content is a mistake, not an empty text (which would answer [BOS]).
	for _, body := range []string{`{}`, `{"content":null}`, `{"text":"Hi"}`} {
		if r := ts.post("/v1/tokenize", body, 400); get(r, "error", "type") != "invalid_request_error" {
			t.Errorf("tokenize %s: %v", body, r)
		}
	}
	r = ts.post("/v1/detokenize", `{"tokens":[0,44,77]}`, 200)
	if r["content"] != "<s>Hi" {
		t.Errorf("detokenize: %v", r)
	}
}

func TestMetrics(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":2}`, 200)
	ts.post("/v1/completions", `{"prompt":`, 400)
	resp, b := ts.do("GET", "/metrics", "")
	text := string(b)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`edgelm_requests_total{endpoint="/v1/completions",code="200"} 1`,
		`edgelm_requests_total{endpoint="/v1/completions",code="400"} 1`,
		"edgelm_prompt_tokens_total 3", "edgelm_completion_tokens_total 2",
		"edgelm_prefill_tokens_per_second 10.000", "edgelm_decode_tokens_per_second 9.000",
		"edgelm_queue_depth 1", "edgelm_active_sequences 2", "edgelm_kv_bytes 4096", "edgelm_kv_budget_bytes 8192",
		"edgelm_prefix_cache_hits_total 5", "edgelm_prefix_cache_evictions_total 1", "edgelm_model_loaded 1",
		"edgelm_model_bytes 1000", "edgelm_model_huge_page_bytes 512",
		"# TYPE edgelm_requests_total counter", "# TYPE edgelm_queue_depth gauge",
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line is "name{labels} value" or "name value" with a numeric value.
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		var v float64
		if len(f) != 2 || !strings.HasPrefix(f[0], "edgelm_") {
			t.Errorf("bad sample line %q", line)
		} else if _, err := fmt.Sscan(f[1], &v); err != nil {
			t.Errorf("bad value in %q", line)
		}
	}
}

func TestForbiddenPeer(t *testing.T) {
	me := uint32(os.Getuid())
	ts := start(t, newFake(), Settings{AllowedUIDs: []uint32{me + 12345}})
	for _, p := range []string{"/health", "/metrics", "/v1/models"} {
		resp, b := ts.do("GET", p, "")
		if resp.StatusCode != 403 || !strings.Contains(string(b), `"permission_error"`) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
	ts.post("/v1/completions", `{"prompt":"Hi"}`, 403)
	if logs := ts.logs.String(); !strings.Contains(logs, fmt.Sprintf("uid=%d", me)) || !strings.Contains(logs, fmt.Sprintf("pid=%d", os.Getpid())) {
		t.Errorf("refusal log lacks uid/pid: %s", logs)
	}
	// Allowed by group instead; and live: Apply takes effect on the next request.
	ts.srv.Apply(Settings{AllowedUIDs: []uint32{me + 12345}, AllowedGIDs: []uint32{uint32(os.Getgid())}})
	if resp, _ := ts.do("GET", "/health", ""); resp.StatusCode != 200 {
		t.Errorf("allowed by gid: %d", resp.StatusCode)
	}
	ts.srv.Apply(Settings{}) // default: own uid and root
	if resp, _ := ts.do("GET", "/health", ""); resp.StatusCode != 200 {
		t.Errorf("default uids: %d", resp.StatusCode)
	}
}

func TestApplyLive(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":5}`, 200)
	if err := ts.srv.Apply(Settings{MaxTokensCap: 3}); err != nil {
		t.Fatal(err)
	}
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":5}`, 400)
	if err := ts.srv.Apply(Settings{TCPListen: "0.0.0.0:80"}); err == nil {
		t.Error("Apply accepted a non-loopback TCP address")
	}
	if ts.srv.Settings().MaxTokensCap != 3 {
		t.Error("a rejected Apply changed the settings")
	}
}

func TestDisconnectMidStream(t *testing.T) {
	f := newFake()
	f.reply = strings.Repeat("x", 50)
	f.delay = 20 * time.Millisecond
	ts := start(t, f, Settings{})
	resp, err := ts.client.Post("http://edgelm/v1/completions", "application/json", strings.NewReader(`{"prompt":"Hi","max_tokens":50,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q: %v", line, err)
	}
	resp.Body.Close() // hangs up mid-stream
	ts.client.CloseIdleConnections()
	select {
	case <-f.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's context was not canceled after the client left")
	}
}

func TestRequestTimeout(t *testing.T) {
	f := newFake()
	f.delay = 50 * time.Millisecond
	ts := start(t, f, Settings{RequestTimeout: 30 * time.Millisecond})
	r := ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":5}`, 504)
	if get(r, "error", "code") != "timeout" {
		t.Errorf("timeout: %v", r)
	}
}

func TestSetBackendDrains(t *testing.T) {
	a := newFake()
	a.delay = 30 * time.Millisecond
	ts := start(t, a, Settings{})
	done := make(chan map[string]any)
	go func() {
		resp, b := ts.do("POST", "/v1/completions", `{"prompt":"Hi","max_tokens":4}`)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["status"] = resp.StatusCode
		done <- m
	}()
	<-a.started
	b := newFake()
	b.reply = "Bye"
	old, idle := ts.srv.SetBackend(b)
	if old != Backend(a) {
		t.Fatal("SetBackend did not return the old backend")
	}
	select {
	case <-idle:
		t.Fatal("old backend reported idle while a request runs on it")
	default:
	}
	r := ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":4}`, 200)
	if get(r, "choices", 0, "text") != "Bye" {
		t.Errorf("new backend answered %v", r)
	}
	if m := <-done; m["status"] != 200 || get(m, "choices", 0, "text") != "Hell" {
		t.Errorf("request on the old backend: %v", m)
	}
	select {
	case <-idle:
	case <-time.After(5 * time.Second):
		t.Fatal("old backend never reported idle")
	}
}

func TestGracefulShutdown(t *testing.T) {
	f := newFake()
	f.delay = 20 * time.Millisecond
	set := Settings{Socket: filepath.Join(shortTempDir(t), "g.sock"), ShutdownGrace: 5 * time.Second}
	srv := New(f, set, nil)
	l, err := Listen(set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	c := unixClient(set.Socket)
	got := make(chan string, 1)
	go func() {
		resp, err := c.Post("http://edgelm/v1/completions", "application/json", strings.NewReader(`{"prompt":"Hi","max_tokens":8}`))
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-f.started
	cancel()
	if b := <-got; !strings.Contains(b, `"Hello wo"`) {
		t.Errorf("in-flight request during shutdown: %s", b)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	l.Close()
	if _, err := os.Stat(set.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestHeldBackText(t *testing.T) {
	f := newFake()
	f.holdBack = "?"
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	r := ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":2,"logprobs":1}`, 200)
	if get(r, "choices", 0, "text") != "He?" || fmt.Sprint(get(r, "choices", 0, "logprobs", "tokens")) != "[H e]" {
		t.Errorf("held-back text: %v", r)
	}
	chunks := ts.stream("/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"stream":true,"logprobs":true}`)
	var text strings.Builder
	for _, c := range chunks {
		if s, ok := get(c, "choices", 0, "delta", "content").(string); ok {
			text.WriteString(s)
		}
	}
	if text.String() != "He?" || len(chunks) != 5 || get(chunks[3], "choices", 0, "logprobs") != nil {
		t.Errorf("held-back text streamed as %q in %v", text.String(), chunks)
	}
}
