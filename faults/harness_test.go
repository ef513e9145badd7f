package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"edgelm/daemon"
	"edgelm/engine"
	"edgelm/internal/testshared"
)

const modelName = "aidreams260K-q8_0.gguf"

// daemonUnderTest is a daemon serving a private copy of the small model on a Unix socket.
type daemonUnderTest struct {
	t      *testing.T
	srv    *daemon.Server
	eng    *engine.Engine
	model  string // the private copy the engine maps
	good   []byte // the model file's original bytes
	socket string
	client *http.Client
	logs   *syncBuffer
}

// syncBuffer collects the daemon's log lines from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start copies the shared model to a temp dir, loads it with opt and serves it with set (the
// socket path is chosen here). Everything is torn down when the test ends.
func start(t *testing.T, opt engine.Options, set daemon.Settings) *daemonUnderTest {
	t.Helper()
	src := filepath.Join(testshared.Dir(t), "models", modelName)
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Socket paths are limited to 108 bytes, so not t.TempDir() (it holds the test name).
	dir, err := os.MkdirTemp("", "edgelm-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	model := filepath.Join(dir, modelName)
	if err := os.WriteFile(model, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if opt.Threads == 0 {
		opt.Threads = 1
	}
	eng, err := engine.Load(model, opt)
	if err != nil {
		t.Fatal(err)
	}
	if set.ChatTemplate == "" {
		set.ChatTemplate = "chatml"
	}
	set.Model = model
	set.Socket = filepath.Join(dir, "edgelm.sock")
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := daemon.New(eng, set, logger)
	l, err := daemon.Listen(set)
	if err != nil {
		eng.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	d := &daemonUnderTest{t: t, srv: srv, eng: eng, model: model, good: good, socket: set.Socket, logs: logs}
	d.client = d.newClient()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		l.Close()
		// The backend may have been swapped by the test; close whatever serves now.
		if b, idle := srv.SetBackend(nil); b != nil {
			<-idle
			switch e := b.(type) {
			case *engine.Engine:
				e.Close()
			case interface{ Close() error }:
				e.Close()
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", tail(logs.String(), 40))
		}
	})
	return d
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (d *daemonUnderTest) dial(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, "unix", d.socket)
}

// newClient returns an HTTP client with its own connections to the daemon.
func (d *daemonUnderTest) newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return d.dial(ctx) },
		MaxIdleConnsPerHost: 64,
	}}
}

// reply is one answered request.
type reply struct {
	status     int
	body       []byte
	retryAfter string
}

func (r reply) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (d *daemonUnderTest) do(method, path, body string) (reply, error) {
	req, err := http.NewRequest(method, "http://edgelm"+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, b, resp.Header.Get("Retry-After")}, err
}

// metric reads one unlabelled value from /metrics.
func (d *daemonUnderTest) metric(name string) float64 {
	d.t.Helper()
	r, err := d.do(http.MethodGet, "/metrics", "")
	if err != nil || r.status != 200 {
		d.t.Fatalf("/metrics: %v %d", err, r.status)
	}
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	d.t.Fatalf("/metrics has no %s", name)
	return 0
}

// waitIdle waits until the engine runs and queues nothing and only the scrape itself is in
// flight.
func (d *daemonUnderTest) waitIdle(within time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		a, q, f := d.metric("edgelm_active_sequences"), d.metric("edgelm_queue_depth"), d.metric("edgelm_requests_in_flight")
		if a == 0 && q == 0 && f <= 1 {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("not idle after %v: %v active sequences, %v queued, %v requests in flight", within, a, q, f)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wellFormed is a request a correct client sends; check reports what is wrong with its answer.
type wellFormed struct {
	path, body string
	stream     bool
}

var wellFormedRequests = []wellFormed{
	{"/v1/completions", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`, false},
	{"/v1/chat/completions", `{"messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":12}`, false},
	{"/v1/completions", `{"prompt":"The little dog","max_tokens":12,"stream":true}`, true},
	{"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"stream":true}`, true},
}

// sendWellFormed sends r as a well-behaved client: a 429 or 503 with Retry-After is retried
// (after a short pause, not the advertised seconds, to keep tests fast) up to 200 times.
// It returns nil only for a complete, correct answer.
func (d *daemonUnderTest) sendWellFormed(c *http.Client, r wellFormed) error {
	for try := 0; ; try++ {
		req, _ := http.NewRequest(http.MethodPost, "http://edgelm"+r.path, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", r.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: reading the answer: %w", r.path, err)
		}
		if (resp.StatusCode == 429 || resp.StatusCode == 503) && resp.Header.Get("Retry-After") != "" && try < 200 {
			time.Sleep(25 * time.Millisecond)
			continue
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d: %s", r.path, resp.StatusCode, bytes.TrimSpace(b))
		}
		if !r.stream {
			var v struct {
				Choices []struct {
					FinishReason string `json:"finish_reason"`
				} `json:"choices"`
			}
			if err := json.Unmarshal(b, &v); err != nil || len(v.Choices) != 1 || v.Choices[0].FinishReason == "" {
				return fmt.Errorf("%s: bad answer %s", r.path, b)
			}
			return nil
		}
		s := string(b)
		if strings.Contains(s, `"error"`) || !strings.Contains(s, `"finish_reason":"`) || !strings.HasSuffix(s, "data: [DONE]\n\n") {
			return fmt.Errorf("%s: bad stream %q", r.path, s)
		}
		return nil
	}
}

// alongside keeps clients sending well-formed requests until the returned function is called;
// that function fails the test if any of them did not succeed or none ran, and returns how many
// succeeded.
func (d *daemonUnderTest) alongside(clients int) (stop func() int) {
	var (
		wg   sync.WaitGroup
		quit atomic.Bool
		ok   atomic.Int64
		mu   sync.Mutex
		errs []error
	)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := d.newClient()
			defer c.CloseIdleConnections()
			for n := i; !quit.Load(); n++ {
				if err := d.sendWellFormed(c, wellFormedRequests[n%len(wellFormedRequests)]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}(i)
	}
	return func() int {
		d.t.Helper()
		quit.Store(true)
		wg.Wait()
		for i, err := range errs {
			if i == 5 {
				d.t.Errorf("... and %d more failed well-formed requests", len(errs)-5)
				break
			}
			d.t.Errorf("well-formed request alongside the fault failed: %v", err)
		}
		if ok.Load() == 0 {
			d.t.Error("no well-formed request completed alongside the fault")
		}
		return int(ok.Load())
	}
}

// streamLines reads an SSE body and returns its data payloads.
func streamLines(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, v)
		}
	}
	return out, sc.Err()
}

// isErrorBody reports whether b is the API's JSON error shape.
func isErrorBody(b []byte) bool {
	var e struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error.Message != "" && e.Error.Type != "" && e.Error.Code != ""
}

var errUnexpected = errors.New("unexpected")
