package chat

import (
	"encoding/json"
	"strings"
	"testing"
)

var weather = Tool{Name: "get_weather", Description: "Weather in a city", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}

// The tool conversation: a question, the assistant's call, its result, and the next answer's prompt.
var toolMsgs = []Message{{"system", "Be brief."}, {"user", "Weather in Paris?"}, {"assistant", ""}, {"tool", `{"temp":21}`}}
var toolCalls = [][]ToolCall{nil, nil, {{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}

func TestRenderToolsChatML(t *testing.T) {
	tm, _ := ByName("chatml")
	got, err := tm.RenderTools(toolMsgs, toolCalls, []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
		`{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}` +
		"\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
		"<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
		"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n{\"temp\":21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestRenderToolsLlama3(t *testing.T) {
	tm, _ := ByName("llama3")
	got, err := tm.RenderTools(toolMsgs, toolCalls, []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{
		"<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>",
		"<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions",
		"\"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n",
		"            \"properties\": {\n                \"city\": {\n                    \"type\": \"string\"\n                }\n            }\n        }\n    }\n}\n\nWeather in Paris?",
		"\n\nWeather in Paris?<|eot_id|>",
		"<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>",
		"<|start_header_id|>ipython<|end_header_id|>\n\n{\"temp\":21}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
	} {
		if !strings.Contains(got, part) {
			t.Errorf("missing %q in\n%q", part, got)
		}
	}
}

func TestRenderToolsGeneric(t *testing.T) {
	tm, _ := ByName("gemma")
	got, err := tm.RenderTools(toolMsgs, toolCalls, []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<bos><start_of_turn>user\nBe brief.\n\nYou can call these functions:\n" +
		`{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}` +
		"\n\nTo call a function, reply with only a JSON object: {\"name\": <function name>, \"arguments\": <arguments object>}.\n\n" +
		"Weather in Paris?<end_of_turn>\n<start_of_turn>model\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}<end_of_turn>\n" +
		"<start_of_turn>user\nFunction result: {\"temp\":21}<end_of_turn>\n<start_of_turn>model\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	// Without tools nor tool messages, RenderTools is Render.
	plain := []Message{sys, {"user", "Hi"}}
	a, _ := tm.RenderTools(plain, nil, nil, true)
	b, _ := tm.Render(plain, true)
	if a != b {
		t.Errorf("RenderTools without tools %q, Render %q", a, b)
	}
}

func TestParseToolCalls(t *testing.T) {
	chatml, _ := ByName("chatml")
	llama3, _ := ByName("llama3")
	for _, tc := range []struct {
		tm      Template
		text    string
		content string
		calls   []ToolCall
		ok      bool
	}{
		{chatml, "Let me check.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>{\"name\":\"g\",\"arguments\":{}}",
			"Let me check.", []ToolCall{{"f", `{"a": 1}`}, {"g", "{}"}}, true},
		{chatml, ` {"name": "f", "arguments": "{\"a\":2}"}`, "", []ToolCall{{"f", `{"a":2}`}}, true},
		{llama3, `{"name": "f", "parameters": {"x": [1]}}`, "", []ToolCall{{"f", `{"x": [1]}`}}, true},
		{llama3, `It is sunny.`, "It is sunny.", nil, false},
		{chatml, "<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>", "<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>", nil, false},
		{llama3, `{"name": "f", "parameters": {}} and more`, `{"name": "f", "parameters": {}} and more`, nil, false},
	} {
		content, calls, ok := tc.tm.ParseToolCalls(tc.text)
		if content != tc.content || ok != tc.ok || len(calls) != len(tc.calls) {
			t.Errorf("%q: got %q %v %v", tc.text, content, calls, ok)
			continue
		}
		for i := range calls {
			if calls[i] != tc.calls[i] {
				t.Errorf("%q: call %d = %+v, want %+v", tc.text, i, calls[i], tc.calls[i])
			}
		}
	}
}

func TestPyJSON(t *testing.T) {
	for _, tc := range []struct {
		in     string
		indent int
		want   string
	}{
		{`{"b":1,"a":[true,null,"x,y:\"z"],"e":{},"f":[]}`, 0, `{"b": 1, "a": [true, null, "x,y:\"z"], "e": {}, "f": []}`},
		{` { "a" : [ 1 , 2 ] } `, 4, "{\n    \"a\": [\n        1,\n        2\n    ]\n}"},
		{`{"a":{}}`, 2, "{\n  \"a\": {}\n}"},
		{`not json`, 0, `not json`},
	} {
		if got := pyJSON(tc.in, tc.indent); got != tc.want {
			t.Errorf("pyJSON(%q, %d) = %q, want %q", tc.in, tc.indent, got, tc.want)
		}
	}
}

func TestRenderToolsQwen3Llama31Phi3(t *testing.T) {
	q3, _ := ByName("qwen3")
	got, err := q3.RenderTools(toolMsgs, toolCalls, []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
		`{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}` +
		"\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
		"<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
		"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n{\"temp\":21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
	// (No <think> block: the call is not the last turn and has no reasoning, as Qwen3's template has it.)
	if got != want {
		t.Errorf("qwen3 got\n%q\nwant\n%q", got, want)
	}
	if o, c := q3.ToolCallTags(); o != "<tool_call>" || c != "</tool_call>" {
		t.Errorf("qwen3 tags %q %q", o, c)
	}

	l31, _ := ByName("llama3.1")
	l31.Date = "26 Jul 2024"
	got, err = l31.RenderTools(toolMsgs, toolCalls, []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{
		"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>" +
			"<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions",
		"<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>" +
			"<|start_header_id|>ipython<|end_header_id|>\n\n{\"temp\":21}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
	} {
		if !strings.Contains(got, part) {
			t.Errorf("llama3.1: missing %q in\n%q", part, got)
		}
	}
	if strings.Count(got, "Be brief.") != 1 || l31.ToolArgsKey() != "parameters" {
		t.Errorf("llama3.1: system message once, parameters key: %q", got)
	}

	// The first Phi-3 template drops system messages: the tools go in the first user turn.
	phi := Template{Format: Phi3, BOS: "<s>", phi3Inline: true}
	got, err = phi.RenderTools([]Message{{"user", "Weather?"}}, nil, []Tool{weather}, true)
	if err != nil || !strings.HasPrefix(got, "<s><|user|>\nYou can call these functions:\n") || !strings.Contains(got, "\n\nWeather?<|end|>") {
		t.Errorf("phi3 inline: %q %v", got, err)
	}
}
