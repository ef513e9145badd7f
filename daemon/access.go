package daemon

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// logAccess writes the access log line of a request: at info when it succeeded, at warn when the
// client was refused (4xx), at error when the daemon failed it (5xx, or a stream that ended with
// an error event), with the reason. Health checks and scrapes that succeed are logged at debug:
// a load balancer polling every second would drown the rest.
func (s *Server) logAccess(r *http.Request, sw *statusWriter, took time.Duration) {
	status := sw.status()
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case sw.timedOut:
		level = slog.LevelWarn
	case sw.reason != "" && status < 400: // a stream that ended with an error event
		level = slog.LevelError
	case status == 499: // the client went away: its own doing
	case status >= 400:
		level = slog.LevelWarn
	case r.URL.Path == "/health" || r.URL.Path == "/metrics":
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("took", took.Round(time.Microsecond)),
		peerAttr(r),
	}
	if sw.model != "" {
		attrs = append(attrs, slog.String("model", sw.model), slog.Int("prompt_tokens", sw.prompt), slog.Int("completion_tokens", sw.completion))
	}
	if sw.reason != "" {
		attrs = append(attrs, slog.String("reason", sw.reason))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// peerAttr is uid=N for a Unix peer, peer=ADDRESS for TCP.
func peerAttr(r *http.Request) slog.Attr {
	p, ok := r.Context().Value(peerKey).(peer)
	switch {
	case !ok:
		return slog.String("peer", r.RemoteAddr)
	case p.unix && p.credOK:
		return slog.Uint64("uid", uint64(p.uid))
	case p.unix:
		return slog.String("peer", "unix, no credentials")
	}
	return slog.String("peer", p.remote)
}

// genHealth follows generation failures, for /health: the model counts as degraded from a
// generation the daemon failed (500: a fault in the model file, non-finite logits, an engine
// error) until one succeeds. Client errors, timeouts and cancellations say nothing about the model.
type genHealth struct {
	failures atomic.Int64

	mu       sync.Mutex
	failing  bool
	lastErr  string
	lastTime time.Time
}

// generationDone records the outcome of a generation.
func (s *Server) generationDone(err error) {
	g := &s.gen
	if err == nil {
		g.mu.Lock()
		g.failing = false
		g.mu.Unlock()
		return
	}
	if classify(err).status != http.StatusInternalServerError {
		return
	}
	g.failures.Add(1)
	g.mu.Lock()
	g.failing, g.lastErr, g.lastTime = true, err.Error(), time.Now()
	g.mu.Unlock()
}

// resetGeneration forgets the failures of a model that is no longer served.
func (s *Server) resetGeneration() {
	s.gen.mu.Lock()
	s.gen.failing = false
	s.gen.mu.Unlock()
}

// generationState is whether generations are failing now, and the last failure (nil if none).
func (s *Server) generationState() (failing bool, last *lastError) {
	g := &s.gen
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastErr != "" {
		last = &lastError{Time: g.lastTime, Message: g.lastErr}
	}
	return g.failing, last
}

// lastError is the last failed generation, on /health.
type lastError struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}
