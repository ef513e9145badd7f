package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"sync"

	"edgelm/engine"
)

// embeddingsRequest is POST /v1/embeddings.
type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`           // a string, strings, token ids, or lists of token ids
	EncodingFormat string          `json:"encoding_format"` // "float" (default) or "base64"
	Dimensions     *int            `json:"dimensions"`      // only the model's own width is accepted
	Normalize      *bool           `json:"normalize"`       // edgelm: false returns the pooled vector as is
}

// maxEmbedInputs bounds the inputs of one request, as OpenAI does.
const maxEmbedInputs = 2048

// embedParallel is how many inputs of one request are queued in the engine at once: enough to fill
// a step's sequences, few enough to leave queue room for other clients.
const embedParallel = 4

type embeddingItem struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string of little-endian float32s
}

type embeddingsBody struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// handleEmbeddings is POST /v1/embeddings: one vector per input, pooled as the model's
// pooling_type says and L2-normalized unless "normalize": false.
func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req embeddingsRequest
	if err := decodeBody(r, &req); err != nil {
		writeAPIError(w, err)
		return
	}
	ref, err := s.modelFor(req.Model)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	defer s.release(ref)
	rt := s.cfg.Load()
	info := ref.b.Info()
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		writeAPIError(w, badRequest("invalid_value", "encoding_format %q: want \"float\" or \"base64\"", req.EncodingFormat))
		return
	}
	if req.Dimensions != nil && *req.Dimensions != info.EmbeddingLength {
		writeAPIError(w, badRequest("invalid_value", "dimensions %d: this model's embeddings have %d (they cannot be shortened)", *req.Dimensions, info.EmbeddingLength))
		return
	}
	prompts, err := s.embedPrompts(r.Context(), rt, ref, req.Input, false)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	vecs, n, err := s.embedAll(r.Context(), rt, ref, prompts, req.Normalize == nil || *req.Normalize)
	if err != nil {
		writeAPIError(w, shutdownCause(r, err))
		return
	}
	noteEmbed(w, info, n)
	body := embeddingsBody{Object: "list", Data: make([]embeddingItem, len(vecs)), Model: info.Model}
	for i, v := range vecs {
		body.Data[i] = embeddingItem{Object: "embedding", Index: i, Embedding: v}
		if req.EncodingFormat == "base64" {
			body.Data[i].Embedding = base64Floats(v)
		}
	}
	body.Usage.PromptTokens, body.Usage.TotalTokens = n, n
	writeJSON(w, http.StatusOK, body)
}

// embedPrompts reads an "input" field (a string, a list of strings, a list of token ids, or a list
// of lists of token ids) into token-id prompts. Text is tokenized with BOS, and EOS, as the model
// asks and special-token texts left as text: inputs are data, not chat markup. Token ids are
// taken as they are. A prompt longer than the
// prompt limit is cut to it when truncate is set, else refused.
func (s *Server) embedPrompts(ctx context.Context, rt *runtime, ref *backendRef, raw json.RawMessage, truncate bool) ([][]int32, error) {
	raw = bytes.TrimSpace(raw)
	var texts []string
	var lists [][]int32
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, badRequest("invalid_value", "field \"input\" is required")
	case raw[0] == '"':
		var t string
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, badRequest("invalid_type", "field \"input\": %v", err)
		}
		texts = []string{t}
	case raw[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, badRequest("invalid_type", "field \"input\": %v", err)
		}
		if len(items) == 0 {
			return nil, badRequest("invalid_value", "field \"input\" is an empty array")
		}
		if len(items) > maxEmbedInputs {
			return nil, badRequest("invalid_value", "field \"input\": %d inputs, at most %d", len(items), maxEmbedInputs)
		}
		first := bytes.TrimSpace(items[0])
		var err error
		switch {
		case len(first) > 0 && first[0] == '"':
			err = json.Unmarshal(raw, &texts)
		case len(first) > 0 && first[0] == '[':
			err = json.Unmarshal(raw, &lists)
		default:
			var ids []int32
			err = json.Unmarshal(raw, &ids)
			lists = [][]int32{ids}
		}
		if err != nil {
			return nil, badRequest("invalid_type", "field \"input\": want a string, an array of strings, an array of token ids or an array of arrays of token ids")
		}
	default:
		return nil, badRequest("invalid_type", "field \"input\": want a string, an array of strings or token ids")
	}
	info := ref.b.Info()
	for i, t := range texts {
		if t == "" {
			return nil, badRequest("invalid_value", "input[%d] is an empty string", i)
		}
		if !truncate {
			if err := checkPromptText(rt, info, ref.b, t); err != nil {
				return nil, badRequest("context_length_exceeded", "input[%d]: %v", i, err)
			}
		}
		ids, err := s.tokenize(ctx, ref.b, t, true, false)
		if err != nil {
			return nil, err
		}
		if info.AddEOS && (len(ids) == 0 || ids[len(ids)-1] != info.EOS) {
			ids = append(ids, info.EOS) // as llama.cpp adds it: the token last-token pooling reads
		}
		lists = append(lists, ids)
	}
	maxPrompt := promptLimit(rt, info)
	for i, ids := range lists {
		if len(ids) == 0 {
			return nil, badRequest("invalid_value", "input[%d] has no tokens", i)
		}
		if err := checkTokens(info, ids, "input"); err != nil {
			return nil, err
		}
		if maxPrompt > 0 && len(ids) > maxPrompt {
			if !truncate {
				return nil, badRequest("context_length_exceeded", "input[%d] has %d tokens; the limit is %d", i, len(ids), maxPrompt)
			}
			lists[i] = ids[:maxPrompt]
		}
	}
	return lists, nil
}

// embedAll embeds every prompt, a few at a time, and returns the vectors in order with the number
// of tokens they took. The first failure cancels the rest and is returned.
func (s *Server) embedAll(ctx context.Context, rt *runtime, ref *backendRef, prompts [][]int32, normalize bool) ([][]float32, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	if rt.s.RequestTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, rt.s.RequestTimeout)
	}
	defer cancel()
	vecs := make([][]float32, len(prompts))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		tokens   int
	)
	sem := make(chan struct{}, embedParallel)
	for i, p := range prompts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			emb, err := ref.b.Embed(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				cancel()
				return
			}
			if normalize {
				l2normalize(emb.Vector)
			}
			vecs[i] = emb.Vector
			tokens += emb.PromptTokens
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, 0, firstErr
	}
	s.metrics.promptTokens.Add(int64(tokens))
	return vecs, tokens, nil
}

// noteEmbed tells the access log which model embedded how many tokens.
func noteEmbed(w http.ResponseWriter, info engine.Info, tokens int) {
	if sw := noteOf(w); sw != nil {
		sw.model, sw.prompt = info.Model, tokens
	}
}

// l2normalize scales v to unit Euclidean length; a zero vector stays zero.
func l2normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	k := 1 / math.Sqrt(ss)
	for i, x := range v {
		v[i] = float32(float64(x) * k)
	}
}

// base64Floats is OpenAI's encoding_format "base64": the float32s in little-endian order.
func base64Floats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
