package daemon

import (
	"time"

	"edgelm/engine"
)

// The one lookup every endpoint uses is modelFor (registry.go). These describe the registry's
// models for the listings of Ollama's API.

// listedModel is a model a request may name: as its engine describes it while loaded, else by id,
// file and size only.
type listedModel struct {
	info    engine.Info
	loaded  bool
	expires time.Time // when keep_alive will unload it; zero: not planned
}

// listed describes every model a request may name (/api/tags), sorted by id.
func (s *Server) listed() []engine.Info {
	var out []engine.Info
	for _, m := range s.describeModels() {
		out = append(out, m.info)
	}
	return out
}

func (s *Server) describeModels() []listedModel {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []listedModel
	for _, id := range s.reg.ids() {
		e := s.reg.entries[id]
		if e.ref == nil {
			out = append(out, listedModel{info: engine.Info{Path: e.path, Model: id, FileBytes: e.size}})
			continue
		}
		m := listedModel{info: e.ref.b.Info(), loaded: true}
		if !e.pinned && e.keep >= 0 && e.ref.n == 0 {
			m.expires = e.used.Add(e.keep)
		}
		out = append(out, m)
	}
	return out
}
