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
	"strings"
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
	// ChatML (Qwen, many fine-tunes): "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n".
	// No default system message is added (Qwen2's own template adds one; generic ChatML does not).
	ChatML Format = "chatml"
)

// Formats lists the supported format names, for messages and flag help.
var Formats = []Format{Gemma, Llama2, Llama3, ChatML}

// ErrUnknownTemplate is returned by Detect when a template matches none of the supported formats.
var ErrUnknownTemplate = errors.New("chat: unknown chat template")

// ErrNoTemplate is returned by Detect when the model has no chat template at all.
var ErrNoTemplate = errors.New("chat: the model has no chat template")

// Template renders conversations in one format.
type Template struct {
	Format Format
	// BOS is the text of the beginning-of-sequence token the format starts with ("" for ChatML).
	// Render includes it, as the published template does; a caller that lets the tokenizer add
	// BOS itself strips it first (see StripBOS).
	BOS string
	// Stop holds the texts that end an assistant turn, for use as stop strings.
	Stop []string
}

// ByName returns the template of a named format ("gemma", "llama2", "llama3", "chatml").
func ByName(name string) (Template, error) {
	switch Format(strings.ToLower(strings.TrimSpace(name))) {
	case Gemma:
		return Template{Format: Gemma, BOS: "<bos>", Stop: []string{"<end_of_turn>"}}, nil
	case Llama2:
		return Template{Format: Llama2, BOS: "<s>", Stop: []string{"</s>", "[INST]"}}, nil
	case Llama3:
		return Template{Format: Llama3, BOS: "<|begin_of_text|>", Stop: []string{"<|eot_id|>"}}, nil
	case ChatML:
		return Template{Format: ChatML, Stop: []string{"<|im_end|>"}}, nil
	}
	return Template{}, fmt.Errorf("chat: unknown template name %q (supported: gemma, llama2, llama3, chatml)", name)
}

// Detect recognises the format of a Jinja chat template by its distinctive markers:
// "<start_of_turn>" (Gemma), "<|start_header_id|>" (Llama-3), "<|im_start|>" (ChatML), and
// "[INST]" together with "<<SYS>>" (Llama-2). "[INST]" without "<<SYS>>" is Mistral's format,
// which differs in spacing and is not supported. An empty template gives ErrNoTemplate; anything
// else ErrUnknownTemplate.
func Detect(tmpl string) (Template, error) {
	switch {
	case strings.TrimSpace(tmpl) == "":
		return Template{}, ErrNoTemplate
	case strings.Contains(tmpl, "<start_of_turn>"):
		return ByName(string(Gemma))
	case strings.Contains(tmpl, "<|start_header_id|>"):
		return ByName(string(Llama3))
	case strings.Contains(tmpl, "<|im_start|>"):
		return ByName(string(ChatML))
	case strings.Contains(tmpl, "[INST]") && strings.Contains(tmpl, "<<SYS>>"):
		return ByName(string(Llama2))
	case strings.Contains(tmpl, "[INST]"):
		return Template{}, fmt.Errorf("%w: [INST] without <<SYS>> looks like Mistral's format, which is not supported; name a format explicitly", ErrUnknownTemplate)
	}
	return Template{}, fmt.Errorf("%w: none of the markers of gemma, llama2, llama3 or chatml found; name a format explicitly", ErrUnknownTemplate)
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
	case ChatML:
		return renderChatML(msgs, addGenerationPrompt), nil
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

func renderChatML(msgs []Message, gen bool) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String()
}
