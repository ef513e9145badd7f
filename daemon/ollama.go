package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"edgelm/chat"
	"edgelm/engine"
)

// Ollama's API (its docs/api.md) beside OpenAI's, for the clients that speak only it (Home
// Assistant, Open WebUI, the ollama libraries). Errors are Ollama's {"error": "..."} with the
// status the OpenAI endpoints use; streams are NDJSON, one object a line, the last with "done":
// true and the statistics.

// ollamaVersion is the Ollama release whose API these endpoints follow; clients gate features on
// the version /api/version reports.
const ollamaVersion = "0.5.0"

func (s *Server) ollamaRoutes(routes map[string]route) {
	routes["/"] = route{http.MethodGet, s.handleOllamaRoot}
	routes["/api/version"] = route{http.MethodGet, s.handleOllamaVersion}
	routes["/api/tags"] = route{http.MethodGet, s.handleOllamaTags}
	routes["/api/ps"] = route{http.MethodGet, s.handleOllamaPS}
	routes["/api/show"] = route{http.MethodPost, s.handleOllamaShow}
	routes["/api/generate"] = route{http.MethodPost, s.handleOllamaGenerate}
	routes["/api/chat"] = route{http.MethodPost, s.handleOllamaChat}
	routes["/api/embed"] = route{http.MethodPost, s.handleOllamaEmbed}
	routes["/api/embeddings"] = route{http.MethodPost, s.handleOllamaEmbeddings}
}

// writeOllamaError reports err as Ollama does: {"error": message}.
func writeOllamaError(w http.ResponseWriter, err error) {
	e := classify(err)
	if sw := noteOf(w); sw != nil {
		sw.reason = e.msg
	}
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

// writeOllamaRouteError is writeError for paths under /api/: Ollama's shape, and for the model
// management endpoints edgelm does not have, why.
func writeOllamaRouteError(w http.ResponseWriter, status int, typ, code, msg string) {
	if code == "not_found" {
		msg += ": edgelm serves the models in its configuration; it does not pull, push, create, copy or delete models"
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

// ollamaModel is modelFor with Ollama's wording for an unknown model.
func (s *Server) ollamaModel(name string) (*backendRef, error) {
	ref, err := s.modelFor(name)
	var ae *apiError
	if errors.As(err, &ae) && ae.code == "model_not_found" {
		names := make([]string, 0, 1)
		for _, info := range s.listed() {
			names = append(names, ollamaName(info))
		}
		return nil, &apiError{status: http.StatusNotFound, typ: ae.typ, code: ae.code,
			msg: fmt.Sprintf("model %q not found; this daemon serves %s", name, strings.Join(names, ", "))}
	}
	return ref, err
}

// ollamaName is a model's name in Ollama's form, name:tag: the file name without ".gguf", tagged
// "latest". Requests may name it so, without the tag, or as the OpenAI endpoints do.
func ollamaName(info engine.Info) string {
	return strings.TrimSuffix(info.Model, ".gguf") + ":latest"
}

func nowOllama() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// handleOllamaRoot is GET /, which Ollama's clients probe to see that a server is up.
func (s *Server) handleOllamaRoot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("Ollama is running"))
}

// handleOllamaVersion is GET /api/version.
func (s *Server) handleOllamaVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": ollamaVersion})
}

type ollamaDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

type ollamaModelEntry struct {
	Name       string        `json:"name"`
	Model      string        `json:"model"`
	ModifiedAt string        `json:"modified_at,omitempty"`
	Size       int64         `json:"size"`
	Digest     string        `json:"digest"`
	Details    ollamaDetails `json:"details"`
	// /api/ps only
	ExpiresAt     string `json:"expires_at,omitempty"`
	SizeVRAM      *int64 `json:"size_vram,omitempty"`
	ContextLength int    `json:"context_length,omitempty"`
}

func detailsOf(info engine.Info) ollamaDetails {
	return ollamaDetails{Format: "gguf", Family: info.Arch, Families: []string{info.Arch},
		ParameterSize: paramSize(info.Params), QuantizationLevel: info.FileType}
}

// paramSize writes a parameter count as Ollama does: "1.1B", "135M", "260K".
func paramSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// fileStamp is the model file's modification time (the load time if the file cannot be read) and a
// digest of its path, size and time: Ollama's digest names a model's content, and hashing a
// gigabyte per listing is not worth it, so this one names the file's version instead.
func fileStamp(info engine.Info) (time.Time, string) {
	mod := info.LoadedAt
	if st, err := os.Stat(info.Path); err == nil {
		mod = st.ModTime()
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", info.Path, info.FileBytes, mod.UnixNano()))
	return mod, hex.EncodeToString(sum[:])
}

func entryOf(info engine.Info) ollamaModelEntry {
	mod, digest := fileStamp(info)
	name := ollamaName(info)
	return ollamaModelEntry{Name: name, Model: name, ModifiedAt: mod.Format(time.RFC3339Nano), Size: info.FileBytes,
		Digest: digest, Details: detailsOf(info)}
}

// handleOllamaTags is GET /api/tags: the models requests may name.
func (s *Server) handleOllamaTags(w http.ResponseWriter, r *http.Request) {
	models := []ollamaModelEntry{}
	for _, info := range s.listed() {
		models = append(models, entryOf(info))
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

// handleOllamaPS is GET /api/ps: the models in memory. A model stays loaded for the daemon's
// life, so expires_at is far ahead; everything runs on the CPU, so size_vram is 0.
func (s *Server) handleOllamaPS(w http.ResponseWriter, r *http.Request) {
	models := []ollamaModelEntry{}
	be := s.backend()
	for _, info := range s.loaded() {
		e := entryOf(info)
		e.ModifiedAt = ""
		e.ExpiresAt = info.LoadedAt.AddDate(100, 0, 0).UTC().Format(time.RFC3339Nano)
		e.SizeVRAM = new(int64)
		e.ContextLength = info.ContextLength
		if be != nil && be.Info().Path == info.Path {
			e.Size += be.Stats().KVBytes
		}
		models = append(models, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

type ollamaShowRequest struct {
	Model string `json:"model"`
	Name  string `json:"name"` // the older name of the field
}

// handleOllamaShow is POST /api/show: a model's details, metadata and capabilities.
func (s *Server) handleOllamaShow(w http.ResponseWriter, r *http.Request) {
	var req ollamaShowRequest
	if err := decodeBody(r, &req); err != nil {
		writeOllamaError(w, err)
		return
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if name == "" {
		writeOllamaError(w, badRequest("invalid_value", "field \"model\" is required"))
		return
	}
	ref, err := s.ollamaModel(name)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	defer s.release(ref)
	info := ref.b.Info()
	mod, _ := fileStamp(info)
	samp := s.cfg.Load().s.Sampling
	var params strings.Builder
	fmt.Fprintf(&params, "temperature %g\ntop_k %d\ntop_p %g\nmin_p %g\nrepeat_penalty %g\nnum_ctx %d\n",
		samp.Temperature, samp.TopK, samp.TopP, samp.MinP, samp.RepeatPenalty, info.ContextLength)
	if tmpl, err := s.template(info); err == nil {
		for _, st := range tmpl.Stop {
			fmt.Fprintf(&params, "stop %q\n", st)
		}
	}
	caps := []string{"completion"}
	if info.Pooling != "rank" {
		caps = append(caps, "embedding")
	}
	modelInfo := map[string]any{
		"general.architecture":          info.Arch,
		"general.parameter_count":       info.Params,
		info.Arch + ".context_length":   info.ContextLength,
		info.Arch + ".embedding_length": info.EmbeddingLength,
		info.Arch + ".vocab_size":       info.VocabSize,
	}
	if info.Name != "" {
		modelInfo["general.name"] = info.Name
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"modelfile":    fmt.Sprintf("# served by edgelm from a GGUF file\nFROM %s\n", info.Model), // the host path is not the client's business
		"parameters":   params.String(),
		"template":     info.ChatTemplate,
		"details":      detailsOf(info),
		"model_info":   modelInfo,
		"capabilities": caps,
		"modified_at":  mod.Format(time.RFC3339Nano),
	})
}

// ollamaOptions are the "options" edgelm acts on; the others Ollama knows (num_gpu, num_thread,
// mirostat, ...) are ignored, as Ollama ignores options its runner has no use for.
type ollamaOptions struct {
	NumPredict    *int            `json:"num_predict"`
	NumCtx        *int            `json:"num_ctx"`
	Temperature   *float32        `json:"temperature"`
	TopK          *int            `json:"top_k"`
	TopP          *float32        `json:"top_p"`
	MinP          *float32        `json:"min_p"`
	RepeatPenalty *float32        `json:"repeat_penalty"`
	RepeatLastN   *int            `json:"repeat_last_n"`
	Seed          *int64          `json:"seed"`
	Stop          json.RawMessage `json:"stop"`
}

// ollamaCommon are the fields /api/generate and /api/chat share.
type ollamaCommon struct {
	Model     string          `json:"model"`
	Stream    *bool           `json:"stream"` // default true
	Format    json.RawMessage `json:"format"`
	KeepAlive json.RawMessage `json:"keep_alive"`
	Think     json.RawMessage `json:"think"`
	Logprobs  bool            `json:"logprobs"`
	Options   *ollamaOptions  `json:"options"`
}

type ollamaGenerateRequest struct {
	ollamaCommon
	Prompt   string            `json:"prompt"`
	Suffix   string            `json:"suffix"`
	System   string            `json:"system"`
	Template string            `json:"template"`
	Context  []int32           `json:"context"`
	Raw      bool              `json:"raw"`
	Images   []json.RawMessage `json:"images"`
}

type ollamaChatMessage struct {
	Role      string            `json:"role"`
	Content   string            `json:"content"`
	Images    []json.RawMessage `json:"images,omitempty"`
	ToolCalls []json.RawMessage `json:"tool_calls,omitempty"`
}

type ollamaTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type ollamaChatRequest struct {
	ollamaCommon
	Messages []ollamaChatMessage `json:"messages"`
	Tools    []ollamaTool        `json:"tools"`
}

// checkFormat is the hook for Ollama's "format": "json" or a JSON schema object. The value is
// checked; constrained decoding is not wired to this endpoint yet, so a format is refused rather
// than ignored (an unconstrained answer would not be what the client parses).
func checkFormat(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return nil
	}
	switch raw[0] {
	case '"':
		var f string
		if err := json.Unmarshal(raw, &f); err != nil || f != "json" {
			return badRequest("invalid_value", "format %s: want \"json\" or a JSON schema object", truncate(string(raw), 40))
		}
	case '{':
		var schema map[string]any
		if err := json.Unmarshal(raw, &schema); err != nil {
			return badRequest("invalid_value", "format: %v", err)
		}
	default:
		return badRequest("invalid_value", "format %s: want \"json\" or a JSON schema object", truncate(string(raw), 40))
	}
	return badRequest("format_unsupported", "format is not supported yet: edgelm cannot constrain the output to JSON on this endpoint")
}

// checkTools is the hook for Ollama's "tools": each is checked; tool calling is not wired to this
// endpoint yet, so tools are refused rather than ignored.
func checkTools(tools []ollamaTool) error {
	if len(tools) == 0 {
		return nil
	}
	for i, t := range tools {
		if t.Type != "" && t.Type != "function" {
			return badRequest("invalid_value", "tools[%d]: type %q: want \"function\"", i, t.Type)
		}
		if t.Function.Name == "" {
			return badRequest("invalid_value", "tools[%d]: function.name is required", i)
		}
	}
	return badRequest("tools_unsupported", "tools are not supported yet on /api/chat")
}

// check refuses what edgelm cannot do rather than ignore it; model is the name answers use.
func (c *ollamaCommon) check(model string) error {
	if err := checkFormat(c.Format); err != nil {
		return err
	}
	if t := bytes.TrimSpace(c.Think); len(t) > 0 && string(t) != "null" && string(t) != "false" {
		return badRequest("invalid_value", "%q does not support thinking", model)
	}
	if c.Logprobs {
		return badRequest("invalid_value", "logprobs are not supported on the Ollama API; use /v1/chat/completions or /v1/completions")
	}
	return nil
}

// unload reports whether keep_alive asks for the model to be unloaded (0, "0", "0s").
func (c *ollamaCommon) unload() bool {
	k := strings.Trim(string(bytes.TrimSpace(c.KeepAlive)), `"`)
	return k == "0" || k == "0s"
}

// ollamaJob is one /api/generate or /api/chat request on its way to the engine.
type ollamaJob struct {
	ref     *backendRef
	model   string // as the answers name it
	req     engine.Request
	chat    bool
	stream  bool
	start   time.Time
	context bool // /api/generate without raw: return the conversation's tokens as "context"
}

// request turns the options into the engine's request for prompt ids. num_ctx narrows the
// request's window below the loaded context (a larger one is the loaded context: it is fixed when
// the model loads); num_predict < 0 (Ollama's "until the end") and values over the daemon's cap
// generate up to the cap.
func (c *ollamaCommon) request(rt *runtime, info engine.Info, ids []int32) (engine.Request, error) {
	o := c.Options
	if o == nil {
		o = &ollamaOptions{}
	}
	if o.NumCtx != nil {
		if *o.NumCtx <= 0 {
			return engine.Request{}, badRequest("invalid_value", "num_ctx %d: want > 0", *o.NumCtx)
		}
		if info.ContextLength <= 0 || *o.NumCtx < info.ContextLength {
			info.ContextLength = *o.NumCtx
		}
	}
	var asked *int
	if o.NumPredict != nil && *o.NumPredict >= 0 {
		n := min(*o.NumPredict, rt.s.MaxTokensCap)
		asked = &n
	}
	maxTok, err := limits(rt, info, len(ids), asked, rt.s.MaxTokensCap)
	if err != nil {
		return engine.Request{}, err
	}
	f := commonFields{Temperature: o.Temperature, TopP: o.TopP, TopK: o.TopK, MinP: o.MinP,
		RepeatPenalty: o.RepeatPenalty, RepeatLastN: o.RepeatLastN, Seed: o.Seed, Stop: o.Stop}
	if o.RepeatLastN != nil {
		switch n := *o.RepeatLastN; {
		case n == -1: // Ollama's "the whole context"
			f.RepeatLastN = &info.ContextLength
		case n == 0: // Ollama's "off"
			one := float32(1)
			f.RepeatPenalty = &one
		}
	}
	samp, err := f.sampling(rt.s.Sampling)
	if err != nil {
		return engine.Request{}, err
	}
	stops, err := f.stops()
	if err != nil {
		return engine.Request{}, err
	}
	return engine.Request{Prompt: ids, MaxTokens: maxTok, Sampling: samp, Stop: stops}, nil
}

// handleOllamaGenerate is POST /api/generate. The prompt goes through the model's chat format as
// one user turn (after "system", when given), as Ollama does with a model's template; without a
// chat format, and with "raw": true, it is completed as it is. "context" (the tokens a previous
// answer returned) is prepended.
func (s *Server) handleOllamaGenerate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req ollamaGenerateRequest
	if err := decodeBody(r, &req); err != nil {
		writeOllamaError(w, err)
		return
	}
	ref, err := s.ollamaModel(req.Model)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	defer s.release(ref)
	rt := s.cfg.Load()
	info := ref.b.Info()
	j := &ollamaJob{ref: ref, model: req.Model, stream: req.Stream == nil || *req.Stream, start: start, context: !req.Raw}
	if j.model == "" {
		j.model = ollamaName(info)
	}
	switch {
	case len(req.Images) > 0:
		err = badRequest("invalid_value", "images are not supported: edgelm runs text-only models")
	case req.Suffix != "":
		err = badRequest("invalid_value", "suffix (fill-in-the-middle) is not supported")
	case req.Template != "":
		err = badRequest("invalid_value", "template is not supported: the model's chat format is used, or none with \"raw\": true")
	default:
		err = req.check(j.model)
	}
	if err == nil {
		err = checkTokens(info, req.Context, "context")
	}
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	if req.Prompt == "" && len(req.Context) == 0 {
		// Ollama's clients load (or unload) a model with an empty prompt.
		reason := "load"
		if req.unload() {
			reason = "unload"
		}
		j.single(w, map[string]any{"model": j.model, "created_at": nowOllama(), "response": "", "done": true, "done_reason": reason})
		return
	}
	text, stops := req.Prompt, []string(nil)
	tmpl, terr := s.template(info)
	switch {
	case req.Raw:
	case terr == nil:
		var msgs []chat.Message
		if req.System != "" {
			msgs = append(msgs, chat.Message{Role: "system", Content: req.System})
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: req.Prompt})
		if text, err = tmpl.Render(msgs, true); err != nil {
			writeOllamaError(w, badRequest("invalid_value", "%v", err))
			return
		}
		text, stops = tmpl.StripBOS(text), tmpl.Stop
	case req.System != "":
		text = req.System + "\n\n" + req.Prompt
	}
	if err := checkPromptText(rt, info, ref.b, text); err != nil {
		writeOllamaError(w, err)
		return
	}
	ids, err := s.tokenize(r.Context(), ref.b, text, len(req.Context) == 0, true)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	ids = append(append([]int32(nil), req.Context...), ids...)
	if j.req, err = req.request(rt, info, ids); err != nil {
		writeOllamaError(w, err)
		return
	}
	j.req.Stop = append(j.req.Stop, stops...)
	s.runOllama(w, r, rt, j)
}

// handleOllamaChat is POST /api/chat: the conversation in the model's chat format, as
// /v1/chat/completions builds it.
func (s *Server) handleOllamaChat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req ollamaChatRequest
	if err := decodeBody(r, &req); err != nil {
		writeOllamaError(w, err)
		return
	}
	ref, err := s.ollamaModel(req.Model)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	defer s.release(ref)
	rt := s.cfg.Load()
	info := ref.b.Info()
	j := &ollamaJob{ref: ref, model: req.Model, stream: req.Stream == nil || *req.Stream, start: start, chat: true}
	if j.model == "" {
		j.model = ollamaName(info)
	}
	if err := req.check(j.model); err != nil {
		writeOllamaError(w, err)
		return
	}
	if err := checkTools(req.Tools); err != nil {
		writeOllamaError(w, err)
		return
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, m := range req.Messages {
		switch {
		case len(m.Images) > 0:
			err = badRequest("invalid_value", "messages[%d]: images are not supported: edgelm runs text-only models", i)
		case len(m.ToolCalls) > 0 || m.Role == "tool":
			err = badRequest("tools_unsupported", "messages[%d]: tool calls are not supported yet on /api/chat", i)
		case m.Role != "system" && m.Role != "user" && m.Role != "assistant":
			err = badRequest("invalid_value", "messages[%d]: role %q is not supported (system, user, assistant)", i, m.Role)
		}
		if err != nil {
			writeOllamaError(w, err)
			return
		}
		msgs[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	if len(msgs) == 0 {
		reason := "load"
		if req.unload() {
			reason = "unload"
		}
		j.single(w, map[string]any{"model": j.model, "created_at": nowOllama(),
			"message": map[string]string{"role": "assistant", "content": ""}, "done": true, "done_reason": reason})
		return
	}
	tmpl, err := s.template(info)
	if err != nil {
		writeOllamaError(w, badRequest("chat_template_unavailable",
			"model %s: %v; configure a format (chat_template = \"gemma\", \"llama2\", \"llama3\" or \"chatml\", or serve --chat-template) or use /api/generate", info.Model, err))
		return
	}
	prompt, err := tmpl.Render(msgs, true)
	if err != nil {
		writeOllamaError(w, badRequest("invalid_value", "%v", err))
		return
	}
	prompt = tmpl.StripBOS(prompt)
	if err := checkPromptText(rt, info, ref.b, prompt); err != nil {
		writeOllamaError(w, err)
		return
	}
	ids, err := s.tokenize(r.Context(), ref.b, prompt, true, true)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	if j.req, err = req.request(rt, info, ids); err != nil {
		writeOllamaError(w, err)
		return
	}
	j.req.Stop = append(j.req.Stop, tmpl.Stop...)
	s.runOllama(w, r, rt, j)
}

type ollamaMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ollamaChunk is one line of a stream, or with the statistics the last line (and the whole
// answer when not streaming). Response is /api/generate's text, Message /api/chat's.
type ollamaChunk struct {
	Model     string         `json:"model"`
	CreatedAt string         `json:"created_at"`
	Response  *string        `json:"response,omitempty"`
	Message   *ollamaMessage `json:"message,omitempty"`
	Done      bool           `json:"done"`
	*ollamaStats
}

// ollamaStats are the last line's statistics, durations in nanoseconds. load_duration is 0: the
// model is loaded before any request. prompt_eval_count counts every prompt token, prefix-cached
// ones included.
type ollamaStats struct {
	DoneReason         string  `json:"done_reason"`
	Context            []int32 `json:"context,omitempty"`
	TotalDuration      int64   `json:"total_duration"`
	LoadDuration       int64   `json:"load_duration"`
	PromptEvalCount    int     `json:"prompt_eval_count"`
	PromptEvalDuration int64   `json:"prompt_eval_duration"`
	EvalCount          int     `json:"eval_count"`
	EvalDuration       int64   `json:"eval_duration"`
}

func (j *ollamaJob) chunk(text string) ollamaChunk {
	c := ollamaChunk{Model: j.model, CreatedAt: nowOllama()}
	if j.chat {
		c.Message = &ollamaMessage{Role: "assistant", Content: text}
	} else {
		c.Response = &text
	}
	return c
}

func (j *ollamaJob) final(text string, res *engine.Result) ollamaChunk {
	c := j.chunk(text)
	c.Done = true
	c.ollamaStats = &ollamaStats{DoneReason: res.FinishReason, TotalDuration: int64(time.Since(j.start)),
		PromptEvalCount: res.PromptTokens, PromptEvalDuration: int64(res.PrefillTime),
		EvalCount: len(res.Tokens), EvalDuration: int64(res.DecodeTime)}
	if j.context {
		c.Context = append(append([]int32{}, j.req.Prompt...), res.Tokens...)
	}
	return c
}

// single answers with one object: a one-line stream when the client asked for a stream.
func (j *ollamaJob) single(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	ct := "application/json"
	if j.stream {
		ct = "application/x-ndjson"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

// runOllama sends a job to the engine and answers: one JSON object, or an NDJSON stream of one
// line per token with text and a last line with the statistics. As with the SSE streams, nothing
// is written before the first token, so that early errors keep their HTTP status; an error after
// it is a last line {"error": ...}.
func (s *Server) runOllama(w http.ResponseWriter, r *http.Request, rt *runtime, j *ollamaJob) {
	if sw := noteOf(w); sw != nil {
		sw.model, sw.prompt = j.ref.b.Info().Model, len(j.req.Prompt)
	}
	ctx, cancel := context.WithCancel(r.Context())
	if rt.s.RequestTimeout > 0 {
		ctx, cancel = context.WithTimeout(r.Context(), rt.s.RequestTimeout)
	}
	defer cancel()
	if j.req.MaxTokens == 0 {
		res := &engine.Result{PromptTokens: len(j.req.Prompt), FinishReason: "length"}
		j.single(w, j.final("", res))
		return
	}
	if !j.stream {
		res, err := j.ref.b.Generate(ctx, j.req, func(engine.Event) error { return nil })
		if err == nil && res == nil {
			err = errors.New("engine returned no result")
		}
		err = shutdownCause(r, err)
		s.generationDone(err)
		if err != nil {
			s.log.Debug("ollama: generation failed", "err", err)
			writeOllamaError(w, err)
			return
		}
		s.count(w, res)
		writeJSON(w, http.StatusOK, j.final(res.Text, res))
		return
	}
	q := newEventQueue()
	type outcome struct {
		res *engine.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := j.ref.b.Generate(ctx, j.req, q.push)
		done <- outcome{res, err}
	}()
	rc := http.NewResponseController(w)
	started, failed := false, false
	line := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		return rc.Flush()
	}
	flush := func() {
		for _, ev := range q.take() {
			if failed || ev.Text == "" {
				continue
			}
			if err := line(j.chunk(ev.Text)); err != nil {
				failed = true
				q.fail(errClientGone)
				cancel()
			}
		}
	}
	var o outcome
loop:
	for {
		select {
		case <-q.notify:
			flush()
		case o = <-done:
			flush()
			break loop
		}
	}
	if failed {
		return
	}
	if o.err == nil && o.res == nil {
		o.err = errors.New("engine returned no result")
	}
	o.err = shutdownCause(r, o.err)
	s.generationDone(o.err)
	if o.err != nil {
		if errors.Is(o.err, context.Canceled) && ctx.Err() != nil && !started {
			return
		}
		s.log.Debug("ollama: stream failed", "err", o.err)
		if !started {
			writeOllamaError(w, o.err)
			return
		}
		e := classify(o.err)
		if sw := noteOf(w); sw != nil {
			sw.reason = e.msg
		}
		line(map[string]string{"error": e.msg})
		return
	}
	s.count(w, o.res)
	line(j.final("", o.res))
}

type ollamaEmbedRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Truncate   *bool           `json:"truncate"` // default true: cut inputs to the context
	Dimensions *int            `json:"dimensions"`
	KeepAlive  json.RawMessage `json:"keep_alive"`
	Options    *ollamaOptions  `json:"options"`
}

// handleOllamaEmbed is POST /api/embed: L2-normalized embeddings of "input" (a string or a list
// of strings), inputs longer than the context cut to it unless "truncate": false.
func (s *Server) handleOllamaEmbed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req ollamaEmbedRequest
	if err := decodeBody(r, &req); err != nil {
		writeOllamaError(w, err)
		return
	}
	ref, err := s.ollamaModel(req.Model)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	defer s.release(ref)
	rt := s.cfg.Load()
	info := ref.b.Info()
	model := req.Model
	if model == "" {
		model = ollamaName(info)
	}
	if req.Dimensions != nil && *req.Dimensions != info.EmbeddingLength {
		writeOllamaError(w, badRequest("invalid_value", "dimensions %d: this model's embeddings have %d (they cannot be shortened)", *req.Dimensions, info.EmbeddingLength))
		return
	}
	in := bytes.TrimSpace(req.Input)
	if string(in) == `""` || string(in) == "[]" {
		// Ollama answers an empty input with no embeddings (a client's way to load the model).
		writeJSON(w, http.StatusOK, map[string]any{"model": model, "embeddings": [][]float32{}})
		return
	}
	prompts, err := s.embedPrompts(r.Context(), rt, ref, req.Input, req.Truncate == nil || *req.Truncate)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	vecs, n, err := s.embedAll(r.Context(), rt, ref, prompts, true)
	if err != nil {
		writeOllamaError(w, shutdownCause(r, err))
		return
	}
	noteEmbed(w, info, n)
	writeJSON(w, http.StatusOK, map[string]any{"model": model, "embeddings": vecs,
		"total_duration": int64(time.Since(start)), "load_duration": 0, "prompt_eval_count": n})
}

type ollamaEmbeddingsRequest struct {
	Model   string         `json:"model"`
	Prompt  string         `json:"prompt"`
	Options *ollamaOptions `json:"options"`
}

// handleOllamaEmbeddings is POST /api/embeddings, the older form: one prompt, and a vector that
// is not normalized (as Ollama's is not).
func (s *Server) handleOllamaEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req ollamaEmbeddingsRequest
	if err := decodeBody(r, &req); err != nil {
		writeOllamaError(w, err)
		return
	}
	ref, err := s.ollamaModel(req.Model)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	defer s.release(ref)
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, map[string]any{"embedding": []float32{}})
		return
	}
	rt := s.cfg.Load()
	raw, _ := json.Marshal(req.Prompt)
	prompts, err := s.embedPrompts(r.Context(), rt, ref, raw, false)
	if err != nil {
		writeOllamaError(w, err)
		return
	}
	vecs, n, err := s.embedAll(r.Context(), rt, ref, prompts, false)
	if err != nil {
		writeOllamaError(w, shutdownCause(r, err))
		return
	}
	noteEmbed(w, ref.b.Info(), n)
	writeJSON(w, http.StatusOK, map[string]any{"embedding": vecs[0]})
}
