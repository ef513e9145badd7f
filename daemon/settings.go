package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"edgelm/chat"
	"edgelm/engine"
)

// Settings are the daemon's runtime settings. The zero value of a limit means its default (see
// Defaults); the config file reader fills this plain struct and hands it to New or Apply.
type Settings struct {
	// Model is the GGUF file to serve. Requests can never name a file: models come from here only.
	Model string
	// Engine holds the load-time engine options; they take effect on the next model load.
	Engine engine.Options

	// Socket is the Unix socket path (see DefaultSocket).
	Socket string
	// SocketMode is the socket file's permission bits; 0 means 0660.
	SocketMode os.FileMode
	// SocketGroup is the group (name or numeric id) the socket file is given; "" keeps the
	// daemon's group.
	SocketGroup string
	// TCPListen is a loopback address ("127.0.0.1:8080", "[::1]:8080", "localhost:8080") to serve on
	// as well; "" (the default) means no TCP. TCP peers have no credentials to check: anyone on the
	// host can connect, so it is off unless configured.
	TCPListen string

	// MaxBodyBytes caps a request body; 0 means 1 MiB. Larger bodies get 413.
	MaxBodyBytes int64
	// MaxPromptTokens caps a prompt after tokenization; 0 means the model's context length.
	MaxPromptTokens int
	// MaxTokensCap is the largest max_tokens a request may ask for; 0 means 4096. More is a 400.
	MaxTokensCap int
	// DefaultMaxTokens is used by /v1/completions when the request gives no max_tokens; 0 means 16,
	// OpenAI's legacy default. Chat requests without max_tokens generate up to MaxTokensCap or the
	// end of the context.
	DefaultMaxTokens int
	// RequestTimeout ends a request that runs longer (504); 0 means never (Defaults: 10 minutes).
	RequestTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; 0 means never (Defaults: 2
	// minutes). It applies to listeners served after it is set.
	IdleTimeout time.Duration
	// ShutdownGrace is how long in-flight requests may run after shutdown begins; 0 means 30s.
	ShutdownGrace time.Duration
	// WriteTimeout bounds each write of a response (each chunk of a stream): a client that does
	// not read for this long is dropped and counted in edgelm_slow_clients_dropped_total; 0
	// means 30s.
	WriteTimeout time.Duration

	// AllowedUIDs and AllowedGIDs say which peers of the Unix socket are served: a peer whose uid
	// is in AllowedUIDs or whose primary or supplementary group is in AllowedGIDs. An empty
	// AllowedUIDs means the daemon's own uid and root (0); a non-empty one is the whole list, so
	// root and the daemon's uid are refused unless it names them.
	AllowedUIDs []uint32
	AllowedGIDs []uint32

	// Sampling holds the defaults for sampling fields a request leaves out.
	Sampling engine.Sampling
	// ChatTemplate names the chat format (one of chat.Formats) to use instead of
	// detecting it from the model's tokenizer.chat_template; "" means detect.
	ChatTemplate string
	// LogLevel is "debug", "info" (default), "warn" or "error".
	LogLevel string
}

// Defaults for the zero values of Settings' limits (the timeouts' defaults are Defaults').
const (
	DefaultMaxBodyBytes     = 1 << 20
	DefaultMaxTokensCap     = 4096
	DefaultCompletionTokens = 16
	DefaultRequestTimeout   = 10 * time.Minute
	DefaultIdleTimeout      = 2 * time.Minute
	DefaultShutdownGrace    = 30 * time.Second
	DefaultWriteTimeout     = 30 * time.Second
	DefaultSocketMode       = os.FileMode(0o660)
)

// withDefaults returns s with every zero limit replaced by its default.
func (s Settings) withDefaults() Settings {
	if s.SocketMode == 0 {
		s.SocketMode = DefaultSocketMode
	}
	if s.MaxBodyBytes <= 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.MaxTokensCap <= 0 {
		s.MaxTokensCap = DefaultMaxTokensCap
	}
	if s.DefaultMaxTokens <= 0 {
		s.DefaultMaxTokens = DefaultCompletionTokens
	}
	if s.ShutdownGrace <= 0 {
		s.ShutdownGrace = DefaultShutdownGrace
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = DefaultWriteTimeout
	}
	if len(s.AllowedUIDs) == 0 {
		s.AllowedUIDs = []uint32{uint32(os.Getuid()), 0}
	}
	return s
}

// Validate reports settings that cannot work: negative limits, out-of-range sampling defaults,
// a non-loopback TCP address, an unknown chat template name or log level.
func (s Settings) Validate() error {
	var errs []error
	if s.MaxBodyBytes < 0 || s.MaxPromptTokens < 0 || s.MaxTokensCap < 0 || s.DefaultMaxTokens < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	if s.RequestTimeout < 0 || s.IdleTimeout < 0 || s.ShutdownGrace < 0 || s.WriteTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if s.SocketMode&^os.ModePerm != 0 {
		errs = append(errs, fmt.Errorf("socket mode %o has bits beyond permissions", uint32(s.SocketMode)))
	}
	if s.TCPListen != "" {
		if err := checkLoopback(s.TCPListen); err != nil {
			errs = append(errs, err)
		}
	}
	if s.ChatTemplate != "" {
		if _, err := chat.ByName(s.ChatTemplate); err != nil {
			errs = append(errs, err)
		}
	}
	switch s.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", s.LogLevel))
	}
	if err := checkSampling(s.Sampling); err != nil {
		errs = append(errs, fmt.Errorf("sampling defaults: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("daemon: settings: %w", err)
	}
	return nil
}

// checkSampling bounds the sampling parameters the same way for defaults and requests.
func checkSampling(p engine.Sampling) error { return p.Check() }

// checkLoopback accepts host:port addresses whose host is a loopback IP or "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("tcp listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("tcp listen %q: only loopback addresses are allowed (127.0.0.1, ::1, localhost)", addr)
	}
	return nil
}

// Defaults returns the settings edgelm serve starts from: every limit at its default and
// llama.cpp's sampling defaults (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05).
func Defaults() Settings {
	s := Settings{
		Sampling:       engine.Sampling{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64},
		LogLevel:       "info",
		RequestTimeout: DefaultRequestTimeout,
		IdleTimeout:    DefaultIdleTimeout,
	}.withDefaults()
	s.AllowedUIDs = nil // keep "the daemon's own uid and root" as a default, not a fixed list
	return s
}
