package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"edgelm/daemon"
	"edgelm/engine"
)

// TestTruncatedModel truncates the mapped model file while requests run. Reads of the vanished
// pages fault (SIGBUS); the engine must turn that into errors for the requests in flight, and the
// process must survive: every answer is a 200 or the API's JSON error, never a dropped connection.
// Writing the good bytes back into the same file makes the mapping valid again, and a model
// swap to a freshly loaded engine (what the service does when a good file returns) serves too.
func TestTruncatedModel(t *testing.T) {
	d := start(t, engine.Options{NoPrefixCache: true}, daemon.Settings{})
	for _, r := range wellFormedRequests {
		if err := d.sendWellFormed(d.client, r); err != nil {
			t.Fatalf("before the fault: %v", err)
		}
	}

	var (
		quit                             atomic.Bool
		wg                               sync.WaitGroup
		ok, apiErrors, streamErrs, other atomic.Int64
		mu                               sync.Mutex
		unexpected                       []string
	)
	bodies := []struct{ path, body string }{
		{"/v1/completions", `{"prompt":"Once upon a time","max_tokens":40,"ignore_eos":true}`},
		{"/v1/completions", `{"prompt":"The dog","max_tokens":40,"ignore_eos":true,"stream":true}`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":30,"stream":true}`},
		{"/v1/tokenize", `{"content":"Once upon a time","with_pieces":true}`},
		{"/v1/detokenize", `{"tokens":[1,2,3,300,301]}`},
	}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := d.newClient()
			for n := i; !quit.Load(); n++ {
				b := bodies[n%len(bodies)]
				resp, err := c.Post("http://edgelm"+b.path, "application/json", strings.NewReader(b.body))
				if err != nil {
					other.Add(1)
					mu.Lock()
					unexpected = append(unexpected, fmt.Sprintf("%s: %v", b.path, err))
					mu.Unlock()
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					other.Add(1)
					mu.Lock()
					unexpected = append(unexpected, fmt.Sprintf("%s: reading: %v", b.path, err))
					mu.Unlock()
				case resp.StatusCode == 200 && strings.Contains(string(body), `data: {"error"`):
					streamErrs.Add(1) // a stream that had started when the fault hit
				case resp.StatusCode == 200:
					ok.Add(1)
				case resp.StatusCode >= 500 && isErrorBody(body):
					apiErrors.Add(1)
				default:
					other.Add(1)
					mu.Lock()
					unexpected = append(unexpected, fmt.Sprintf("%s: %d %s", b.path, resp.StatusCode, body))
					mu.Unlock()
				}
			}
		}(i)
	}
	time.Sleep(200 * time.Millisecond)
	if err := os.Truncate(d.model, int64(len(d.good)/3)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if r, err := d.do(http.MethodGet, "/health", ""); err != nil || r.status != 200 {
		t.Errorf("/health while the model file is truncated: %v %d %s", err, r.status, r.body)
	}
	quit.Store(true)
	wg.Wait()
	t.Logf("while truncated: %d ok, %d JSON 5xx errors, %d streams ended by an error event, %d unexpected",
		ok.Load(), apiErrors.Load(), streamErrs.Load(), other.Load())
	for i, u := range unexpected {
		if i == 5 {
			break
		}
		t.Errorf("unexpected answer while truncated: %s", u)
	}
	if apiErrors.Load()+streamErrs.Load() == 0 {
		t.Error("no request failed while the model file was truncated: the fault was not exercised")
	}
	if !strings.Contains(d.logs.String(), "fault") && !strings.Contains(d.logs.String(), "SIGBUS") &&
		!strings.Contains(d.logs.String(), "forward step") {
		t.Logf("note: the daemon log does not mention the fault")
	}

	// The good bytes back in the same inode: the mapping reads them again.
	if err := os.WriteFile(d.model, d.good, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range wellFormedRequests {
		if err := d.sendWellFormed(d.client, r); err != nil {
			t.Errorf("after restoring the file in place: %v", err)
		}
	}
	// A good file under the same name, loaded aside and swapped in.
	fresh, err := engine.Load(d.model, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	old, idle := d.srv.SetBackend(fresh)
	<-idle
	old.(*engine.Engine).Close()
	stop := d.alongside(2)
	time.Sleep(300 * time.Millisecond)
	if n := stop(); n == 0 {
		t.Error("no request succeeded after the swap")
	}
}

// TestDisconnectMidStream opens 100 streams at once and drops each connection after its first
// chunk. The engine must drop every abandoned sequence (no active or queued work left, goroutines
// back to where they were) while well-formed requests alongside succeed.
func TestDisconnectMidStream(t *testing.T) {
	d := start(t, engine.Options{MaxQueue: 256}, daemon.Settings{})
	d.waitIdle(5 * time.Second)
	runtime.GC()
	before := runtime.NumGoroutine()
	stop := d.alongside(2)

	const burst = 100
	var wg sync.WaitGroup
	var got, refused, failed atomic.Int64
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body := fmt.Sprintf(`{"prompt":"Story %d:","max_tokens":100,"ignore_eos":true,"stream":true}`, i)
			if i%2 == 1 {
				body = fmt.Sprintf(`{"messages":[{"role":"user","content":"Story %d"}],"max_tokens":100,"stream":true}`, i)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://edgelm/v1/chat/completions", strings.NewReader(body))
				streamThenDrop(t, d, req, cancel, &got, &refused, &failed)
				return
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://edgelm/v1/completions", strings.NewReader(body))
			streamThenDrop(t, d, req, cancel, &got, &refused, &failed)
		}(i)
	}
	wg.Wait()
	t.Logf("%d streams dropped after their first chunk, %d refused (429), %d failed", got.Load(), refused.Load(), failed.Load())
	if failed.Load() > 0 || got.Load() == 0 {
		t.Errorf("%d of %d streams failed before their first chunk", failed.Load(), burst)
	}
	time.Sleep(300 * time.Millisecond) // while the engine drops the abandoned sequences
	n := stop()
	t.Logf("%d well-formed requests succeeded alongside", n)
	d.waitIdle(10 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		t.Errorf("goroutines: %d before the burst, %d after", before, g)
	}
}

func streamThenDrop(t *testing.T, d *daemonUnderTest, req *http.Request, cancel func(), got, refused, failed *atomic.Int64) {
	c := d.newClient()
	defer c.CloseIdleConnections()
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		failed.Add(1)
		t.Errorf("burst request: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == 429 {
		refused.Add(1)
		return
	}
	if resp.StatusCode != 200 {
		failed.Add(1)
		return
	}
	buf := make([]byte, 1)
	// Read up to the end of the first event, then vanish.
	var seen []byte
	for !strings.Contains(string(seen), "\n\n") {
		if _, err := resp.Body.Read(buf); err != nil {
			failed.Add(1)
			return
		}
		seen = append(seen, buf[0])
	}
	got.Add(1)
	cancel() // closes the connection
}

// TestSlowloris holds connections that send half a request header and stall. The server's
// ReadHeaderTimeout (10s) must close each of them, and well-formed requests must be served
// meanwhile. (TestSlowBody covers a stalled body.)
func TestSlowloris(t *testing.T) {
	t.Parallel() // waits out a 10s timeout
	d := start(t, engine.Options{}, daemon.Settings{})
	stop := d.alongside(2)
	const conns = 50
	closedAfter := make(chan time.Duration, conns)
	t0 := time.Now()
	for i := 0; i < conns; i++ {
		c, err := d.dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /v1/completions HTTP/1.1\r\nHost: edgelm\r\nContent-Type: applic"); err != nil {
			t.Fatal(err)
		}
		go func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			io.Copy(io.Discard, c) // returns when the server closes the connection
			closedAfter <- time.Since(t0)
		}(c)
	}
	var longest time.Duration
	for i := 0; i < conns; i++ {
		longest = max(longest, <-closedAfter)
	}
	n := stop()
	t.Logf("%d stalled connections closed by the server after at most %v; %d well-formed requests served meanwhile", conns, longest.Round(10*time.Millisecond), n)
	if longest > 12*time.Second {
		t.Errorf("a stalled connection stayed open %v (read-header timeout is 10s)", longest)
	}
}

// TestSlowBody sends full headers and part of the announced body, then stalls. The body has its
// own deadline (10s from the headers, daemon.bodyReadTimeout): the daemon must answer 408 and
// close the connection by then, while well-formed requests are served meanwhile.
func TestSlowBody(t *testing.T) {
	t.Parallel() // waits out a 10s timeout
	d := start(t, engine.Options{}, daemon.Settings{})
	stop := d.alongside(2)
	const conns = 20
	type outcome struct {
		after  time.Duration
		answer string
		err    error
	}
	done := make(chan outcome, conns)
	t0 := time.Now()
	for i := 0; i < conns; i++ {
		c, err := d.dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /v1/completions HTTP/1.1\r\nHost: edgelm\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
		go func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			b, err := io.ReadAll(c)
			done <- outcome{time.Since(t0), string(b), err}
		}(c)
	}
	var longest time.Duration
	for i := 0; i < conns; i++ {
		o := <-done
		longest = max(longest, o.after)
		var ne net.Error
		if errors.As(o.err, &ne) && ne.Timeout() {
			t.Errorf("a connection with a stalled body was still open after %v", o.after.Round(time.Second))
			continue
		}
		if !strings.HasPrefix(o.answer, "HTTP/1.1 408 ") || !strings.Contains(o.answer, `"request_timeout"`) {
			t.Errorf("stalled body: answer %q", o.answer)
		}
	}
	n := stop()
	t.Logf("%d connections with a stalled body answered 408 and closed after at most %v; %d well-formed requests served meanwhile", conns, longest.Round(10*time.Millisecond), n)
	if longest > 12*time.Second {
		t.Errorf("a stalled body held its connection %v", longest)
	}
}

// malformed are requests a correct daemon answers with a 4xx.
var malformed = []struct{ method, path, body string }{
	{"POST", "/v1/completions", `{`},
	{"POST", "/v1/completions", ``},
	{"POST", "/v1/completions", `null`},
	{"POST", "/v1/completions", `[]`},
	{"POST", "/v1/completions", `"prompt"`},
	{"POST", "/v1/completions", `{"prompt":5}`},
	{"POST", "/v1/completions", `{"prompt":"x","max_tokens":-1}`},
	{"POST", "/v1/completions", `{"prompt":"x","max_tokens":"ten"}`},
	{"POST", "/v1/completions", `{"prompt":"x","temperature":-1}`},
	{"POST", "/v1/completions", `{"prompt":"x","top_p":7}`},
	{"POST", "/v1/completions", `{"prompt":"x","logprobs":99}`},
	{"POST", "/v1/completions", `{"prompt":"x","n":3}`},
	{"POST", "/v1/completions", `{"prompt":"x","stop":{"a":1}}`},
	{"POST", "/v1/completions", `{"prompt":[-5]}`},
	{"POST", "/v1/completions", `{"prompt":[999999999]}`},
	{"POST", "/v1/completions", `{"prompt":"x","model":"/etc/passwd"}`},
	{"POST", "/v1/completions", `{"prompt":"x"} {"prompt":"y"}`},
	{"POST", "/v1/completions", "{\"prompt\":\"\xff\xfe\",\"max_tokens\":1e999}"},
	{"POST", "/v1/chat/completions", `{"messages":"hi"}`},
	{"POST", "/v1/chat/completions", `{"messages":[]}`},
	{"POST", "/v1/chat/completions", `{"messages":[{"role":"wizard","content":"x"}]}`},
	{"POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/shadow"}}]}]}`},
	{"POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"top_logprobs":50,"logprobs":true}`},
	{"POST", "/v1/tokenize", `{"content":7}`},
	{"POST", "/v1/detokenize", `{"tokens":["a"]}`},
	{"POST", "/v1/detokenize", `{"tokens":[-1]}`},
	{"GET", "/v1/completions", ``},
	{"DELETE", "/v1/models", ``},
	{"GET", "/v1/models/../../etc/passwd", ``},
	{"GET", "/nope", ``},
}

// rawMalformed are byte streams that are not HTTP requests at all.
var rawMalformed = []string{
	"GARBAGE\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
	"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
	"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	"GET /health HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: "+strings.Repeat("b", 100)+"\r\n", 12000) + "\r\n",
	"\x00\x01\x02\x03\r\n\r\n",
}

// TestMalformedFlood sends 1,000 malformed requests (HTTP-level and API-level) from 4 clients.
// Every one must get a 4xx, the daemon must serve on, and well-formed requests sent alongside
// must all succeed.
func TestMalformedFlood(t *testing.T) {
	d := start(t, engine.Options{}, daemon.Settings{})
	stop := d.alongside(2)
	const total = 1000
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := d.newClient()
			defer c.CloseIdleConnections()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				var status int
				if i%10 == 9 {
					status = rawRequest(d, rawMalformed[(i/10)%len(rawMalformed)])
				} else {
					m := malformed[i%len(malformed)]
					req, _ := http.NewRequest(m.method, "http://edgelm"+m.path, strings.NewReader(m.body))
					resp, err := c.Do(req)
					if err != nil {
						t.Errorf("%s %s %q: %v", m.method, m.path, m.body, err)
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
					if status < 400 || status > 499 || !isErrorBody(b) {
						t.Errorf("%s %s %q: %d %s", m.method, m.path, m.body, status, b)
					}
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	n := stop()
	t.Logf("statuses of %d malformed requests: %v; %d well-formed requests succeeded alongside", total, statuses, n)
	for s := range statuses {
		if s < 400 || s > 499 {
			t.Errorf("%d malformed requests got status %d", statuses[s], s)
		}
	}
	if r, err := d.do(http.MethodGet, "/health", ""); err != nil || r.status != 200 {
		t.Errorf("/health after the flood: %v %d", err, r.status)
	}
}

// rawRequest writes s on a fresh connection and returns the status of the answer (0 if none).
func rawRequest(d *daemonUnderTest, s string) int {
	c, err := d.dial(context.Background())
	if err != nil {
		return -1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, s)
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(c, buf, 12)
	var status int
	fmt.Sscanf(string(buf[:n]), "HTTP/1.1 %d", &status)
	return status
}

// zeros is an endless JSON string body: `{"prompt":"aaaa...`, counting what was read from it.
type zeros struct {
	head bool
	n    atomic.Int64
	max  int64
}

func (z *zeros) Read(p []byte) (int, error) {
	if z.n.Load() >= z.max {
		return 0, io.EOF
	}
	i := 0
	if !z.head {
		i = copy(p, `{"prompt":"`)
		z.head = true
	}
	for ; i < len(p); i++ {
		p[i] = 'a'
	}
	if rest := z.max - z.n.Load(); int64(len(p)) > rest {
		p = p[:rest]
	}
	z.n.Add(int64(len(p)))
	return len(p), nil
}

func heapAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// TestOversizedRequests asks for max_tokens far past the cap and sends a 100 MB body. Both must
// be refused early (400 at once; 413 after about the 1 MiB limit has been read, not 100 MB), the
// heap must stay flat, and well-formed requests alongside must succeed.
func TestOversizedRequests(t *testing.T) {
	d := start(t, engine.Options{}, daemon.Settings{})
	stop := d.alongside(2)
	defer stop()

	for _, body := range []string{
		`{"prompt":"x","max_tokens":1000000000}`,
		`{"prompt":"x","max_tokens":4097}`,
		`{"messages":[{"role":"user","content":"x"}],"max_completion_tokens":99999999}`,
	} {
		path := "/v1/completions"
		if strings.Contains(body, "messages") {
			path = "/v1/chat/completions"
		}
		t0 := time.Now()
		r, err := d.do(http.MethodPost, path, body)
		if err != nil || r.status != 400 || !isErrorBody(r.body) {
			t.Errorf("%s: %v %d %s", body, err, r.status, r.body)
		}
		if el := time.Since(t0); el > time.Second {
			t.Errorf("%s: refused only after %v", body, el)
		}
		t.Logf("%s: %d %s in %v", body, r.status, r.code(), time.Since(t0).Round(time.Millisecond))
	}

	before := heapAfterGC()
	const size = 100 << 20
	z := &zeros{max: size}
	req, _ := http.NewRequest(http.MethodPost, "http://edgelm/v1/completions", z)
	req.ContentLength = size
	t0 := time.Now()
	c := d.newClient()
	resp, err := c.Do(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if status != 413 || !isErrorBody(b) {
			t.Errorf("100 MB body: %d %s", status, b)
		}
	} else if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("100 MB body: %v", err)
	}
	el := time.Since(t0)
	c.CloseIdleConnections()
	after := heapAfterGC()
	sent := z.n.Load()
	t.Logf("100 MB body: status %d (err %v) after %v; client wrote %.1f MiB; heap in use %.1f -> %.1f MiB; allocated during the request %.1f MiB",
		status, err, el.Round(time.Millisecond), float64(sent)/(1<<20), float64(before.HeapInuse)/(1<<20), float64(after.HeapInuse)/(1<<20),
		float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	if sent > 16<<20 {
		t.Errorf("the daemon read %.0f MiB of a body capped at 1 MiB before refusing it", float64(sent)/(1<<20))
	}
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 8<<20 {
		t.Errorf("heap in use grew by %.1f MiB", float64(grow)/(1<<20))
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 64<<20 {
		t.Errorf("%.0f MiB allocated while refusing a 100 MB body: it was buffered", float64(a)/(1<<20))
	}
	// When the client only saw its write fail, the daemon's own count says what it answered.
	if err != nil {
		r, _ := d.do(http.MethodGet, "/metrics", "")
		if !strings.Contains(string(r.body), `edgelm_requests_total{endpoint="/v1/completions",code="413"} 1`) {
			t.Errorf("no 413 counted for the 100 MB body")
		}
	}
}

// TestKVExhaustion sends 40 long sequences at once to an engine with 4 slots, a queue of 16 and a
// KV budget of three full contexts. Each must finish or be refused cleanly (429 queue_full or 503
// kv_cache_full, with Retry-After), the heap must stay bounded, and well-formed requests
// alongside (retrying on 429/503 as clients should) must all succeed.
func TestKVExhaustion(t *testing.T) {
	probe := start(t, engine.Options{}, daemon.Settings{})
	perToken := probe.metric("edgelm_kv_bytes_per_token")
	ctxLen := 128
	budget := int64(3 * float64(ctxLen) * perToken)
	d := start(t, engine.Options{MaxSequences: 4, MaxQueue: 16, KVBudget: budget, ContextLength: ctxLen}, daemon.Settings{})
	stop := d.alongside(2)
	base := heapAfterGC()

	var peak atomic.Uint64
	var peakDone atomic.Bool
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		var m runtime.MemStats
		for !peakDone.Load() {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcome := map[string]int{}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"prompt":"Long story number %d. Once upon a time","max_tokens":%d,"ignore_eos":true,"stream":%v}`, i, ctxLen-16, i%2 == 0)
			r, err := d.do(http.MethodPost, "/v1/completions", body)
			key := fmt.Sprint(r.status, " ", r.code())
			switch {
			case err != nil:
				t.Errorf("long request: %v", err)
				return
			case r.status == 200 && !strings.Contains(string(r.body), `"error"`):
				key = "200"
			case (r.status == 429 || r.status == 503) && r.retryAfter != "" && isErrorBody(r.body):
			default:
				t.Errorf("long request: %d %s", r.status, r.body)
			}
			mu.Lock()
			outcome[key]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	n := stop()
	peakDone.Store(true)
	<-sampling
	t.Logf("40 long sequences (budget %d bytes = 3 contexts of %d tokens): %v; %d well-formed requests succeeded alongside; heap in use %.1f MiB at start, peak %.1f MiB",
		budget, ctxLen, outcome, n, float64(base.HeapInuse)/(1<<20), float64(peak.Load())/(1<<20))
	if peak.Load() > base.HeapInuse+64<<20 {
		t.Errorf("heap peaked %.0f MiB above its start", float64(peak.Load()-base.HeapInuse)/(1<<20))
	}
	if kv := d.metric("edgelm_kv_bytes"); kv > float64(budget) {
		t.Errorf("KV bytes %v over the budget %d", kv, budget)
	}
	d.waitIdle(10 * time.Second)
}

// TestKVBudgetBelowOneSequence gives the engine a KV budget smaller than one full context. A
// request that could never fit must be refused with a client or retry status, not a 500, and
// smaller requests must still be served.
func TestKVBudgetBelowOneSequence(t *testing.T) {
	probe := start(t, engine.Options{}, daemon.Settings{})
	perToken := probe.metric("edgelm_kv_bytes_per_token")
	const ctxLen = 128
	d := start(t, engine.Options{ContextLength: ctxLen, KVBudget: int64(ctxLen / 2 * perToken)}, daemon.Settings{})
	r, err := d.do(http.MethodPost, "/v1/completions", fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d,"ignore_eos":true}`, ctxLen-16))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a sequence larger than the KV budget: %d %s", r.status, r.body)
	if r.status >= 500 && r.status != 503 || r.status == 200 || !isErrorBody(r.body) {
		t.Errorf("a request that can never fit the KV budget: %d %s (want a 4xx or 503)", r.status, r.body)
	}
	if err := d.sendWellFormed(d.client, wellFormedRequests[0]); err != nil {
		t.Errorf("a small request after it: %v", err)
	}
}

// slowStart delays every generation, standing in for a long prefill or a long queue wait.
type slowStart struct {
	*engine.Engine
	delay time.Duration
}

func (s slowStart) Generate(ctx context.Context, req engine.Request, onToken func(engine.Event) error) (*engine.Result, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Engine.Generate(ctx, req, onToken)
}

// TestLongRequestOutlivesBodyDeadline checks that the body deadline (TestSlowBody) is lifted
// once the body is read: requests answered after longer than it, streamed or not, complete.
func TestLongRequestOutlivesBodyDeadline(t *testing.T) {
	t.Parallel()
	d := start(t, engine.Options{}, daemon.Settings{})
	_, idle := d.srv.SetBackend(slowStart{d.eng, 11 * time.Second})
	<-idle
	var wg sync.WaitGroup
	for _, r := range wellFormedRequests {
		wg.Add(1)
		go func(r wellFormed) {
			defer wg.Done()
			t0 := time.Now()
			if err := d.sendWellFormed(d.newClient(), r); err != nil {
				t.Errorf("a request taking %v: %v", time.Since(t0).Round(time.Second), err)
			}
		}(r)
	}
	wg.Wait()
}
