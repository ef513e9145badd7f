package daemon

import (
	"strings"

	"edgelm/engine"
)

// modelFor returns the backend serving a request that names model name, counted as in use until
// s.release: 503 while the model loads, 404 for a name this daemon does not serve. The
// embeddings and Ollama endpoints choose their model here and nowhere else. Ollama's clients add
// the tag ":latest" to a name without one, so that tag is ignored.
func (s *Server) modelFor(name string) (*backendRef, error) {
	ref := s.acquire()
	if ref == nil {
		return nil, errLoading
	}
	if err := checkModel(ref.b.Info(), strings.TrimSuffix(name, ":latest")); err != nil {
		s.release(ref)
		return nil, err
	}
	return ref, nil
}

// listed describes every model a request may name (/api/tags), loaded describes those in memory
// (/api/ps): the one model, once it has loaded.
func (s *Server) listed() []engine.Info {
	if be := s.backend(); be != nil {
		return []engine.Info{be.Info()}
	}
	return nil
}

func (s *Server) loaded() []engine.Info { return s.listed() }
