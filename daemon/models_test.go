package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"edgelm/engine"
	"edgelm/internal/testshared"
	"edgelm/kernels"
)

// completeModel runs one completion on model and returns its text, or the status and body of a
// refusal as an error.
func (st *svcTest) completeModel(model, body string) (string, error) {
	resp, err := st.client.Post("http://edgelm/v1/completions", "application/json",
		strings.NewReader(fmt.Sprintf(`{"model":%q,%s}`, model, body)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var out struct {
		Choices []struct{ Text string } `json:"choices"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) != 1 {
		return "", fmt.Errorf("bad answer %s: %v", b, err)
	}
	return out.Choices[0].Text, nil
}

// listed returns /v1/models as id -> loaded.
func (st *svcTest) listed() map[string]bool {
	st.t.Helper()
	code, b, err := st.get("/v1/models")
	if err != nil || code != http.StatusOK {
		st.t.Fatalf("/v1/models: %v %d %s", err, code, b)
	}
	if strings.Contains(string(b), st.dir) {
		st.t.Errorf("/v1/models shows where the models live: %s", b)
	}
	var out struct {
		Data []struct {
			ID     string `json:"id"`
			Loaded bool   `json:"loaded"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		st.t.Fatalf("/v1/models: %v: %s", err, b)
	}
	m := map[string]bool{}
	for _, d := range out.Data {
		m[d.ID] = d.Loaded
	}
	return m
}

// mappedOf returns which of paths this process maps (by their resolved names in /proc/self/maps).
func mappedOf(t *testing.T, paths []string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	var out []string
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), " "+real+"\n") {
			out = append(out, filepath.Base(p))
		}
	}
	return out
}

// Three real models in a directory (symlinks to copies elsewhere) with max_loaded_models = 1:
// alternating requests each get their own model's greedy continuation, llama.cpp's for all three,
// and at the end only the last model's file is mapped.
func TestModelsDirMaxLoadedOne(t *testing.T) {
	shared := testshared.Dir(t)
	dir := shortTempDir(t)
	store := filepath.Join(dir, "store")
	models := filepath.Join(dir, "models")
	for _, d := range []string{store, models} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The models and the references of their greedy continuations (llama.cpp's).
	refs := []struct{ file, golden string }{
		{"aidreams260K-q8_0.gguf", "aidreams260K-q8_0.p1.json"},
		{"aidreams260K-q4_0.gguf", "aidreams260K-q4_0.p1.json"},
		{"stories260K.gguf", "stories260K/stories260K.p1.json"},
	}
	var files []string
	goldens := map[string]golden{}
	for _, r := range refs {
		b, err := os.ReadFile(filepath.Join(shared, "golden", r.golden))
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		goldens[strings.TrimSuffix(r.file, ".gguf")] = g
		copyFile(t, filepath.Join(shared, "models", r.file), filepath.Join(store, r.file))
		link := filepath.Join(models, r.file)
		if err := os.Symlink(filepath.Join(store, r.file), link); err != nil {
			t.Fatal(err)
		}
		files = append(files, link)
	}
	conf := filepath.Join(dir, "edgelm.toml")
	writeFile(t, conf, "models_dir = \"models\"\nsocket = \"d.sock\"\nmax_loaded_models = 1\nthreads = 1\n")
	logs := &syncBuffer{}
	sigs := make(chan os.Signal, 1)
	svc, err := NewService(ServiceOptions{ConfigPath: conf, LogOutput: logs, Signals: sigs})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	st := &svcTest{t: t, dir: dir, client: unixClient(filepath.Join(dir, "d.sock"))}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()
	st.waitFor(slow, "serving", func() bool {
		code, _, err := st.get("/health")
		return err == nil && code == http.StatusOK
	})
	if got := st.listed(); len(got) != 3 || got["aidreams260K-q8_0"] || got["stories260K"] {
		t.Fatalf("/v1/models before any request: %v, want the three, none loaded", got)
	}
	if _, err := st.completeModel("", `"prompt":"x","max_tokens":1`); err == nil || !strings.Contains(err.Error(), "stories260K") {
		t.Errorf("no model named among three: %v, want an error listing the ids", err)
	}
	if _, err := st.completeModel("llama-70b", `"prompt":"x","max_tokens":1`); err == nil || !strings.Contains(err.Error(), "404") ||
		!strings.Contains(err.Error(), "aidreams260K-q4_0") {
		t.Errorf("unknown model: %v, want 404 listing the ids", err)
	}

	for round := range 2 {
		for _, r := range refs {
			id := strings.TrimSuffix(r.file, ".gguf")
			g := goldens[id]
			n := len(g.Tokens)
			text, err := st.completeModel(id, fmt.Sprintf(`"prompt":%s,"max_tokens":%d,"temperature":0`, jsonOf(g.PromptTokens), n))
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, id, err)
			}
			// The reference detokenized its tokens alone, which drops the space SentencePiece
			// puts before the first (stories260K's); a continuation keeps it.
			if got := strings.TrimPrefix(text, " "); got != g.Text {
				t.Errorf("round %d, %s: %q, want llama.cpp's %q", round, id, got, g.Text)
			}
			if got := st.listed(); !got[id] {
				t.Errorf("round %d: %s not listed as loaded after its request: %v", round, id, got)
			}
		}
	}
	st.waitFor(slow, "one model mapped", func() bool { return len(mappedOf(t, files)) == 1 })
	if got := mappedOf(t, files); !slices.Equal(got, []string{"stories260K.gguf"}) {
		t.Errorf("mapped at the end: %v, want only stories260K.gguf", got)
	}
	_, m, _ := st.get("/metrics")
	for _, line := range []string{"edgelm_model_loads_total 6", "edgelm_model_unloads_total 5", `edgelm_kv_bytes{model="stories260K"}`} {
		if !strings.Contains(string(m), line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	stop()
	if got := mappedOf(t, files); len(got) != 0 {
		t.Errorf("mapped after shutdown: %v", got)
	}
}

// postModel posts body to path and returns the status and body.
func (st *svcTest) postModel(path, body string) (int, []byte, error) {
	resp, err := st.client.Post("http://edgelm"+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Files added to, replaced in and removed from the directory are served, served anew and
// refused while the daemon runs.
func TestModelsDirChanges(t *testing.T) {
	ld := &loader{named: true}
	st := startService(t, "models_dir = \".\"\n", ld)
	os.Remove(filepath.Join(st.dir, "b.gguf"))
	st.waitFor(slow, "b.gguf gone", func() bool { _, ok := st.listed()["b"]; return !ok })
	if text, err := st.completeModel("", `"prompt":"hi","max_tokens":32`); err != nil || text != "model A" {
		t.Fatalf("the only model: %q %v", text, err)
	}
	if _, err := st.completeModel("c", `"prompt":"hi","max_tokens":32`); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("c before it exists: %v", err)
	}
	writeFile(t, filepath.Join(st.dir, "c.gguf"), "model C")
	st.waitFor(slow, "c.gguf listed", func() bool { _, ok := st.listed()["c"]; return ok })
	if text, err := st.completeModel("c", `"prompt":"hi","max_tokens":32`); err != nil || text != "model C" {
		t.Fatalf("c once added: %q %v", text, err)
	}
	if _, err := st.completeModel("", `"prompt":"hi","max_tokens":32`); err == nil || !strings.Contains(err.Error(), "model_required") {
		t.Errorf("no model named among two: %v", err)
	}
	// Replaced by rename, as a model should be: the old one is closed, the new one answers.
	writeFile(t, filepath.Join(st.dir, "c.tmp"), "model C2")
	if err := os.Rename(filepath.Join(st.dir, "c.tmp"), filepath.Join(st.dir, "c.gguf")); err != nil {
		t.Fatal(err)
	}
	st.waitFor(slow, "c replaced", func() bool {
		text, err := st.completeModel("c", `"prompt":"hi","max_tokens":32`)
		return err == nil && text == "model C2"
	})
	os.Remove(filepath.Join(st.dir, "c.gguf"))
	st.waitFor(slow, "c.gguf gone", func() bool { _, ok := st.listed()["c"]; return !ok })
	if _, err := st.completeModel("c", `"prompt":"hi","max_tokens":32`); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("c after its removal: %v", err)
	}
	for _, f := range ld.all() {
		if strings.HasSuffix(f.path, "c.gguf") && !f.closed.Load() {
			t.Errorf("a model of the removed c.gguf (%q) is still open", f.reply)
		}
		if f.afterEnd.Load() != 0 {
			t.Errorf("%s served a request after it was closed", f.path)
		}
	}
}

// With one model loaded at most, a request for another model waits for the stream in flight on
// the first instead of unloading it; the stream ends whole, then the second model answers.
func TestModelsDirStreamNotUnloaded(t *testing.T) {
	ld := &loader{delay: 80 * time.Millisecond, named: true}
	st := startService(t, "models_dir = \".\"\nmax_loaded_models = 1\n", ld)
	resp, err := st.client.Post("http://edgelm/v1/completions", "application/json",
		strings.NewReader(`{"model":"a","prompt":"hi","max_tokens":32,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	other := make(chan string, 1)
	go func() {
		text, err := st.completeModel("b", `"prompt":"hi","max_tokens":32`)
		if err != nil {
			text = err.Error()
		}
		other <- text
	}()
	// b's request is in: while a's stream runs, a stays loaded and b waits.
	time.Sleep(50 * time.Millisecond)
	if got := st.listed(); !got["a"] || got["b"] {
		t.Errorf("during a's stream with b requested: loaded %v, want a and not b", got)
	}
	var streamed strings.Builder
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream broke: %v after %q", err, streamed.String())
		}
		if line == "data: [DONE]\n" {
			break
		}
		var chunk struct {
			Choices []struct{ Text string } `json:"choices"`
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && json.Unmarshal([]byte(data), &chunk) == nil && len(chunk.Choices) == 1 {
			streamed.WriteString(chunk.Choices[0].Text)
		}
		select {
		case text := <-other:
			t.Fatalf("the request for b was answered (%q) while a's stream ran", text)
		default:
		}
	}
	if got := streamed.String(); !strings.HasSuffix(got, "odel A") {
		t.Errorf("a's stream: %q, want model A's text", got)
	}
	select {
	case text := <-other:
		if text != "model B" {
			t.Errorf("b after a's stream: %q", text)
		}
	case <-time.After(slow):
		t.Fatal("the request for b never got its model")
	}
	for _, f := range ld.all() {
		if f.afterEnd.Load() != 0 {
			t.Errorf("%s was closed under a request", f.path)
		}
	}
	if strings.Contains(st.logs.String(), "requests_in_flight=1") {
		t.Errorf("a model was unloaded with a request in flight:\n%s", st.logs.String())
	}
}

// keep_alive 0 (the request's, else the configured default) unloads a model when its request
// ends; a longer one when it has idled that long.
func TestModelsKeepAlive(t *testing.T) {
	ld := &loader{}
	srv := New(nil, Settings{}, nil)
	models := []CatalogModel{}
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		p := filepath.Join(dir, name+".gguf")
		writeFile(t, p, "model "+strings.ToUpper(name))
		models = append(models, CatalogModel{ID: name, Path: p})
	}
	srv.SetCatalog(models, ModelLimits{KeepAlive: -1}, func(p string) (Backend, error) { return ld.load(p, engine.Options{}) })
	use := func(name string, keep *time.Duration) *swapFake {
		t.Helper()
		ref, err := srv.acquireModel(context.Background(), name, keep)
		if err != nil {
			t.Fatal(err)
		}
		srv.release(ref)
		return fakeOf(ref.b)
	}
	zero, short := time.Duration(0), 50*time.Millisecond
	a := use("a", nil)
	b := use("b", &zero)
	srv.reg.closing.Wait()
	if a.closed.Load() || !b.closed.Load() {
		t.Errorf("after requests with keep_alive forever and 0: a closed %v, b closed %v; want only b", a.closed.Load(), b.closed.Load())
	}
	a2 := use("a", &short)
	if a2 != a {
		t.Fatal("a loaded again while it was loaded")
	}
	deadline := time.Now().Add(slow)
	for !a.closed.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !a.closed.Load() {
		t.Error("a still loaded long after its keep_alive of 50ms")
	}
	if b2 := use("b", nil); b2 == b || b2.closed.Load() {
		t.Error("b was not loaded again after its unload")
	}
	srv.closeModels()
}

// memory_budget unloads the least recently used idle models until the one asked for fits, counting
// each loaded model's file and KV budget (the fake's 4096 and 8192 bytes).
func TestModelsMemoryBudget(t *testing.T) {
	ld := &loader{}
	srv := New(nil, Settings{}, nil)
	var models []CatalogModel
	dir := t.TempDir()
	for _, name := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, name+".gguf")
		writeFile(t, p, "model "+strings.ToUpper(name))
		models = append(models, CatalogModel{ID: name, Path: p})
	}
	srv.SetCatalog(models, ModelLimits{KeepAlive: -1, MemoryBudget: 2*(4096+8192) + 100}, func(p string) (Backend, error) { return ld.load(p, engine.Options{}) })
	defer srv.closeModels()
	held := map[string]*backendRef{}
	use := func(name string, hold bool) {
		t.Helper()
		ref, err := srv.acquireModel(context.Background(), name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hold {
			held[name] = ref
			return
		}
		srv.release(ref)
	}
	loaded := func() string {
		srv.reg.closing.Wait()
		var out []string
		for _, f := range ld.all() {
			if !f.closed.Load() {
				out = append(out, strings.TrimSuffix(filepath.Base(f.path), ".gguf"))
			}
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	use("a", false)
	use("b", false)
	use("a", false) // b is now the least recently used
	use("c", false)
	if got := loaded(); got != "a,c" {
		t.Errorf("after a, b, a, c within room for two: %s loaded, want a,c", got)
	}
	use("a", true) // in use: not a candidate
	use("b", false)
	if got := loaded(); got != "a,b" {
		t.Errorf("b with a in use: %s loaded, want a,b", got)
	}
	srv.release(held["a"])
}

// TestLoadTimeToFirstStep measures what serving a models directory costs a request for a model
// that is not loaded: from the request's lookup to the start of the engine's first step (its
// prefill excluded: the first token's time minus that step's duration). Set
// EDGELM_LOAD_MODEL=/path/to/model.gguf (a warm file: in the page cache) to run it; see
// docs/models.md.
func TestLoadTimeToFirstStep(t *testing.T) {
	path := os.Getenv("EDGELM_LOAD_MODEL")
	if path == "" {
		t.Skip("set EDGELM_LOAD_MODEL to a GGUF file to measure its load time")
	}
	srv := New(nil, Settings{}, nil)
	srv.SetCatalog([]CatalogModel{{ID: "m", Path: path}}, ModelLimits{KeepAlive: 0}, func(p string) (Backend, error) {
		return engine.Load(p, engine.Options{})
	})
	defer srv.closeModels()
	// The process's CPU time says what the load costs where the wall clock includes waiting for
	// a core on a busy machine.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for run := range 6 {
		c0, t0 := cpu(), time.Now()
		ref, err := srv.acquireModel(context.Background(), "m", nil)
		if err != nil {
			t.Fatal(err)
		}
		loaded, loadCPU := time.Since(t0), cpu()-c0
		var first time.Time
		res, err := ref.b.Generate(context.Background(), engine.Request{Prompt: ref.b.Tokenize("Hello", true, false)[:1], MaxTokens: 1, IgnoreEOS: true, Trace: true},
			func(engine.Event) error {
				if first.IsZero() {
					first = time.Now()
				}
				return nil
			})
		srv.release(ref) // keep_alive 0: unloaded now, so the next run loads again
		srv.reg.closing.Wait()
		if err != nil || len(res.Trace) == 0 {
			t.Fatalf("generate: %v", err)
		}
		step := first.Add(-res.Trace[0].Duration).Sub(t0)
		t.Logf("run %d: loaded in %v (process CPU %v), first step started %v after the request (its 1-token prefill took %v)",
			run, loaded.Round(time.Microsecond), loadCPU.Round(time.Microsecond), step.Round(time.Microsecond), res.Trace[0].Duration.Round(time.Microsecond))
	}
}

// A reload from kernels = "generic" back to the default serves the new engine on the best
// kernels the CPU has: the choice is the engine's, not the process's.
func TestServiceReloadKernelsBack(t *testing.T) {
	best, err := kernels.Choose("")
	if err != nil {
		t.Fatal(err)
	}
	if best.Features() == "generic" {
		t.Skip("this CPU has no kernels but the generic ones")
	}
	shared := testshared.Dir(t)
	dir := shortTempDir(t)
	conf := filepath.Join(dir, "edgelm.toml")
	model := filepath.Join(shared, "models", "aidreams260K-q8_0.gguf")
	writeFile(t, conf, fmt.Sprintf("model = %q\nsocket = \"d.sock\"\nthreads = 1\nkernels = \"generic\"\n", model))
	sigs := make(chan os.Signal, 1)
	svc, err := NewService(ServiceOptions{ConfigPath: conf, LogOutput: io.Discard, Signals: sigs})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	defer func() {
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	st := &svcTest{t: t, dir: dir, client: unixClient(filepath.Join(dir, "d.sock"))}
	st.waitFor(slow, "serving", func() bool {
		code, _, err := st.get("/health")
		return err == nil && code == http.StatusOK
	})
	if k := st.health()["kernels"]; k != "generic" {
		t.Fatalf("kernels = \"generic\": serving on %v", k)
	}
	writeFile(t, conf, fmt.Sprintf("model = %q\nsocket = \"d.sock\"\nthreads = 1\n", model))
	sigs <- syscall.SIGHUP
	st.waitFor(slow, "the best kernels back after the reload", func() bool { return st.health()["kernels"] == best.Features() })
}

// fakeOf is the swapFake behind a catalog model's backend.
func fakeOf(b Backend) *swapFake {
	if ib, ok := b.(idBackend); ok {
		b = ib.Backend
	}
	return b.(*swapFake)
}

func TestKeepAliveField(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration // -2: nil
		bad  bool
	}{
		{"", -2, false}, {"null", -2, false}, {"0", 0, false}, {`"0"`, 0, false}, {`"0s"`, 0, false},
		{"300", 5 * time.Minute, false}, {"1.5", 1500 * time.Millisecond, false}, {`"5m"`, 5 * time.Minute, false},
		{"-1", -1, false}, {`"-1"`, -1, false}, {`"-5m"`, -1, false}, {`"soon"`, 0, true}, {"true", 0, true},
		{"1e300", 0, true}, {`[1]`, 0, true},
	} {
		got, err := KeepAlive(json.RawMessage(c.in))
		switch {
		case c.bad:
			if err == nil {
				t.Errorf("keep_alive %s: %v, want an error", c.in, *got)
			}
		case err != nil:
			t.Errorf("keep_alive %s: %v", c.in, err)
		case c.want == -2:
			if got != nil {
				t.Errorf("keep_alive %s: %v, want the default", c.in, *got)
			}
		case got == nil || *got != c.want:
			t.Errorf("keep_alive %s: %v, want %v", c.in, got, c.want)
		}
	}
}
