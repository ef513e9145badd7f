package daemon

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// ReloadStatus is the outcome of the last configuration reload, shown on /health and /metrics.
type ReloadStatus struct {
	OK    bool      `json:"ok"`
	Time  time.Time `json:"time"`
	Error string    `json:"error,omitempty"`
	// ModelSwapped is true when the reload loaded a new model and switched requests to it.
	ModelSwapped bool `json:"model_swapped,omitempty"`
}

// reloadState is what /health and /metrics report about reloads.
type reloadState struct {
	last        atomic.Pointer[ReloadStatus]
	lastSuccess atomic.Int64 // unix nanoseconds of the last configuration put in force
	ok, failed  atomic.Int64
	swaps       atomic.Int64
}

// configLoaded records that a configuration was put in force without a reload (start-up).
func (s *Server) configLoaded(t time.Time) { s.reloads.lastSuccess.Store(t.UnixNano()) }

// setReloadStatus records the outcome of a reload.
func (s *Server) setReloadStatus(st ReloadStatus) {
	s.reloads.last.Store(&st)
	if !st.OK {
		s.reloads.failed.Add(1)
		return
	}
	s.reloads.ok.Add(1)
	s.reloads.lastSuccess.Store(st.Time.UnixNano())
	if st.ModelSwapped {
		s.reloads.swaps.Add(1)
	}
}

// reloadStatus is the last reload's outcome, nil when there was none.
func (s *Server) reloadStatus() *ReloadStatus { return s.reloads.last.Load() }

// writeReloadMetrics adds the reload metrics, named as Prometheus names its own.
func (s *Server) writeReloadMetrics(metric func(name, typ, help string), value func(name string, v any)) {
	ok := 1
	if st := s.reloadStatus(); st != nil && !st.OK {
		ok = 0
	}
	metric("edgelm_config_last_reload_successful", "gauge", "1 when the last configuration reload succeeded (or none was tried), 0 when it failed and the previous configuration is serving.")
	value("edgelm_config_last_reload_successful", ok)
	metric("edgelm_config_last_reload_success_timestamp_seconds", "gauge", "Unix time the configuration in force was loaded.")
	value("edgelm_config_last_reload_success_timestamp_seconds", fmt.Sprintf("%.3f", float64(s.reloads.lastSuccess.Load())/1e9))
	metric("edgelm_config_reloads_total", "counter", "Configuration reloads, by result.")
	value(`edgelm_config_reloads_total{result="success"}`, s.reloads.ok.Load())
	value(`edgelm_config_reloads_total{result="failure"}`, s.reloads.failed.Load())
	metric("edgelm_model_swaps_total", "counter", "Reloads that switched to a newly loaded model.")
	value("edgelm_model_swaps_total", s.reloads.swaps.Load())
}

// requestsAnswered counts the API requests (/v1/...) answered so far, for systemd's STATUS line;
// health checks and scrapes are left out.
func (s *Server) requestsAnswered() int64 {
	s.metrics.mu.Lock()
	defer s.metrics.mu.Unlock()
	var n int64
	for k, v := range s.metrics.requests {
		if strings.HasPrefix(k.endpoint, "/v1/") {
			n += v
		}
	}
	return n
}
