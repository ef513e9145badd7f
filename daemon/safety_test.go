package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"edgelm/engine"
	"edgelm/internal/testshared"
)

// TestNestingLimit: deeply nested one-element arrays cost seconds of CPU each (every level
// re-parsed what was inside it) and were accepted as a prompt. Now the body's nesting is bounded
// before decoding, and a prompt array inside a prompt array is refused.
func TestNestingLimit(t *testing.T) {
	ts := start(t, newFake(), Settings{})
	deep := strings.Repeat("[", 10000) + `"a"` + strings.Repeat("]", 10000) // 20 KB
	for _, tc := range []struct{ body, code, msg string }{
		{`{"prompt":` + deep + `}`, "invalid_json", "nested more than 64 levels"},
		{`{"prompt":"a","x":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `}`, "invalid_json", "nested more than 64 levels"},
		{`{"prompt":[["a"]]}`, "invalid_type", "array of prompts inside an array"},
		{`{"prompt":[[[44]]]}`, "invalid_type", "array of prompts inside an array"},
	} {
		start := time.Now()
		r := ts.post("/v1/completions", tc.body, 400)
		if get(r, "error", "code") != tc.code || !strings.Contains(fmt.Sprint(get(r, "error", "message")), tc.msg) {
			t.Errorf("%.40s...: %v, want %s %q", tc.body, r, tc.code, tc.msg)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%.40s...: took %v", tc.body, d)
		}
	}
	// Brackets inside strings are text, not nesting; the allowed forms still work.
	ts.post("/v1/completions", `{"max_tokens":1,"prompt":"`+strings.Repeat("[{", 30)+`\"]"}`, 200)
	ts.post("/v1/completions", `{"max_tokens":1,"prompt":[[44,77]]}`, 200)
	ts.post("/v1/completions", `{"max_tokens":1,"prompt":["Hi"]}`, 200)
}

func TestCheckDepth(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`[[[]]]`, true}, {`[[[[]]]]`, false}, {`{"a":{"b":[1]}}`, true}, {`{"a":{"b":[{}]}}`, false},
		{`["[[[[[[", "\"[[[[["]`, true}, {`"\\"`, true}, {`["\\", [[[ ]]]]`, false},
	} {
		if err := checkDepth([]byte(tc.in), 3); (err == nil) != tc.ok {
			t.Errorf("checkDepth(%s, 3) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestAccessLog: every request gets a line at info with method, path, status, duration and peer,
// and the model and token counts when it generated; a failed one is logged at error with the reason.
func TestAccessLog(t *testing.T) {
	f := newFake()
	ts := start(t, f, Settings{})
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3}`, 200)
	line := lastLine(t, ts.logs.String(), "path=/v1/completions")
	for _, want := range []string{"level=INFO", "msg=request", "method=POST", "status=200", "took=", fmt.Sprintf("uid=%d", os.Getuid()),
		"model=fake.gguf", "prompt_tokens=3", "completion_tokens=3"} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q lacks %q", line, want)
		}
	}
	ts.post("/v1/tokenize", `{"content":5}`, 400)
	if line := lastLine(t, ts.logs.String(), "path=/v1/tokenize"); !strings.Contains(line, "level=WARN") || !strings.Contains(line, "status=400") || !strings.Contains(line, "reason=") {
		t.Errorf("client error line: %q", line)
	}
	f.err = errors.New("engine: forward step: mmap: fault reading the model file (truncated?)")
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3}`, 500)
	if line := lastLine(t, ts.logs.String(), "path=/v1/completions"); !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "status=500") || !strings.Contains(line, "truncated?") {
		t.Errorf("failure line: %q", line)
	}
}

// lastLine is the last log line containing s.
func lastLine(t *testing.T, logs, s string) string {
	t.Helper()
	lines := strings.Split(logs, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) && strings.Contains(lines[i], "msg=request") {
			return lines[i]
		}
	}
	t.Fatalf("no access log line with %q in:\n%s", s, logs)
	return ""
}

// TestHealthDegraded: /health said "ok" while every generation failed. It now says "degraded"
// with the last error until a generation succeeds (200, or 503 with ?strict=1), and so it does
// for good once the engine saw non-finite logits.
func TestHealthDegraded(t *testing.T) {
	f := newFake()
	ts := start(t, f, Settings{})
	health := func(query string, wantCode int) map[string]any {
		t.Helper()
		resp, b := ts.do("GET", "/health"+query, "")
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || resp.StatusCode != wantCode {
			t.Fatalf("/health%s: %d %s, want %d", query, resp.StatusCode, b, wantCode)
		}
		return m
	}
	if h := health("?strict=1", 200); h["status"] != "ok" {
		t.Fatalf("fresh: %v", h)
	}
	f.err = errors.New("engine: forward step: boom")
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3}`, 500)
	h := health("", 200)
	if h["status"] != "degraded" || !strings.Contains(fmt.Sprint(h["degraded"]), "boom") ||
		!strings.Contains(fmt.Sprint(get(h, "last_error", "message")), "boom") || h["generation_failures"] != 1.0 {
		t.Errorf("after a failed generation: %v", h)
	}
	health("?strict=1", 503)
	// Client errors and cancellations are not the model's fault.
	f.err = engine.ErrQueueFull
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3}`, 429)
	f.err = nil
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3}`, 200)
	if h := health("?strict=1", 200); h["status"] != "ok" || h["generation_failures"] != 1.0 || get(h, "last_error", "message") == nil {
		t.Errorf("after a success: %v", h)
	}

	// Non-finite logits: a clear error, not "json: unsupported value: NaN", and degraded for good.
	f.err = fmt.Errorf("engine: step: %w", engine.ErrNonFinite)
	r := ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3,"logprobs":2}`, 500)
	if get(r, "error", "code") != "model_error" || !strings.Contains(fmt.Sprint(get(r, "error", "message")), "non-finite") {
		t.Errorf("NaN answer: %v", r)
	}
	f.err, f.fault = nil, engine.ErrNonFinite.Error()
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3}`, 200)
	if h := health("?strict=1", 503); h["status"] != "degraded" || !strings.Contains(fmt.Sprint(h["degraded"]), "non-finite") {
		t.Errorf("engine fault: %v", h)
	}
	if m := ts.metricsText(); !strings.Contains(m, "edgelm_generation_failures_total 2\n") {
		t.Errorf("metrics lack the failure count")
	}
}

func (ts *testServer) metricsText() string {
	_, b := ts.do("GET", "/metrics", "")
	return string(b)
}

// TestSlowClientDropped: a client that stops reading a stream used to hold its handler and the
// model forever. Each write now has a deadline: the client is dropped, the generation cancelled,
// and the drop counted.
func TestSlowClientDropped(t *testing.T) {
	f := newFake()
	f.reply = strings.Repeat("x", 6000)
	f.ctxLen = 8192
	ts := start(t, f, Settings{WriteTimeout: 200 * time.Millisecond, MaxTokensCap: 8000})
	c, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"prompt":"Hi","max_tokens":6000,"stream":true,"logprobs":20}`
	fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: edgelm\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	// ... and never read: about 9 MB of chunks cannot fit in the socket's buffers.
	deadline := time.Now().Add(10 * time.Second)
	for m := ts.metricsText(); !strings.Contains(m, "edgelm_slow_clients_dropped_total 1\n") || !strings.Contains(m, "edgelm_requests_in_flight 1\n"); m = ts.metricsText() {
		if time.Now().After(deadline) {
			t.Fatal("edgelm_slow_clients_dropped_total is not 1, or the request is still in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if line := lastLine(t, ts.logs.String(), "path=/v1/completions"); !strings.Contains(line, "did not read the response") {
		t.Errorf("access log: %q", line)
	}
	// Others are served meanwhile and after.
	ts.post("/v1/completions", `{"prompt":"Hi","max_tokens":3}`, 200)
}

// TestShutdownCutsWithError: requests still running when the grace period ends get a 503, or a
// stream an error event and [DONE], before their connections close (docs/reliability.md).
func TestShutdownCutsWithError(t *testing.T) {
	f := newFake()
	f.reply = strings.Repeat("x", 100)
	f.delay = 20 * time.Millisecond
	set := Settings{Socket: filepath.Join(shortTempDir(t), "s.sock"), ShutdownGrace: 100 * time.Millisecond}
	srv := New(f, set, nil)
	l, err := Listen(set)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	c := unixClient(set.Socket)

	plain := make(chan string, 1)
	go func() {
		resp, err := c.Post("http://edgelm/v1/completions", "application/json", strings.NewReader(`{"prompt":"Hi","max_tokens":100}`))
		if err != nil {
			plain <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		plain <- fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("Retry-After"), " ", string(b))
	}()
	resp, err := c.Post("http://edgelm/v1/completions", "application/json", strings.NewReader(`{"prompt":"Hi","max_tokens":100,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first stream line %q: %v", line, err)
	}
	cancel()
	rest, _ := io.ReadAll(rd)
	resp.Body.Close()
	var lines []string
	for _, l := range strings.Split(string(rest), "\n") {
		if strings.HasPrefix(l, "data: ") {
			lines = append(lines, l)
		}
	}
	if n := len(lines); n < 2 || lines[n-1] != "data: [DONE]" || !strings.Contains(lines[n-2], `"code":"shutting_down"`) {
		t.Errorf("the cut stream ends with %q, want an error event with shutting_down and [DONE]", lines[max(0, n-2):])
	}
	if got := <-plain; !strings.HasPrefix(got, "503 5 ") || !strings.Contains(got, `"shutting_down"`) {
		t.Errorf("the cut request got %s, want 503 shutting_down", got)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestPeerGroups: the peer's supplementary groups are read from the socket (SO_PEERGROUPS) and
// checked against allowed_gids, so `usermod -aG edgelm alice` works. faults.TestPeerCredentials
// checks it across users, as root.
func TestPeerGroups(t *testing.T) {
	groups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	p := peerOf(a)
	if !p.credOK {
		t.Fatal("no credentials")
	}
	var got []int
	for _, g := range p.groups {
		got = append(got, int(g))
	}
	slices.Sort(got)
	slices.Sort(groups)
	if !slices.Equal(got, groups) {
		t.Errorf("peer groups %v, want this process's %v", got, groups)
	}
	var extra uint32
	found := false
	for _, g := range groups {
		if uint32(g) != uint32(os.Getgid()) {
			extra, found = uint32(g), true
		}
	}
	if !found {
		t.Skip("this process has no supplementary group besides its primary one")
	}
	ts := start(t, newFake(), Settings{AllowedUIDs: []uint32{uint32(os.Getuid()) + 12345}, AllowedGIDs: []uint32{extra}})
	if resp, b := ts.do("GET", "/health", ""); resp.StatusCode != 200 {
		t.Errorf("allowed by a supplementary group: %d %s", resp.StatusCode, b)
	}
}

func socketPair() (*net.UnixConn, *net.UnixConn, error) {
	dir, err := os.MkdirTemp("", "edgelm-p")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: dir + "/s", Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	c, err := net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		return nil, nil, err
	}
	s, err := l.AcceptUnix()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return s, c, nil
}

// boundedFake is the fake with a bound on the text a token stands for, and a Tokenize that
// records how many calls run at once.
type boundedFake struct {
	*fakeBackend
	per          int
	mu           sync.Mutex
	calls, now   int
	most         int
	tokenizeTime time.Duration
}

func (b *boundedFake) MaxTextBytes() int { return b.per }

func (b *boundedFake) Tokenize(text string, addSpecial, parseSpecial bool) []int32 {
	b.mu.Lock()
	b.calls++
	b.now++
	b.most = max(b.most, b.now)
	b.mu.Unlock()
	time.Sleep(b.tokenizeTime)
	defer func() {
		b.mu.Lock()
		b.now--
		b.mu.Unlock()
	}()
	return b.fakeBackend.Tokenize(text, addSpecial, parseSpecial)
}

// TestLongPromptRejectedEarly: a text prompt sure to be over the limit (more bytes than the limit
// times the most a token stands for) is refused without being tokenized; 16 such 1 MB prompts
// cost 691 MB before. One that may fit is tokenized and checked as before.
func TestLongPromptRejectedEarly(t *testing.T) {
	b := &boundedFake{fakeBackend: newFake(), per: 4}
	ts := startBackend(t, b, Settings{MaxPromptTokens: 20, ChatTemplate: "chatml"})
	r := ts.post("/v1/completions", `{"prompt":"`+strings.Repeat("a", 81)+`"}`, 400)
	if get(r, "error", "code") != "context_length_exceeded" || !strings.Contains(fmt.Sprint(get(r, "error", "message")), "at least 21 tokens") {
		t.Errorf("too long: %v", r)
	}
	r = ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"`+strings.Repeat("a", 200)+`"}]}`, 400)
	if get(r, "error", "code") != "context_length_exceeded" {
		t.Errorf("chat, too long: %v", r)
	}
	if b.calls != 0 {
		t.Errorf("the backend tokenized %d over-long prompts", b.calls)
	}
	r = ts.post("/v1/completions", `{"prompt":"`+strings.Repeat("a", 80)+`"}`, 400) // 81 tokens with BOS: tokenized, then refused
	if !strings.Contains(fmt.Sprint(get(r, "error", "message")), "has 81 tokens") || b.calls != 1 {
		t.Errorf("may fit: %v after %d tokenizations", r, b.calls)
	}
}

// TestTokenizeLimit: big texts are tokenized a few at a time (one per CPU), whatever the number
// of clients, and the streamed answer is what json.Marshal made of it before.
func TestTokenizeLimit(t *testing.T) {
	b := &boundedFake{fakeBackend: newFake(), tokenizeTime: 30 * time.Millisecond}
	ts := startBackend(t, b, Settings{MaxBodyBytes: 1 << 20})
	text := strings.Repeat("ab <s>", bigText/6+1)
	body, _ := json.Marshal(map[string]any{"content": text, "with_pieces": true})
	var wg sync.WaitGroup
	answers := make([][]byte, 8)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := ts.do("POST", "/v1/tokenize", string(body))
			if resp.StatusCode != 200 {
				t.Errorf("tokenize: %d %.200s", resp.StatusCode, b)
			}
			answers[i] = b
		}()
	}
	wg.Wait()
	if limit := goruntime.GOMAXPROCS(0); b.most > limit || b.calls != 8 {
		t.Errorf("%d tokenizations, at most %d at once; want at most %d", b.calls, b.most, limit)
	}
	ids := b.fakeBackend.Tokenize(text, true, true)
	pieces := make([]string, len(ids))
	for i, id := range ids {
		pieces[i] = b.Detokenize([]int32{id})
	}
	want, _ := json.Marshal(tokenizeResponse{Tokens: ids, Pieces: pieces})
	for i, a := range answers {
		if string(a) != string(want)+"\n" {
			t.Errorf("answer %d differs from json.Marshal's (%d vs %d bytes)", i, len(a), len(want)+1)
		}
	}
	// Small ones, with and without pieces, and none at all.
	for _, tc := range []struct{ body, want string }{
		{`{"content":"Hi"}`, `{"tokens":[0,44,77]}`},
		{`{"content":"Hi <","with_pieces":true,"add_special":false}`, `{"tokens":[44,77,4,32],"pieces":["H","i","","\u003c"]}`},
		{`{"content":"","with_pieces":true,"add_special":false}`, `{"tokens":[]}`},
	} {
		if _, got := ts.do("POST", "/v1/tokenize", tc.body); string(got) != tc.want+"\n" {
			t.Errorf("%s: %s, want %s", tc.body, got, tc.want)
		}
	}
}

// TestServiceFIFOModel: a model path that is a FIFO used to wedge start-up, reloads and the
// SIGTERM that followed. Start-up now fails at once naming it; a reload to it fails and the old
// model keeps serving; SIGTERM still stops the service.
func TestServiceFIFOModel(t *testing.T) {
	models := filepath.Join(testshared.Dir(t), "models")
	dir := shortTempDir(t)
	fifo := filepath.Join(dir, "fifo.gguf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "edgelm.toml")
	writeFile(t, conf, "model = \"fifo.gguf\"\nsocket = \"d.sock\"\n")
	run := func(sigs chan os.Signal) (*Service, chan error) {
		svc, err := NewService(ServiceOptions{ConfigPath: conf, LogOutput: io.Discard, Signals: sigs})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- svc.Run(context.Background()) }()
		return svc, done
	}
	_, done := run(make(chan os.Signal))
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is a FIFO, not a regular file") {
			t.Errorf("start-up on a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("start-up on a FIFO model still blocked after 10s")
	}

	copyFile(t, filepath.Join(models, "aidreams260K-q8_0.gguf"), filepath.Join(dir, "model.gguf"))
	writeFile(t, conf, "model = \"model.gguf\"\nsocket = \"d.sock\"\n")
	sigs := make(chan os.Signal, 1)
	svc, done := run(sigs)
	st := &svcTest{t: t, dir: dir, client: unixClient(filepath.Join(dir, "d.sock"))}
	st.waitFor(slow, "serving", func() bool { code, _, err := st.get("/health"); return err == nil && code == 200 })
	writeFile(t, conf, "model = \"fifo.gguf\"\nsocket = \"d.sock\"\n")
	reloaded := make(chan error, 1)
	go func() { reloaded <- svc.Reload() }()
	select {
	case err := <-reloaded:
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("reload to a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reload to a FIFO model still blocked after 10s")
	}
	if h := st.health(); h["model"] != "model.gguf" || get(h, "reload", "ok") != false {
		t.Errorf("after the failed reload: %v", h)
	}
	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not stop the service")
	}
}
