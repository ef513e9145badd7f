package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"edgelm/config"
	"edgelm/engine"
	"edgelm/mmap"
	"edgelm/sdnotify"
)

// ServiceOptions say where a Service's configuration comes from and, for tests, what stands in
// for the process's signals, exit and model loader.
type ServiceOptions struct {
	// ConfigPath is the TOML file (package config); "" runs on config.Defaults changed by Override
	// and never reloads from a file (SIGHUP still re-applies Override and re-checks the model file).
	ConfigPath string
	// Override applies command-line flags on top of the file, after every load of it, so flags
	// always win.
	Override func(*config.Config)
	// Load maps a model ready for requests; nil means engine.Load. A Backend that is an io.Closer
	// is closed when it is retired (after its last request) or at shutdown.
	Load func(path string, opt engine.Options) (Backend, error)
	// LogOutput receives the text log; nil means os.Stderr.
	LogOutput io.Writer
	// Signals delivers SIGHUP (reload) and SIGTERM/SIGINT (shut down); nil means this process's.
	Signals <-chan os.Signal
	// Exit ends the process when a second SIGTERM/SIGINT arrives during shutdown; nil is os.Exit.
	Exit func(code int)
	// Listeners, when set, are served instead of systemd's sockets or our own (tests).
	Listeners []net.Listener
}

// Service runs a Server the way a system service runs: from a config file, with hot reload
// (SIGHUP and file changes), live model swaps, systemd notification and watchdog, socket
// activation and graceful shutdown.
type Service struct {
	opt   ServiceOptions
	log   *slog.Logger
	level *slog.LevelVar
	srv   *Server

	// Reads (handlers, watchdog, status) never wait for a reload, which may spend minutes
	// loading a model: cfg and be are atomic; reloadMu only keeps reloads apart.
	cfg      atomic.Pointer[config.Config]
	be       atomic.Pointer[backendBox]
	reloadMu sync.Mutex
	model    modelFile // identity of the model file the current backend was loaded from

	kick         chan struct{} // coalesced reload requests from the watchers
	notifyFailed atomic.Bool

	watchMu     sync.Mutex
	watchCtx    context.Context
	watchModel  context.CancelFunc
	watchedPath string
	retired     sync.WaitGroup // old backends waiting for their last request
}

type backendBox struct{ b Backend }

// backend returns the backend serving new requests, nil before the first load and after shutdown.
func (s *Service) backend() Backend {
	if box := s.be.Load(); box != nil {
		return box.b
	}
	return nil
}

// LoadConfig reads the config file at path ("" for none), applies override and checks the
// result as the daemon would use it, without touching the model file.
func LoadConfig(path string, override func(*config.Config)) (*config.Config, error) {
	var c *config.Config
	if path == "" {
		d := config.Defaults()
		c = &d
	} else {
		var err error
		if c, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	if override != nil {
		override(c)
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	if err := SettingsFrom(c).Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckConfig is `edgelm serve --check-config`: LoadConfig, then the model file must be a
// readable regular file that starts like a GGUF file.
func CheckConfig(path string, override func(*config.Config)) (*config.Config, error) {
	c, err := LoadConfig(path, override)
	if err != nil {
		return nil, err
	}
	f, err := mmap.OpenRegular(c.Model)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != "GGUF" {
		return nil, fmt.Errorf("model %s is not a GGUF file (no GGUF magic)", c.Model)
	}
	return c, nil
}

// SettingsFrom turns a config into the daemon's Settings.
func SettingsFrom(c *config.Config) Settings {
	s := Settings{
		Model: c.Model,
		Engine: engine.Options{
			Threads:       c.Threads,
			ContextLength: c.ContextLength,
			MaxSequences:  c.MaxSequences,
			MaxQueue:      c.MaxQueue,
			Kernels:       c.Kernels,
			KVTypeK:       c.KVTypeK,
			KVTypeV:       c.KVTypeV,
			KVBudget:      int64(c.KVBudget),
			KVPolicy:      c.KVPolicy,
			KVSinks:       c.KVSinks,
			NoPrefixCache: !c.PrefixCache,
			ChatTemplate:  c.ChatTemplate,
			Reread:        c.ModelReread,
		},
		Socket:           c.Socket,
		SocketMode:       c.SocketMode,
		SocketGroup:      c.SocketGroup,
		TCPListen:        c.TCPListen,
		MaxBodyBytes:     int64(c.Limits.MaxBodyBytes),
		MaxPromptTokens:  c.Limits.MaxPromptTokens,
		MaxTokensCap:     c.Limits.MaxTokens,
		DefaultMaxTokens: c.Limits.DefaultMaxTokens,
		RequestTimeout:   c.Limits.RequestTimeout, // 0 is never in both
		IdleTimeout:      c.Limits.IdleTimeout,
		ShutdownGrace:    c.ShutdownGrace,
		AllowedUIDs:      c.AllowedUIDs,
		AllowedGIDs:      c.AllowedGIDs,
		Sampling: engine.Sampling{
			Temperature:   float32(c.Sampling.Temperature),
			TopK:          c.Sampling.TopK,
			TopP:          float32(c.Sampling.TopP),
			MinP:          float32(c.Sampling.MinP),
			RepeatPenalty: float32(c.Sampling.RepeatPenalty),
			RepeatLastN:   c.Sampling.RepeatLastN,
		},
		ChatTemplate: c.ChatTemplate,
		LogLevel:     c.LogLevel,
	}
	if s.ShutdownGrace == 0 {
		s.ShutdownGrace = time.Nanosecond // "0s": cancel at once, not Settings' default
	}
	return s
}

// NewService reads the configuration; a bad one is an error here (exit status 1), later ones
// are logged and skipped. Nothing is listened on or loaded until Run.
func NewService(opt ServiceOptions) (*Service, error) {
	c, err := LoadConfig(opt.ConfigPath, opt.Override)
	if err != nil {
		return nil, err
	}
	if opt.Load == nil {
		opt.Load = func(path string, o engine.Options) (Backend, error) { return engine.Load(path, o) }
	}
	if opt.LogOutput == nil {
		opt.LogOutput = os.Stderr
	}
	if opt.Exit == nil {
		opt.Exit = os.Exit
	}
	s := &Service{opt: opt, level: new(slog.LevelVar), kick: make(chan struct{}, 1)}
	s.cfg.Store(c)
	s.level.Set(c.SlogLevel())
	s.log = slog.New(slog.NewTextHandler(opt.LogOutput, &slog.HandlerOptions{Level: s.level}))
	s.srv = New(nil, SettingsFrom(c), s.log)
	return s, nil
}

// Server is the HTTP server the service runs.
func (s *Service) Server() *Server { return s.srv }

// Config returns the configuration in force.
func (s *Service) Config() config.Config { return *s.cfg.Load() }

// Run listens (on the sockets systemd passed, else on the configured socket), loads and warms
// the model, tells systemd READY=1, and serves until SIGTERM/SIGINT or ctx ends; then it stops
// accepting, lets requests finish for shutdown_grace, cancels the rest and returns nil. A second
// signal during shutdown exits the process at once with status 1.
func (s *Service) Run(ctx context.Context) error {
	sigs := s.opt.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}
	listeners, inherited, err := s.listen()
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	served := make(chan error, len(listeners))
	pending := 0
	serve := func() {
		for _, l := range listeners {
			pending++
			go func() { served <- s.srv.Serve(serveCtx, l) }()
		}
	}
	// Our own socket answers at once (503 "loading" until the model is ready), so a busy socket
	// fails fast. A socket systemd passed already exists: connections wait in its backlog until
	// the model is ready, so the request that activated the service gets an answer, not a 503.
	if !inherited {
		serve()
	}
	waitServed := func() error {
		var first error
		for ; pending > 0; pending-- {
			if err := <-served; err != nil && first == nil {
				first = err
			}
		}
		for _, l := range listeners {
			l.Close()
		}
		return first
	}

	cfg := s.Config()
	s.log.Info("loading model", "model", cfg.Model)
	s.notified(sdnotify.Status("loading " + cfg.Model))
	type loaded struct {
		b   Backend
		id  modelFile
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		b, id, err := s.loadBackend(&cfg)
		done <- loaded{b, id, err}
	}()
	var ld loaded
	hupWhileLoading := false
wait:
	for {
		select {
		case ld = <-done:
			break wait
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				hupWhileLoading = true // the file may have changed since we read it: reload once ready
				continue
			}
			s.log.Info("stopping while the model loads", "signal", sig.String())
			s.notified(sdnotify.Stopping())
			stopServing()
			return waitServed()
		case <-ctx.Done():
			s.notified(sdnotify.Stopping())
			stopServing()
			return waitServed()
		}
	}
	if ld.err != nil {
		stopServing()
		waitServed()
		return fmt.Errorf("loading the model: %w", ld.err)
	}
	s.reloadMu.Lock()
	s.model = ld.id
	s.be.Store(&backendBox{ld.b})
	s.reloadMu.Unlock()
	s.srv.SetBackend(ld.b)
	s.srv.configLoaded(time.Now())
	info := ld.b.Info()
	if inherited {
		serve()
	}
	s.log.Info("ready", "model", info.Model, "arch", info.Arch, "kernels", info.Kernels, "threads", info.Threads, "context", info.ContextLength)
	s.notified(sdnotify.Ready())
	s.status()

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	if cfg.Watch {
		s.startWatching(bg, &cfg)
	}
	go s.reloadLoop(bg)
	go s.watchdog(bg)
	go s.statusLoop(bg)
	if hupWhileLoading {
		s.trigger()
	}

	var first error
loop:
	for {
		select {
		case err := <-served:
			first = err // a listener failed: stop the rest too
			pending--
			break loop
		case <-ctx.Done():
			break loop
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.log.Info("SIGHUP: reloading")
				s.trigger()
				continue
			}
			s.log.Info("shutting down", "signal", sig.String())
			break loop
		}
	}
	s.notified(sdnotify.Stopping())
	s.notified(sdnotify.Status("stopping: finishing requests in flight"))
	stopBG()
	stopServing()
	go func() { // a second signal means now
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				s.log.Warn("second signal: exiting at once", "signal", sig.String())
				s.opt.Exit(1)
				return
			}
		}
	}()
	if err := waitServed(); err != nil && first == nil {
		first = err
	}
	s.reloadMu.Lock() // no reload is half-way through
	be := s.backend()
	s.be.Store(nil)
	s.reloadMu.Unlock()
	s.srv.SetBackend(nil)
	closeBackend(be, s.log)
	s.retired.Wait()
	if first != nil {
		return first
	}
	s.log.Info("stopped")
	return nil
}

// listen returns opt.Listeners, else the sockets systemd passed (inherited), else the configured
// socket; and the TCP address when one is configured.
func (s *Service) listen() (ls []net.Listener, inherited bool, err error) {
	if len(s.opt.Listeners) > 0 {
		return s.opt.Listeners, false, nil
	}
	set := s.srv.Settings()
	ls, err = sdnotify.Listeners()
	if err != nil {
		return nil, false, err
	}
	inherited = len(ls) > 0
	if inherited {
		for _, l := range ls {
			s.log.Info("listening on a socket passed by systemd", "addr", l.Addr().String())
		}
		s.log.Debug("socket, socket_mode and socket_group are the socket unit's business now")
	} else {
		l, err := Listen(set)
		if err != nil {
			return nil, false, err
		}
		s.log.Info("listening", "socket", l.Addr().String())
		ls = append(ls, l)
	}
	if set.TCPListen != "" {
		tl, err := ListenTCP(set)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, false, err
		}
		s.log.Warn("also listening on TCP; TCP peers are not checked against allowed_uids", "addr", tl.Addr().String())
		ls = append(ls, tl)
	}
	return ls, inherited, nil
}

// loadBackend loads the model of c and runs one warm-up step on it, so the first request does
// not pay for page faults and the pool's start-up.
func (s *Service) loadBackend(c *config.Config) (Backend, modelFile, error) {
	id := identifyModel(c.Model)
	start := time.Now()
	b, err := s.opt.Load(c.Model, SettingsFrom(c).Engine)
	if err != nil {
		return nil, id, err
	}
	if err := warmUp(b); err != nil {
		closeBackend(b, s.log)
		return nil, id, fmt.Errorf("warm-up: %w", err)
	}
	s.log.Info("model loaded and warmed up", "model", c.Model, "took", time.Since(start).Round(time.Millisecond))
	return b, id, nil
}

func warmUp(b Backend) error {
	prompt := b.Tokenize("Hello", true, false)
	if len(prompt) == 0 {
		return nil // nothing to run: a tokenizer with no pieces for plain text
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := b.Generate(ctx, engine.Request{Prompt: prompt, MaxTokens: 1, IgnoreEOS: true}, func(engine.Event) error { return nil })
	return err
}

func closeBackend(b Backend, log *slog.Logger) {
	if c, ok := b.(io.Closer); ok && b != nil {
		if err := c.Close(); err != nil {
			log.Warn("closing the model", "err", err)
		}
	}
}

// trigger asks the reload loop for a reload; requests arriving while one is pending merge.
func (s *Service) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) reloadLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			s.Reload()
		}
	}
}

// Reload re-reads the configuration and applies it: built and checked completely aside (a new
// model loaded and warmed when the model, an engine option or the model file changed), then
// swapped in at once. On any error the old configuration keeps serving; the error is logged,
// returned, and shown on /health and /metrics. Keys that need a restart keep their old values.
func (s *Service) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.backend() == nil {
		return errors.New("daemon: reload: no model is serving yet")
	}
	s.notified(sdnotify.Reloading())
	swapped, err := s.reload()
	st := ReloadStatus{OK: err == nil, Time: time.Now(), ModelSwapped: swapped}
	if err != nil {
		st.Error = err.Error()
		s.log.Error("reload failed; the old configuration keeps serving", "err", err)
	}
	s.srv.setReloadStatus(st)
	s.notified(sdnotify.Ready())
	s.status()
	return err
}

func (s *Service) reload() (swapped bool, err error) {
	old := s.cfg.Load()
	c, err := LoadConfig(s.opt.ConfigPath, s.opt.Override)
	if err != nil {
		return false, err
	}
	swap := false
	var changed []string
	for _, ch := range config.Changes(old, c) {
		changed = append(changed, ch.Key)
		switch ch.Reload {
		case config.Restart:
			s.log.Warn("changed key needs a restart; keeping the old value until then", "key", ch.Key)
		case config.Swap:
			swap = true
		}
	}
	c.Socket, c.SocketMode, c.SocketGroup, c.TCPListen, c.Watch = old.Socket, old.SocketMode, old.SocketGroup, old.TCPListen, old.Watch
	set := SettingsFrom(c)
	if !swap && identifyModel(c.Model) != s.model {
		s.log.Info("the model file changed on disk", "model", c.Model)
		swap = true
	}
	var nb Backend
	var nid modelFile
	if swap {
		s.log.Info("loading the new model aside", "model", c.Model)
		if nb, nid, err = s.loadBackend(c); err != nil {
			return false, fmt.Errorf("new model: %w", err)
		}
	}
	if err := s.srv.Apply(set); err != nil {
		closeBackend(nb, s.log)
		return false, err
	}
	if swap {
		old, idle := s.srv.SetBackend(nb)
		s.be.Store(&backendBox{nb})
		s.model = nid
		s.retired.Add(1)
		go func() {
			defer s.retired.Done()
			<-idle
			closeBackend(old, s.log)
			s.log.Info("old model closed after its last request")
		}()
		s.rewatchModel(c.Model)
	}
	s.level.Set(c.SlogLevel())
	s.cfg.Store(c)
	s.log.Info("reloaded", "changed", strings.Join(changed, ","), "model_swapped", swap)
	return swap, nil
}

// startWatching reloads on changes of the config file and of the model file.
func (s *Service) startWatching(ctx context.Context, c *config.Config) {
	s.watchMu.Lock()
	s.watchCtx = ctx
	s.watchMu.Unlock()
	if s.opt.ConfigPath != "" {
		if err := config.Watch(ctx, s.opt.ConfigPath, func() {
			s.log.Info("config file changed; reloading", "path", s.opt.ConfigPath)
			s.trigger()
		}); err != nil {
			s.log.Warn("not watching the config file; reload with SIGHUP", "err", err)
		}
	}
	s.rewatchModel(c.Model)
}

func (s *Service) rewatchModel(path string) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watchCtx == nil || s.watchModel != nil && path == s.watchedPath {
		return // not watching, or already watching this path
	}
	if s.watchModel != nil {
		s.watchModel()
	}
	ctx, cancel := context.WithCancel(s.watchCtx)
	s.watchModel, s.watchedPath = cancel, path
	if err := config.Watch(ctx, path, func() {
		s.log.Info("model file changed; reloading", "path", path)
		s.trigger()
	}); err != nil {
		s.log.Warn("not watching the model file", "err", err)
	}
}

// watchdog sends WATCHDOG=1 at half the interval systemd asked for, only while the engine's
// scheduler is alive, so a wedged daemon is restarted.
func (s *Service) watchdog(ctx context.Context) {
	interval, ok := sdnotify.WatchdogInterval()
	if !ok {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	var probe liveness
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// watchdog = false keeps systemd's watchdog fed without asking the scheduler;
			// starving it would get the service killed every WatchdogSec.
			if !s.Config().Watchdog || s.alive(&probe, interval) {
				s.notified(sdnotify.Watchdog())
			} else {
				s.log.Error("the scheduler looks stuck; not feeding the watchdog")
			}
		}
	}
}

// Aliver is implemented by backends that can tell whether their scheduler is running.
type Aliver interface{ Alive() bool }

// liveness remembers the engine's progress between watchdog ticks.
type liveness struct {
	be       Backend
	progress int64
	since    time.Time
	probing  atomic.Bool // a Stats call has not returned yet
}

// stallLimit is how many watchdog intervals work may wait without any token computed before
// the scheduler counts as stuck. Generous, because one prefill step of a long prompt on a
// small board can take longer than WatchdogSec.
const stallLimit = 4

// alive asks the backend when it can tell (Aliver). Otherwise the backend is alive when its
// Stats answer within a quarter interval and, while requests are active or queued, its token
// counters moved within the last stallLimit intervals.
func (s *Service) alive(p *liveness, interval time.Duration) bool {
	be := s.backend()
	if be == nil {
		return true // nothing to wedge
	}
	if a, ok := be.(Aliver); ok {
		return a.Alive()
	}
	if !p.probing.CompareAndSwap(false, true) {
		return false // the last Stats call still hangs
	}
	stc := make(chan engine.Stats, 1)
	go func() {
		st := be.Stats()
		// Clear the flag before answering: the next probe may start as soon as this one is
		// received, and must not find its predecessor still marked as hanging.
		p.probing.Store(false)
		stc <- st
	}()
	var st engine.Stats
	select {
	case st = <-stc:
	case <-time.After(interval / 4):
		return false
	}
	now := time.Now()
	progress := st.PrefillTokens + st.GeneratedTokens + st.Requests
	if be != p.be || progress != p.progress || (st.ActiveSequences == 0 && st.QueueDepth == 0) {
		p.be, p.progress, p.since = be, progress, now
		return true
	}
	return now.Sub(p.since) < stallLimit*interval
}

func (s *Service) statusLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.status()
		}
	}
}

// status sends STATUS=: the model and the requests answered so far.
func (s *Service) status() {
	be := s.backend()
	if be == nil {
		return
	}
	info := be.Info()
	line := fmt.Sprintf("serving %s (%s, %s kernels); %d API requests answered", info.Model, info.Arch, info.Kernels, s.srv.requestsAnswered())
	if st := s.srv.reloadStatus(); st != nil && !st.OK {
		line += "; last reload failed: " + st.Error
	}
	s.notified(sdnotify.Status(line))
}

// notified logs a failed notification once: systemd would then miss READY=1 or the watchdog and
// kill the service, which is worth a line in the journal.
func (s *Service) notified(err error) {
	if err != nil && s.notifyFailed.CompareAndSwap(false, true) {
		s.log.Warn("cannot notify the service manager", "err", err)
	}
}

// modelFile tells versions of a model file apart without reading it.
type modelFile struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func identifyModel(path string) modelFile {
	fi, err := os.Stat(path)
	if err != nil {
		return modelFile{}
	}
	id := modelFile{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}
