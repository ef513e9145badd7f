package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // a JSON schema; nil for none
}

// ToolCall is a call an assistant turn made: the function's name and its arguments as JSON text.
type ToolCall struct {
	Name      string
	Arguments string
}

// ToolCallTags are the texts around a call in the format's models' answers: <tool_call> and
// </tool_call> for ChatML and Qwen3, none for the others (the call is a bare JSON object).
func (t Template) ToolCallTags() (open, close string) {
	if t.Format == ChatML || t.Format == Qwen3 {
		return "<tool_call>", "</tool_call>"
	}
	return "", ""
}

// ToolArgsKey is the member that holds a call's arguments in the JSON the format's models write:
// "parameters" for Llama-3 (3.1's convention), "arguments" for the others.
func (t Template) ToolArgsKey() string {
	if t.Format == Llama3 || t.Format == Llama31 {
		return "parameters"
	}
	return "arguments"
}

// RenderTools is Render for a conversation with tools: tools are described to the model, calls[i]
// are the calls assistant message i made (calls may be nil or shorter than msgs), and messages of
// role "tool" carry call results. Each format does what its models were trained on where they
// define it, and a generic convention where they do not:
//   - ChatML and Qwen3, as Qwen2.5's and Qwen3's templates: the tools in the system turn as
//     <tools> JSON lines, calls as <tool_call>{"name": ..., "arguments": ...}</tool_call>, results
//     as <tool_response> blocks in a user turn;
//   - Llama-3.1 and Llama-3, as Llama 3.1's template: "Environment: ipython" in the system turn
//     (3.1), the tools and the instruction to answer with {"name": ..., "parameters": ...} in the
//     first user turn, calls as that JSON, results in "ipython" turns;
//   - Gemma, Llama-2 and Phi-3, which define no tools: the tools and the instruction to answer
//     with only {"name": ..., "arguments": ...} in the system message (added if absent; the first
//     user turn for the first Phi-3 template, which drops system messages), calls as that JSON,
//     results as user turns "Function result: ...".
func (t Template) RenderTools(msgs []Message, calls [][]ToolCall, tools []Tool, gen bool) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("chat: no messages")
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return "", fmt.Errorf("chat: message %d: unknown role %q (want system, user, assistant or tool)", i, m.Role)
		}
	}
	callsOf := func(i int) []ToolCall {
		if i < len(calls) {
			return calls[i]
		}
		return nil
	}
	switch t.Format {
	case ChatML:
		return t.renderChatMLTools(msgs, callsOf, tools, gen), nil
	case Qwen3:
		return renderQwen3(qwenToolMessages(msgs, callsOf, tools), gen), nil
	case Llama3, Llama31:
		return t.renderLlama3Tools(msgs, callsOf, tools, gen)
	}
	// The generic convention, through the format's own rendering.
	var plain []Message
	if len(tools) > 0 {
		var b strings.Builder
		if msgs[0].Role == "system" {
			b.WriteString(msgs[0].Content + "\n\n")
			msgs = msgs[1:]
			calls = calls[min(1, len(calls)):]
		}
		b.WriteString("You can call these functions:\n")
		for _, tl := range tools {
			b.WriteString(toolJSON(tl, 0) + "\n")
		}
		b.WriteString("\nTo call a function, reply with only a JSON object: {\"name\": <function name>, \"arguments\": <arguments object>}.")
		if t.phi3Inline {
			// This template drops system messages: the first user turn carries the tools.
			for i, m := range msgs {
				if m.Role == "user" {
					msgs = slices.Clone(msgs)
					msgs[i].Content = b.String() + "\n\n" + m.Content
					break
				}
			}
		} else {
			plain = append(plain, Message{Role: "system", Content: b.String()})
		}
	}
	for i, m := range msgs {
		switch {
		case m.Role == "tool":
			if n := len(plain); n > 0 && plain[n-1].Role == "user" && strings.HasPrefix(plain[n-1].Content, "Function result: ") {
				plain[n-1].Content += "\nFunction result: " + m.Content
				continue
			}
			plain = append(plain, Message{Role: "user", Content: "Function result: " + m.Content})
		case m.Role == "assistant" && len(callsOf(i)) > 0:
			parts := []string{}
			if strings.TrimSpace(m.Content) != "" {
				parts = append(parts, m.Content)
			}
			for _, c := range callsOf(i) {
				parts = append(parts, callJSON(c, t.ToolArgsKey()))
			}
			plain = append(plain, Message{Role: "assistant", Content: strings.Join(parts, "\n")})
		default:
			plain = append(plain, m)
		}
	}
	return t.Render(plain, gen)
}

// toolJSON is a tool as OpenAI's tools list has it, written as the templates' tojson writes it
// (Python's json.dumps: members in order, ", " and ": " between them, or indent spaces).
func toolJSON(t Tool, indent int) string {
	var b strings.Builder
	b.WriteString(`{"type": "function", "function": {"name": ` + marshal(t.Name))
	if t.Description != "" {
		b.WriteString(`, "description": ` + marshal(t.Description))
	}
	if len(t.Parameters) > 0 {
		b.WriteString(`, "parameters": ` + string(t.Parameters))
	}
	b.WriteString("}}")
	return pyJSON(b.String(), indent)
}

func callJSON(c ToolCall, argsKey string) string {
	args := strings.TrimSpace(c.Arguments)
	if args == "" || !json.Valid([]byte(args)) {
		args = "{}"
	}
	return `{"name": ` + marshal(c.Name) + `, "` + argsKey + `": ` + pyJSON(args, 0) + `}`
}

// pyJSON rewrites valid JSON as Python's json.dumps(ensure_ascii=False) lays it out: with indent
// 0 on one line, ", " and ": " between items; otherwise one item per line, indented, "," and ": ".
// Member order and the texts of strings and numbers are kept.
func pyJSON(s string, indent int) string {
	var compact bytes.Buffer
	if json.Compact(&compact, []byte(s)) != nil {
		return s
	}
	src := compact.Bytes()
	var b strings.Builder
	depth := 0
	newline := func() {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(" ", indent*depth))
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '"':
			j := i + 1
			for ; src[j] != '"'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			b.Write(src[i : j+1])
			i = j
		case '{', '[':
			b.WriteByte(c)
			if indent > 0 && i+1 < len(src) && src[i+1] != '}' && src[i+1] != ']' {
				depth++
				newline()
			}
		case '}', ']':
			if indent > 0 && src[i-1] != '{' && src[i-1] != '[' {
				depth--
				newline()
			}
			b.WriteByte(c)
		case ',':
			b.WriteByte(',')
			if indent > 0 {
				newline()
			} else {
				b.WriteByte(' ')
			}
		case ':':
			b.WriteString(": ")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func marshal(v any) string {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.Encode(v)
	return strings.TrimSuffix(buf.String(), "\n")
}

// qwenTools is the system text of Qwen's templates with tools, after the system message.
func qwenTools(tools []Tool) string {
	var b strings.Builder
	b.WriteString("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
	for _, tl := range tools {
		b.WriteString("\n" + toolJSON(tl, 0))
	}
	b.WriteString("\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
		"<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>")
	return b.String()
}

// qwenToolMessages turns a conversation with tools into the plain messages Qwen3's template makes
// of it: the tools after the system message, calls after an assistant's content, consecutive
// results in one user turn of <tool_response> blocks.
func qwenToolMessages(msgs []Message, callsOf func(int) []ToolCall, tools []Tool) []Message {
	var plain []Message
	start := 0
	if len(tools) > 0 {
		system := ""
		if msgs[0].Role == "system" {
			system = msgs[0].Content + "\n\n"
			start = 1
		}
		plain = append(plain, Message{Role: "system", Content: system + qwenTools(tools)})
	}
	for i := start; i < len(msgs); i++ {
		m := msgs[i]
		switch {
		case m.Role == "tool":
			block := "<tool_response>\n" + m.Content + "\n</tool_response>"
			if i > 0 && msgs[i-1].Role == "tool" {
				plain[len(plain)-1].Content += "\n" + block
			} else {
				plain = append(plain, Message{Role: "user", Content: block})
			}
		case m.Role == "assistant" && len(callsOf(i)) > 0:
			content := m.Content
			for k, c := range callsOf(i) {
				if k > 0 || content != "" {
					content += "\n"
				}
				content += "<tool_call>\n" + callJSON(c, "arguments") + "\n</tool_call>"
			}
			plain = append(plain, Message{Role: "assistant", Content: content})
		default:
			plain = append(plain, m)
		}
	}
	return plain
}

func (t Template) renderChatMLTools(msgs []Message, callsOf func(int) []ToolCall, tools []Tool, gen bool) string {
	var b strings.Builder
	start := 0
	switch {
	case len(tools) > 0:
		b.WriteString("<|im_start|>system\n")
		if msgs[0].Role == "system" {
			b.WriteString(msgs[0].Content + "\n\n")
			start = 1
		} else if t.System != "" {
			b.WriteString(t.System + "\n\n")
		}
		b.WriteString(qwenTools(tools) + "<|im_end|>\n")
	case t.System != "" && msgs[0].Role != "system":
		b.WriteString("<|im_start|>system\n" + t.System + "<|im_end|>\n")
	}
	for i := start; i < len(msgs); i++ {
		m := msgs[i]
		switch {
		case m.Role == "tool":
			if i == 0 || msgs[i-1].Role != "tool" {
				b.WriteString("<|im_start|>user")
			}
			b.WriteString("\n<tool_response>\n" + m.Content + "\n</tool_response>")
			if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
				b.WriteString("<|im_end|>\n")
			}
		case m.Role == "assistant" && len(callsOf(i)) > 0:
			b.WriteString("<|im_start|>assistant")
			if m.Content != "" {
				b.WriteString("\n" + m.Content)
			}
			for _, c := range callsOf(i) {
				b.WriteString("\n<tool_call>\n" + callJSON(c, "arguments") + "\n</tool_call>")
			}
			b.WriteString("<|im_end|>\n")
		default:
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		}
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String()
}

func (t Template) renderLlama3Tools(msgs []Message, callsOf func(int) []ToolCall, tools []Tool, gen bool) (string, error) {
	var b strings.Builder
	b.WriteString("<|begin_of_text|>")
	if t.Format == Llama31 {
		// The system turn always exists: the environment when there are tools, the date, the message.
		system, _, rest := splitSystem(msgs)
		if len(rest) < len(msgs) {
			all := callsOf
			msgs, callsOf = rest, func(i int) []ToolCall { return all(i + 1) }
		}
		date := t.Date
		if date == "" {
			date = time.Now().Format("02 Jan 2006")
		}
		b.WriteString("<|start_header_id|>system<|end_header_id|>\n\n")
		if len(tools) > 0 {
			b.WriteString("Environment: ipython\n")
		}
		b.WriteString("Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n" + strings.TrimSpace(system) + "<|eot_id|>")
	}
	toolsPending := len(tools) > 0
	for i, m := range msgs {
		role, content := m.Role, strings.TrimSpace(m.Content)
		switch {
		case role == "tool":
			role = "ipython"
		case role == "assistant" && len(callsOf(i)) > 0:
			var parts []string
			if content != "" {
				parts = append(parts, content)
			}
			for _, c := range callsOf(i) {
				parts = append(parts, callJSON(c, "parameters"))
			}
			content = strings.Join(parts, "\n")
		case role == "user" && toolsPending:
			toolsPending = false
			var t strings.Builder
			t.WriteString("Given the following functions, please respond with a JSON for a function call with its proper " +
				"arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": " +
				"dictionary of argument name and its value}.Do not use variables.\n\n")
			for _, tl := range tools {
				t.WriteString(toolJSON(tl, 4) + "\n\n")
			}
			content = t.String() + content
		}
		b.WriteString("<|start_header_id|>" + role + "<|end_header_id|>\n\n" + content + "<|eot_id|>")
	}
	if toolsPending {
		return "", errors.New("chat: llama3: tools need a user message to be described in")
	}
	if gen {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
	return b.String(), nil
}

// ParseToolCalls reads the tool calls in a model's answer, in the forms RenderTools asks for:
// <tool_call>{...}</tool_call> blocks (ChatML; the last closing tag may be missing), or an answer
// that is only a {"name": ..., "arguments"/"parameters": ...} object (any format). It returns the
// text outside the calls, and ok false (with the answer as the text) when there is no call or a
// call is malformed.
func (t Template) ParseToolCalls(text string) (content string, calls []ToolCall, ok bool) {
	open, closeTag := t.ToolCallTags()
	if open != "" && strings.Contains(text, open) {
		rest := text
		var before strings.Builder
		for {
			i := strings.Index(rest, open)
			if i < 0 {
				before.WriteString(rest)
				break
			}
			before.WriteString(rest[:i])
			rest = rest[i+len(open):]
			body := rest
			if j := strings.Index(rest, closeTag); j >= 0 {
				body, rest = rest[:j], rest[j+len(closeTag):]
			} else {
				rest = ""
			}
			c, ok := parseCall(body)
			if !ok {
				return text, nil, false
			}
			calls = append(calls, c)
		}
		return strings.TrimSpace(before.String()), calls, true
	}
	if c, ok := parseCall(text); ok {
		return "", []ToolCall{c}, true
	}
	return text, nil, false
}

// parseCall reads {"name": ..., "arguments" or "parameters": {...}} (arguments may also be a JSON
// string holding the object, as some models write).
func parseCall(s string) (ToolCall, bool) {
	var v struct {
		Name       string          `json:"name"`
		Arguments  json.RawMessage `json:"arguments"`
		Parameters json.RawMessage `json:"parameters"`
	}
	d := json.NewDecoder(strings.NewReader(strings.TrimSpace(s)))
	if err := d.Decode(&v); err != nil || d.More() || v.Name == "" {
		return ToolCall{}, false
	}
	args := v.Arguments
	if args == nil {
		args = v.Parameters
	}
	args = bytes.TrimSpace(args)
	if len(args) > 0 && args[0] == '"' {
		var inner string
		if json.Unmarshal(args, &inner) != nil || !json.Valid([]byte(inner)) {
			return ToolCall{}, false
		}
		args = []byte(inner)
	}
	if len(args) == 0 || string(args) == "null" {
		args = []byte("{}")
	}
	return ToolCall{Name: v.Name, Arguments: string(args)}, true
}
