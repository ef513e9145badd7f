// Package chat turns a conversation into the prompt text a chat-tuned model was trained on.
//
// The GGUF key tokenizer.chat_template holds a Jinja template. Rather than run Jinja, Detect
// recognises the few prompt formats edgelm supports by their distinctive markers, and Render
// reproduces, for those formats, exactly the string the published template renders. An unknown
// template is an error, never a silent guess: the caller may name a format explicitly instead.
//
// The rendered text contains the texts of special tokens (<start_of_turn>, <|eot_id|>, ...):
// tokenize it with parseSpecial set so they become single special tokens.
package chat

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Message is one turn of a conversation. Role is "system", "user" or "assistant".
type Message struct {
	Role    string
	Content string
}

// Format names a prompt format.
type Format string

// The supported formats. Each comment shows a user turn and the generation prompt.
const (
	// Gemma (gemma, gemma-2, gemma-3): "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n".
	// A system message is folded into the first user turn, as gemma-3's template does.
	Gemma Format = "gemma"
	// Llama2 (Llama-2-chat): "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nHi [/INST]". It has no generation prompt.
	Llama2 Format = "llama2"
	// Llama3 (Llama-3-Instruct): "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
	// then "<|start_header_id|>assistant<|end_header_id|>\n\n".
	Llama3 Format = "llama3"
	// Llama31 (Llama-3.1/3.2/3.3-Instruct): Llama3 with a system turn that is always there and
	// starts "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" (see Template.Date).
	Llama31 Format = "llama3.1"
	// ChatML (Qwen, SmolLM, many fine-tunes): "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n".
	// A conversation without a system message gets Template.System, when the template has one.
	ChatML Format = "chatml"
	// Qwen3: ChatML whose assistant turns carry "<think>...</think>" reasoning: earlier turns lose
	// it, turns after the last user message keep it, as Qwen3's template does.
	Qwen3 Format = "qwen3"
	// Phi3 (Phi-3, Phi-3.5): "<|system|>\nsys<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n".
	Phi3 Format = "phi3"
)

// Formats lists the supported format names, for messages and flag help.
var Formats = []Format{Gemma, Llama2, Llama3, Llama31, ChatML, Qwen3, Phi3}

// FormatNames is Formats as one comma-separated string, for messages and flag help.
func FormatNames() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// ErrUnknownTemplate is returned by Detect when a template matches none of the supported formats.
var ErrUnknownTemplate = errors.New("chat: unknown chat template")

// ErrNoTemplate is returned by Detect when the model has no chat template at all.
var ErrNoTemplate = errors.New("chat: the model has no chat template")

// Template renders conversations in one format.
type Template struct {
	Format Format
	// BOS is the text of the beginning-of-sequence token the format starts with ("" when the
	// template writes none: ChatML, Qwen3, Phi-3.5).
	// Render includes it, as the published template does; a caller that lets the tokenizer add
	// BOS itself strips it first (see StripBOS).
	BOS string
	// Stop holds the texts that end an assistant turn, for use as stop strings.
	Stop []string
	// System is what ChatML puts in a system turn when the conversation has none: the default
	// system message written in the model's template (Qwen2.5: "You are Qwen, created by Alibaba
	// Cloud. You are a helpful assistant."), "" for none.
	System string
	// Date is Llama31's "Today Date". Empty means the current date (as "02 Jan 2006"), which is
	// what the Llama-3.2 template asks for with strftime_now and llama.cpp supplies; Llama-3.1's
	// template fixes "26 Jul 2024".
	Date string

	// Phi-3's template changed over time. The first Phi-3-mini template (in Microsoft's own
	// GGUFs) puts "<|assistant|>\n" after every user turn, has no generation prompt, starts with
	// BOS and ignores system messages; the later ones (Phi-3.5) work as Phi3's comment shows.
	phi3Inline          bool
	phi3SkipEmptySystem bool // Phi-3.5: a system message with empty content is left out
}

// ByName returns the template of a named format (one of Formats). Named, ChatML has no default
// system message, Llama31 uses the current date, and Phi3 is the later (Phi-3.5) template.
func ByName(name string) (Template, error) {
	switch Format(strings.ToLower(strings.TrimSpace(name))) {
	case Gemma:
		return Template{Format: Gemma, BOS: "<bos>", Stop: []string{"<end_of_turn>"}}, nil
	case Llama2:
		return Template{Format: Llama2, BOS: "<s>", Stop: []string{"</s>", "[INST]"}}, nil
	case Llama3:
		return Template{Format: Llama3, BOS: "<|begin_of_text|>", Stop: []string{"<|eot_id|>"}}, nil
	case Llama31:
		return Template{Format: Llama31, BOS: "<|begin_of_text|>", Stop: []string{"<|eot_id|>"}}, nil
	case ChatML:
		return Template{Format: ChatML, Stop: []string{"<|im_end|>"}}, nil
	case Qwen3:
		return Template{Format: Qwen3, Stop: []string{"<|im_end|>"}}, nil
	case Phi3:
		return Template{Format: Phi3, Stop: []string{"<|end|>"}, phi3SkipEmptySystem: true}, nil
	}
	return Template{}, fmt.Errorf("chat: unknown template name %q (supported: %s)", name, FormatNames())
}

var (
	// chatMLSystem finds a literal default system message: '<|im_start|>system\n' + text + '<|im_end|>'
	// written as one Jinja string. Text with quotes, braces or escapes is not taken.
	chatMLSystem = regexp.MustCompile(`<\|im_start\|>system\\n([^'"{}\\]+)<\|im_end\|>`)
	// llamaDate finds Llama-3.1's fixed date: {%- set date_string = "26 Jul 2024" %}.
	llamaDate = regexp.MustCompile(`set date_string = "([^"]+)"`)
)

// Detect recognises the format of a Jinja chat template by its distinctive markers:
// "<start_of_turn>" (Gemma); "<|start_header_id|>" (Llama-3, and Llama-3.1 when it also has
// "Cutting Knowledge Date"); "<|im_start|>" (ChatML, and Qwen3 when it also handles "</think>");
// "<|user|>" with "<|end|>" (Phi-3); and "[INST]" together with "<<SYS>>" (Llama-2). Details the
// formats leave open are read from the template too: ChatML's default system message, Llama-3.1's
// date, which Phi-3 template it is. "[INST]" without "<<SYS>>" is Mistral's format, which differs
// in spacing and is not supported. An empty template gives ErrNoTemplate; anything else
// ErrUnknownTemplate.
func Detect(tmpl string) (Template, error) {
	has := func(s string) bool { return strings.Contains(tmpl, s) }
	switch {
	case strings.TrimSpace(tmpl) == "":
		return Template{}, ErrNoTemplate
	case has("<start_of_turn>"):
		return ByName(string(Gemma))
	case has("<|start_header_id|>") && has("Cutting Knowledge Date"):
		t, _ := ByName(string(Llama31))
		if !has("strftime_now") {
			t.Date = "26 Jul 2024"
			if m := llamaDate.FindStringSubmatch(tmpl); m != nil {
				t.Date = m[1]
			}
		}
		return t, nil
	case has("<|start_header_id|>"):
		return ByName(string(Llama3))
	case has("<|im_start|>") && has("</think>"):
		return ByName(string(Qwen3))
	case has("<|im_start|>"):
		t, _ := ByName(string(ChatML))
		if m := chatMLSystem.FindStringSubmatch(tmpl); m != nil {
			t.System = m[1]
		}
		return t, nil
	case has("<|user|>") && has("<|end|>"):
		t, _ := ByName(string(Phi3))
		t.phi3SkipEmptySystem = has("'system' and message['content']")
		if !has("add_generation_prompt") {
			t.phi3Inline = true
			if has("bos_token") {
				t.BOS = "<s>"
			}
		}
		return t, nil
	case has("[INST]") && has("<<SYS>>"):
		return ByName(string(Llama2))
	case strings.Contains(tmpl, "[INST]"):
		return Template{}, fmt.Errorf("%w: [INST] without <<SYS>> looks like Mistral's format, which is not supported; name a format explicitly", ErrUnknownTemplate)
	}
	return Template{}, fmt.Errorf("%w: none of the markers of %s found; name a format explicitly", ErrUnknownTemplate, FormatNames())
}

// StripBOS removes the template's BOS text from the start of a rendered prompt, for a caller that
// tokenizes with the tokenizer adding BOS itself (so the model's add_bos setting is honoured once).
func (t Template) StripBOS(prompt string) string {
	if t.BOS == "" {
		return prompt
	}
	return strings.TrimPrefix(prompt, t.BOS)
}

// Render builds the prompt for msgs exactly as the format's published template does, including
// the leading BOS text. With addGenerationPrompt it ends with the header of an assistant turn.
// Errors: no messages, an unknown role, or (Gemma, Llama-2) turns that do not alternate
// user/assistant after an optional leading system message, which those templates reject too.
func (t Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("chat: no messages")
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return "", fmt.Errorf("chat: message %d: unknown role %q (want system, user or assistant)", i, m.Role)
		}
	}
	switch t.Format {
	case Gemma:
		return renderGemma(msgs, addGenerationPrompt)
	case Llama2:
		return renderLlama2(msgs)
	case Llama3:
		return renderLlama3(msgs, addGenerationPrompt), nil
	case Llama31:
		return t.renderLlama31(msgs, addGenerationPrompt), nil
	case ChatML:
		return t.renderChatML(msgs, addGenerationPrompt), nil
	case Qwen3:
		return renderQwen3(msgs, addGenerationPrompt), nil
	case Phi3:
		return t.renderPhi3(msgs, addGenerationPrompt), nil
	}
	return "", fmt.Errorf("chat: template has no format")
}

// splitSystem takes a leading system message off, as the Gemma and Llama-2 templates do.
func splitSystem(msgs []Message) (system string, hasSystem bool, rest []Message) {
	if msgs[0].Role == "system" {
		return msgs[0].Content, true, msgs[1:]
	}
	return "", false, msgs
}

// alternate checks the user/assistant/user/... order the Gemma and Llama-2 templates demand.
func alternate(msgs []Message) error {
	for i, m := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			return fmt.Errorf("chat: conversation roles must alternate user/assistant/user/... (after an optional first system message); turn %d is %q", i, m.Role)
		}
	}
	return nil
}

func renderGemma(msgs []Message, gen bool) (string, error) {
	system, hasSystem, rest := splitSystem(msgs)
	if err := alternate(rest); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("<bos>")
	for i, m := range rest {
		role := m.Role
		if role == "assistant" {
			role = "model"
		}
		b.WriteString("<start_of_turn>" + role + "\n")
		if i == 0 && hasSystem {
			// gemma-3: first_user_prefix = system + "\n\n", not trimmed.
			b.WriteString(system + "\n\n")
		}
		b.WriteString(strings.TrimSpace(m.Content))
		b.WriteString("<end_of_turn>\n")
	}
	if gen {
		b.WriteString("<start_of_turn>model\n")
	}
	return b.String(), nil
}

func renderLlama2(msgs []Message) (string, error) {
	system, hasSystem, rest := splitSystem(msgs)
	if len(rest) == 0 {
		return "", errors.New("chat: llama2: no user message")
	}
	if err := alternate(rest); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, m := range rest {
		content := m.Content
		if i == 0 && hasSystem {
			content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
		}
		if m.Role == "user" {
			b.WriteString("<s>[INST] " + strings.TrimSpace(content) + " [/INST]")
		} else {
			b.WriteString(" " + strings.TrimSpace(content) + " </s>")
		}
	}
	return b.String(), nil
}

func renderLlama3(msgs []Message, gen bool) string {
	var b strings.Builder
	b.WriteString("<|begin_of_text|>")
	for _, m := range msgs {
		b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + strings.TrimSpace(m.Content) + "<|eot_id|>")
	}
	if gen {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
	return b.String()
}

// renderLlama31 follows the Llama-3.1/3.2 template without tools: the system turn always exists,
// holds the knowledge cutoff and date, then the (trimmed) system message if any.
func (t Template) renderLlama31(msgs []Message, gen bool) string {
	system, _, rest := splitSystem(msgs)
	date := t.Date
	if date == "" {
		date = time.Now().Format("02 Jan 2006")
	}
	var b strings.Builder
	b.WriteString("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
	b.WriteString("Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n")
	b.WriteString(strings.TrimSpace(system) + "<|eot_id|>")
	for _, m := range rest {
		b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + strings.TrimSpace(m.Content) + "<|eot_id|>")
	}
	if gen {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
	return b.String()
}

func (t Template) renderChatML(msgs []Message, gen bool) string {
	var b strings.Builder
	if t.System != "" && msgs[0].Role != "system" {
		b.WriteString("<|im_start|>system\n" + t.System + "<|im_end|>\n")
	}
	for _, m := range msgs {
		b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String()
}

// renderQwen3 follows Qwen3's template without tools. An assistant turn's content may hold its
// reasoning as "<think>...</think>answer": turns up to the last user message keep only the answer;
// later ones (an assistant turn being continued, or tool-use steps) keep the reasoning, in a
// normalised "<think>\n...\n</think>\n\n" block when it is not empty or the turn is the last.
func renderQwen3(msgs []Message, gen bool) string {
	lastQuery := len(msgs) - 1
	for i := len(msgs) - 1; i >= 0; i-- {
		c := msgs[i].Content
		if msgs[i].Role == "user" && !(strings.HasPrefix(c, "<tool_response>") && strings.HasSuffix(c, "</tool_response>")) {
			lastQuery = i
			break
		}
	}
	var b strings.Builder
	for i, m := range msgs {
		if m.Role != "assistant" {
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
			continue
		}
		content, reasoning := m.Content, ""
		if k := strings.LastIndex(content, "</think>"); k >= 0 {
			before := strings.TrimRight(content[:strings.Index(content, "</think>")], "\n")
			if j := strings.LastIndex(before, "<think>"); j >= 0 {
				before = before[j+len("<think>"):]
			}
			reasoning = strings.TrimLeft(before, "\n")
			content = strings.TrimLeft(content[k+len("</think>"):], "\n")
		}
		b.WriteString("<|im_start|>assistant\n")
		if i > lastQuery && (i == len(msgs)-1 || reasoning != "") {
			b.WriteString("<think>\n" + strings.Trim(reasoning, "\n") + "\n</think>\n\n" + strings.TrimLeft(content, "\n"))
		} else {
			b.WriteString(content)
		}
		b.WriteString("<|im_end|>\n")
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String()
}

func (t Template) renderPhi3(msgs []Message, gen bool) string {
	var b strings.Builder
	b.WriteString(t.BOS)
	if t.phi3Inline {
		for _, m := range msgs {
			switch m.Role {
			case "user":
				b.WriteString("<|user|>\n" + m.Content + "<|end|>\n<|assistant|>\n")
			case "assistant":
				b.WriteString(m.Content + "<|end|>\n")
			}
		}
		return b.String()
	}
	for _, m := range msgs {
		if m.Role == "system" && m.Content == "" && t.phi3SkipEmptySystem {
			continue
		}
		b.WriteString("<|" + m.Role + "|>\n" + m.Content + "<|end|>\n")
	}
	if gen {
		b.WriteString("<|assistant|>\n")
	} else {
		b.WriteString("<|endoftext|>")
	}
	return b.String()
}
