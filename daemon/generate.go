package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"edgelm/chat"
	"edgelm/engine"
)

// job is one generation request on its way to the engine, whichever endpoint it came from.
type job struct {
	ref     *backendRef
	info    engine.Info
	req     engine.Request
	id      string
	created int64
	stream  bool
	usage   bool // stream_options.include_usage: a last chunk with usage
	chat    bool
	tools   *toolJob // chat with tools that may be called (structured.go)
	top     int      // alternatives per token the client asked for (the engine is asked for at least 1)
	// Completions only: the text echoed before the completion when echo is set, and its length in
	// characters (text_offset counts characters of prompt + completion, as OpenAI does).
	echoText   string
	promptText string
}

type usageBody struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(res *engine.Result) usageBody {
	return usageBody{PromptTokens: res.PromptTokens, CompletionTokens: len(res.Tokens), TotalTokens: res.PromptTokens + len(res.Tokens)}
}

// limits turns the prompt and the max_tokens a request asked for (nil: absent) into the engine's
// MaxTokens, enforcing the prompt and max_tokens caps. def is used when max_tokens is absent.
func limits(rt *runtime, info engine.Info, promptLen int, asked *int, def int) (int, error) {
	ctxLen := info.ContextLength
	maxPrompt := promptLimit(rt, info)
	if promptLen == 0 {
		return 0, badRequest("invalid_value", "the prompt is empty")
	}
	if maxPrompt > 0 && promptLen > maxPrompt {
		return 0, badRequest("context_length_exceeded", "the prompt has %d tokens; the limit is %d", promptLen, maxPrompt)
	}
	n := def
	if asked != nil {
		n = *asked
		if n < 0 {
			return 0, badRequest("invalid_value", "max_tokens %d: want >= 0", n)
		}
		if n > rt.s.MaxTokensCap {
			return 0, badRequest("invalid_value", "max_tokens %d is over this daemon's cap of %d", n, rt.s.MaxTokensCap)
		}
	}
	if ctxLen > 0 && promptLen+n > ctxLen {
		n = ctxLen - promptLen // generation ends with finish_reason "length" at the end of the context
	}
	return n, nil
}

// promptLimit is the most prompt tokens a request may have: max_prompt_tokens, and never more
// than the context; 0 for no limit.
func promptLimit(rt *runtime, info engine.Info) int {
	maxPrompt := rt.s.MaxPromptTokens
	if ctxLen := info.ContextLength; ctxLen > 0 && (maxPrompt == 0 || maxPrompt > ctxLen) {
		maxPrompt = ctxLen
	}
	return maxPrompt
}

// handleCompletions is POST /v1/completions, OpenAI's legacy completions.
func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	serveJob(s, w, r, s.completionJob)
}

// serveJob decodes a request body of type T, builds its job on the current backend and runs it.
func serveJob[T any](s *Server, w http.ResponseWriter, r *http.Request, build func(context.Context, *runtime, *backendRef, *T) (*job, error)) {
	rt := s.cfg.Load()
	ref := s.acquire()
	if ref == nil {
		writeAPIError(w, errLoading)
		return
	}
	defer s.release(ref)
	var req T
	if err := decodeBody(r, &req); err != nil {
		writeAPIError(w, err)
		return
	}
	j, err := build(r.Context(), rt, ref, &req)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	s.run(w, r, rt, j)
}

func (s *Server) completionJob(ctx context.Context, rt *runtime, ref *backendRef, cr *completionRequest) (*job, error) {
	info := ref.b.Info()
	if err := checkModel(info, cr.Model); err != nil {
		return nil, err
	}
	j := &job{ref: ref, info: info, id: newID("cmpl-"), created: time.Now().Unix(), stream: cr.Stream}
	j.usage = cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage
	text, ids, isText, err := parsePrompt(cr.Prompt)
	if err != nil {
		return nil, err
	}
	if isText {
		// As llama.cpp's server does, special-token texts in a prompt become special tokens, so a
		// prompt written in a chat format works through /v1/completions too.
		if err := checkPromptText(rt, info, ref.b, text); err != nil {
			return nil, err
		}
		if ids, err = s.tokenize(ctx, ref.b, text, true, true); err != nil {
			return nil, err
		}
		j.promptText = text
	} else {
		if err := checkTokens(info, ids, "prompt"); err != nil {
			return nil, err
		}
		j.promptText = ref.b.Detokenize(ids)
	}
	if err := s.common(rt, j, &cr.commonFields, ids, cr.MaxTokens, rt.s.DefaultMaxTokens); err != nil {
		return nil, err
	}
	if cr.Logprobs != nil {
		if *cr.Logprobs < 0 || *cr.Logprobs > maxLogprobs {
			return nil, badRequest("invalid_value", "logprobs %d: want 0..%d", *cr.Logprobs, maxLogprobs)
		}
		j.top = *cr.Logprobs
		j.req.Logprobs = max(j.top, 1)
	}
	if cr.Echo {
		j.echoText = j.promptText
		j.req.Echo = true
	}
	return j, nil
}

// common fills the parts of a job both endpoints share.
func (s *Server) common(rt *runtime, j *job, f *commonFields, ids []int32, asked *int, def int) error {
	maxTok, err := limits(rt, j.info, len(ids), asked, def)
	if err != nil {
		return err
	}
	samp, err := f.sampling(rt.s.Sampling)
	if err != nil {
		return err
	}
	stops, err := f.stops()
	if err != nil {
		return err
	}
	g, err := f.grammarOf()
	if err != nil {
		return err
	}
	j.req = engine.Request{Prompt: ids, MaxTokens: maxTok, Sampling: samp, Stop: stops, IgnoreEOS: f.IgnoreEOS, Trace: f.Trace, Grammar: g}
	return nil
}

// template returns the chat format for a model: the configured one, else the one detected from
// its tokenizer.chat_template.
func (s *Server) template(info engine.Info) (chat.Template, error) {
	if name := s.cfg.Load().s.ChatTemplate; name != "" {
		return chat.ByName(name)
	}
	return chat.Detect(info.ChatTemplate)
}

// handleChat is POST /v1/chat/completions. The prompt is the conversation rendered in the model's
// chat format. A model without a recognised chat template gets 400 chat_template_unavailable
// (unless a format is configured): guessing a format would give quietly wrong answers.
func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	serveJob(s, w, r, s.chatJob)
}

func (s *Server) chatJob(ctx context.Context, rt *runtime, ref *backendRef, cr *chatRequest) (*job, error) {
	info := ref.b.Info()
	if err := checkModel(info, cr.Model); err != nil {
		return nil, err
	}
	msgs, err := cr.messages()
	if err != nil {
		return nil, err
	}
	tmpl, err := s.template(info)
	if err != nil {
		return nil, badRequest("chat_template_unavailable",
			"model %s: %v; configure a format (chat_template = one of %s, or serve --chat-template) or use /v1/completions", info.Model, err, chat.FormatNames())
	}
	tools, tj, err := cr.tools(tmpl)
	if err != nil {
		return nil, err
	}
	calls, withCalls, err := cr.calls()
	if err != nil {
		return nil, err
	}
	var prompt string
	if tools != nil || withCalls {
		prompt, err = tmpl.RenderTools(msgs, calls, tools, true)
	} else {
		prompt, err = tmpl.Render(msgs, true)
	}
	if err != nil {
		return nil, badRequest("invalid_value", "%v", err)
	}
	// The tokenizer adds BOS as the model asks; the template's own BOS text would double it.
	prompt = tmpl.StripBOS(prompt)
	if err := checkPromptText(rt, info, ref.b, prompt); err != nil {
		return nil, err
	}
	ids, err := s.tokenize(ctx, ref.b, prompt, true, true)
	if err != nil {
		return nil, err
	}
	j := &job{ref: ref, info: info, id: newID("chatcmpl-"), created: time.Now().Unix(), stream: cr.Stream, chat: true}
	j.usage = cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage
	asked := cr.MaxTokens
	if asked == nil {
		asked = cr.MaxCompletionTokens
	} else if cr.MaxCompletionTokens != nil && *cr.MaxCompletionTokens != *asked {
		return nil, badRequest("invalid_value", "max_tokens %d and max_completion_tokens %d disagree; give one", *asked, *cr.MaxCompletionTokens)
	}
	if asked != nil && *asked == 0 {
		return nil, badRequest("invalid_value", "max_tokens 0: a chat completion needs at least 1")
	}
	if err := s.common(rt, j, &cr.commonFields, ids, asked, rt.s.MaxTokensCap); err != nil {
		return nil, err
	}
	j.req.Stop = append(j.req.Stop, tmpl.Stop...)
	if tj != nil {
		if j.req.Grammar != nil {
			return nil, badRequest("invalid_value", "response_format and tools together: use tool_choice \"none\" or drop one")
		}
		j.tools = tj
		j.req.Grammar, j.req.Trigger, j.req.TriggerAtStart = tj.grammar, tj.trigger, tj.triggerAtStart
	}
	if cr.TopLogprobs != nil && (*cr.TopLogprobs < 0 || *cr.TopLogprobs > maxLogprobs) {
		return nil, badRequest("invalid_value", "top_logprobs %d: want 0..%d", *cr.TopLogprobs, maxLogprobs)
	}
	if cr.Logprobs != nil && *cr.Logprobs {
		if cr.TopLogprobs != nil {
			j.top = *cr.TopLogprobs
		}
		j.req.Logprobs = max(j.top, 1)
	} else if cr.TopLogprobs != nil && *cr.TopLogprobs > 0 {
		return nil, badRequest("invalid_value", "top_logprobs needs logprobs: true")
	}
	return j, nil
}

// run sends a job to the engine and answers, streaming or not.
func (s *Server) run(w http.ResponseWriter, r *http.Request, rt *runtime, j *job) {
	if sw := noteOf(w); sw != nil {
		sw.model, sw.prompt = j.info.Model, len(j.req.Prompt)
	}
	ctx, cancel := context.WithCancel(r.Context())
	if rt.s.RequestTimeout > 0 {
		ctx, cancel = context.WithTimeout(r.Context(), rt.s.RequestTimeout)
	}
	defer cancel()
	if j.req.MaxTokens == 0 && !j.req.Echo {
		// Nothing to compute: OpenAI answers max_tokens 0 with an empty completion.
		res := &engine.Result{PromptTokens: len(j.req.Prompt), FinishReason: "length"}
		if j.stream {
			st := &streamState{j: j}
			s.finishStream(&sse{w: w, rc: http.NewResponseController(w)}, st, res)
			return
		}
		s.answer(w, j, res, nil)
		return
	}
	if j.stream {
		s.stream(ctx, r, w, j)
		return
	}
	var mu sync.Mutex
	var events []engine.Event
	res, err := j.ref.b.Generate(ctx, j.req, func(ev engine.Event) error {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		return nil
	})
	if err == nil && res == nil {
		err = errors.New("engine returned no result")
	}
	err = shutdownCause(r, err)
	s.generationDone(err)
	if err != nil {
		s.log.Debug("generation failed", "id", j.id, "err", err)
		writeAPIError(w, err)
		return
	}
	s.count(w, res)
	mu.Lock()
	defer mu.Unlock()
	s.answer(w, j, res, events)
}

func (s *Server) count(w http.ResponseWriter, res *engine.Result) {
	s.metrics.promptTokens.Add(int64(res.PromptTokens))
	s.metrics.completionTokens.Add(int64(len(res.Tokens)))
	if sw := noteOf(w); sw != nil {
		sw.prompt, sw.completion = res.PromptTokens, len(res.Tokens)
	}
}

// shutdownCause turns the cancellation of a request cut at the end of the shutdown grace period
// into the 503 its client is owed.
func shutdownCause(r *http.Request, err error) error {
	if err != nil && errors.Is(err, context.Canceled) && context.Cause(r.Context()) == errShuttingDown {
		return errShuttingDown
	}
	return err
}

// Response bodies.
type completionChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float32           `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

type completionBody struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usageBody         `json:"usage,omitempty"`
	Trace   []engine.TraceStep `json:"trace,omitempty"`
}

type chatMsgBody struct {
	Role      string     `json:"role,omitempty"`
	Content   string     `json:"content"`
	ToolCalls []callBody `json:"tool_calls,omitempty"`
}

// MarshalJSON writes content null for a message that is only tool calls, as OpenAI does.
func (m chatMsgBody) MarshalJSON() ([]byte, error) {
	type plain chatMsgBody
	if len(m.ToolCalls) == 0 || m.Content != "" {
		return json.Marshal(plain(m))
	}
	return json.Marshal(struct {
		Role      string     `json:"role,omitempty"`
		Content   *string    `json:"content"`
		ToolCalls []callBody `json:"tool_calls"`
	}{m.Role, nil, m.ToolCalls})
}

type chatDelta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []callBody `json:"tool_calls,omitempty"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatMsgBody  `json:"message,omitempty"`
	Delta        *chatDelta    `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatLogprobs struct {
	Content []chatTokenLogprob `json:"content"`
}

type chatTop struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type chatTokenLogprob struct {
	chatTop
	TopLogprobs []chatTop `json:"top_logprobs"`
}

type chatBody struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []chatChoice       `json:"choices"`
	Usage             *usageBody         `json:"usage,omitempty"`
	Trace             []engine.TraceStep `json:"trace,omitempty"`
}

// answer writes the non-streamed response.
func (s *Server) answer(w http.ResponseWriter, j *job, res *engine.Result, events []engine.Event) {
	u := usageOf(res)
	finish := res.FinishReason
	if j.chat {
		c := chatChoice{Message: &chatMsgBody{Role: "assistant", Content: res.Text}, FinishReason: &finish}
		if j.tools != nil {
			if content, calls, ok := j.tools.parse(res.Text); ok {
				c.Message.Content, c.Message.ToolCalls = content, calls
				finish = "tool_calls"
			}
		}
		if j.req.Logprobs > 0 {
			c.Logprobs = &chatLogprobs{Content: s.chatLogprobs(j, events)}
		}
		writeJSON(w, http.StatusOK, chatBody{ID: j.id, Object: "chat.completion", Created: j.created, Model: j.info.Model,
			SystemFingerprint: fingerprint(j.info), Choices: []chatChoice{c}, Usage: &u, Trace: traceOf(j, res)})
		return
	}
	c := completionChoice{Text: j.echoText + res.Text, FinishReason: &finish}
	if j.req.Logprobs > 0 {
		lp := &completionLogprobs{Tokens: []string{}, TokenLogprobs: []*float32{}, TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
		offset := 0
		if j.req.Echo {
			offset = s.addPromptLogprobs(lp, j, res)
		} else {
			offset = utf8.RuneCountInString(j.promptText)
		}
		for _, ev := range events {
			if ev.Token >= 0 {
				offset = s.addEventLogprob(lp, j, ev, offset)
			}
		}
		c.Logprobs = lp
	}
	writeJSON(w, http.StatusOK, completionBody{ID: j.id, Object: "text_completion", Created: j.created, Model: j.info.Model,
		Choices: []completionChoice{c}, Usage: &u, Trace: traceOf(j, res)})
}

func traceOf(j *job, res *engine.Result) []engine.TraceStep {
	if !j.req.Trace {
		return nil
	}
	if res.Trace == nil {
		return []engine.TraceStep{}
	}
	return res.Trace
}

// fingerprint identifies the model and kernels that produced an answer.
func fingerprint(info engine.Info) string { return "edgelm-" + info.Arch + "-" + info.Kernels }

// piece is a token's own text, as it reads in the middle of a text: decoding a token alone drops
// the leading space SentencePiece vocabularies mark with "▁", so the token is decoded after a
// reference token and the reference's text taken off. A backend may say it directly instead.
func (j *job) piece(id int32) string {
	if tt, ok := j.ref.b.(interface{ TokenText(int32) string }); ok {
		return tt.TokenText(id)
	}
	ref, refText := j.ref.pieceRef()
	if refText == "" {
		return j.ref.b.Detokenize([]int32{id})
	}
	both := j.ref.b.Detokenize([]int32{ref, id})
	if !strings.HasPrefix(both, refText) {
		return j.ref.b.Detokenize([]int32{id})
	}
	return both[len(refText):]
}

// tops converts the engine's alternatives to the completions format, keeping the n asked for.
func (j *job) tops(top []engine.TokenProb) map[string]float32 {
	m := make(map[string]float32, j.top)
	for i, tp := range top {
		if i == j.top {
			break
		}
		m[j.piece(tp.ID)] = tp.Logprob
	}
	return m
}

// addPromptLogprobs adds the echoed prompt's tokens: the first has no logprob (nothing precedes
// it), as in OpenAI's answers. It returns the text offset after the prompt.
func (s *Server) addPromptLogprobs(lp *completionLogprobs, j *job, res *engine.Result) int {
	pieces := make([]string, len(j.req.Prompt))
	total := 0
	for i, id := range j.req.Prompt {
		pieces[i] = j.piece(id)
		total += utf8.RuneCountInString(pieces[i])
	}
	// The echoed text is the decoded prompt, which drops the space SentencePiece puts before the
	// first word; the pieces keep it. Offsets count in the text the client gets.
	end := utf8.RuneCountInString(j.promptText)
	skip := max(total-end, 0)
	offset := 0
	for i, id := range j.req.Prompt {
		p := pieces[i]
		lp.Tokens = append(lp.Tokens, p)
		lp.TextOffset = append(lp.TextOffset, max(offset-skip, 0))
		offset += utf8.RuneCountInString(p)
		if i == 0 || i > len(res.Logprobs) {
			lp.TokenLogprobs = append(lp.TokenLogprobs, nil)
			lp.TopLogprobs = append(lp.TopLogprobs, nil)
			continue
		}
		lp.TokenLogprobs = append(lp.TokenLogprobs, promptLogprob(res, id, i))
		lp.TopLogprobs = append(lp.TopLogprobs, j.tops(res.Logprobs[i-1].Top))
	}
	return end
}

// promptLogprob is the logprob of prompt token tok at position i given the tokens before it, as the
// engine reports it with the token's position; nil when the engine did not report it.
func promptLogprob(res *engine.Result, tok int32, i int) *float32 {
	if i <= 0 || i >= len(res.Logprobs) || res.Logprobs[i].Token != tok {
		return nil
	}
	v := res.Logprobs[i].Logprob
	return &v
}

func (s *Server) addEventLogprob(lp *completionLogprobs, j *job, ev engine.Event, offset int) int {
	p := j.piece(ev.Token)
	v := ev.Logprob
	lp.Tokens = append(lp.Tokens, p)
	lp.TokenLogprobs = append(lp.TokenLogprobs, &v)
	lp.TopLogprobs = append(lp.TopLogprobs, j.tops(ev.Top))
	lp.TextOffset = append(lp.TextOffset, offset)
	return offset + utf8.RuneCountInString(p)
}

func (s *Server) chatLogprobs(j *job, events []engine.Event) []chatTokenLogprob {
	out := make([]chatTokenLogprob, 0, len(events))
	for _, ev := range events {
		if ev.Token >= 0 { // -1: held-back text, no token
			out = append(out, s.chatLogprob(j, ev))
		}
	}
	return out
}

func (s *Server) chatLogprob(j *job, ev engine.Event) chatTokenLogprob {
	t := chatTokenLogprob{chatTop: j.chatTop(ev.Token, ev.Logprob), TopLogprobs: []chatTop{}}
	for i, tp := range ev.Top {
		if i == j.top {
			break
		}
		t.TopLogprobs = append(t.TopLogprobs, j.chatTop(tp.ID, tp.Logprob))
	}
	return t
}

func (j *job) chatTop(id int32, lp float32) chatTop {
	p := j.piece(id)
	b := make([]int, len(p))
	for i := 0; i < len(p); i++ {
		b[i] = int(p[i])
	}
	return chatTop{Token: p, Logprob: lp, Bytes: b}
}

// newID makes a response id like OpenAI's: a prefix and random hex.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
