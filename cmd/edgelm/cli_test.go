package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
)

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out, errb bytes.Buffer
		stdout = &out
		code := runMain([]string{arg}, &errb)
		stdout = os.Stdout
		if code != 0 || !strings.HasPrefix(out.String(), "edgelm ") || !strings.Contains(out.String(), " revision ") ||
			!strings.Contains(out.String(), runtime.Version()) || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("edgelm %s: exit %d, stdout %q, stderr %q; want one line with the version and revision", arg, code, out.String(), errb.String())
		}
	}
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202180623-3f5a3ed4ba45+dirty"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "3f5a3ed4ba458624b681486b4f22af84a42395b1"},
		{Key: "vcs.time", Value: "2026-12-02T18:06:23Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := versionLine(bi)
	for _, want := range []string{"edgelm v0.0.0-20261202180623-3f5a3ed4ba45+dirty ", "revision 3f5a3ed4ba458624b681486b4f22af84a42395b1 (modified) 2026-12-02T18:06:23Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("versionLine = %q, want it to contain %q", got, want)
		}
	}
}

// TestFlagMistakes: a mistyped flag gives one line naming it, the closest real flag and where to
// look, not the flag package's whole listing.
func TestFlagMistakes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--tempreature", "1"}, []string{"unknown flag --tempreature", "did you mean --temperature?", "see edgelm run --help"}},
		{[]string{"run", "-max-token", "3"}, []string{"unknown flag --max-token", "--max-tokens?"}},
		{[]string{"serve", "--xyzzy"}, []string{"unknown flag --xyzzy", "see edgelm serve --help"}},
		{[]string{"bench", "-n", "many"}, []string{`invalid value "many"`, "see edgelm bench --help"}},
		{[]string{"status", "--socket"}, []string{"needs an argument", "see edgelm status --help"}},
		{[]string{"rn"}, []string{`unknown command "rn"`, "did you mean run?"}},
	} {
		var errb bytes.Buffer
		code := runMain(c.args, &errb)
		got := errb.String()
		if code != 2 || strings.Count(got, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line", c.args, code, got)
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q: stderr %q, want it to contain %q", c.args, got, w)
			}
		}
		if strings.Contains(got, "did you mean") && strings.Contains(got, "xyzzy") {
			t.Errorf("%q: %q suggests a flag that is not close", c.args, got)
		}
	}
}

// TestRunValidates: run refuses what the API would refuse, and a context the model was not
// trained for, before generating anything.
func TestRunValidates(t *testing.T) {
	model := testshared.Path(t, "models", "aidreams260K-q8_0.gguf") // trained context: 128
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ctx", "100000"}, "--ctx 100000: aidreams260K-q8_0.gguf was trained for 128 tokens"},
		{[]string{"--ctx", "-5"}, "--ctx -5: want >= 0"},
		{[]string{"--temperature", "-1"}, "--temperature -1: want 0..100"},
		{[]string{"--top-p", "1.5"}, "--top-p 1.5: want 0..1"},
		{[]string{"--max-tokens", "-2"}, "--max-tokens -2: want >= 0"},
		{[]string{"--logprobs", "21", "--json"}, "--logprobs 21: want 0..20"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"--model", model, "--prompt", "Once", "--max-tokens", "1"}, c.args...)
		err := runCmd(args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, errUsage) {
			t.Errorf("run %q: got %v, want a usage error containing %q", c.args, err, c.want)
		}
		if out.Len() > 0 {
			t.Errorf("run %q generated %q before refusing", c.args, out.String())
		}
	}
	var out bytes.Buffer
	if err := runCmd([]string{"--model", model, "--prompt", "Once", "--max-tokens", "2", "--ctx", "128", "--temperature", "0"}, &out, &bytes.Buffer{}); err != nil {
		t.Errorf("run --ctx 128 (the trained context): %v", err)
	}
}

func TestTokenizeNeedsText(t *testing.T) {
	model := testshared.Path(t, "models", "aidreams260K-q8_0.gguf")
	var out bytes.Buffer
	err := tokenizeCmd([]string{"--model", model}, &out)
	if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--text") {
		t.Errorf("tokenize without text: %v (printed %q), want a usage error naming --text", err, out.String())
	}
	out.Reset()
	if err := tokenizeCmd([]string{"--model", model, "--text", "", "--bos"}, &out); err != nil || strings.TrimSpace(out.String()) != "1" {
		t.Errorf("tokenize --text '' --bos: %v %q, want BOS (1) alone", err, out.String())
	}
}

// TestRunSocketForwards: run --socket sends what the API can express and refuses the rest,
// against a fake daemon that records the request.
func TestRunSocketForwards(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // the handler's goroutine writes last; the test reads it after the answer
	var last map[string]any
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		last = body
		mu.Unlock()
		if body["stream"] == true {
			fmt.Fprint(w, "data: {\"choices\":[{\"text\":\" there\"}]}\n\ndata: [DONE]\n\n")
			return
		}
		fmt.Fprint(w, `{"object":"text_completion","choices":[{"text":"Hi there","logprobs":{"tokens":["Hi"," there"]}}],`+
			`"trace":[{"step":1,"kind":"prefill","tokens":2,"kv_len":2,"batch":1,"duration_ns":1000000}]}`)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	mu.Lock() // held except while a command runs
	defer mu.Unlock()
	run := func(args []string, out, errb *bytes.Buffer) error {
		mu.Unlock()
		defer mu.Lock()
		return runCmd(args, out, errb)
	}
	var out, errb bytes.Buffer
	err = run([]string{"--socket", sock, "--prompt", "Hi", "--json", "--logprobs", "3", "--echo", "--ignore-eos", "--model", "/some/dir/m.gguf", "--max-tokens", "4", "--repeat-last-n", "8"}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"prompt": "Hi", "logprobs": 3.0, "echo": true, "ignore_eos": true, "model": "m.gguf", "max_tokens": 4.0, "repeat_last_n": 8.0, "stream": false} {
		if last[k] != want {
			t.Errorf("request field %q = %v, want %v (request %v)", k, last[k], want, last)
		}
	}
	if !strings.Contains(out.String(), `"logprobs":{"tokens":["Hi"," there"]}`) {
		t.Errorf("--json printed %q, want the daemon's answer", out.String())
	}

	out.Reset()
	errb.Reset()
	if err := run([]string{"--socket", sock, "--prompt", "Hi", "--trace"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if last["trace"] != true || out.String() != "Hi there\n" || !strings.Contains(errb.String(), "prefill") {
		t.Errorf("--trace: request %v, stdout %q, stderr %q", last, out.String(), errb.String())
	}

	for _, flag := range [][]string{{"--threads", "2"}, {"--ctx", "64"}, {"--no-cache"}, {"--no-bos"}, {"--kernels", "generic"}} {
		last = nil
		err := run(append([]string{"--socket", sock, "--prompt", "Hi"}, flag...), &out, &errb)
		if err == nil || !strings.Contains(err.Error(), flag[0]) || last != nil {
			t.Errorf("run --socket %v: %v (request sent: %v); want it refused by name, nothing sent", flag, err, last != nil)
		}
	}
}

// TestRunDefaultSocket: run without --model talks to the daemon at the default socket, as chat and
// status do; with none there it says where it looked.
func TestRunDefaultSocket(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", dir)
	var out bytes.Buffer
	err := runCmd([]string{"--prompt", "Hi"}, &out, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "edgelm.sock")) {
		t.Errorf("no daemon: %v, want the default socket named", err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "edgelm.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "data: {\"choices\":[{\"text\":\" there\"}]}\n\ndata: [DONE]\n\n")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	if err := runCmd([]string{"--prompt", "Hi"}, &out, &bytes.Buffer{}); err != nil || out.String() != " there\n" {
		t.Errorf("default socket: %v, %q", err, out.String())
	}
}

// TestQuantizeFlags: quantize takes --model/--out/--type like the other commands; the result is
// llama-quantize's tensor data byte for byte.
func TestQuantizeFlags(t *testing.T) {
	src := testshared.Path(t, "models", "aidreams260K-f32.gguf")
	ref := testshared.Path(t, "models", "aidreams260K-q8_0.gguf")
	out := filepath.Join(t.TempDir(), "q8.gguf")
	if err := quantizeCmd([]string{"--model", src, "--out", out, "--type", "q8_0"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	a, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gguf.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !bytes.Equal(a.Mapping().Bytes()[a.DataOffset:], b.Mapping().Bytes()[b.DataOffset:]) {
		t.Error("tensor data differs from llama-quantize's")
	}
	for _, args := range [][]string{
		{"--model", src, "--out", out},     // no type
		{"--model", src, "--type", "q8_0"}, // no output
		{"--model", src, "--out", out, "--type", "q8_0", "extra"},
		{"--model", src, src, out, "q8_0"}, // both forms at once
		{src, out},                         // positional, one short
	} {
		if err := quantizeCmd(args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("quantize %q: %v, want a usage error", args, err)
		}
	}
}

// TestSynthOutsideCheckout: away from the checkout, synth asks for --vocab instead of failing on
// a relative path that is not there.
func TestSynthOutsideCheckout(t *testing.T) {
	t.Setenv("EDGELM_SHARED", "")
	t.Chdir(t.TempDir())
	err := synthCmd([]string{"--shape", "tiny", "--out", "m.gguf"}, io.Discard)
	if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--vocab FILE.gguf") {
		t.Errorf("synth without a vocabulary: %v, want a usage error asking for --vocab", err)
	}
	if _, err := os.Stat("m.gguf"); err == nil {
		t.Error("a model was written without a vocabulary")
	}
}

// TestBenchFitsContext: bench with its defaults (pp512, tg128) on a model trained for 128 tokens
// runs tests that fit and says so; sizes given by hand that do not fit are still refused.
func TestBenchFitsContext(t *testing.T) {
	model := testshared.Path(t, "models", "aidreams260K-q8_0.gguf") // trained context: 128
	var out, errb bytes.Buffer
	if err := benchCmd([]string{"--model", model, "-r", "1", "--json", "--no-read"}, &out, &errb); err != nil {
		t.Fatalf("bench with defaults: %v", err)
	}
	var rs []struct {
		Test string `json:"test"`
	}
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Test)
	}
	if fmt.Sprint(names) != "[pp128 tg128]" || !strings.Contains(errb.String(), "context is 128 tokens, so -p 128 -n 128") {
		t.Errorf("tests %v, stderr %q; want pp128 and tg128, said", names, errb.String())
	}
	if err := benchCmd([]string{"--model", model, "-r", "1", "-p", "512", "--json"}, io.Discard, io.Discard); err == nil {
		t.Error("-p 512 given by hand on a 128-token model was accepted")
	}
}
