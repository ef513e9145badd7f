package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"edgelm/chat"
	"edgelm/engine"
)

// commonFields are the request fields /v1/completions and /v1/chat/completions share. Pointers
// tell an absent field (use the configured default) from a zero one.
type commonFields struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	Temperature   *float32        `json:"temperature"`
	TopP          *float32        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	MinP          *float32        `json:"min_p"`
	RepeatPenalty *float32        `json:"repeat_penalty"`
	RepeatLastN   *int            `json:"repeat_last_n"`
	Seed          *int64          `json:"seed"`
	Stop          json.RawMessage `json:"stop"` // a string or an array of strings
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N         *int `json:"n"`
	IgnoreEOS bool `json:"ignore_eos"`
	Trace     bool `json:"trace"` // return the engine's per-step trace
	// {"type": "text" | "json_object" | "json_schema", "json_schema": {"schema": ...}} (structured.go)
	ResponseFormat json.RawMessage `json:"response_format"`
}

// completionRequest is POST /v1/completions.
type completionRequest struct {
	commonFields
	Prompt   json.RawMessage `json:"prompt"`   // a string, an array of token ids, or a one-element array of either
	Logprobs *int            `json:"logprobs"` // top alternatives per token, 0..20; null = no logprobs
	Echo     bool            `json:"echo"`     // prepend the prompt to the text (and its logprobs)
}

// chatRequest is POST /v1/chat/completions.
type chatRequest struct {
	commonFields
	Messages            []chatMessage   `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"` // OpenAI's newer name for max_tokens
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"` // 0..20, with logprobs
	Tools               []toolDef       `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`         // "auto", "none", "required" or {"type":"function","function":{"name":...}}
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"` // accepted; a forced answer is one call
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`      // a string, null, or an array of {"type":"text","text":...} parts
	ToolCalls  []callBody      `json:"tool_calls"`   // assistant: the calls it made
	ToolCallID string          `json:"tool_call_id"` // tool: the call answered
}

// maxLogprobs bounds the alternatives per token a request may ask for.
const maxLogprobs = 20

// maxStops bounds the stop strings of one request.
const maxStops = 16

// sampling merges the request's sampling fields over the configured defaults and checks them.
func (f *commonFields) sampling(def engine.Sampling) (engine.Sampling, error) {
	p := def
	if f.Temperature != nil {
		p.Temperature = *f.Temperature
	}
	if f.TopP != nil {
		p.TopP = *f.TopP
	}
	if f.TopK != nil {
		p.TopK = *f.TopK
	}
	if f.MinP != nil {
		p.MinP = *f.MinP
	}
	if f.RepeatPenalty != nil {
		p.RepeatPenalty = *f.RepeatPenalty
	}
	if f.RepeatLastN != nil {
		p.RepeatLastN = *f.RepeatLastN
	}
	if f.Seed != nil {
		switch s := *f.Seed; {
		case s == -1: // llama.cpp's "random"
			p.Seed = 0
		case s < 0:
			return p, badRequest("invalid_value", "seed %d: want >= 0 (or -1 for random)", s)
		case s == 0:
			// The engine reads seed 0 as "random"; a client asking for seed 0 wants a fixed one.
			p.Seed = math.MaxUint64
		default:
			p.Seed = uint64(s)
		}
	}
	if err := checkSampling(p); err != nil {
		return p, badRequest("invalid_value", "%v", err)
	}
	if f.N != nil && *f.N != 1 {
		return p, badRequest("invalid_value", "n %d: only n=1 is supported", *f.N)
	}
	return p, nil
}

// stops parses "stop": a string or an array of strings; empty strings are dropped.
func (f *commonFields) stops() ([]string, error) {
	raw := bytes.TrimSpace(f.Stop)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest("invalid_type", "field \"stop\": %v", err)
		}
		list = []string{s}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest("invalid_type", "field \"stop\": want a string or an array of strings")
	}
	out := list[:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) > maxStops {
		return nil, badRequest("invalid_value", "field \"stop\": %d strings, at most %d", len(out), maxStops)
	}
	return out, nil
}

// parsePrompt reads "prompt". Text is returned as text (to be tokenized); token ids as ids.
func parsePrompt(raw json.RawMessage) (text string, ids []int32, isText bool, err error) {
	return parsePromptIn(raw, false)
}

// parsePromptIn parses a prompt, or (inner) the one element of a one-prompt array, which may not
// be an array of prompts again: unbounded, each level re-parsed its rest, quadratically.
func parsePromptIn(raw json.RawMessage, inner bool) (text string, ids []int32, isText bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, false, badRequest("invalid_value", "field \"prompt\" is required")
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", nil, false, badRequest("invalid_type", "field \"prompt\": %v", err)
		}
		return text, nil, true, nil
	}
	if raw[0] != '[' {
		return "", nil, false, badRequest("invalid_type", "field \"prompt\": want a string or an array of token ids")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return "", nil, false, badRequest("invalid_type", "field \"prompt\": %v", err)
	}
	if len(items) == 0 {
		return "", nil, false, badRequest("invalid_value", "field \"prompt\" is an empty array")
	}
	first := bytes.TrimSpace(items[0])
	if len(first) > 0 && (first[0] == '"' || first[0] == '[') {
		if inner {
			return "", nil, false, badRequest("invalid_type", "field \"prompt\": an array of prompts inside an array; want a string, token ids, or one of them in an array")
		}
		if len(items) > 1 {
			return "", nil, false, badRequest("invalid_value", "field \"prompt\": %d prompts; only one prompt per request is supported", len(items))
		}
		return parsePromptIn(first, true)
	}
	ids = make([]int32, len(items))
	for i, it := range items {
		// json.Unmarshal reads null into an int32 as "leave it", which would be token 0.
		if err := json.Unmarshal(it, &ids[i]); err != nil || string(bytes.TrimSpace(it)) == "null" {
			return "", nil, false, badRequest("invalid_type", "field \"prompt\"[%d]: want a token id (an integer), got %s", i, truncate(string(it), 40))
		}
	}
	return "", ids, false, nil
}

// messages converts the request's messages for the chat package.
func (r *chatRequest) messages() ([]chat.Message, error) {
	if len(r.Messages) == 0 {
		return nil, badRequest("invalid_value", "field \"messages\" is required and must not be empty")
	}
	out := make([]chat.Message, len(r.Messages))
	for i, m := range r.Messages {
		if m.Role == "" {
			return nil, badRequest("invalid_value", "messages[%d]: field \"role\" is required", i)
		}
		if m.Role == "developer" { // OpenAI's newer name for the system role
			m.Role = "system"
		}
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return nil, badRequest("invalid_value", "messages[%d]: role %q is not supported (system, user, assistant, tool)", i, m.Role)
		}
		if len(m.ToolCalls) > 0 && m.Role != "assistant" {
			return nil, badRequest("invalid_value", "messages[%d]: only assistant messages have tool_calls", i)
		}
		if m.Role == "tool" {
			// As OpenAI: a result answers a call, so it follows an assistant message with tool_calls.
			k := i - 1
			for k >= 0 && r.Messages[k].Role == "tool" {
				k--
			}
			if k < 0 || r.Messages[k].Role != "assistant" || len(r.Messages[k].ToolCalls) == 0 {
				return nil, badRequest("invalid_value", "messages[%d]: a tool message must answer a preceding assistant message with tool_calls", i)
			}
		}
		text, err := messageText(m.Content)
		if err != nil {
			return nil, badRequest("invalid_type", "messages[%d].content: %v", i, err)
		}
		out[i] = chat.Message{Role: m.Role, Content: text}
	}
	return out, nil
}

// calls reads the assistant messages' tool_calls, for chat.Template.RenderTools; nil when there are
// none, and ok false when no message has calls or is a tool result (plain Render will do).
func (r *chatRequest) calls() (calls [][]chat.ToolCall, ok bool, err error) {
	for i, m := range r.Messages {
		ok = ok || m.Role == "tool" || len(m.ToolCalls) > 0
		var cs []chat.ToolCall
		for k, c := range m.ToolCalls {
			args := strings.TrimSpace(c.Function.Arguments)
			if c.Function.Name == "" || (args != "" && !json.Valid([]byte(args))) {
				return nil, false, badRequest("invalid_value", "messages[%d].tool_calls[%d]: want a function name and arguments as a JSON text", i, k)
			}
			cs = append(cs, chat.ToolCall{Name: c.Function.Name, Arguments: args})
		}
		calls = append(calls, cs)
	}
	return calls, ok, nil
}

// messageText reads a message's content: a string, null, or an array of text parts.
func messageText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("want a string or an array of {\"type\":\"text\",\"text\":...} parts")
	}
	var b bytes.Buffer
	for j, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", fmt.Errorf("part %d: only text parts are supported, got type %q", j, p.Type)
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
