package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
)

// TestTruncatedModelFile: the model file shrinking under a running engine makes requests fail with a
// clear error instead of killing the process with SIGBUS; once the file is whole again, requests work.
func TestTruncatedModelFile(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(path, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ids := e.Tokenize("Once upon a time", true, false)
	want, _ := gen(t, e, Request{Prompt: ids, MaxTokens: 16})

	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	_, err = e.Generate(context.Background(), Request{Prompt: ids, MaxTokens: 16}, nil)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("generate on a truncated file: %v, want a fault error", err)
	}

	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := gen(t, e, Request{Prompt: ids, MaxTokens: 16})
	if len(got.Tokens) != len(want.Tokens) {
		t.Fatalf("after restoring: %d tokens, want %d", len(got.Tokens), len(want.Tokens))
	}
	for i := range got.Tokens {
		if got.Tokens[i] != want.Tokens[i] {
			t.Fatalf("after restoring, token %d differs", i)
		}
	}
}

// TestNonFiniteLogits: weights that make the logits NaN (here the final norm's, in a copy of the
// F32 model) fail the request with ErrNonFinite, logprobs or not, instead of sampling garbage
// or handing NaN to the JSON encoder, and Stats.Fault says so from then on.
func TestNonFiniteLogits(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testshared.Dir(t), "models", "aidreams260K-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	x, ok := f.Tensor("output_norm.weight")
	if !ok || x.Type != gguf.F32 {
		t.Fatal("no F32 output_norm.weight")
	}
	for i := 0; i+4 <= len(x.Data); i += 4 {
		binary.LittleEndian.PutUint32(x.Data[i:], 0x7fc00000) // NaN; Data is a view into src
	}
	path := filepath.Join(t.TempDir(), "nan.gguf")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(path, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if st := e.Stats(); st.Fault != "" {
		t.Fatalf("fault before any request: %q", st.Fault)
	}
	ids := e.Tokenize("Once upon a time", true, false)
	for _, req := range []Request{
		{Prompt: ids, MaxTokens: 4},
		{Prompt: ids, MaxTokens: 4, Logprobs: 3},
		{Prompt: ids, MaxTokens: 2, Logprobs: 3, Echo: true},
	} {
		res, err := e.Generate(context.Background(), req, nil)
		if !errors.Is(err, ErrNonFinite) {
			t.Errorf("%+v: %v (result %+v), want ErrNonFinite", req, err, res)
		}
	}
	// An embedding reads the same normed states: no NaN vector for the JSON encoder either.
	if emb, err := e.Embed(context.Background(), ids); !errors.Is(err, ErrNonFinite) {
		t.Errorf("Embed: %v (%v), want ErrNonFinite", err, emb)
	}
	if st := e.Stats(); !strings.Contains(st.Fault, "non-finite") {
		t.Errorf("Stats.Fault = %q", st.Fault)
	}
}

func TestFinite(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, tc := range []struct {
		x    []float32
		want bool
	}{
		{nil, true}, {[]float32{1, -2, 3e38, -3e38}, true}, {[]float32{0, nan}, false},
		{[]float32{inf, 1}, false}, {[]float32{-inf}, false}, {[]float32{inf, -inf}, false},
	} {
		if got := finite(tc.x); got != tc.want {
			t.Errorf("finite(%v) = %v", tc.x, got)
		}
	}
}

// TestDecodeSpeedAfterCancel: a cancelled request's decode steps count their time and their
// tokens alike, so DecodeTokens/DecodeSeconds stays the decode speed (before, the time counted
// and the tokens did not: 0.25 t/s reported for about 6).
func TestDecodeSpeedAfterCancel(t *testing.T) {
	e := load(t, Options{})
	ids := e.Tokenize("Once upon a time", true, false)
	stop := errors.New("client gone")
	n := 0
	_, err := e.Generate(context.Background(), Request{Prompt: ids, MaxTokens: 200, IgnoreEOS: true}, func(ev Event) error {
		if ev.Token >= 0 {
			n++
		}
		if n == 50 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	st := e.Stats()
	// The first token comes from the prefill step; each later one from one decode step. Events
	// reach the callback through a queue, so the scheduler may have run steps past the one whose
	// token the client refused before it sees the cancellation (52 and 57 seen for n = 50): what
	// must hold is that every decode step counted its token, and none ran past MaxTokens.
	if st.GeneratedTokens != 0 || st.DecodeTokens < int64(n-1) || st.DecodeTokens > 199 || st.DecodeSeconds <= 0 {
		t.Errorf("after a request cancelled at %d tokens: generated %d, decode tokens %d in %.3fs", n, st.GeneratedTokens, st.DecodeTokens, st.DecodeSeconds)
	}
}
