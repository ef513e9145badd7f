package daemon

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzOllamaRequests feeds arbitrary bodies to /v1/embeddings and the Ollama endpoints: no panic,
// only documented statuses, errors in each API's shape, and NDJSON streams whose every line is a
// JSON object.
func FuzzOllamaRequests(f *testing.F) {
	for _, s := range []string{
		`{"input":["a","b"],"encoding_format":"base64"}`, `{"input":[[4,5],[6]],"normalize":false}`, `{"input":[4,5,6],"dimensions":8}`,
		`{"model":"fake:latest","prompt":"Hi","system":"S","options":{"num_predict":3,"stop":["l"],"seed":0}}`,
		`{"prompt":"Hi","raw":true,"stream":false,"context":[0,5],"options":{"num_ctx":3,"repeat_last_n":-1}}`,
		`{"messages":[{"role":"user","content":"x"}],"stream":true,"keep_alive":"0s","format":null,"think":false}`,
		`{"messages":[{"role":"tool","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
		`{"input":"abc","truncate":false}`, `{"prompt":"abc"}`, `{"model":"fake"}`, `{"name":"fake"}`,
		`{"options":{"num_predict":-2,"temperature":1e40}}`, `[`, `null`, ``,
	} {
		for _, p := range []string{"/v1/embeddings", "/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show"} {
			f.Add(p, s)
		}
	}
	srv := New(newFake(), Settings{ChatTemplate: "chatml", MaxBodyBytes: 1 << 16, MaxPromptTokens: 64}, nil)
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/v1/embeddings", "/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show":
		default:
			path = "/api/generate"
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		switch w.Code {
		case 200:
			if w.Header().Get("Content-Type") == "application/x-ndjson" {
				sc := bufio.NewScanner(w.Body)
				for sc.Scan() {
					var m map[string]any
					if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
						t.Fatalf("%s %q: stream line %q: %v", path, body, sc.Text(), err)
					}
				}
			}
			return
		case 400, 404, 413:
		default:
			t.Fatalf("%s %q: status %d: %s", path, body, w.Code, w.Body)
		}
		if path == "/v1/embeddings" {
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" || e.Error.Code == "" {
				t.Fatalf("%s %q: error body %q", path, body, w.Body)
			}
			return
		}
		var e map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] == "" || len(e) != 1 {
			t.Fatalf("%s %q: error body %q", path, body, w.Body)
		}
	})
}
