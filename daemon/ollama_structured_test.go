package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"edgelm/engine"
	"edgelm/grammar"
	"edgelm/internal/testshared"
)

// ollamaWeather is weatherTool in Ollama's request shape (the same as OpenAI's).
const ollamaWeather = weatherTool

// TestOllamaFormat: "format" constrains /api/generate and /api/chat, streamed or not: "json" to a
// JSON object, a schema to its values; absent, null or "" leaves the text free.
func TestOllamaFormat(t *testing.T) {
	f := newFake()
	f.ctxLen = 4096
	f.reply = `{"a": 5}`
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	schema := `{"type":"object","properties":{"a":{"type":"integer","maximum":9}},"required":["a"],"additionalProperties":false}`
	for _, path := range []string{"/api/generate", "/api/chat"} {
		for _, stream := range []string{"true", "false"} {
			body := func(format string) string {
				if path == "/api/generate" {
					return `{"prompt":"Hi","stream":` + stream + `,"format":` + format + `}`
				}
				return `{"messages":[{"role":"user","content":"Hi"}],"stream":` + stream + `,"format":` + format + `}`
			}
			answer := func(format string) string {
				var text strings.Builder
				if stream == "false" {
					r := ts.post(path, body(format), 200)
					if path == "/api/chat" {
						return get(r, "message", "content").(string)
					}
					return r["response"].(string)
				}
				for _, l := range ts.ndjson(path, body(format)) {
					if path == "/api/chat" {
						text.WriteString(get(l, "message", "content").(string))
					} else {
						text.WriteString(l["response"].(string))
					}
				}
				return text.String()
			}
			if a := answer(`"json"`); f.lastReq.Grammar != grammar.JSONObject() || a != f.reply {
				t.Errorf("%s stream %s json: grammar %p, answer %q", path, stream, f.lastReq.Grammar, a)
			}
			if a := answer(schema); a != f.reply {
				t.Errorf("%s stream %s schema: answer %q", path, stream, a)
			}
			g := f.lastReq.Grammar
			if g == nil || g == grammar.JSONObject() {
				t.Fatalf("%s stream %s schema: grammar %p", path, stream, g)
			}
			for doc, want := range map[string]bool{`{"a": 5}`: true, `{"a": 12}`: false, `{"a": 5, "b": 1}`: false, `{}`: false, `[1]`: false} {
				m := g.Matcher(nil)
				if ok := m.AcceptBytes([]byte(doc)) == nil && m.Complete(); ok != want {
					t.Errorf("%s stream %s: the schema's grammar takes %s: %v", path, stream, doc, ok)
				}
			}
			for _, none := range []string{`null`, `""`} {
				answer(none)
				if f.lastReq.Grammar != nil {
					t.Errorf("%s format %s: grammar set", path, none)
				}
			}
		}
	}
}

// TestOllamaTools: tools go into the prompt through the chat format; the model's call comes back
// as Ollama returns it (message.tool_calls, arguments an object), streamed as one chunk of its own.
func TestOllamaTools(t *testing.T) {
	f := newFake()
	f.ctxLen = 4096
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	body := `{"model":"fake","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[` + ollamaWeather + `],"stream":false}`
	for _, tc := range []struct {
		reply, content string
		args           map[string]any // nil: no call
	}{
		{"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>", "", map[string]any{"city": "Paris", "days": 3.0}},
		{"Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>", "Let me look.", map[string]any{"city": "Oslo"}},
		{"It is sunny.", "It is sunny.", nil},
		// Not valid against the parameters (no city): text, not a call.
		{"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Oslo\"}}\n</tool_call>", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Oslo\"}}\n</tool_call>", nil},
	} {
		f.reply = tc.reply
		r := ts.post("/api/chat", body, 200)
		if f.lastReq.Grammar == nil || f.lastReq.Trigger != "<tool_call>" || f.lastReq.TriggerAtStart {
			t.Errorf("%q: the call is not constrained from <tool_call> on (trigger %q)", tc.reply, f.lastReq.Trigger)
		}
		if !strings.Contains(f.lastText, "<tools>\n") || !strings.Contains(f.lastText, `"name": "get_weather"`) {
			t.Errorf("tools not in the prompt: %q", f.lastText)
		}
		msg := r["message"].(map[string]any)
		calls, _ := msg["tool_calls"].([]any)
		if msg["role"] != "assistant" || msg["content"] != tc.content || r["done"] != true || r["done_reason"] != "stop" {
			t.Errorf("%q: %v", tc.reply, r)
		}
		if tc.args == nil {
			if calls != nil {
				t.Errorf("%q: calls %v", tc.reply, calls)
			}
		} else if len(calls) != 1 || get(calls[0], "function", "name") != "get_weather" ||
			!reflect.DeepEqual(get(calls[0], "function", "arguments"), tc.args) || get(calls[0], "function", "index") != 0.0 {
			t.Errorf("%q: calls %v, want arguments %v", tc.reply, calls, tc.args)
		}

		// Streamed: content as it comes, the call whole in one chunk before the last.
		lines := ts.ndjson("/api/chat", strings.Replace(body, `"stream":false`, `"stream":true`, 1))
		var content strings.Builder
		var streamed []any
		for i, l := range lines {
			m := l["message"].(map[string]any)
			content.WriteString(m["content"].(string))
			if cs, ok := m["tool_calls"].([]any); ok {
				if streamed != nil || l["done"] != false || i != len(lines)-2 {
					t.Errorf("%q: tool calls in line %d of %d: %v", tc.reply, i, len(lines), l)
				}
				streamed = cs
			}
		}
		if strings.TrimSpace(content.String()) != tc.content || !reflect.DeepEqual(streamed, calls) || lines[len(lines)-1]["done"] != true {
			t.Errorf("%q streamed: content %q, calls %v, last %v", tc.reply, content.String(), streamed, lines[len(lines)-1])
		}
	}

	// edgelm's tool_choice, as OpenAI's: a forced call is constrained from the first token, and
	// streamed whole as an auto one is.
	f.reply = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
	for _, choice := range []string{`"required"`, `{"type":"function","function":{"name":"get_weather"}}`} {
		forced := strings.Replace(body, `"tools"`, `"tool_choice":`+choice+`,"tools"`, 1)
		r := ts.post("/api/chat", forced, 200)
		if f.lastReq.Grammar == nil || f.lastReq.Trigger != "" || !validCall(get(r, "message", "tool_calls", 0)) || get(r, "message", "content") != "" {
			t.Errorf("tool_choice %s: trigger %q, answer %v", choice, f.lastReq.Trigger, r)
		}
		lines := ts.ndjson("/api/chat", strings.Replace(forced, `"stream":false`, `"stream":true`, 1))
		if len(lines) != 2 || !validCall(get(lines[0], "message", "tool_calls", 0)) || get(lines[0], "message", "content") != "" {
			t.Errorf("tool_choice %s streamed: %v", choice, lines)
		}
	}
	ts.ollamaError("/api/chat", `{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}`, 400, "needs tools")
	ts.ollamaError("/api/chat", strings.Replace(body, `"tools"`, `"tool_choice":{"type":"function","function":{"name":"nope"}},"tools"`, 1), 400, `"nope"`)
	f.reply = "It is sunny."
	ts.post("/api/chat", strings.Replace(body, `"tools"`, `"tool_choice":"none","tools"`, 1), 200)
	if f.lastReq.Grammar != nil || strings.Contains(f.lastText, "<tools>") {
		t.Errorf("tool_choice none: grammar %p, prompt %q", f.lastReq.Grammar, f.lastText)
	}

	// Llama-3: a bare JSON call with "parameters", constrained when the answer starts with "{".
	ts.srv.Apply(Settings{ChatTemplate: "llama3"})
	f.reply = `{"name": "get_weather", "parameters": {"city": "Rome"}}`
	r := ts.post("/api/chat", body, 200)
	if f.lastReq.Trigger != "{" || !f.lastReq.TriggerAtStart ||
		!reflect.DeepEqual(get(r, "message", "tool_calls", 0, "function", "arguments"), map[string]any{"city": "Rome"}) {
		t.Errorf("llama3: trigger %q, answer %v", f.lastReq.Trigger, r)
	}
	ts.srv.Apply(Settings{ChatTemplate: "chatml"})

	// A call and its result fed back: the call (arguments an object, or a JSON text in a string as
	// OpenAI clients write it) and the result, with Ollama's tool_name, in the model's own form.
	for _, args := range []string{`{"city":"Oslo"}`, `"{\"city\":\"Oslo\"}"`} {
		ts.post("/api/chat", `{"messages":[{"role":"user","content":"Weather?"},
			{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":`+args+`}}]},
			{"role":"tool","tool_name":"get_weather","content":"{\"temp\":3}"}],"tools":[`+ollamaWeather+`],"stream":false}`, 200)
		for _, part := range []string{"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call><|im_end|>\n",
			"<|im_start|>user\n<tool_response>\n{\"temp\":3}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"} {
			if !strings.Contains(f.lastText, part) {
				t.Errorf("arguments %s: prompt %q lacks %q", args, f.lastText, part)
			}
		}
	}
	// Without tools in the request, a tool result is still rendered as one.
	ts.post("/api/chat", `{"messages":[{"role":"user","content":"Weather?"},{"role":"tool","content":"3C"}],"stream":false}`, 200)
	if !strings.Contains(f.lastText, "<tool_response>\n3C\n</tool_response>") || f.lastReq.Grammar != nil {
		t.Errorf("tool result without tools: prompt %q", f.lastText)
	}
}

// validCall checks a call of weatherTool's function against its parameters, by hand: an object
// with a string city of at most 24 characters, an optional integer days in 1..7, nothing else.
func validCall(call any) bool {
	if get(call, "function", "name") != "get_weather" {
		return false
	}
	args, ok := get(call, "function", "arguments").(map[string]any)
	if !ok {
		return false
	}
	city, ok := args["city"].(string)
	if !ok || len([]rune(city)) > 24 {
		return false
	}
	for k, v := range args {
		switch k {
		case "city":
		case "days":
			d, ok := v.(float64)
			if !ok || d != float64(int(d)) || d < 1 || d > 7 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// cityOK checks an answer against the city schema of TestRealOllamaStructured, by hand.
func cityOK(content string) error {
	var v struct {
		Name       *string
		Population *int
		Rivers     *[]string
	}
	dec := json.NewDecoder(strings.NewReader(content))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if dec.More() || v.Name == nil || v.Population == nil || v.Rivers == nil || len([]rune(*v.Name)) > 20 ||
		*v.Population < 0 || *v.Population > 50000000 || len(*v.Rivers) > 3 {
		return errInvalid
	}
	for _, r := range *v.Rivers {
		if len([]rune(r)) > 12 {
			return errInvalid
		}
	}
	return nil
}

var errInvalid = errors.New("not valid against the schema")

// TestRealOllamaStructured runs tinydoc at temperature 1 with several seeds through the Ollama
// endpoints: every format answer validates against its schema (checked by hand), and every tool
// call the model makes has arguments valid against its function's parameters.
func TestRealOllamaStructured(t *testing.T) {
	eng, err := engine.Load(filepath.Join(testshared.Dir(t), "models", "tinydoc-q8_0.gguf"), engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ts := startBackend(t, eng, Settings{ChatTemplate: "chatml"})
	schema := `{"type":"object","properties":{"name":{"type":"string","maxLength":20},"population":{"type":"integer","minimum":0,"maximum":50000000},
		"rivers":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":3}},"required":["name","population","rivers"],"additionalProperties":false}`
	answers, calls := 0, 0
	for seed := 1; seed <= 3; seed++ {
		opts := fmt.Sprintf(`"options":{"temperature":1,"num_predict":200,"seed":%d}`, seed)
		r := ts.post("/api/chat", `{"messages":[{"role":"user","content":"Describe a city."}],"stream":false,"format":`+schema+`,`+opts+`}`, 200)
		t.Logf("seed %d chat format: %s %q", seed, r["done_reason"], get(r, "message", "content"))
		if r["done_reason"] == "stop" {
			answers++
			if err := cityOK(get(r, "message", "content").(string)); err != nil {
				t.Errorf("seed %d: chat format answer %q: %v", seed, get(r, "message", "content"), err)
			}
		}
		var text strings.Builder
		lines := ts.ndjson("/api/generate", `{"prompt":"Describe a city.","format":`+schema+`,`+opts+`}`)
		for _, l := range lines {
			text.WriteString(l["response"].(string))
		}
		t.Logf("seed %d generate format, streamed: %s %q", seed, lines[len(lines)-1]["done_reason"], text.String())
		if lines[len(lines)-1]["done_reason"] == "stop" {
			answers++
			if err := cityOK(text.String()); err != nil {
				t.Errorf("seed %d: streamed generate format answer %q: %v", seed, text.String(), err)
			}
		}
		// tinydoc never calls a tool of its own accord ("auto"): the call is forced, streamed.
		lines = ts.ndjson("/api/chat", `{"messages":[{"role":"user","content":"What is the weather in Paris?"}],
			"tools":[`+ollamaWeather+`],"tool_choice":"required",`+opts+`}`)
		last := lines[len(lines)-1]
		t.Logf("seed %d tools: %s %v", seed, last["done_reason"], lines[max(len(lines)-2, 0)]["message"])
		if last["done_reason"] != "stop" {
			continue // cut by num_predict
		}
		for _, l := range lines {
			cs, _ := get(l, "message", "tool_calls").([]any)
			for _, c := range cs {
				calls++
				if !validCall(c) {
					t.Errorf("seed %d: tool call %v not valid", seed, c)
				}
			}
		}
	}
	if answers < 4 || calls < 2 {
		t.Errorf("only %d of 6 format answers and %d of 3 forced calls finished within num_predict", answers, calls)
	}
}
