package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequests feeds arbitrary bodies to the generation and tokenizer endpoints: no panic, an
// OpenAI-shaped error for anything refused, and only the statuses the API documents.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"Hi","max_tokens":3,"logprobs":2,"echo":true}`,
		`{"prompt":[4,5,6],"stream":true,"stop":["l"]}`,
		`{"prompt":[[4]],"max_tokens":0,"echo":true,"logprobs":0,"stream":true}`,
		`{"messages":[{"role":"system","content":"x"},{"role":"user","content":[{"type":"text","text":"y"}]}],"logprobs":true,"top_logprobs":3}`,
		`{"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true},"trace":true}`,
		`{"content":"<|im_start|>x","with_pieces":true}`, `{"tokens":[0,1,2,98]}`,
		`{"temperature":1e400}`, `{"seed":-9223372036854775808}`, `[`, `null`, ``,
		`{"prompt":"x","response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","properties":{"a":{"enum":[1,"b"]}}}}}}`,
		`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"stream":true}`,
		`{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"1"}],` +
			`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"n":{"type":"integer","maximum":9}}}}}],"tool_choice":"required","stream":true}`,
	} {
		f.Add("/v1/completions", s)
		f.Add("/v1/chat/completions", s)
	}
	f.Add("/v1/tokenize", `{"content":"abc"}`)
	f.Add("/v1/detokenize", `{"tokens":[5]}`)
	fake := newFake()
	fake.holdBack = "!"
	srv := New(fake, Settings{ChatTemplate: "gemma", MaxBodyBytes: 1 << 16}, nil)
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/v1/completions", "/v1/chat/completions", "/v1/tokenize", "/v1/detokenize":
		default:
			path = "/v1/completions"
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		switch w.Code {
		case 200:
			return
		case 400, 404, 413:
		default:
			t.Fatalf("%s %q: status %d: %s", path, body, w.Code, w.Body)
		}
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" || e.Error.Type == "" || e.Error.Code == "" {
			t.Fatalf("%s %q: error body %q", path, body, w.Body)
		}
	})
}
