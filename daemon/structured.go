package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"edgelm/chat"
	"edgelm/grammar"
)

// responseFormat is OpenAI's response_format.
type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict"`
	} `json:"json_schema"`
}

// grammars caches compiled grammars by what they were compiled from, so a client that sends the
// same schema (or tools) with every request reuses the grammar and its cached masks.
var grammars = struct {
	sync.Mutex
	m map[string]*grammar.Grammar
}{m: map[string]*grammar.Grammar{}}

// maxCachedGrammars bounds the cache: a grammar's caches can grow to several megabytes.
const maxCachedGrammars = 16

func cachedGrammar(key string, build func() (*grammar.Grammar, error)) (*grammar.Grammar, error) {
	grammars.Lock()
	g, ok := grammars.m[key]
	grammars.Unlock()
	if ok {
		return g, nil
	}
	g, err := build()
	if err != nil {
		return nil, err
	}
	grammars.Lock()
	if len(grammars.m) >= maxCachedGrammars {
		clear(grammars.m)
	}
	grammars.m[key] = g
	grammars.Unlock()
	return g, nil
}

// schemaError turns a grammar compilation error into a 400 naming what is wrong.
func schemaError(field string, err error) error {
	var ue *grammar.UnsupportedError
	if errors.As(err, &ue) {
		return badRequest("unsupported_schema", "%s: these JSON schema keywords are not supported (edgelm refuses a schema it cannot enforce): %s",
			field, strings.Join(ue.Keywords, ", "))
	}
	return badRequest("invalid_schema", "%s: %v", field, err)
}

// grammarOf reads response_format: nil for absent or "text".
func (f *commonFields) grammarOf() (*grammar.Grammar, error) {
	raw := bytes.TrimSpace(f.ResponseFormat)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var rf responseFormat
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, badRequest("invalid_type", "field \"response_format\": want {\"type\": \"text\", \"json_object\" or \"json_schema\", ...}")
	}
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		return grammar.JSONObject(), nil
	case "json_schema":
		if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
			return nil, badRequest("invalid_value", "response_format json_schema needs json_schema.schema")
		}
		schema := rf.JSONSchema.Schema
		g, err := cachedGrammar("schema\x00"+string(schema), func() (*grammar.Grammar, error) { return grammar.FromJSONSchema(schema) })
		if err != nil {
			return nil, schemaError("response_format.json_schema.schema", err)
		}
		return g, nil
	}
	return nil, badRequest("invalid_value", "response_format type %q: want text, json_object or json_schema", rf.Type)
}

// toolDef is an entry of OpenAI's tools.
type toolDef struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

// callBody is a tool call in a message, OpenAI's shape.
type callBody struct {
	Index    *int   `json:"index,omitempty"` // stream deltas only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// toolJob is what a chat request's tools make of it.
type toolJob struct {
	tmpl   chat.Template
	forced bool             // tool_choice "required" or a named function: the output is one call
	check  *grammar.Grammar // a call of any of the request's functions, to validate calls
	key    string           // "arguments" or "parameters", as the template has it
	// The grammar of the output's call: from the start when forced, from the trigger in "auto".
	grammar        *grammar.Grammar
	trigger        string
	triggerAtStart bool
}

// tools reads tools and tool_choice. It returns the tools to describe in the prompt and the job's
// tool handling (nil when no call can be made).
//
// A call is {"name": ..., <key>: ...} as the template's models write it, for ChatML and Qwen3
// inside <tool_call></tool_call> as Qwen's do. With tool_choice "required" or a named function the output
// is constrained to one call from its first token. With "auto" the output is free until it starts a
// call (ChatML: "<tool_call>" anywhere; other formats: "{" as the first non-space character), and
// the call is constrained from there; generation ends with the call.
func (r *chatRequest) tools(tmpl chat.Template) ([]chat.Tool, *toolJob, error) {
	choice, named, err := r.toolChoice()
	if err != nil {
		return nil, nil, err
	}
	if len(r.Tools) == 0 {
		if choice == "required" || named != "" {
			return nil, nil, badRequest("invalid_value", "tool_choice %s needs tools", strings.TrimSpace(string(r.ToolChoice)))
		}
		return nil, nil, nil
	}
	var tools []chat.Tool
	var fns []grammar.Function
	seen := map[string]bool{}
	for i, td := range r.Tools {
		if td.Type != "function" || td.Function == nil {
			return nil, nil, badRequest("invalid_value", "tools[%d]: only {\"type\": \"function\", \"function\": {...}} tools are supported", i)
		}
		fn := td.Function
		if !toolName.MatchString(fn.Name) {
			return nil, nil, badRequest("invalid_value", "tools[%d].function.name %q: want 1 to 64 letters, digits, _ or -", i, fn.Name)
		}
		if seen[fn.Name] {
			return nil, nil, badRequest("invalid_value", "tools[%d]: function %q defined twice", i, fn.Name)
		}
		seen[fn.Name] = true
		params := bytes.TrimSpace(fn.Parameters)
		if string(params) == "null" {
			params = nil
		}
		tools = append(tools, chat.Tool{Name: fn.Name, Description: fn.Description, Parameters: params})
		fns = append(fns, grammar.Function{Name: fn.Name, Parameters: params})
	}
	if named != "" && !seen[named] {
		return nil, nil, badRequest("invalid_value", "tool_choice names function %q, which is not in tools", named)
	}
	key := tmpl.ToolArgsKey()
	open, closeTag := tmpl.ToolCallTags()
	build := func(fns []grammar.Function, open, closeTag string) (*grammar.Grammar, error) {
		b, _ := json.Marshal(fns)
		g, err := cachedGrammar("tools\x00"+key+"\x00"+open+"\x00"+closeTag+"\x00"+string(b), func() (*grammar.Grammar, error) {
			return grammar.ToolCallIn(fns, key, open, closeTag)
		})
		if err != nil {
			return nil, schemaError("tools", err)
		}
		return g, nil
	}
	// Every function's parameters are compiled, even with tool_choice "none": a schema edgelm
	// cannot enforce is refused rather than described to the model and then not checked.
	check, err := build(fns, "", "")
	if err != nil {
		return nil, nil, err
	}
	if choice == "none" {
		return nil, nil, nil
	}
	tj := &toolJob{tmpl: tmpl, check: check, key: key, forced: choice != "auto"}
	if named != "" {
		fns = slices.DeleteFunc(fns, func(f grammar.Function) bool { return f.Name != named })
	}
	if tj.grammar, err = build(fns, open, closeTag); err != nil {
		return nil, nil, err
	}
	if !tj.forced {
		tj.trigger, tj.triggerAtStart = open, false
		if open == "" {
			tj.trigger, tj.triggerAtStart = "{", true
		}
	}
	return tools, tj, nil
}

// toolChoice reads tool_choice: "auto" (the default), "none", "required", or a named function.
func (r *chatRequest) toolChoice() (choice, named string, err error) {
	raw := bytes.TrimSpace(r.ToolChoice)
	if len(raw) == 0 || string(raw) == "null" {
		return "auto", "", nil
	}
	if raw[0] == '"' {
		json.Unmarshal(raw, &choice)
		switch choice {
		case "auto", "none", "required":
			return choice, "", nil
		}
		return "", "", badRequest("invalid_value", "tool_choice %q: want auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}", choice)
	}
	var v struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Type != "function" || v.Function.Name == "" {
		return "", "", badRequest("invalid_value", "tool_choice: want auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}")
	}
	return "function", v.Function.Name, nil
}

// valid reports whether a call names one of the request's functions with arguments valid against
// its parameters.
func (t *toolJob) valid(c chat.ToolCall) bool {
	m := t.check.Matcher(nil)
	call := `{"name":` + strconv.Quote(c.Name) + `,"` + t.key + `":` + c.Arguments + `}`
	return m.AcceptBytes([]byte(call)) == nil && m.Complete()
}

// parse reads an answer: the text outside calls, and the calls, each valid, with new ids. ok is
// false (and the whole text is content) when there is no call or one is not valid.
func (t *toolJob) parse(text string) (content string, calls []callBody, ok bool) {
	content, cs, ok := t.tmpl.ParseToolCalls(text)
	if !ok {
		return text, nil, false
	}
	for _, c := range cs {
		if !t.valid(c) {
			return text, nil, false
		}
		var cb callBody
		cb.ID, cb.Type = newID("call_"), "function"
		cb.Function.Name, cb.Function.Arguments = c.Name, c.Arguments
		calls = append(calls, cb)
	}
	return content, calls, true
}

// toolStream turns a streamed answer into OpenAI's deltas: content as it comes, and tool calls as
// a first delta with id, type and name, then fragments of the arguments. A forced call is streamed
// as it is generated; in "auto" an answer that starts (ChatML: or goes on) like a call is held
// back until the end, then sent as calls if it parses as valid ones, else as content.
type toolStream struct {
	t       *toolJob
	text    strings.Builder
	sent    int  // bytes of text sent as content
	calling bool // auto: text[from:] looks like calls
	from    int
	// forced: the call being streamed
	id        string
	header    bool
	argsFrom  int
	argsSent  int
	streamedN int // calls sent
}

// delta is what one step of the stream sends: content, or call fragments.
type delta struct {
	content string
	calls   []callBody
}

var callHead = regexp.MustCompile(`^\s*(?:<tool_call>\s*)?\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"(?:arguments|parameters)"\s*:\s*`)

func (ts *toolStream) push(s string) delta {
	ts.text.WriteString(s)
	text := ts.text.String()
	if ts.t.forced {
		return ts.forcedDelta(text)
	}
	if ts.calling {
		return delta{}
	}
	rest := strings.TrimLeft(text, " \t\r\n")
	if rest == "" {
		return delta{}
	}
	if ts.sent == 0 && rest[0] == '{' {
		ts.calling, ts.from = true, 0
		return delta{}
	}
	callTag, _ := ts.t.tmpl.ToolCallTags()
	if callTag == "" {
		return ts.contentUpTo(text, len(text))
	}
	if k := strings.Index(text[max(0, ts.sent-len(callTag)):], callTag); k >= 0 {
		k += max(0, ts.sent-len(callTag))
		ts.calling, ts.from = true, k
		return ts.contentUpTo(text, k)
	}
	hold := 0
	for n := min(len(callTag)-1, len(text)); n > 0; n-- {
		if strings.HasSuffix(text, callTag[:n]) {
			hold = n
			break
		}
	}
	return ts.contentUpTo(text, len(text)-hold)
}

func (ts *toolStream) contentUpTo(text string, end int) delta {
	if end <= ts.sent {
		return delta{}
	}
	d := delta{content: text[ts.sent:end]}
	ts.sent = end
	return d
}

func (ts *toolStream) forcedDelta(text string) delta {
	var d delta
	if !ts.header {
		m := callHead.FindStringSubmatchIndex(text)
		if m == nil {
			return d
		}
		name, err := strconv.Unquote(text[m[2]:m[3]])
		if err != nil {
			return d
		}
		ts.header, ts.argsFrom, ts.id = true, m[1], newID("call_")
		d.calls = append(d.calls, ts.callDelta(ts.id, name, ""))
	}
	for ts.argsSent == 0 && ts.argsFrom < len(text) && strings.IndexByte(" \t\r\n", text[ts.argsFrom]) >= 0 {
		ts.argsFrom++ // whitespace before the arguments is not theirs
	}
	args := text[ts.argsFrom:]
	if i := strings.Index(args, "</tool_call>"); i >= 0 {
		args = args[:i]
	} else {
		for n := min(len("</tool_call>")-1, len(args)); n > 0; n-- {
			if strings.HasSuffix(args, "</tool_call>"[:n]) {
				args = args[:len(args)-n] // may be the closing tag coming
				break
			}
		}
	}
	args = strings.TrimRight(args, " \t\r\n}")
	if len(args) > ts.argsSent {
		d.calls = append(d.calls, ts.callDelta("", "", args[ts.argsSent:]))
		ts.argsSent = len(args)
	}
	return d
}

func (ts *toolStream) callDelta(id, name, args string) callBody {
	i := ts.streamedN
	var c callBody
	c.Index, c.ID, c.Function.Name, c.Function.Arguments = &i, id, name, args
	if id != "" {
		c.Type = "function"
	}
	return c
}

// finish sends what is left at the end; called reports whether the answer was tool calls.
func (ts *toolStream) finish() (d delta, called bool) {
	text := ts.text.String()
	if ts.t.forced {
		if !ts.header {
			return ts.contentUpTo(text, len(text)), false
		}
		_, calls, ok := ts.t.parse(text)
		if !ok || len(calls) != 1 {
			return d, false // cut short (length): the arguments sent are all there is
		}
		if args := calls[0].Function.Arguments; len(args) > ts.argsSent && strings.HasPrefix(args, text[ts.argsFrom:ts.argsFrom+ts.argsSent]) {
			d.calls = append(d.calls, ts.callDelta("", "", args[ts.argsSent:]))
		}
		return d, true
	}
	if !ts.calling {
		return ts.contentUpTo(text, len(text)), false
	}
	content, calls, ok := ts.t.parse(text[ts.from:])
	if !ok {
		return ts.contentUpTo(text, len(text)), false
	}
	d.content = content
	for _, c := range calls {
		d.calls = append(d.calls, ts.callDelta(c.ID, c.Function.Name, ""), ts.callDelta("", "", c.Function.Arguments))
		ts.streamedN++
	}
	return d, true
}
