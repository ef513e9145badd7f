package daemon

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"edgelm/engine"
)

// healthBody is GET /health's answer.
type healthBody struct {
	Status        string  `json:"status"` // "ok", "degraded" or "loading"
	Model         string  `json:"model,omitempty"`
	Architecture  string  `json:"architecture,omitempty"`
	Name          string  `json:"name,omitempty"`
	Kernels       string  `json:"kernels,omitempty"`
	Threads       int     `json:"threads,omitempty"`
	ContextLength int     `json:"context_length,omitempty"`
	ChatTemplate  string  `json:"chat_template,omitempty"` // the format used by /v1/chat/completions, "" if none
	UptimeSeconds float64 `json:"uptime_seconds"`
	KV            *kvBody `json:"kv,omitempty"`
	Queue         int     `json:"queue_depth"`
	Active        int     `json:"active_sequences"`
	// Reload is the last configuration reload's outcome; absent before the first reload.
	Reload *ReloadStatus `json:"reload,omitempty"`
	// Degraded says why the status is "degraded": generations are failing, or the engine saw
	// the model produce non-finite logits.
	Degraded string `json:"degraded,omitempty"`
	// GenerationFailures counts the generations the daemon failed; LastError is the last one.
	GenerationFailures int64      `json:"generation_failures"`
	LastError          *lastError `json:"last_error,omitempty"`
}

type kvBody struct {
	Bytes         int64 `json:"bytes"`
	Budget        int64 `json:"budget"` // 0: no cap
	BytesPerToken int64 `json:"bytes_per_token"`
}

// handleHealth is GET /health: 503 {"status":"loading"} until a model is set, then 200 with the
// model, architecture, kernels and KV cache usage. The status is "degraded" while generations
// fail (from a failed one until one succeeds) or once the model produced non-finite logits;
// that is still 200, for load balancers that would otherwise take the only daemon out, unless
// the query has strict=1, which makes it 503.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	be := s.backend()
	h := healthBody{Status: "loading", UptimeSeconds: time.Since(s.started).Seconds(), Reload: s.reloadStatus()}
	if be == nil {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, h)
		return
	}
	info, st := be.Info(), be.Stats()
	h.Status, h.Model, h.Architecture, h.Name = "ok", info.Model, info.Arch, info.Name
	h.Kernels, h.Threads, h.ContextLength = info.Kernels, info.Threads, info.ContextLength
	if t, err := s.template(info); err == nil {
		h.ChatTemplate = string(t.Format)
	}
	h.KV = &kvBody{Bytes: st.KVBytes, Budget: st.KVBudget, BytesPerToken: st.KVBytesPerToken}
	h.Queue, h.Active = st.QueueDepth, st.ActiveSequences
	failing, last := s.generationState()
	h.GenerationFailures, h.LastError = s.gen.failures.Load(), last
	switch {
	case st.Fault != "":
		h.Status, h.Degraded = "degraded", st.Fault
	case failing:
		h.Status, h.Degraded = "degraded", "the last generation failed: "+last.Message
	}
	code := http.StatusOK
	if h.Status != "ok" && r.URL.Query().Get("strict") == "1" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// modelBody is an OpenAI model object, with edgelm's model description alongside.
type modelBody struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	OwnedBy string       `json:"owned_by"`
	Meta    *engine.Info `json:"meta,omitempty"`
}

func modelOf(info engine.Info) modelBody {
	return modelBody{ID: info.Model, Object: "model", Created: info.LoadedAt.Unix(), OwnedBy: "edgelm", Meta: &info}
}

// handleModels is GET /v1/models: the one loaded model.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	be := s.backend()
	if be == nil {
		writeAPIError(w, errLoading)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelBody{modelOf(be.Info())}})
}

// handleModel is GET /v1/models/{id}.
func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	be := s.backend()
	if be == nil {
		writeAPIError(w, errLoading)
		return
	}
	info := be.Info()
	id := strings.TrimPrefix(r.URL.Path, "/v1/models/")
	if err := checkModel(info, id); err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, modelOf(info))
}

// checkModel accepts a request's "model" when it is empty or names the loaded model: its id (the
// file name), the id without ".gguf", or general.name. Anything else is 404 model_not_found: the
// daemon serves only the model in its config and never opens a file a request names.
func checkModel(info engine.Info, name string) error {
	if name == "" || name == info.Model || name == strings.TrimSuffix(info.Model, ".gguf") || (info.Name != "" && name == info.Name) {
		return nil
	}
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found",
		msg: "the model `" + name + "` does not exist; this daemon serves `" + info.Model + "`"}
}

type tokenizeRequest struct {
	Content      *string `json:"content"`
	AddSpecial   *bool   `json:"add_special"`   // default true: add BOS as the model asks
	ParseSpecial *bool   `json:"parse_special"` // default true: "<start_of_turn>" becomes its special token
	WithPieces   bool    `json:"with_pieces"`
}

type tokenizeResponse struct {
	Tokens []int32  `json:"tokens"`
	Pieces []string `json:"pieces,omitempty"` // with_pieces: each token's text
}

// handleTokenize is POST /v1/tokenize {"content": "..."} -> {"tokens": [...]}.
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	ref := s.acquire()
	if ref == nil {
		writeAPIError(w, errLoading)
		return
	}
	defer s.release(ref)
	var req tokenizeRequest
	if err := decodeBody(r, &req); err != nil {
		writeAPIError(w, err)
		return
	}
	if req.Content == nil { // tokenizing "" would answer [BOS] to a request that forgot its text
		writeAPIError(w, badRequest("invalid_value", "field \"content\" is required"))
		return
	}
	add, parse := true, true
	if req.AddSpecial != nil {
		add = *req.AddSpecial
	}
	if req.ParseSpecial != nil {
		parse = *req.ParseSpecial
	}
	big := len(*req.Content) >= bigText
	if big {
		// The slot is held until the answer is written: the pieces are made as they are sent.
		if err := s.slots.acquire(r.Context()); err != nil {
			writeAPIError(w, err)
			return
		}
		defer s.slots.release()
		defer s.returnMemory()
	}
	ids := ref.b.Tokenize(*req.Content, add, parse)
	writeTokens(w, ids, req.WithPieces, ref.b)
}

// writeTokens writes tokenizeResponse{ids, pieces} as json.Marshal would, but piece by piece:
// the whole answer for 1 MB of text, held at once, was tens of MB per request.
func writeTokens(w http.ResponseWriter, ids []int32, withPieces bool, b Backend) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteString(`{"tokens":[`)
	var num []byte
	for i, t := range ids {
		if i > 0 {
			bw.WriteByte(',')
		}
		num = strconv.AppendInt(num[:0], int64(t), 10)
		bw.Write(num)
	}
	bw.WriteByte(']')
	if withPieces && len(ids) > 0 {
		bw.WriteString(`,"pieces":[`)
		for i, t := range ids {
			if i > 0 {
				bw.WriteByte(',')
			}
			p, _ := json.Marshal(b.Detokenize([]int32{t}))
			bw.Write(p)
		}
		bw.WriteByte(']')
	}
	bw.WriteString("}\n")
	bw.Flush()
}

type detokenizeRequest struct {
	Tokens []int32 `json:"tokens"`
}

// handleDetokenize is POST /v1/detokenize {"tokens": [...]} -> {"content": "..."}.
func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	ref := s.acquire()
	if ref == nil {
		writeAPIError(w, errLoading)
		return
	}
	defer s.release(ref)
	var req detokenizeRequest
	if err := decodeBody(r, &req); err != nil {
		writeAPIError(w, err)
		return
	}
	if err := checkTokens(ref.b.Info(), req.Tokens, "tokens"); err != nil {
		writeAPIError(w, err)
		return
	}
	if len(req.Tokens) >= bigText/4 {
		if err := s.slots.acquire(r.Context()); err != nil {
			writeAPIError(w, err)
			return
		}
		defer s.slots.release()
		defer s.returnMemory()
	}
	writeJSON(w, http.StatusOK, map[string]string{"content": ref.b.Detokenize(req.Tokens)})
}

// checkTokens rejects token ids outside the vocabulary.
func checkTokens(info engine.Info, ids []int32, field string) error {
	for i, t := range ids {
		if t < 0 || (info.VocabSize > 0 && int(t) >= info.VocabSize) {
			return badRequest("invalid_value", "%s[%d]: token id %d is outside the vocabulary (0..%d)", field, i, t, info.VocabSize-1)
		}
	}
	return nil
}
