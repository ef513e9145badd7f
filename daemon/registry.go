package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"edgelm/engine"
)

// The registry is the set of models a Server answers for, by id. A model given directly (New,
// SetBackend: `serve --model FILE`) is pinned: it is never unloaded by the limits. Models of a
// directory (SetCatalog: `serve --models DIR`) are loaded on first use and unloaded, least
// recently used first, when the limits need room or their keep_alive runs out; never while a
// request uses them. All of it is guarded by Server.mu.

// modelEntry is one model the daemon answers for.
type modelEntry struct {
	id     string
	path   string    // the file loaded on demand; "" for a pinned backend
	file   modelFile // identity of path when the catalog last saw it
	size   int64     // its size: the mapping a load adds, before the engine says more
	pinned bool

	ref     *backendRef   // the backend serving it; nil when not loaded
	loading chan struct{} // closed when the load in progress ends; nil when none is
	bytes   int64         // mapped weights plus KV budget of ref (or of its last load, as an estimate)
	used    time.Time     // when a request last took or released it
	keep    time.Duration // keep_alive of the last request: <0 forever
	timer   *time.Timer   // unloads it when keep runs out
	failed  *apiError     // the last load's error, until the next load starts
}

// registry holds the entries and the limits; Server.mu guards it.
type registry struct {
	entries map[string]*modelEntry
	def     string // default_model; "" means the only model
	// load maps and warms a model of the catalog; nil when only pinned backends serve.
	load      func(path string) (Backend, error)
	maxLoaded int           // 0: no limit
	budget    int64         // bytes of mapped weights plus KV caches; 0: no limit
	keepAlive time.Duration // default keep_alive; <0 forever
	catalog   bool          // SetCatalog was called: the daemon is ready with nothing loaded
	closed    bool          // shutting down: nothing loads any more
	// changed is closed and replaced whenever a backend is released, loaded or unloaded, so
	// that a request waiting for room looks again.
	changed chan struct{}
	closing sync.WaitGroup // unloaded backends being closed
	log     *slog.Logger

	loads, unloads, loadFailures int64
	loadSeconds                  float64
}

func newRegistry(log *slog.Logger) registry {
	return registry{entries: map[string]*modelEntry{}, changed: make(chan struct{}), keepAlive: -1, log: log}
}

// CatalogModel is a model file the daemon offers by id.
type CatalogModel struct {
	ID   string
	Path string
}

// ModelLimits bound the models of a catalog loaded at once (SetCatalog).
type ModelLimits struct {
	MaxLoaded    int           // models loaded at once; 0: no limit
	MemoryBudget int64         // bytes of mapped weights plus KV caches of all loaded models; 0: no limit
	KeepAlive    time.Duration // how long a model stays loaded after its last request; <0 forever
	Default      string        // the model of requests that name none; "" is the only one
}

// SetCatalog makes the server answer for models (replacing the pinned backend, if any), loading
// each with load on first use within the limits. Models no longer listed, or whose file changed,
// are unloaded once their requests finish; the others stay loaded. load is called without the
// server's lock, possibly for several models at once.
func (s *Server) SetCatalog(models []CatalogModel, lim ModelLimits, load func(path string) (Backend, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &s.reg
	g.load, g.catalog = load, true
	g.maxLoaded, g.budget, g.keepAlive, g.def = lim.MaxLoaded, lim.MemoryBudget, lim.KeepAlive, lim.Default
	keep := map[string]bool{}
	for _, m := range models {
		keep[m.ID] = true
		id := identifyModel(m.Path)
		var size int64
		if st, err := os.Stat(m.Path); err == nil {
			size = st.Size()
		}
		e := g.entries[m.ID]
		if e != nil && !e.pinned && e.path == m.Path && e.file == id {
			continue
		}
		if e != nil {
			g.unload(e, "its file changed")
			if e.loading != nil {
				// A load of the old file is under way: startLoad drops its result.
				e.path = ""
			}
		}
		g.entries[m.ID] = &modelEntry{id: m.ID, path: m.Path, file: id, size: size, keep: g.keepAlive}
	}
	for id, e := range g.entries {
		if !keep[id] {
			g.unload(e, "its file is gone")
			delete(g.entries, id)
		}
	}
	g.signal()
}

// RetireModels unloads every loaded model of the catalog once its requests finish, so that the
// next request loads it again (with new engine options).
func (s *Server) RetireModels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.reg.entries {
		if !e.pinned {
			s.reg.unload(e, "the engine options changed")
		}
	}
	s.reg.signal()
}

func (g *registry) signal() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// unload takes e's backend out of service: closed now if idle, else after its last request.
func (g *registry) unload(e *modelEntry, why string) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	ref := e.ref
	if ref == nil {
		return
	}
	e.ref = nil
	g.unloads++
	ref.retired = true
	if ref.n == 0 {
		close(ref.idle)
	}
	g.log.Info("unloading model", "model", e.id, "why", why, "requests_in_flight", ref.n)
	g.closing.Add(1)
	go func() {
		defer g.closing.Done()
		<-ref.idle
		closeBackend(ref.b, g.log)
	}()
}

// find resolves a request's model name: an id, the id with ".gguf", or the general.name of a
// loaded model, each with or without ":latest"; "" is the default model.
func (g *registry) find(name string) (*modelEntry, error) {
	if len(g.entries) == 0 {
		if g.catalog {
			return nil, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found",
				msg: "the models directory holds no *.gguf file"}
		}
		return nil, errLoading
	}
	if name == "" {
		name = g.def
		if name == "" && len(g.entries) == 1 {
			for id := range g.entries {
				name = id
			}
		}
		if name == "" {
			return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "model_required",
				msg: "this daemon serves several models; name one in \"model\": " + g.idList()}
		}
	}
	// Ollama's clients add the tag ":latest" to a name without one.
	name = strings.TrimSuffix(name, ":latest")
	if e := g.entries[name]; e != nil {
		return e, nil
	}
	if e := g.entries[strings.TrimSuffix(name, ".gguf")]; e != nil {
		return e, nil
	}
	if e := g.entries[name+".gguf"]; e != nil {
		return e, nil
	}
	// general.name only where it is unambiguous: converted models often all say "llama".
	var named *modelEntry
	for _, e := range g.ids() {
		if e := g.entries[e]; e.ref != nil {
			if info := e.ref.b.Info(); info.Name != "" && info.Name == name || info.Model == name {
				if named != nil {
					named = nil
					break
				}
				named = e
			}
		}
	}
	if named != nil {
		return named, nil
	}
	return nil, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found",
		msg: "the model `" + name + "` does not exist; this daemon serves " + g.idList()}
}

func (g *registry) ids() []string {
	ids := make([]string, 0, len(g.entries))
	for id := range g.entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (g *registry) idList() string {
	ids := g.ids()
	for i, id := range ids {
		ids[i] = "`" + id + "`"
	}
	return strings.Join(ids, ", ")
}

// makeRoom unloads idle models, least recently used first, until e fits the limits; false when
// the models in the way are all in use. Before e's first load its size is its file's; after, what
// the engine said it holds. A model alone is never refused for being over the budget.
func (g *registry) makeRoom(e *modelEntry) bool {
	for {
		n, bytes := 1, max(e.size, e.bytes)
		var victim *modelEntry
		for _, o := range g.entries {
			if o == e || o.ref == nil && o.loading == nil {
				continue
			}
			n++
			if o.ref != nil {
				bytes += o.bytes
			} else {
				bytes += max(o.size, o.bytes) // loading
			}
			if o.loading == nil && o.ref.n == 0 && !o.pinned && (victim == nil || o.used.Before(victim.used)) {
				victim = o
			}
		}
		over := g.maxLoaded > 0 && n > g.maxLoaded || g.budget > 0 && bytes > g.budget && n > 1
		if !over {
			return true
		}
		if victim == nil {
			return false
		}
		g.unload(victim, "making room for "+e.id)
	}
}

// modelFor returns the backend for a request's model name ("" the default), loading it on first
// use; requests for a model that is loading, or waiting for room under the limits, wait for it as
// long as the request timeout allows. keepAlive (nil: the configured default) is how long the
// model stays loaded after this request, Ollama's keep_alive: 0 unloads it when the request ends,
// a negative value keeps it. The caller must release the reference.
func (s *Server) modelFor(r *http.Request, name string, keepAlive *time.Duration) (*backendRef, error) {
	ctx := r.Context()
	if t := s.cfg.Load().s.RequestTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	return s.acquireModel(ctx, name, keepAlive)
}

func (s *Server) acquireModel(ctx context.Context, name string, keepAlive *time.Duration) (*backendRef, error) {
	g := &s.reg
	s.mu.Lock()
	for {
		e, err := g.find(name)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		var wait chan struct{}
		loading := false
		switch {
		case e.ref != nil:
			e.ref.n++
			e.used = time.Now()
			if e.timer != nil {
				e.timer.Stop()
				e.timer = nil
			}
			e.keep = g.keepAlive
			if keepAlive != nil {
				e.keep = *keepAlive
			}
			ref := e.ref
			s.mu.Unlock()
			return ref, nil
		case e.loading != nil:
			wait, loading = e.loading, true
		case g.closed:
			s.mu.Unlock()
			return nil, errLoading
		case g.load == nil || e.path == "":
			s.mu.Unlock()
			return nil, errLoading
		case !g.makeRoom(e):
			wait = g.changed
		default:
			s.startLoad(e)
			wait, loading = e.loading, true
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "model_busy",
				msg:        fmt.Sprintf("model %s: not ready within the request timeout (loading, or waiting for room among the loaded models)", e.id),
				retryAfter: "5"}
		}
		s.mu.Lock()
		if err := e.loadErr(); loading && err != nil && e.ref == nil && g.entries[e.id] == e {
			s.mu.Unlock()
			return nil, err
		}
	}
}

// startLoad loads e in its own goroutine, so that a request giving up does not abandon a load
// others wait for. Called with s.mu held.
func (s *Server) startLoad(e *modelEntry) {
	g := &s.reg
	done := make(chan struct{})
	e.loading = done
	e.failed = nil
	path, load := e.path, g.load
	g.closing.Add(1)
	go func() {
		defer g.closing.Done()
		start := time.Now()
		b, err := load(path)
		took := time.Since(start)
		s.mu.Lock()
		defer s.mu.Unlock()
		e.loading = nil
		close(done)
		g.signal()
		if err != nil {
			g.loadFailures++
			e.failed = &apiError{status: http.StatusInternalServerError, typ: "server_error", code: "model_load_failed",
				msg: fmt.Sprintf("model %s could not be loaded: %v", e.id, err)}
			g.log.Error("loading a model failed", "model", e.id, "err", err)
			return
		}
		if e.path != path || g.entries[e.id] != e || g.closed {
			// The file changed or went away while it loaded, or the daemon is stopping.
			go closeBackend(b, g.log)
			return
		}
		g.loads++
		g.loadSeconds += took.Seconds()
		if b.Info().Model != e.id {
			b = idBackend{b, e.id}
		}
		e.ref = &backendRef{b: b, idle: make(chan struct{}), entry: e}
		e.bytes = b.Info().FileBytes + b.Stats().KVBudget
		e.used = time.Now()
		g.log.Info("model loaded", "model", e.id, "took", took.Round(time.Microsecond), "bytes", e.bytes)
		// Its KV budget was only an estimate before: idle models may have to go now.
		g.makeRoom(e)
	}()
}

// loadErr is the error of e's last load, if it failed.
func (e *modelEntry) loadErr() error {
	if e.failed == nil {
		return nil
	}
	return e.failed
}

// released is called with s.mu held when ref's last request ends while it serves e: a keep_alive
// of 0 unloads it now, a positive one after that long idle.
func (s *Server) released(e *modelEntry, ref *backendRef) {
	g := &s.reg
	e.used = time.Now()
	switch {
	case e.pinned || e.keep < 0:
	case e.keep == 0:
		g.unload(e, "keep_alive 0")
	default:
		if e.timer != nil {
			e.timer.Stop()
		}
		e.timer = time.AfterFunc(e.keep, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if e.ref == ref && ref.n == 0 && g.entries[e.id] == e {
				e.timer = nil
				g.unload(e, "keep_alive ran out")
				g.signal()
			}
		})
	}
	g.signal()
}

// modelState is one model for /v1/models.
type modelState struct {
	id     string
	loaded Backend // nil when not loaded
	size   int64
}

// models lists every model, sorted by id.
func (s *Server) models() []modelState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []modelState
	for _, id := range s.reg.ids() {
		e := s.reg.entries[id]
		m := modelState{id: id, size: e.size}
		if e.ref != nil {
			m.loaded = e.ref.b
		}
		out = append(out, m)
	}
	return out
}

// ScanModels lists the *.gguf files of dir (symlinks followed; broken ones and directories
// skipped), each with its file name without ".gguf" as id.
func ScanModels(dir string) ([]CatalogModel, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("models_dir: %w", err)
	}
	var out []CatalogModel
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".gguf") || strings.HasPrefix(name, ".") || name == ".gguf" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		out = append(out, CatalogModel{ID: strings.TrimSuffix(name, ".gguf"), Path: p})
	}
	slices.SortFunc(out, func(a, b CatalogModel) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// catalogReady reports whether the server serves a models directory (SetCatalog).
func (s *Server) catalogReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reg.catalog
}

// loadedModel is a loaded model and its id, held (see loadedModels).
type loadedModel struct {
	id  string
	b   Backend
	ref *backendRef
}

// registryStats are the registry's counters for /metrics.
type registryStats struct {
	loads, unloads, loadFailures int64
	loadSeconds                  float64
}

// loadedModels returns the loaded models by id, whether the server serves a models directory
// (whose metrics carry a model label), and the load counters. Each model is held, so that none
// is closed while the caller reads its stats (which read its mapping): call unhold.
func (s *Server) loadedModels() ([]loadedModel, bool, registryStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []loadedModel
	for _, id := range s.reg.ids() {
		if e := s.reg.entries[id]; e.ref != nil {
			e.ref.n++
			out = append(out, loadedModel{id, e.ref.b, e.ref})
		}
	}
	g := &s.reg
	return out, g.catalog, registryStats{g.loads, g.unloads, g.loadFailures, g.loadSeconds}
}

// closeModels unloads every model of the catalog and waits until they are closed (shutdown:
// no request runs any more).
func (s *Server) closeModels() {
	s.mu.Lock()
	s.reg.closed = true
	for _, e := range s.reg.entries {
		if !e.pinned {
			s.reg.unload(e, "shutting down")
		}
	}
	s.reg.signal()
	s.mu.Unlock()
	s.reg.closing.Wait()
}

// unhold ends the holds of loadedModels or heldBackend. Unlike a request's release it leaves the
// model's keep_alive alone, except that a model to be unloaded after its requests (keep_alive 0)
// is, if a read held it past its last request.
func (s *Server) unhold(ms ...loadedModel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		r := m.ref
		if r.n--; r.n > 0 {
			continue
		}
		if r.retired {
			close(r.idle)
			s.reg.signal()
		} else if e := r.entry; !e.pinned && e.keep == 0 {
			s.reg.unload(e, "keep_alive 0")
			s.reg.signal()
		}
	}
}

// heldBackend returns the backend that describes the server (backend) held, and the function
// that ends the hold; nil when none is loaded.
func (s *Server) heldBackend() (Backend, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.reg.find("")
	if err != nil || e.ref == nil {
		e = nil
		for _, id := range s.reg.ids() {
			if o := s.reg.entries[id]; o.ref != nil {
				e = o
				break
			}
		}
	}
	if e == nil {
		return nil, func() {}
	}
	e.ref.n++
	m := loadedModel{e.id, e.ref.b, e.ref}
	return m.b, func() { s.unhold(m) }
}

// idBackend answers as its catalog id (the file name without ".gguf"): responses and /health
// name a model as requests do.
type idBackend struct {
	Backend
	id string
}

func (b idBackend) Info() engine.Info {
	info := b.Backend.Info()
	info.Model = b.id
	return info
}

func (b idBackend) Close() error {
	if c, ok := b.Backend.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (b idBackend) Alive() bool {
	if a, ok := b.Backend.(Aliver); ok {
		return a.Alive()
	}
	return true
}

// KeepAlive reads Ollama's keep_alive request field: absent or null is nil (the configured
// default), a number is seconds, a string a Go duration ("5m", "0s"; a bare "0" or "-1" as
// seconds); zero unloads the model when the request ends, a negative value keeps it loaded.
func KeepAlive(raw json.RawMessage) (*time.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, badRequest("invalid_value", "keep_alive: %v", err)
	}
	var d time.Duration
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.Abs(x) > 1e9 {
			return nil, badRequest("invalid_value", "keep_alive %v: out of range", x)
		}
		d = time.Duration(x * float64(time.Second))
	case string:
		if n, err := strconv.ParseFloat(x, 64); err == nil && math.Abs(n) <= 1e9 {
			d = time.Duration(n * float64(time.Second))
		} else if d, err = time.ParseDuration(x); err != nil {
			return nil, badRequest("invalid_value", "keep_alive %q: want seconds or a duration such as \"5m\"", x)
		}
	default:
		return nil, badRequest("invalid_value", "keep_alive: want a number of seconds or a duration string")
	}
	if d < 0 {
		d = -1
	}
	return &d, nil
}
