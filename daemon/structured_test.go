package daemon

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/engine"
	"edgelm/grammar"
	"edgelm/internal/testshared"
)

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"Weather in a city",
	"parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":24},"days":{"type":"integer","minimum":1,"maximum":7}},
	"required":["city"],"additionalProperties":false}}}`

func TestResponseFormat(t *testing.T) {
	f := newFake()
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		body := func(rf string) string {
			if path == "/v1/completions" {
				return `{"prompt":"Hi","max_tokens":2,"response_format":` + rf + `}`
			}
			return `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"response_format":` + rf + `}`
		}
		ts.post(path, body(`{"type":"json_object"}`), 200)
		if f.lastReq.Grammar != grammar.JSONObject() {
			t.Errorf("%s json_object: grammar %v", path, f.lastReq.Grammar)
		}
		ts.post(path, body(`{"type":"json_schema","json_schema":{"name":"p","strict":true,"schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}}}`), 200)
		g := f.lastReq.Grammar
		if g == nil {
			t.Fatalf("%s json_schema: no grammar", path)
		}
		if m := g.Matcher(nil); m.AcceptBytes([]byte(`{"a": 5}`)) != nil || !m.Complete() {
			t.Errorf("%s json_schema: the grammar is not the schema's", path)
		}
		ts.post(path, body(`{"type":"text"}`), 200)
		if f.lastReq.Grammar != nil {
			t.Errorf("%s text: grammar set", path)
		}
		r := ts.post(path, body(`{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"^a","format":"email"}}}`), 400)
		msg, _ := get(r, "error", "message").(string)
		if get(r, "error", "code") != "unsupported_schema" || !strings.Contains(msg, "pattern at #") || !strings.Contains(msg, "format at #") {
			t.Errorf("%s unsupported keywords: %v", path, r)
		}
		for _, rf := range []string{`"json"`, `{"type":"yaml"}`, `{"type":"json_schema"}`, `{"type":"json_schema","json_schema":{"schema":{"type":"strung"}}}`,
			`{"type":"json_schema","json_schema":{"schema":{"$ref":"#/$defs/x"}}}`} {
			ts.post(path, body(rf), 400)
		}
	}
}

func TestToolCallForced(t *testing.T) {
	f := newFake()
	f.ctxLen = 4096
	f.reply = `{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}`
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	for _, choice := range []string{`"required"`, `{"type":"function","function":{"name":"get_weather"}}`} {
		body := `{"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[` + weatherTool + `],"tool_choice":` + choice + `}`
		r := ts.post("/v1/chat/completions", body, 200)
		msg := get(r, "choices", 0, "message")
		call := get(msg, "tool_calls", 0)
		if get(r, "choices", 0, "finish_reason") != "tool_calls" || get(msg, "content") != nil || get(call, "type") != "function" ||
			!strings.HasPrefix(get(call, "id").(string), "call_") || get(call, "function", "name") != "get_weather" ||
			get(call, "function", "arguments") != `{"city": "Paris", "days": 3}` {
			t.Errorf("%s: %v", choice, r)
		}
		if f.lastReq.Grammar == nil {
			t.Errorf("%s: no grammar forces the call", choice)
		}
		if !strings.Contains(f.lastText, "<tools>\n") || !strings.Contains(f.lastText, `"name": "get_weather"`) {
			t.Errorf("%s: tools not in the prompt: %q", choice, f.lastText)
		}
		// Streamed: the first delta has id, type and name, then fragments of the arguments.
		chunks := ts.stream("/v1/chat/completions", strings.Replace(body, `"tools"`, `"stream":true,"tools"`, 1))
		var args strings.Builder
		var first map[string]any
		n := 0
		for _, c := range chunks {
			d, _ := get(c, "choices", 0, "delta", "tool_calls", 0).(map[string]any)
			if d == nil {
				if s, _ := get(c, "choices", 0, "delta", "content").(string); s != "" {
					t.Errorf("%s: content %q in a forced call", choice, s)
				}
				continue
			}
			if first == nil {
				first = d
			} else if d["id"] != nil || get(d, "function", "name") != nil {
				t.Errorf("%s: a later delta repeats id or name: %v", choice, d)
			}
			if d["index"] != 0.0 {
				t.Errorf("%s: index %v", choice, d["index"])
			}
			args.WriteString(get(d, "function", "arguments").(string))
			n++
		}
		if first == nil || !strings.HasPrefix(first["id"].(string), "call_") || first["type"] != "function" ||
			get(first, "function", "name") != "get_weather" || get(first, "function", "arguments") != "" {
			t.Errorf("%s: first delta %v", choice, first)
		}
		if args.String() != `{"city": "Paris", "days": 3}` || n < 5 {
			t.Errorf("%s: streamed arguments %q in %d deltas", choice, args.String(), n)
		}
		if last := chunks[len(chunks)-1]; get(last, "choices", 0, "finish_reason") != "tool_calls" {
			t.Errorf("%s: last chunk %v", choice, last)
		}
	}
	// The call in Qwen's tags, as a ChatML model writes it when forced, streamed.
	f.reply = "<tool_call>\n" + `{"name": "get_weather", "arguments": {"city": "Paris"}}` + "\n</tool_call>"
	chunks := ts.stream("/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"stream":true,"tools":[`+weatherTool+`],"tool_choice":"required"}`)
	var args strings.Builder
	for _, c := range chunks {
		if s, ok := get(c, "choices", 0, "delta", "tool_calls", 0, "function", "arguments").(string); ok {
			args.WriteString(s)
		}
	}
	if args.String() != `{"city": "Paris"}` || get(chunks[len(chunks)-1], "choices", 0, "finish_reason") != "tool_calls" {
		t.Errorf("tagged call streamed: arguments %q, last %v", args.String(), chunks[len(chunks)-1])
	}
	if m := f.lastReq.Grammar.Matcher(nil); m.AcceptBytes([]byte(f.reply)) != nil || !m.Finished() {
		t.Errorf("the forced grammar does not take the tagged call")
	}
	// Llama-3: the call is bare JSON, "parameters", and in auto mode constrained when the answer starts with "{".
	ts.srv.Apply(Settings{ChatTemplate: "llama3"})
	f.reply = `{"name": "get_weather", "parameters": {"city": "Oslo"}}`
	r := ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"tools":[`+weatherTool+`]}`, 200)
	if f.lastReq.Trigger != "{" || !f.lastReq.TriggerAtStart || get(r, "choices", 0, "message", "tool_calls", 0, "function", "arguments") != `{"city": "Oslo"}` {
		t.Errorf("llama3 auto: trigger %q, answer %v", f.lastReq.Trigger, r)
	}
	// Qwen3 writes calls in Qwen's tags too; Llama-3.1 as Llama-3.
	for tmpl, trig := range map[string]string{"qwen3": "<tool_call>", "llama3.1": "{"} {
		ts.srv.Apply(Settings{ChatTemplate: tmpl})
		ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"tools":[`+weatherTool+`]}`, 200)
		if f.lastReq.Trigger != trig || f.lastReq.Grammar == nil {
			t.Errorf("%s auto: trigger %q", tmpl, f.lastReq.Trigger)
		}
	}
	ts.srv.Apply(Settings{ChatTemplate: "chatml"})
	// "none": no tools in the prompt, no grammar, no parsing.
	r = ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"tools":[`+weatherTool+`],"tool_choice":"none"}`, 200)
	if f.lastReq.Grammar != nil || strings.Contains(f.lastText, "<tools>") || get(r, "choices", 0, "finish_reason") != "stop" ||
		get(r, "choices", 0, "message", "content") != f.reply {
		t.Errorf("none: %v (prompt %q)", r, f.lastText)
	}
}

func TestToolCallAuto(t *testing.T) {
	f := newFake()
	f.ctxLen = 4096
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	body := `{"messages":[{"role":"user","content":"Weather?"}],"tools":[` + weatherTool + `]}`
	for _, tc := range []struct {
		reply, content, args string
	}{
		{"Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>", "Let me look.", `{"city": "Oslo"}`},
		{`{"name": "get_weather", "arguments": {"city": "Rome"}}`, "", `{"city": "Rome"}`},
		{"It is sunny.", "It is sunny.", ""},
		{"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Oslo\"}}\n</tool_call>", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Oslo\"}}\n</tool_call>", ""},
		{`{"name": "get_time", "arguments": {}}`, `{"name": "get_time", "arguments": {}}`, ""},
	} {
		f.reply = tc.reply
		r := ts.post("/v1/chat/completions", body, 200)
		if f.lastReq.Grammar == nil || f.lastReq.Trigger != "<tool_call>" || f.lastReq.TriggerAtStart {
			t.Errorf("auto: the call is not constrained from <tool_call> on (trigger %q)", f.lastReq.Trigger)
		}
		msg := get(r, "choices", 0, "message")
		content, _ := get(msg, "content").(string)
		args, _ := get(msg, "tool_calls", 0, "function", "arguments").(string)
		wantFinish := "stop"
		if tc.args != "" {
			wantFinish = "tool_calls"
		}
		if content != tc.content || args != tc.args || get(r, "choices", 0, "finish_reason") != wantFinish {
			t.Errorf("%q: %v", tc.reply, r)
		}
		// Streamed, the same content and calls come out.
		chunks := ts.stream("/v1/chat/completions", strings.Replace(body, `"tools"`, `"stream":true,"tools"`, 1))
		var sc, sa strings.Builder
		for _, c := range chunks {
			if s, ok := get(c, "choices", 0, "delta", "content").(string); ok {
				sc.WriteString(s)
			}
			if s, ok := get(c, "choices", 0, "delta", "tool_calls", 0, "function", "arguments").(string); ok {
				sa.WriteString(s)
			}
		}
		if strings.TrimSpace(sc.String()) != tc.content || sa.String() != tc.args || get(chunks[len(chunks)-1], "choices", 0, "finish_reason") != wantFinish {
			t.Errorf("%q streamed: content %q, arguments %q, last %v", tc.reply, sc.String(), sa.String(), chunks[len(chunks)-1])
		}
	}
}

func TestToolMessagesAndErrors(t *testing.T) {
	f := newFake()
	f.ctxLen = 4096
	ts := start(t, f, Settings{ChatTemplate: "chatml"})
	ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Weather?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":3}"}],"tools":[`+weatherTool+`]}`, 200)
	for _, part := range []string{"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call><|im_end|>\n",
		"<|im_start|>user\n<tool_response>\n{\"temp\":3}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"} {
		if !strings.Contains(f.lastText, part) {
			t.Errorf("prompt %q lacks %q", f.lastText, part)
		}
	}
	for _, body := range []string{
		`{"messages":[{"role":"user","content":"x"}],"tools":[` + weatherTool + `],"tool_choice":{"type":"function","function":{"name":"nope"}}}`,
		`{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[` + weatherTool + `],"tool_choice":"sometimes"}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"retrieval"}]}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"bad name"}}]}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[` + weatherTool + `,` + weatherTool + `]}`,
		`{"messages":[{"role":"user","content":"x"}],"tools":[` + weatherTool + `],"tool_choice":"required","response_format":{"type":"json_object"}}`,
		`{"messages":[{"role":"user","content":"x"},{"role":"tool","content":"3"}]}`,
		`{"messages":[{"role":"user","content":"x","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}]}`,
		`{"messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"{oops"}}]}]}`,
	} {
		ts.post("/v1/chat/completions", body, 400)
	}
	r := ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f",
		"parameters":{"type":"object","properties":{"when":{"type":"string","format":"date-time"}}}}}]}`, 400)
	if msg, _ := get(r, "error", "message").(string); get(r, "error", "code") != "unsupported_schema" || !strings.Contains(msg, "format at f#/properties/when") {
		t.Errorf("unsupported keyword in a tool: %v", r)
	}
}

// TestRealStructured runs tinydoc at temperature 1 with several seeds: json_schema answers parse
// and validate, forced tool calls have valid arguments (checked here by hand, not by the grammar).
func TestRealStructured(t *testing.T) {
	eng, err := engine.Load(filepath.Join(testshared.Dir(t), "models", "tinydoc-q8_0.gguf"), engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ts := startBackend(t, eng, Settings{ChatTemplate: "chatml"})
	calls, answers := 0, 0
	for seed := 1; seed <= 4; seed++ {
		s := `"temperature":1,"max_tokens":200,"seed":` + string(rune('0'+seed))
		r := ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Describe a city."}],`+s+`,
			"response_format":{"type":"json_schema","json_schema":{"name":"city","schema":{"type":"object","properties":{
			"name":{"type":"string","maxLength":20},"population":{"type":"integer","minimum":0,"maximum":50000000},
			"rivers":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":3}},"required":["name","population","rivers"],"additionalProperties":false}}}}`, 200)
		t.Logf("seed %d json_schema: %s %q", seed, get(r, "choices", 0, "finish_reason"), get(r, "choices", 0, "message", "content"))
		if get(r, "choices", 0, "finish_reason") == "stop" {
			answers++
			var v struct {
				Name       *string
				Population *int
				Rivers     *[]string
			}
			content := get(r, "choices", 0, "message", "content").(string)
			dec := json.NewDecoder(strings.NewReader(content))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil || dec.More() || v.Name == nil || v.Population == nil || v.Rivers == nil ||
				len([]rune(*v.Name)) > 20 || *v.Population < 0 || *v.Population > 50000000 || len(*v.Rivers) > 3 {
				t.Errorf("seed %d: json_schema answer %q invalid (%v)", seed, content, err)
			}
		}
		r = ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Weather in Paris?"}],`+s+`,
			"tools":[`+weatherTool+`],"tool_choice":"required"}`, 200)
		t.Logf("seed %d tool call: %s %v", seed, get(r, "choices", 0, "finish_reason"), get(r, "choices", 0, "message"))
		if get(r, "choices", 0, "finish_reason") != "tool_calls" {
			continue // cut by max_tokens
		}
		calls++
		args := get(r, "choices", 0, "message", "tool_calls", 0, "function", "arguments").(string)
		var a struct {
			City *string
			Days *int
		}
		dec := json.NewDecoder(strings.NewReader(args))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil || a.City == nil || len([]rune(*a.City)) > 24 || (a.Days != nil && (*a.Days < 1 || *a.Days > 7)) {
			t.Errorf("seed %d: tool call arguments %q invalid (%v)", seed, args, err)
		}
	}
	if calls < 3 || answers < 3 {
		t.Errorf("only %d of 4 forced calls and %d of 4 json_schema answers finished within max_tokens", calls, answers)
	}
}
