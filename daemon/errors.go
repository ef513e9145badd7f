package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"edgelm/engine"
)

// apiError is an error with the HTTP status and OpenAI error type and code it is reported with.
type apiError struct {
	status     int
	typ, code  string
	msg        string
	retryAfter string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: code, msg: fmt.Sprintf(format, args...)}
}

var errLoading = &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "model_loading",
	msg: "the model is still loading; retry shortly", retryAfter: "5"}

// errorBody is OpenAI's error shape.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

func newErrorBody(typ, code, msg string) errorBody {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Code = msg, typ, code
	return b
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, newErrorBody(typ, code, msg))
}

// writeAPIError reports err, which is an *apiError or is classified by classify.
func writeAPIError(w http.ResponseWriter, err error) {
	e := classify(err)
	if sw := noteOf(w); sw != nil {
		sw.reason = e.msg
	}
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	writeError(w, e.status, e.typ, e.code, e.msg)
}

// classify maps errors from decoding and from the engine to HTTP statuses.
func classify(err error) *apiError {
	var ae *apiError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mb):
		return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
			msg: fmt.Sprintf("request body larger than %d bytes", mb.Limit)}
	case errors.Is(err, engine.ErrQueueFull):
		return &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "queue_full",
			msg: "too many requests waiting; retry shortly", retryAfter: "1"}
	case errors.Is(err, engine.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "model_unavailable",
			msg: "the model is being unloaded; retry shortly", retryAfter: "5"}
	case errors.Is(err, engine.ErrContextFull):
		// Only with kv_policy "none": the sequence reached the context and may not drop tokens.
		return badRequest("context_length_exceeded", "%v", err)
	case errors.Is(err, engine.ErrBudget):
		return badRequest("kv_budget_exceeded", "%v (lower max_tokens or raise kv_budget)", err)
	case errors.Is(err, engine.ErrPromptTooLong):
		return badRequest("context_length_exceeded", "%v", err)
	case errors.Is(err, engine.ErrGrammar):
		return badRequest("grammar_dead_end", "%v: the schema is too ambiguous for edgelm to follow (anyOf alternatives alike, deeply nested), or the vocabulary cannot spell what it requires", err)
	case errors.Is(err, engine.ErrNonFinite):
		return &apiError{status: http.StatusInternalServerError, typ: "server_error", code: "model_error",
			msg: "the model produced non-finite logits (NaN or Inf) for this request; its weights may be corrupt (check the model file, or reload it)"}
	case errors.Is(err, engine.ErrInvalidRequest):
		return badRequest("invalid_value", "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, typ: "server_error", code: "timeout", msg: "the request took longer than the configured request timeout"}
	case errors.Is(err, context.Canceled):
		// The client is gone; the status is only seen by metrics. 499 as nginx has it.
		return &apiError{status: 499, typ: "server_error", code: "canceled", msg: "request canceled"}
	}
	return &apiError{status: http.StatusInternalServerError, typ: "server_error", code: "internal_error", msg: err.Error()}
}

// decodeBody reads one JSON object from r's body into v. Syntax errors, wrong field types and
// trailing data are 400s naming the problem; a body over the limit is 413. Unknown fields are
// ignored, as OpenAI clients send fields edgelm has no use for (user, n=1, ...).
func decodeBody(r *http.Request, v any) error {
	// The body is bounded by MaxBytesReader; reading it whole lets the nesting be checked before
	// any decoding, so a deeply nested body costs one linear scan.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return jsonError(err)
	}
	if err := checkDepth(body, maxJSONDepth); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		if err == nil {
			return badRequest("invalid_json", "request body has data after the JSON object")
		}
		return jsonError(err)
	}
	return nil
}

// maxJSONDepth bounds the nesting of arrays and objects in a request body. The deepest valid
// request (a tool's JSON schema) stays far below it.
const maxJSONDepth = 64

// checkDepth rejects JSON nested deeper than max. It only counts brackets outside strings; the
// decoder that follows reports any other syntax error.
func checkDepth(b []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return badRequest("invalid_json", "request body is nested more than %d levels deep", max)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

func jsonError(err error) error {
	var mb *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mb):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("invalid_json", "request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "request body is truncated JSON")
	case errors.As(err, &se):
		return badRequest("invalid_json", "request body is not valid JSON: %v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		// Fields of embedded structs come prefixed with the Go type's name.
		field := strings.TrimPrefix(te.Field, "commonFields.")
		if field == "" {
			return badRequest("invalid_type", "request body must be a JSON object, not %s", te.Value)
		}
		return badRequest("invalid_type", "field %q: got %s, want %s", field, te.Value, jsonKind(te.Type.String()))
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return badRequest("invalid_json", "request body: %v", err)
}

// jsonKind names a Go type the way a JSON user thinks of it.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	case goType == "bool":
		return "a boolean"
	case goType == "string":
		return "a string"
	}
	return goType
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(newErrorBody("server_error", "internal_error", "encoding the response: "+err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
