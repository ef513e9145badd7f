// Package client talks to an edgelm daemon over its Unix socket: completions and chat (streamed
// through a callback or not), health, metrics and tokenization. The edgelm chat and status
// commands use it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client is a connection pool to one daemon socket. Its methods are safe for concurrent use.
type Client struct {
	hc     *http.Client
	socket string
}

// New returns a client for the daemon listening on the Unix socket at path.
func New(socket string) *Client {
	return &Client{socket: socket, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// APIError is an error answer from the daemon.
type APIError struct {
	Status  int
	Type    string
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("edgelm daemon: %d %s: %s", e.Status, e.Code, e.Message)
}

// Usage counts a request's tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Sampling holds the optional sampling fields; nil means the daemon's default.
type Sampling struct {
	MaxTokens     *int     `json:"max_tokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"top_p,omitempty"`
	TopK          *int     `json:"top_k,omitempty"`
	MinP          *float64 `json:"min_p,omitempty"`
	RepeatPenalty *float64 `json:"repeat_penalty,omitempty"`
	RepeatLastN   *int     `json:"repeat_last_n,omitempty"`
	Seed          *int64   `json:"seed,omitempty"`
	Stop          []string `json:"stop,omitempty"`
}

// CompletionRequest is a /v1/completions request.
type CompletionRequest struct {
	Model  string `json:"model,omitempty"`
	Prompt string `json:"prompt"`
	Sampling
	Echo      bool `json:"echo,omitempty"`
	IgnoreEOS bool `json:"ignore_eos,omitempty"`
	Logprobs  *int `json:"logprobs,omitempty"` // alternatives per token, 0..20
	Trace     bool `json:"trace,omitempty"`    // the engine's per-step trace in the answer
}

// Completion is a finished completion.
type Completion struct {
	ID           string
	Model        string
	Text         string
	FinishReason string
	Usage        Usage
}

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a /v1/chat/completions request.
type ChatRequest struct {
	Model    string    `json:"model,omitempty"`
	Messages []Message `json:"messages"`
	Sampling
}

// Completions runs a completion. With onText non-nil the answer is streamed and onText gets each
// piece of text as it arrives (an error from it ends the request); the returned Completion then
// holds the whole text.
func (c *Client) Completions(ctx context.Context, req CompletionRequest, onText func(string) error) (*Completion, error) {
	body := map[string]any{}
	if err := merge(body, req); err != nil {
		return nil, err
	}
	return c.generate(ctx, "/v1/completions", body, onText, false)
}

// CompletionsJSON runs a completion unstreamed and returns the daemon's answer as it came, for the
// fields Completion leaves out (logprobs, trace).
func (c *Client) CompletionsJSON(ctx context.Context, req CompletionRequest) ([]byte, error) {
	body := map[string]any{}
	if err := merge(body, req); err != nil {
		return nil, err
	}
	body["stream"] = false
	resp, err := c.do(ctx, http.MethodPost, "/v1/completions", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("client: /v1/completions: reading the answer: %w", err)
	}
	return b, nil
}

// Chat runs a chat completion; onDelta as onText in Completions.
func (c *Client) Chat(ctx context.Context, req ChatRequest, onDelta func(string) error) (*Completion, error) {
	body := map[string]any{}
	if err := merge(body, req); err != nil {
		return nil, err
	}
	return c.generate(ctx, "/v1/chat/completions", body, onDelta, true)
}

// merge flattens v (with its embedded Sampling) into a JSON object.
func merge(dst map[string]any, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("client: encoding the request: %w", err)
	}
	return json.Unmarshal(b, &dst)
}

// wireChoice covers both endpoints' choices, whole or as chunks.
type wireChoice struct {
	Text    string `json:"text"`
	Message *struct {
		Content string `json:"content"`
	} `json:"message"`
	Delta *struct {
		Content string `json:"content"`
	} `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type wireBody struct {
	ID      string       `json:"id"`
	Model   string       `json:"model"`
	Choices []wireChoice `json:"choices"`
	Usage   *Usage       `json:"usage"`
	Error   *struct {
		Message string    `json:"message"`
		Type    string    `json:"type"`
		Code    errorCode `json:"code"`
	} `json:"error"`
}

// errorCode is an error object's code: a string in OpenAI's API, a number in
// llama-server's (the HTTP status), null in some; the client talks to all of
// them, so any of these reads as text.
type errorCode string

func (c *errorCode) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*c = ""
	case string:
		*c = errorCode(v)
	default:
		*c = errorCode(strings.TrimSpace(string(b)))
	}
	return nil
}

func (c *Client) generate(ctx context.Context, path string, body map[string]any, on func(string) error, chat bool) (*Completion, error) {
	stream := on != nil
	body["stream"] = stream
	if stream {
		body["stream_options"] = map[string]bool{"include_usage": true}
	}
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	out := &Completion{}
	text := func(ch wireChoice) string {
		switch {
		case ch.Delta != nil:
			return ch.Delta.Content
		case ch.Message != nil:
			return ch.Message.Content
		}
		return ch.Text
	}
	take := func(b *wireBody) {
		out.ID, out.Model = b.ID, b.Model
		if b.Usage != nil {
			out.Usage = *b.Usage
		}
		for _, ch := range b.Choices {
			if ch.FinishReason != nil {
				out.FinishReason = *ch.FinishReason
			}
		}
	}
	if !stream {
		var b wireBody
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
			return nil, fmt.Errorf("client: %s: decoding the answer: %w", path, err)
		}
		take(&b)
		if len(b.Choices) > 0 {
			out.Text = text(b.Choices[0])
		}
		return out, nil
	}
	var all strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue // comments and other SSE fields
		}
		if data == "[DONE]" {
			out.Text = all.String()
			return out, nil
		}
		var b wireBody
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			return nil, fmt.Errorf("client: %s: bad stream chunk %q: %w", path, data, err)
		}
		if b.Error != nil {
			return nil, &APIError{Status: http.StatusOK, Type: b.Error.Type, Code: string(b.Error.Code), Message: b.Error.Message}
		}
		take(&b)
		for _, ch := range b.Choices {
			if t := text(ch); t != "" {
				all.WriteString(t)
				if err := on(t); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("client: %s: reading the stream: %w", path, err)
	}
	return nil, fmt.Errorf("client: %s: stream ended without [DONE]", path)
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://edgelm"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return nil, fmt.Errorf("client: %s %s: cannot reach a daemon at %s (is edgelm serve running?): %w", method, path, c.socket, op)
	}
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	return resp, nil
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var w wireBody
	if json.Unmarshal(b, &w) == nil && w.Error != nil {
		return &APIError{Status: resp.StatusCode, Type: w.Error.Type, Code: string(w.Error.Code), Message: w.Error.Message}
	}
	return &APIError{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(b))}
}

// Health is the daemon's /health answer.
type Health struct {
	Status        string  `json:"status"`
	Model         string  `json:"model"`
	Architecture  string  `json:"architecture"`
	Name          string  `json:"name"`
	Kernels       string  `json:"kernels"`
	Threads       int     `json:"threads"`
	ContextLength int     `json:"context_length"`
	ChatTemplate  string  `json:"chat_template"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	KV            struct {
		Bytes         int64 `json:"bytes"`
		Budget        int64 `json:"budget"`
		BytesPerToken int64 `json:"bytes_per_token"`
	} `json:"kv"`
	QueueDepth      int `json:"queue_depth"`
	ActiveSequences int `json:"active_sequences"`
	// Degraded says why Status is "degraded" (generations failing, a broken model).
	Degraded           string `json:"degraded"`
	GenerationFailures int64  `json:"generation_failures"`
	LastError          *struct {
		Time    time.Time `json:"time"`
		Message string    `json:"message"`
	} `json:"last_error"`
	// Reload is the last configuration reload's outcome; nil before the first.
	Reload *struct {
		OK           bool      `json:"ok"`
		Time         time.Time `json:"time"`
		Error        string    `json:"error"`
		ModelSwapped bool      `json:"model_swapped"`
	} `json:"reload"`
}

// ErrLoading is returned (with the Health) while the daemon is still loading its model.
var ErrLoading = errors.New("client: the daemon is still loading its model")

// Health asks how the daemon is.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	resp, err := c.do(ctx, http.MethodGet, "/health", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, readError(resp)
	}
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return nil, fmt.Errorf("client: /health: %w", err)
	}
	if h.Status == "loading" {
		return &h, ErrLoading
	}
	return &h, nil
}

// Metrics are the samples of /metrics, keyed by name with labels as written
// (`edgelm_requests_total{endpoint="/health",code="200"}`).
type Metrics map[string]float64

// Sum adds the samples of one metric over all its label sets.
func (m Metrics) Sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// Metrics reads and parses /metrics.
func (c *Client) Metrics(ctx context.Context) (Metrics, error) {
	resp, err := c.do(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	m := Metrics{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("client: /metrics: %w", err)
	}
	return m, nil
}

// Tokenize asks the daemon's tokenizer for the ids of text.
func (c *Client) Tokenize(ctx context.Context, text string, addSpecial, parseSpecial bool) ([]int32, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/tokenize", map[string]any{"content": text, "add_special": addSpecial, "parse_special": parseSpecial})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	var out struct {
		Tokens []int32 `json:"tokens"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("client: /v1/tokenize: %w", err)
	}
	return out.Tokens, nil
}
