package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestBenchSocket runs `edgelm bench --socket` against a fake OpenAI-style server on a Unix socket
// that streams max_tokens one-word chunks, and checks the request and the reported counts.
func TestBenchSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	var temps atomic.Value // the last request's temperature: "none" or its value
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Prompt      string   `json:"prompt"`
			MaxTokens   int      `json:"max_tokens"`
			Stream      bool     `json:"stream"`
			Temperature *float64 `json:"temperature"`
		}
		if r.URL.Path != "/v1/completions" || json.NewDecoder(r.Body).Decode(&body) != nil || !body.Stream || body.MaxTokens != 5 || body.Prompt == "" {
			http.Error(w, fmt.Sprintf("unexpected request %s %+v", r.URL.Path, body), http.StatusBadRequest)
			return
		}
		requests.Add(1)
		if body.Temperature == nil {
			temps.Store("none")
		} else {
			temps.Store(fmt.Sprint(*body.Temperature))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for range body.MaxTokens {
			fmt.Fprint(w, "data: {\"choices\":[{\"text\":\" word\"}]}\n\n")
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	var out bytes.Buffer
	if err := benchCmd([]string{"--socket", sock, "--clients", "3", "-n", "5", "-r", "2", "--json"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Test             string  `json:"test"`
		Requests         int     `json:"requests"`
		CompletionTokens int     `json:"completion_tokens"`
		PromptTokens     int     `json:"prompt_tokens"`
		AggregateTPS     float64 `json:"aggregate_tps"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if r.Test != "clients3_tg5" || r.Requests != 6 || requests.Load() != 6 || r.CompletionTokens != 30 || r.PromptTokens != 18 || !(r.AggregateTPS > 0) {
		t.Errorf("got %+v (server saw %d requests); want 3 clients x 2 requests of 5 tokens", r, requests.Load())
	}
	if temps.Load() != "none" {
		t.Errorf("temperature %v sent without --temperature; want the server's default", temps.Load())
	}
	out.Reset()
	if err := benchCmd([]string{"--socket", sock, "--clients", "1", "-n", "5", "-r", "1", "--temperature", "0"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte("1 clients, 1 requests")) {
		t.Errorf("text output %q", out.String())
	}
	if temps.Load() != "0" {
		t.Errorf("--temperature 0 sent temperature %v", temps.Load())
	}
}
