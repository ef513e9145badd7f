// Package config reads the daemon's one TOML file into a Config, checks every value, and watches
// the file for changes.
//
// The file is strict: a key the daemon does not know, or a value of the wrong type, is an error
// that names the line ("config: /etc/edgelm/edgelm.toml: line 12: unknown key \"thread\" (did you
// mean \"threads\"?)"), so a typo never silently falls back to a default. Keys left out take the
// values of Defaults, which configs/edgelm.toml documents one by one.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"edgelm/mmap"
)

// Config is the daemon's whole configuration.
type Config struct {
	Model       string      // GGUF file; relative paths are resolved against the config file's directory
	Socket      string      // Unix socket path the API listens on (unless systemd passes a socket)
	SocketMode  fs.FileMode // permission bits of the socket file
	SocketGroup string      // group (name or number) the socket file is given; "" keeps the daemon's
	TCPListen   string      // loopback "host:port" to also serve over TCP; "" is off
	AllowedUIDs []uint32    // peer uids allowed to call the API; empty means the daemon's own uid and root
	AllowedGIDs []uint32    // peer (primary) gids allowed; a peer passes if its uid or its gid is listed

	Threads       int    // kernel worker threads; 0 means one per physical core
	ContextLength int    // tokens per sequence; 0 means the model's trained context
	MaxSequences  int    // sequences decoded together
	MaxQueue      int    // requests waiting for a sequence slot before new ones are refused
	KVTypeK       string // KV cache element type for keys: f32, f16, q8_0, q4_0
	KVTypeV       string // and for values
	KVBudget      Size   // bytes for all cached tokens, live and kept for reuse; 0 means room for 2×max_sequences full contexts
	KVPolicy      string // a full sequence: "sink-window" drops its middle, "none" fails the request
	KVSinks       int    // tokens sink-window keeps at the start
	PrefixCache   bool   // keep finished sequences' KV for requests that start the same way
	Kernels       string // "" (best available) or a feature cap such as "generic"
	ModelReread   bool   // drop the model's cached pages at load, so it is read again in 2 MB pages
	ChatTemplate  string // chat format name (one of chat.Formats: "chatml", "llama3", ...) instead of detecting it

	Limits   Limits
	Sampling Sampling

	LogLevel      string        // debug, info, warn, error
	ShutdownGrace time.Duration // how long in-flight requests may finish after SIGTERM
	Watchdog      bool          // check the scheduler is alive before each WATCHDOG=1 (false: ping regardless)
	Watch         bool          // reload when the config file or the model file changes on disk
}

// Limits bound what one request or connection may use.
type Limits struct {
	MaxBodyBytes     Size          // largest request body
	MaxPromptTokens  int           // longest prompt; 0 means the context length
	MaxTokens        int           // largest max_tokens a request may ask for
	DefaultMaxTokens int           // max_tokens of a /v1/completions request that gives none
	RequestTimeout   time.Duration // a request running longer is cancelled; 0 means never
	IdleTimeout      time.Duration // an idle keep-alive connection is closed; 0 means never
}

// Sampling holds the defaults for requests that do not set these themselves.
type Sampling struct {
	Temperature   float64 // 0 is greedy
	TopK          int     // 0 is off
	TopP          float64 // 1 is off
	MinP          float64 // 0 is off
	RepeatPenalty float64 // 1 is off
	RepeatLastN   int     // tokens the penalty looks back at
}

// Defaults returns the configuration used for every key the file leaves out.
func Defaults() Config {
	return Config{
		Model:        "/var/lib/edgelm/models/model.gguf",
		Socket:       "/run/edgelm/edgelm.sock",
		SocketMode:   0o660,
		MaxSequences: 4,
		MaxQueue:     64,
		KVTypeK:      "f32",
		KVTypeV:      "f32",
		KVPolicy:     "sink-window",
		KVSinks:      4,
		PrefixCache:  true,
		Limits: Limits{
			MaxBodyBytes:     1 << 20,
			MaxTokens:        4096,
			DefaultMaxTokens: 16,
			RequestTimeout:   10 * time.Minute,
			IdleTimeout:      2 * time.Minute,
		},
		Sampling: Sampling{
			Temperature:   0.8,
			TopK:          40,
			TopP:          0.95,
			MinP:          0.05,
			RepeatPenalty: 1,
			RepeatLastN:   64,
		},
		LogLevel:      "info",
		ShutdownGrace: 30 * time.Second,
		Watchdog:      true,
		Watch:         true,
	}
}

// Reload says how a changed key takes effect when the daemon reloads its configuration.
type Reload int

const (
	// Live keys apply to new requests at once.
	Live Reload = iota
	// Swap keys are engine options: the model is loaded again aside with them and swapped in,
	// as for a new model file; requests in flight finish on the old one.
	Swap
	// Restart keys cannot change while running; a reload logs them and keeps the old value.
	Restart
)

func (r Reload) String() string {
	switch r {
	case Live:
		return "live"
	case Swap:
		return "live (reloads the model)"
	default:
		return "needs restart"
	}
}

// Key describes one configuration key.
type Key struct {
	Name    string // dotted: "threads", "limits.max_tokens"
	Type    string // "string", "integer", "float", "boolean", "size", "duration", "mode", "integer list"
	Default string // as written in configs/edgelm.toml
	Reload  Reload
}

type kind int

const (
	kString kind = iota
	kInt
	kFloat
	kBool
	kSize
	kDuration
	kMode
	kIntList
)

var kindNames = [...]string{"string", "integer", "float", "boolean", "size", "duration", "mode", "integer list"}

type field struct {
	key    string
	kind   kind
	ptr    any // *string, *int, *float64, *bool, *Size, *time.Duration, *fs.FileMode, *[]uint32
	reload Reload
}

// fields is the schema: every key, where it lives in c, and how it reloads.
func (c *Config) fields() []field {
	return []field{
		{"model", kString, &c.Model, Swap},
		{"socket", kString, &c.Socket, Restart},
		{"socket_mode", kMode, &c.SocketMode, Restart},
		{"socket_group", kString, &c.SocketGroup, Restart},
		{"tcp_listen", kString, &c.TCPListen, Restart},
		{"allowed_uids", kIntList, &c.AllowedUIDs, Live},
		{"allowed_gids", kIntList, &c.AllowedGIDs, Live},
		{"threads", kInt, &c.Threads, Swap},
		{"context_length", kInt, &c.ContextLength, Swap},
		{"max_sequences", kInt, &c.MaxSequences, Swap},
		{"max_queue", kInt, &c.MaxQueue, Swap},
		{"kv_type_k", kString, &c.KVTypeK, Swap},
		{"kv_type_v", kString, &c.KVTypeV, Swap},
		{"kv_budget", kSize, &c.KVBudget, Swap},
		{"kv_policy", kString, &c.KVPolicy, Swap},
		{"kv_sinks", kInt, &c.KVSinks, Swap},
		{"prefix_cache", kBool, &c.PrefixCache, Swap},
		{"kernels", kString, &c.Kernels, Swap},
		{"model_reread", kBool, &c.ModelReread, Swap},
		{"chat_template", kString, &c.ChatTemplate, Live},
		{"log_level", kString, &c.LogLevel, Live},
		{"shutdown_grace", kDuration, &c.ShutdownGrace, Live},
		{"watchdog", kBool, &c.Watchdog, Live},
		{"watch", kBool, &c.Watch, Restart},
		{"limits.max_body_bytes", kSize, &c.Limits.MaxBodyBytes, Live},
		{"limits.max_prompt_tokens", kInt, &c.Limits.MaxPromptTokens, Live},
		{"limits.max_tokens", kInt, &c.Limits.MaxTokens, Live},
		{"limits.default_max_tokens", kInt, &c.Limits.DefaultMaxTokens, Live},
		{"limits.request_timeout", kDuration, &c.Limits.RequestTimeout, Live},
		{"limits.idle_timeout", kDuration, &c.Limits.IdleTimeout, Live},
		{"sampling.temperature", kFloat, &c.Sampling.Temperature, Live},
		{"sampling.top_k", kInt, &c.Sampling.TopK, Live},
		{"sampling.top_p", kFloat, &c.Sampling.TopP, Live},
		{"sampling.min_p", kFloat, &c.Sampling.MinP, Live},
		{"sampling.repeat_penalty", kFloat, &c.Sampling.RepeatPenalty, Live},
		{"sampling.repeat_last_n", kInt, &c.Sampling.RepeatLastN, Live},
	}
}

// Keys lists every key the file may set, in the order of configs/edgelm.toml.
func Keys() []Key {
	d := Defaults()
	var keys []Key
	for _, f := range d.fields() {
		keys = append(keys, Key{Name: f.key, Type: kindNames[f.kind], Default: formatValue(f), Reload: f.reload})
	}
	return keys
}

func formatValue(f field) string {
	switch p := f.ptr.(type) {
	case *string:
		return strconv.Quote(*p)
	case *int:
		return strconv.Itoa(*p)
	case *float64:
		return strconv.FormatFloat(*p, 'g', -1, 64)
	case *bool:
		return strconv.FormatBool(*p)
	case *Size:
		if *p == 0 {
			return "0"
		}
		return strconv.Quote(p.String())
	case *time.Duration:
		return strconv.Quote(p.String())
	case *fs.FileMode:
		return strconv.Quote(fmt.Sprintf("%04o", uint32(*p)))
	case *[]uint32:
		s := make([]string, len(*p))
		for i, v := range *p {
			s[i] = strconv.FormatUint(uint64(v), 10)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	return "?"
}

// Error is a problem with one key or line of a config file.
type Error struct {
	File string // "" when parsing bytes not read from a file
	Line int    // 1-based; 0 when the problem has no line (a default value, a missing file)
	Key  string // dotted key, "" for syntax errors
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, checks and returns the config file at path. Relative paths in it are resolved
// against the file's directory. All problems found are returned together (errors.Join of *Error).
func Load(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, withFile(err, path)
	}
	return c, nil
}

// maxConfigBytes bounds what Load reads: a config file is a few KB.
const maxConfigBytes = 1 << 20

// readConfig reads a config file, refusing what is not a regular file (a FIFO would block the
// open or the read forever, stalling start-up and every reload) and what is absurdly large.
func readConfig(path string) ([]byte, error) {
	f, err := mmap.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, maxConfigBytes)
	}
	return data, nil
}

// Parse reads a config from data; dir is the directory relative paths are resolved against.
// It checks every value, as Load does.
func Parse(data []byte, dir string) (*Config, error) {
	return parse(data, dir)
}

func withFile(err error, path string) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ce *Error
		if errors.As(e, &ce) {
			ce.File = path
		}
	}
	return err
}

func parse(data []byte, dir string) (*Config, error) {
	src := string(data)
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Line: pe.Position.Line, Msg: pe.Message}
		}
		return nil, &Error{Msg: err.Error()}
	}
	lines := keyLines(src)
	c := Defaults()
	fields := c.fields()
	byKey := make(map[string]*field, len(fields))
	tables := make(map[string]bool)
	for i := range fields {
		byKey[fields[i].key] = &fields[i]
		if j := strings.LastIndexByte(fields[i].key, '.'); j >= 0 {
			tables[fields[i].key[:j]] = true
		}
	}
	var errs []*Error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Line: lineOf(lines, key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			key := prefix + k
			v := m[k]
			if f, ok := byKey[key]; ok {
				if err := assign(f, v); err != nil {
					bad(key, "key %q: %v", key, err)
				}
				continue
			}
			if tables[key] {
				sub, ok := v.(map[string]any)
				if !ok {
					bad(key, "key %q: want a table ([%s]), got %s", key, key, describe(v))
					continue
				}
				walk(key+".", sub)
				continue
			}
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(key, fields, tables); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			bad(key, "%s", msg)
		}
	}
	walk("", raw)
	if len(errs) == 0 {
		c.resolvePaths(dir)
		for _, e := range c.check() {
			e.Line = lineOf(lines, e.Key)
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		return &c, nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return nil, errors.Join(out...)
}

// assign stores the TOML value v into f, or says why it does not fit.
func assign(f *field, v any) error {
	switch p := f.ptr.(type) {
	case *string:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", describe(v))
		}
		*p = s
	case *int:
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("want an integer, got %s", describe(v))
		}
		if int64(int(n)) != n {
			return fmt.Errorf("%d is out of range", n)
		}
		*p = int(n)
	case *float64:
		switch n := v.(type) {
		case float64:
			*p = n
		case int64:
			*p = float64(n)
		default:
			return fmt.Errorf("want a number, got %s", describe(v))
		}
	case *bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want true or false, got %s", describe(v))
		}
		*p = b
	case *Size:
		switch n := v.(type) {
		case int64:
			if n < 0 {
				return fmt.Errorf("size %d is negative", n)
			}
			*p = Size(n)
		case string:
			s, err := ParseSize(n)
			if err != nil {
				return err
			}
			*p = s
		default:
			return fmt.Errorf("want a size such as \"256MiB\" or a number of bytes, got %s", describe(v))
		}
	case *time.Duration:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a duration string such as \"30s\" or \"5m\", got %s", describe(v))
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as \"30s\" or \"5m\", got %q", s)
		}
		*p = d
	case *fs.FileMode:
		var m int64
		switch n := v.(type) {
		case int64:
			m = n // written as 0o660 in TOML
		case string:
			u, err := strconv.ParseUint(strings.TrimPrefix(n, "0o"), 8, 32)
			if err != nil {
				return fmt.Errorf("want an octal mode such as \"0660\", got %q", n)
			}
			m = int64(u)
		default:
			return fmt.Errorf("want an octal mode such as \"0660\", got %s", describe(v))
		}
		if m < 0 || m > 0o777 {
			return fmt.Errorf("mode %#o has bits outside 0777 (write it as the string \"0660\" or 0o660)", m)
		}
		*p = fs.FileMode(m)
	case *[]uint32:
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list of integers such as [1000, 1001], got %s", describe(v))
		}
		out := make([]uint32, 0, len(list))
		for _, e := range list {
			n, ok := e.(int64)
			if !ok {
				return fmt.Errorf("want a list of integers, got an element %s", describe(e))
			}
			if n < 0 || n > 1<<32-2 { // (uid_t)-1 means "no id"
				return fmt.Errorf("id %d is out of range 0..%d", n, uint32(1<<32-2))
			}
			out = append(out, uint32(n))
		}
		if len(out) == 0 {
			out = nil // so an empty list equals the default
		}
		*p = out
	default:
		return fmt.Errorf("internal: no decoder for %T", f.ptr)
	}
	return nil
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("float %g", x)
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("%T", v)
}

// suggest returns the known key closest to an unknown one, if it is close enough to be a typo.
func suggest(key string, fields []field, tables map[string]bool) string {
	best, bestD := "", 3
	try := func(cand, name string) {
		if d := editDistance(key, cand); d < bestD {
			best, bestD = name, d
		}
	}
	for _, f := range fields {
		try(f.key, f.key)
		try(f.key[strings.LastIndexByte(f.key, '.')+1:], f.key)
	}
	for t := range tables {
		try(t, t)
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolvePaths makes the model and socket paths absolute, relative to dir.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{&c.Model, &c.Socket} {
		if *p != "" && !filepath.IsAbs(*p) && dir != "" {
			*p = filepath.Join(dir, *p)
		}
	}
}

// Validate checks every value of c (after flags changed it, say). It returns errors.Join of
// *Error, one per bad key, or nil.
func (c *Config) Validate() error {
	errs := c.check()
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// KVTypes are the cache element types the engine accepts.
var KVTypes = []string{"f32", "f16", "q8_0", "q4_0"}

// LogLevels are the accepted log_level values.
var LogLevels = []string{"debug", "info", "warn", "error"}

func (c *Config) check() []*Error {
	var errs []*Error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf("key %q: ", key) + fmt.Sprintf(format, args...)})
	}
	between := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(key, "%d is outside %d..%d", v, lo, hi)
		}
	}
	betweenF := func(key string, v, lo, hi float64) {
		if !(v >= lo && v <= hi) {
			bad(key, "%g is outside %g..%g", v, lo, hi)
		}
	}
	nonNeg := func(key string, d time.Duration) {
		if d < 0 {
			bad(key, "duration %s is negative", d)
		}
	}
	oneOf := func(key, v string, set []string) {
		for _, s := range set {
			if v == s {
				return
			}
		}
		bad(key, "%q is not one of %s", v, strings.Join(set, ", "))
	}

	if c.Model == "" {
		bad("model", "a model path is required")
	}
	switch {
	case c.Socket == "":
		bad("socket", "a socket path is required")
	case len(c.Socket) > 107:
		// sun_path holds 108 bytes including the terminating NUL.
		bad("socket", "path is %d bytes; Unix socket paths are limited to 107", len(c.Socket))
	}
	if c.SocketMode == 0 {
		bad("socket_mode", "mode 0 would let nobody connect")
	} else if c.SocketMode&^0o777 != 0 {
		bad("socket_mode", "mode %#o has bits outside 0777", uint32(c.SocketMode))
	}
	if strings.TrimSpace(c.SocketGroup) != c.SocketGroup {
		bad("socket_group", "%q has surrounding spaces", c.SocketGroup)
	}
	if c.TCPListen != "" {
		host, port, err := net.SplitHostPort(c.TCPListen)
		if err != nil {
			bad("tcp_listen", "want \"host:port\" such as \"127.0.0.1:8080\": %v", err)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("tcp_listen", "port %q is not a number in 0..65535", port)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			// TCP peers have no credentials to check, so only this host may connect.
			bad("tcp_listen", "host %q: only loopback addresses are allowed (127.0.0.1, ::1, localhost)", host)
		}
	}
	between("threads", c.Threads, 0, 1024)
	between("context_length", c.ContextLength, 0, 1<<24)
	between("max_sequences", c.MaxSequences, 1, 1024)
	between("max_queue", c.MaxQueue, 1, 1<<20)
	oneOf("kv_type_k", c.KVTypeK, KVTypes)
	oneOf("kv_type_v", c.KVTypeV, KVTypes)
	if c.KVBudget < 0 {
		bad("kv_budget", "size is negative")
	}
	oneOf("kv_policy", c.KVPolicy, []string{"sink-window", "none"})
	between("kv_sinks", c.KVSinks, 1, 1024)
	for _, r := range c.ChatTemplate {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			bad("chat_template", "%q is not a format name such as \"chatml\" or \"llama3\"", c.ChatTemplate)
			break
		}
	}
	for _, r := range c.Kernels {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '_' || r == ',') {
			bad("kernels", "%q is not a feature name such as \"generic\" or \"avx2\"", c.Kernels)
			break
		}
	}
	if c.Limits.MaxBodyBytes < 1 {
		bad("limits.max_body_bytes", "must be at least 1 byte")
	}
	between("limits.max_prompt_tokens", c.Limits.MaxPromptTokens, 0, 1<<24)
	between("limits.max_tokens", c.Limits.MaxTokens, 1, 1<<24)
	between("limits.default_max_tokens", c.Limits.DefaultMaxTokens, 1, 1<<24)
	if c.Limits.DefaultMaxTokens > c.Limits.MaxTokens {
		bad("limits.default_max_tokens", "%d is above limits.max_tokens (%d)", c.Limits.DefaultMaxTokens, c.Limits.MaxTokens)
	}
	nonNeg("limits.request_timeout", c.Limits.RequestTimeout)
	nonNeg("limits.idle_timeout", c.Limits.IdleTimeout)
	for _, l := range []struct {
		key string
		ids []uint32
	}{{"allowed_uids", c.AllowedUIDs}, {"allowed_gids", c.AllowedGIDs}} {
		for _, id := range l.ids {
			if id == 1<<32-1 {
				bad(l.key, "id %d is (uid_t)-1, which no process has", id)
			}
		}
	}
	betweenF("sampling.temperature", c.Sampling.Temperature, 0, 100)
	between("sampling.top_k", c.Sampling.TopK, 0, 1<<24)
	betweenF("sampling.top_p", c.Sampling.TopP, 0, 1)
	betweenF("sampling.min_p", c.Sampling.MinP, 0, 1)
	betweenF("sampling.repeat_penalty", c.Sampling.RepeatPenalty, 0, 10)
	between("sampling.repeat_last_n", c.Sampling.RepeatLastN, 0, 1<<24)
	oneOf("log_level", c.LogLevel, LogLevels)
	nonNeg("shutdown_grace", c.ShutdownGrace)
	return errs
}

// SlogLevel is LogLevel as a slog.Level (info for anything unknown).
func (c *Config) SlogLevel() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Change is one key whose value differs between two configs.
type Change struct {
	Key    string
	Reload Reload
}

// Changes lists the keys whose values differ from old to new, in schema order.
func Changes(old, new *Config) []Change {
	of, nf := old.fields(), new.fields()
	var out []Change
	for i := range of {
		a := reflect.ValueOf(of[i].ptr).Elem().Interface()
		b := reflect.ValueOf(nf[i].ptr).Elem().Interface()
		if !reflect.DeepEqual(a, b) {
			// Empty and nil lists mean the same.
			if la, ok := a.([]uint32); ok && len(la) == 0 && len(b.([]uint32)) == 0 {
				continue
			}
			out = append(out, Change{Key: of[i].key, Reload: of[i].reload})
		}
	}
	return out
}
