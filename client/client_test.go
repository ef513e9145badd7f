package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"edgelm/daemon"
	"edgelm/engine"
)

// echoBackend answers every request with the characters of "ok!", one token each; its
// vocabulary is the bytes.
type echoBackend struct{ loaded time.Time }

func (echoBackend) Info() engine.Info {
	return engine.Info{Model: "echo.gguf", Arch: "llama", Kernels: "generic", ContextLength: 256, VocabSize: 256,
		ChatTemplate: "<|im_start|>"}
}
func (echoBackend) Tokenize(text string, addSpecial, parseSpecial bool) []int32 {
	var ids []int32
	for i := 0; i < len(text); i++ {
		ids = append(ids, int32(text[i]))
	}
	return ids
}
func (echoBackend) Detokenize(ids []int32) string {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return string(b)
}
func (echoBackend) Stats() engine.Stats {
	return engine.Stats{GeneratedTokens: 30, DecodeTokens: 30, DecodeSeconds: 3, KVBytes: 100}
}
func (echoBackend) Embed(ctx context.Context, prompt []int32) (*engine.Embedding, error) {
	return &engine.Embedding{Vector: []float32{1, 0}, PromptTokens: len(prompt)}, nil
}
func (echoBackend) Generate(ctx context.Context, req engine.Request, on func(engine.Event) error) (*engine.Result, error) {
	res := &engine.Result{PromptTokens: len(req.Prompt), FinishReason: "stop"}
	for _, c := range []byte("ok!") {
		if len(res.Tokens) == req.MaxTokens {
			res.FinishReason = "length"
			break
		}
		if err := on(engine.Event{Token: int32(c), Text: string(c)}); err != nil {
			return res, err
		}
		res.Tokens = append(res.Tokens, int32(c))
		res.Text += string(c)
	}
	return res, nil
}

func serve(t *testing.T) *Client {
	dir, err := os.MkdirTemp("", "edgelm-c")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	set := daemon.Settings{Socket: filepath.Join(dir, "c.sock")}
	srv := daemon.New(echoBackend{}, set, nil)
	l, err := daemon.Listen(set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	c := New(set.Socket)
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
		l.Close()
	})
	return c
}

func intp(n int) *int { return &n }

func TestClient(t *testing.T) {
	c := serve(t)
	ctx := context.Background()
	comp, err := c.Completions(ctx, CompletionRequest{Prompt: "Hi", Sampling: Sampling{MaxTokens: intp(2)}}, nil)
	if err != nil || comp.Text != "ok" || comp.FinishReason != "length" || comp.Usage.TotalTokens != 4 || comp.Model != "echo.gguf" {
		t.Errorf("Completions: %+v, %v", comp, err)
	}
	var pieces []string
	comp, err = c.Completions(ctx, CompletionRequest{Prompt: "Hi"}, func(s string) error { pieces = append(pieces, s); return nil })
	if err != nil || comp.Text != "ok!" || fmt.Sprint(pieces) != "[o k !]" || comp.FinishReason != "stop" || comp.Usage.CompletionTokens != 3 {
		t.Errorf("streamed Completions: %+v %v, %v", comp, pieces, err)
	}
	pieces = nil
	chat, err := c.Chat(ctx, ChatRequest{Messages: []Message{{"user", "Hi"}}}, func(s string) error { pieces = append(pieces, s); return nil })
	if err != nil || chat.Text != "ok!" || fmt.Sprint(pieces) != "[o k !]" || chat.Usage.PromptTokens == 0 {
		t.Errorf("streamed Chat: %+v %v, %v", chat, pieces, err)
	}
	chat, err = c.Chat(ctx, ChatRequest{Messages: []Message{{"user", "Hi"}}}, nil)
	if err != nil || chat.Text != "ok!" {
		t.Errorf("Chat: %+v, %v", chat, err)
	}
	// A callback error ends the stream.
	stop := errors.New("enough")
	if _, err := c.Chat(ctx, ChatRequest{Messages: []Message{{"user", "Hi"}}}, func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
	_, err = c.Completions(ctx, CompletionRequest{Model: "gpt-4", Prompt: "Hi"}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "model_not_found" {
		t.Errorf("unknown model: %v", err)
	}
	h, err := c.Health(ctx)
	if err != nil || h.Status != "ok" || h.Model != "echo.gguf" || h.ChatTemplate != "chatml" || h.KV.Bytes != 100 {
		t.Errorf("Health: %+v, %v", h, err)
	}
	m, err := c.Metrics(ctx)
	if err != nil || m["edgelm_decode_tokens_per_second"] != 10 || m.Sum("edgelm_requests_total") < 5 {
		t.Errorf("Metrics: %v, %v", m, err)
	}
	ids, err := c.Tokenize(ctx, "ab", true, true)
	if err != nil || fmt.Sprint(ids) != "[97 98]" {
		t.Errorf("Tokenize: %v, %v", ids, err)
	}
}

func TestClientNoDaemon(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Health(context.Background())
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || !strings.Contains(err.Error(), "/health") {
		t.Errorf("Health without a daemon: %v", err)
	}
}

func TestLoad(t *testing.T) {
	c := serve(t)
	r, err := c.Load(context.Background(), 3, 2, CompletionRequest{Prompt: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 6 || r.CompletionTokens != 18 || r.PromptTokens != 12 || r.AggregateTPS <= 0 || r.Wall <= 0 {
		t.Errorf("Load: %v", r)
	}
	if _, err := c.Load(context.Background(), 2, 1, CompletionRequest{Model: "nope", Prompt: "Hi"}); err == nil {
		t.Error("Load with an unknown model succeeded")
	}
	if _, err := c.Load(context.Background(), 0, 1, CompletionRequest{}); err == nil {
		t.Error("Load with 0 clients succeeded")
	}
}

// TestForeignErrors: the client also measures other servers (edgelm bench --socket), whose
// error objects differ from OpenAI's: llama-server's code is a number; some send null.
func TestForeignErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "f.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/completions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"text\":\"a\",\"index\":0}]}\n\n")
		io.WriteString(w, "data: {\"error\":{\"code\":500,\"message\":\"Failed to parse input\",\"type\":\"server_error\"}}\n\n")
	})
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":null,"message":"Loading model","type":"unavailable_error"}}`)
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	c := New(sock)
	defer c.Close()
	ctx := context.Background()
	var ae *APIError
	_, err = c.Completions(ctx, CompletionRequest{Prompt: "Hi"}, func(string) error { return nil })
	if !errors.As(err, &ae) || ae.Code != "500" || ae.Type != "server_error" || ae.Message != "Failed to parse input" {
		t.Errorf("numeric code in a stream chunk: %v", err)
	}
	_, err = c.Chat(ctx, ChatRequest{Messages: []Message{{"user", "Hi"}}}, nil)
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "" || ae.Message != "Loading model" {
		t.Errorf("null code in a 503 answer: %v", err)
	}
}
