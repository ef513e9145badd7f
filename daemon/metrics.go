package daemon

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"edgelm/engine"
)

// metrics are the daemon's own counters; the engine's come from Backend.Stats at scrape time.
type metrics struct {
	mu       sync.Mutex
	requests map[reqKey]int64

	inFlight         atomic.Int64
	forbidden        atomic.Int64
	slowClients      atomic.Int64 // requests dropped by the write deadline
	promptTokens     atomic.Int64
	completionTokens atomic.Int64
	// Chats answered with their oldest messages left out, and how many messages that left out.
	truncatedRequests atomic.Int64
	truncatedMessages atomic.Int64
}

type reqKey struct {
	endpoint string
	code     int
}

func newMetrics() *metrics { return &metrics{requests: map[reqKey]int64{}} }

func (m *metrics) request(endpoint string, code int) {
	m.mu.Lock()
	m.requests[reqKey{endpoint, code}]++
	m.mu.Unlock()
}

// handleMetrics writes the Prometheus text exposition format (version 0.0.4).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	value := func(name string, v any) { fmt.Fprintf(&b, "%s %v\n", name, v) }

	metric("edgelm_requests_total", "counter", "HTTP requests answered, by endpoint and status code.")
	s.metrics.mu.Lock()
	keys := make([]reqKey, 0, len(s.metrics.requests))
	for k := range s.metrics.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].endpoint != keys[j].endpoint {
			return keys[i].endpoint < keys[j].endpoint
		}
		return keys[i].code < keys[j].code
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "edgelm_requests_total{endpoint=%q,code=\"%d\"} %d\n", k.endpoint, k.code, s.metrics.requests[k])
	}
	s.metrics.mu.Unlock()

	metric("edgelm_requests_in_flight", "gauge", "HTTP requests being answered now (this scrape included).")
	value("edgelm_requests_in_flight", s.metrics.inFlight.Load())
	metric("edgelm_forbidden_total", "counter", "Connections refused by the peer-credential check.")
	value("edgelm_forbidden_total", s.metrics.forbidden.Load())
	metric("edgelm_slow_clients_dropped_total", "counter", "Requests dropped because the client stopped reading the response (write deadline).")
	value("edgelm_slow_clients_dropped_total", s.metrics.slowClients.Load())
	metric("edgelm_generation_failures_total", "counter", "Generations the daemon failed (500s, and streams ended by an error event).")
	value("edgelm_generation_failures_total", s.gen.failures.Load())
	metric("edgelm_prompt_tokens_total", "counter", "Prompt tokens of completed API requests (tokens in).")
	value("edgelm_prompt_tokens_total", s.metrics.promptTokens.Load())
	metric("edgelm_completion_tokens_total", "counter", "Tokens generated for API requests (tokens out).")
	value("edgelm_completion_tokens_total", s.metrics.completionTokens.Load())
	metric("edgelm_chat_truncated_requests_total", "counter", "Chat requests answered with their oldest messages left out to fit the context.")
	value("edgelm_chat_truncated_requests_total", s.metrics.truncatedRequests.Load())
	metric("edgelm_chat_truncated_messages_total", "counter", "Chat messages left out to fit the context.")
	value("edgelm_chat_truncated_messages_total", s.metrics.truncatedMessages.Load())
	metric("edgelm_uptime_seconds", "gauge", "Seconds since the daemon started.")
	value("edgelm_uptime_seconds", fmt.Sprintf("%.3f", time.Since(s.started).Seconds()))
	s.writeReloadMetrics(metric, value)

	loaded, labeled, rs := s.loadedModels()
	defer s.unhold(loaded...)
	metric("edgelm_model_loaded", "gauge", "1 when a model is loaded and serving, 0 while loading (or, serving a models directory, while none is loaded).")
	if len(loaded) == 0 {
		value("edgelm_model_loaded", 0)
	} else {
		value("edgelm_model_loaded", 1)
	}
	if labeled {
		metric("edgelm_models_loaded", "gauge", "Models of the models directory loaded now.")
		value("edgelm_models_loaded", len(loaded))
		metric("edgelm_model_loads_total", "counter", "Models loaded on demand.")
		value("edgelm_model_loads_total", rs.loads)
		metric("edgelm_model_load_failures_total", "counter", "Loads on demand that failed.")
		value("edgelm_model_load_failures_total", rs.loadFailures)
		metric("edgelm_model_load_seconds_total", "counter", "Seconds spent loading models on demand (to ready, before any request's step).")
		value("edgelm_model_load_seconds_total", fmt.Sprintf("%.6f", rs.loadSeconds))
		metric("edgelm_model_unloads_total", "counter", "Models unloaded: for room, keep_alive, a changed or removed file, new engine options.")
		value("edgelm_model_unloads_total", rs.unloads)
	}
	stats := make([]engine.Stats, len(loaded))
	for i, m := range loaded {
		stats[i] = m.b.Stats()
	}
	rate := func(n int64, sec float64) string {
		if sec <= 0 {
			return "0"
		}
		return fmt.Sprintf("%.3f", float64(n)/sec)
	}
	for _, m := range []struct {
		name, typ, help string
		v               func(st engine.Stats) any
	}{
		{"edgelm_engine_requests_total", "counter", "Requests the engine finished.", func(st engine.Stats) any { return st.Requests }},
		{"edgelm_engine_prompt_tokens_total", "counter", "Prompt tokens submitted to the engine.", func(st engine.Stats) any { return st.PromptTokens }},
		{"edgelm_engine_prefill_tokens_total", "counter", "Prompt tokens computed (not reused from the prefix cache).", func(st engine.Stats) any { return st.PrefillTokens }},
		{"edgelm_engine_generated_tokens_total", "counter", "Tokens generated by the engine.", func(st engine.Stats) any { return st.GeneratedTokens }},
		{"edgelm_engine_prefill_seconds_total", "counter", "Seconds spent in steps that prefilled.", func(st engine.Stats) any { return fmt.Sprintf("%.6f", st.PrefillSeconds) }},
		{"edgelm_engine_decode_seconds_total", "counter", "Seconds spent in decode-only steps.", func(st engine.Stats) any { return fmt.Sprintf("%.6f", st.DecodeSeconds) }},
		{"edgelm_prefill_tokens_per_second", "gauge", "Prefill throughput since load (prefill tokens / prefill seconds).", func(st engine.Stats) any { return rate(st.PrefillTokens, st.PrefillSeconds) }},
		{"edgelm_engine_decode_tokens_total", "counter", "Tokens computed in decode-only steps (cancelled requests' included).", func(st engine.Stats) any { return st.DecodeTokens }},
		{"edgelm_decode_tokens_per_second", "gauge", "Decode throughput since load (tokens of decode-only steps / their seconds).", func(st engine.Stats) any { return rate(st.DecodeTokens, st.DecodeSeconds) }},
		{"edgelm_queue_depth", "gauge", "Requests waiting for a sequence slot.", func(st engine.Stats) any { return st.QueueDepth }},
		{"edgelm_active_sequences", "gauge", "Sequences being decoded.", func(st engine.Stats) any { return st.ActiveSequences }},
		{"edgelm_kv_bytes", "gauge", "Bytes held by KV caches, live and prefix-cached.", func(st engine.Stats) any { return st.KVBytes }},
		{"edgelm_kv_budget_bytes", "gauge", "KV cache budget in bytes (0: no cap).", func(st engine.Stats) any { return st.KVBudget }},
		{"edgelm_kv_bytes_per_token", "gauge", "KV cache bytes per cached token.", func(st engine.Stats) any { return st.KVBytesPerToken }},
		{"edgelm_prefix_cache_hits_total", "counter", "Requests that reused a cached prompt prefix.", func(st engine.Stats) any { return st.PrefixHits }},
		{"edgelm_prefix_cache_tokens_total", "counter", "Prompt tokens reused from the prefix cache.", func(st engine.Stats) any { return st.PrefixTokens }},
		{"edgelm_prefix_cache_evictions_total", "counter", "Prefix cache entries evicted.", func(st engine.Stats) any { return st.PrefixEvictions }},
		{"edgelm_kv_shifts_total", "counter", "Times a full sequence dropped tokens from the middle of its cache to go on (kv_policy sink-window).", func(st engine.Stats) any { return st.KVShifts }},
		{"edgelm_kv_shifted_tokens_total", "counter", "Tokens those shifts dropped.", func(st engine.Stats) any { return st.KVShiftedTokens }},
		{"edgelm_model_bytes", "gauge", "Bytes of the model file mapped.", func(st engine.Stats) any { return st.ModelBytes }},
		{"edgelm_model_huge_page_bytes", "gauge", "Bytes of the model mapped in 2 MB pages (of those read so far); decode is faster the more.", func(st engine.Stats) any { return st.ModelHugeBytes }},
	} {
		if len(loaded) == 0 {
			break
		}
		metric(m.name, m.typ, m.help)
		for i, lm := range loaded {
			if labeled {
				// One series per loaded model of a models directory; the one model of
				// `serve --model` keeps the plain names.
				fmt.Fprintf(&b, "%s{model=%q} %v\n", m.name, lm.id, m.v(stats[i]))
			} else {
				value(m.name, m.v(stats[i]))
			}
		}
	}
	writeMetrics(w, b.String())
}

func writeMetrics(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	io.WriteString(w, text)
}
