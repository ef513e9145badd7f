// Package daemon serves a loaded model over HTTP/1.1 on a Unix socket with an OpenAI-compatible
// API: /v1/completions, /v1/chat/completions (both with Server-Sent-Event streaming),
// /v1/embeddings, /v1/models, /v1/tokenize, /v1/detokenize, /health and /metrics; and Ollama's API
// under /api (ollama.go).
//
// The daemon decides nothing about inference: it checks who is calling (SO_PEERCRED against the
// allowed uids/gids), parses and bounds the request, turns it into an engine.Request and turns the
// engine's events and result back into OpenAI-shaped JSON. Batching and scheduling happen inside
// the engine, whose Generate many handlers call at once.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the HTTP front of one model. Its methods are safe for concurrent use.
type Server struct {
	log     *slog.Logger
	cfg     atomic.Pointer[runtime]
	metrics *metrics
	started time.Time

	reloads reloadState // the service's configuration reloads (service.go), for /health and /metrics
	gen     genHealth   // recent generation failures, for /health
	slots   tokenSlots  // big tokenizations at once (memory.go)
	freeing atomic.Bool // a return of memory to the OS is scheduled

	mu  sync.Mutex // guards cur and the reference counts of every backendRef
	cur *backendRef
}

// runtime is the live part of the settings, swapped whole by Apply.
type runtime struct {
	s    Settings // with defaults applied
	uids map[uint32]bool
	gids map[uint32]bool
}

// backendRef counts the requests using one backend, so a swapped-out backend can be closed once
// the last of them finishes.
type backendRef struct {
	b       Backend
	n       int
	retired bool
	idle    chan struct{}

	refOnce sync.Once
	ref     int32  // a token decoding to plain text, for job.piece
	refText string // its text; "" if none was found
}

// pieceRef finds, once per backend, a token that decodes to plain text on its own.
func (r *backendRef) pieceRef() (int32, string) {
	r.refOnce.Do(func() {
		// The last token of "a" is "a" or "▁a" (SentencePiece may split off the space prefix).
		if ids := r.b.Tokenize("a", false, false); len(ids) > 0 {
			r.ref = ids[len(ids)-1]
			r.refText = r.b.Detokenize([]int32{r.ref})
		}
	})
	return r.ref, r.refText
}

// New makes a server for backend b, which may be nil while the model is still loading (requests
// that need a model then get 503 and /health says "loading"); SetBackend provides it later.
// s is validated as Apply does; a nil logger discards logs.
func New(b Backend, s Settings, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &Server{log: logger, metrics: newMetrics(), started: time.Now(), slots: newTokenSlots()}
	srv.cfg.Store(newRuntime(s))
	if b != nil {
		srv.cur = &backendRef{b: b, idle: make(chan struct{})}
	}
	return srv
}

func newRuntime(s Settings) *runtime {
	s = s.withDefaults()
	rt := &runtime{s: s, uids: map[uint32]bool{}, gids: map[uint32]bool{}}
	for _, u := range s.AllowedUIDs {
		rt.uids[u] = true
	}
	for _, g := range s.AllowedGIDs {
		rt.gids[g] = true
	}
	return rt
}

// Apply switches to new limits, allowed peers, sampling defaults and chat template at once;
// requests already running keep the settings they started with. Socket, TCP, model and engine
// options are not changed by Apply (they need a restart or a model reload). Invalid settings are
// rejected and the old ones stay.
func (s *Server) Apply(set Settings) error {
	if err := set.Validate(); err != nil {
		return err
	}
	s.cfg.Store(newRuntime(set))
	return nil
}

// Settings returns the settings in force, defaults filled in.
func (s *Server) Settings() Settings { return s.cfg.Load().s }

// SetBackend makes b serve new requests. Requests running on the previous backend finish on it;
// idle is closed when the last of them has (at once if none), after which the caller may close
// old. old is nil (and idle closed) when there was none.
func (s *Server) SetBackend(b Backend) (old Backend, idle <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.cur
	s.cur = nil
	s.resetGeneration() // failures of the old model say nothing about the new one
	if b != nil {
		s.cur = &backendRef{b: b, idle: make(chan struct{})}
	}
	if prev == nil {
		c := make(chan struct{})
		close(c)
		return nil, c
	}
	prev.retired = true
	if prev.n == 0 {
		close(prev.idle)
	}
	return prev.b, prev.idle
}

// acquire returns the current backend and counts the caller as using it; nil when loading.
func (s *Server) acquire() *backendRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.n++
	}
	return s.cur
}

func (s *Server) release(r *backendRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.n--
	if r.n == 0 && r.retired {
		close(r.idle)
	}
}

// backend returns the current backend without holding it, for quick reads (health, metrics).
func (s *Server) backend() Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	return s.cur.b
}

type ctxKey int

const peerKey ctxKey = 0

// Serve answers HTTP on l until ctx ends, then shuts down gracefully: it stops accepting, lets
// requests in flight finish for up to the shutdown grace period, then cancels the rest (the engine
// drops them at its next step) and returns nil. Serve may be called for several listeners at once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	rt := s.cfg.Load()
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       rt.s.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey, peerOf(c))
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("daemon: serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	grace := s.cfg.Load().s.ShutdownGrace
	s.log.Info("shutting down", "listener", l.Addr().String(), "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("requests still running after the grace period; cancelling them", "err", err)
		// The cause tells the handlers to answer 503 (or end their stream with an error event)
		// rather than drop the connection; they get a moment to write it before it is closed.
		cancelBase(errShuttingDown)
		fctx, fcancel := context.WithTimeout(context.Background(), shutdownFlush)
		hs.Shutdown(fctx)
		fcancel()
		hs.Close()
	}
	<-errc
	return nil
}

// shutdownFlush is how long requests cut at the end of the grace period have to write their 503
// or stream error event before their connections are closed.
const shutdownFlush = 2 * time.Second

var errShuttingDown = &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "shutting_down",
	msg: "the daemon is shutting down and the request did not finish within the shutdown grace period; retry shortly", retryAfter: "5"}

// route is one endpoint.
type route struct {
	method string
	h      func(w http.ResponseWriter, r *http.Request)
}

// Handler returns the HTTP handler with access control, body limits and metrics; Serve uses it.
// Without Serve's connection context (tests, other transports) every peer counts as a TCP peer.
func (s *Server) Handler() http.Handler {
	routes := map[string]route{
		"/health":              {http.MethodGet, s.handleHealth},
		"/metrics":             {http.MethodGet, s.handleMetrics},
		"/v1/models":           {http.MethodGet, s.handleModels},
		"/v1/completions":      {http.MethodPost, s.handleCompletions},
		"/v1/chat/completions": {http.MethodPost, s.handleChat},
		"/v1/tokenize":         {http.MethodPost, s.handleTokenize},
		"/v1/detokenize":       {http.MethodPost, s.handleDetokenize},
		"/v1/embeddings":       {http.MethodPost, s.handleEmbeddings},
	}
	s.ollamaRoutes(routes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := s.cfg.Load()
		endpoint := r.URL.Path
		rte, ok := routes[r.URL.Path]
		if !ok && strings.HasPrefix(r.URL.Path, "/v1/models/") {
			rte, ok, endpoint = route{http.MethodGet, s.handleModel}, true, "/v1/models/{id}"
		}
		if !ok {
			endpoint = "other"
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: rt.s.WriteTimeout, slow: &s.metrics.slowClients}
		// A deadline left by the previous request on this connection must not cut this one.
		sw.rc.SetWriteDeadline(time.Time{})
		s.metrics.inFlight.Add(1)
		defer func() {
			s.metrics.inFlight.Add(-1)
			s.metrics.request(endpoint, sw.status())
			s.logAccess(r, sw, time.Since(start))
		}()

		fail := writeError
		if strings.HasPrefix(r.URL.Path, "/api/") {
			fail = writeOllamaRouteError // Ollama's clients read {"error": "..."}
		}
		if !s.allowed(rt, r) {
			fail(sw, http.StatusForbidden, "permission_error", "forbidden", "this user is not allowed to use the edgelm daemon (see allowed_uids and allowed_gids)")
			return
		}
		if !ok {
			fail(sw, http.StatusNotFound, "invalid_request_error", "not_found", fmt.Sprintf("unknown endpoint %s %s", r.Method, r.URL.Path))
			return
		}
		if r.Method != rte.method && !(rte.method == http.MethodGet && r.Method == http.MethodHead) {
			sw.Header().Set("Allow", rte.method)
			fail(sw, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", fmt.Sprintf("%s takes %s, not %s", r.URL.Path, rte.method, r.Method))
			return
		}
		// ReadHeaderTimeout stops at the headers, so a client that sends headers and then stalls
		// its body would hold a connection and a goroutine forever (faults.TestSlowBody). The
		// body gets its own deadline here rather than a server-wide ReadTimeout so that it is
		// lifted as soon as the body is in and never lingers over a long stream.
		rc := http.NewResponseController(sw)
		if rc.SetReadDeadline(time.Now().Add(bodyReadTimeout)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		r.Body = http.MaxBytesReader(sw, r.Body, rt.s.MaxBodyBytes)
		rte.h(sw, r)
	})
}

// bodyReadTimeout bounds the time from the end of the headers to the end of the body, as
// ReadHeaderTimeout bounds the headers. A body over the 1 MiB default takes milliseconds on a
// Unix socket.
const bodyReadTimeout = 10 * time.Second

// deadlineBody lifts the connection's read deadline when the body ends, so a long stream that
// follows is not cut off by it. After a failed read the deadline stays: the connection is done.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

// Read passes the body through; a body that missed its deadline is a 408 request_timeout.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = &apiError{status: http.StatusRequestTimeout, typ: "invalid_request_error", code: "request_timeout",
			msg: fmt.Sprintf("request body not received within %v of the headers", bodyReadTimeout)}
	}
	return n, err
}

// allowed checks the peer of a Unix socket against the allowed uids and gids (its primary group
// and its supplementary groups, so `usermod -aG` works) and logs refusals. TCP peers are
// allowed: TCP is loopback-only and off unless configured.
func (s *Server) allowed(rt *runtime, r *http.Request) bool {
	p, ok := r.Context().Value(peerKey).(peer)
	if !ok || !p.unix {
		return true
	}
	if p.credOK && (rt.uids[p.uid] || rt.gids[p.gid]) {
		return true
	}
	if p.credOK {
		for _, g := range p.groups {
			if rt.gids[g] {
				return true
			}
		}
	}
	s.metrics.forbidden.Add(1)
	if !p.credOK {
		s.log.Warn("refused a peer whose credentials could not be read", "path", r.URL.Path)
		return false
	}
	s.log.Warn("refused a peer not in allowed_uids/allowed_gids", "uid", p.uid, "gid", p.gid, "groups", fmt.Sprint(p.groups), "pid", p.pid, "path", r.URL.Path)
	return false
}

// statusWriter remembers the status code and what the access log says about a request, and puts
// a deadline on every write and flush so that a client that stops reading is dropped instead of
// holding its handler (and the model mapping it uses) forever. Unwrap lets
// http.ResponseController reach the connection.
type statusWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController // of the ResponseWriter underneath
	timeout  time.Duration
	slow     *atomic.Int64 // counts requests dropped for not reading
	code     int
	timedOut bool

	// For the access log, filled in by the handlers.
	model              string
	prompt, completion int
	reason             string // why the request failed
}

// noteOf finds the request's statusWriter under w; nil outside Handler.
func noteOf(w http.ResponseWriter) *statusWriter {
	for {
		switch t := w.(type) {
		case *statusWriter:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

func (w *statusWriter) deadline() {
	if w.rc != nil && w.timeout > 0 {
		w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
}

// failedWrite counts a client dropped by the write deadline, once per request.
func (w *statusWriter) failedWrite(err error) {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !w.timedOut {
		w.timedOut = true
		if w.slow != nil {
			w.slow.Add(1)
		}
		if w.reason == "" {
			w.reason = fmt.Sprintf("client did not read the response for %v; dropped", w.timeout)
		}
	}
}

// FlushError is what http.ResponseController.Flush calls: the flush is where a stream's bytes
// reach the connection, so it gets the deadline too.
func (w *statusWriter) FlushError() error {
	w.deadline()
	err := w.rc.Flush()
	w.failedWrite(err)
	return err
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.deadline()
	n, err := w.ResponseWriter.Write(b)
	w.failedWrite(err)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// LogLevel parses a Settings.LogLevel for slog.
func LogLevel(name string) slog.Level {
	switch name {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
