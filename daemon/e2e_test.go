package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"edgelm/engine"
	"edgelm/internal/testshared"
)

// golden is a reference run of llama.cpp on a shared model (see shared/golden/README.md).
type golden struct {
	Model        string    `json:"model"`
	Prompt       string    `json:"prompt"`
	PromptTokens []int32   `json:"prompt_tokens"`
	Tokens       []int32   `json:"tokens"`
	Text         string    `json:"text"`
	Positions    []goldPos `json:"positions"`
}

type goldPos struct {
	Top [][2]float64 `json:"top"`
}

// realServer serves the small shared Q8_0 model through the real engine.
func realServer(t *testing.T) (*testServer, []golden) {
	t.Helper()
	dir := testshared.Dir(t)
	var gs []golden
	for _, p := range []string{"p1", "p2", "p3"} {
		b, err := os.ReadFile(filepath.Join(dir, "golden", "aidreams260K-q8_0."+p+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("golden %s: %v", p, err)
		}
		gs = append(gs, g)
	}
	eng, err := engine.Load(filepath.Join(dir, "models", gs[0].Model), engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return startBackend(t, eng, Settings{ChatTemplate: "chatml"}), gs
}

// TestRealGreedyMatchesReference sends the golden prompts through the daemon, as text and as
// token ids, streamed and not, four at once, and compares with llama.cpp's greedy continuations.
func TestRealGreedyMatchesReference(t *testing.T) {
	ts, gs := realServer(t)
	for _, g := range gs {
		r := ts.post("/v1/tokenize", fmt.Sprintf(`{"content":%q}`, g.Prompt), 200)
		if got := fmt.Sprint(r["tokens"]); got != fmt.Sprint(g.PromptTokens) {
			t.Errorf("%q: /v1/tokenize %s, reference %v", g.Prompt, got, g.PromptTokens)
		}
	}
	req := func(g golden, prompt string, stream bool) string {
		return fmt.Sprintf(`{"prompt":%s,"max_tokens":%d,"temperature":0,"stream":%v}`, prompt, len(g.Tokens), stream)
	}
	var wg sync.WaitGroup
	for round := 0; round < 2; round++ { // sequentially, then all at once (batched by the engine)
		for _, g := range gs {
			// Alone, the greedy continuation must equal the reference's. Batched with others the
			// sums run in another order, so it must equal it up to the first near tie (top two
			// logprobs closer than the 2e-2 the reference allows for Q8_0).
			want := g.Text
			if round == 1 {
				want = ts.post("/v1/detokenize", fmt.Sprintf(`{"tokens":%s}`, jsonOf(g.Tokens[:firstTie(g, 2e-2)])), 200)["content"].(string)
			}
			check := func(how string, text string, finish any) {
				if round == 0 && text != want || round == 1 && !strings.HasPrefix(text, want) {
					t.Errorf("%s %q (%s):\n got %q\nwant %q", how, g.Prompt, map[int]string{0: "alone", 1: "concurrent, up to the first near tie"}[round], text, want)
				}
				if len(g.Tokens) == 64 && finish != "length" {
					t.Errorf("%s %q: finish_reason %v, want length", how, g.Prompt, finish)
				}
			}
			run := func() {
				defer wg.Done()
				pj, _ := json.Marshal(g.Prompt)
				r := ts.post("/v1/completions", req(g, string(pj), false), 200)
				check("text prompt", get(r, "choices", 0, "text").(string), get(r, "choices", 0, "finish_reason"))
				if get(r, "usage", "prompt_tokens") != float64(len(g.PromptTokens)) || get(r, "usage", "completion_tokens") != float64(len(g.Tokens)) {
					t.Errorf("%q: usage %v", g.Prompt, r["usage"])
				}
				ids, _ := json.Marshal(g.PromptTokens)
				r = ts.post("/v1/completions", req(g, string(ids), false), 200)
				check("token prompt", get(r, "choices", 0, "text").(string), get(r, "choices", 0, "finish_reason"))
				var text strings.Builder
				var finish any
				for _, c := range ts.stream("/v1/completions", req(g, string(pj), true)) {
					text.WriteString(get(c, "choices", 0, "text").(string))
					if f := get(c, "choices", 0, "finish_reason"); f != nil {
						finish = f
					}
				}
				check("stream", text.String(), finish)
			}
			wg.Add(1)
			if round == 0 {
				run()
			} else {
				go run()
			}
		}
		wg.Wait()
	}
}

// firstTie is the number of generated tokens before the first whose top two reference logprobs
// are closer than tol.
func firstTie(g golden, tol float64) int {
	for k := range g.Tokens {
		top := g.Positions[len(g.PromptTokens)-1+k].Top
		if len(top) > 1 && top[0][1]-top[1][1] < tol {
			return k
		}
	}
	return len(g.Tokens)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRealPromptLogprobs checks echo+logprobs+max_tokens 0 against the reference's teacher-forced
// distributions: position i's alternatives are those after the first i tokens.
func TestRealPromptLogprobs(t *testing.T) {
	ts, gs := realServer(t)
	g := gs[0]
	ids, _ := json.Marshal(g.PromptTokens)
	r := ts.post("/v1/completions", fmt.Sprintf(`{"prompt":%s,"max_tokens":0,"echo":true,"logprobs":5}`, ids), 200)
	lp := get(r, "choices", 0, "logprobs")
	toks, _ := get(lp, "tokens").([]any)
	if len(toks) != len(g.PromptTokens) {
		t.Fatalf("%d logprob tokens for %d prompt tokens: %v", len(toks), len(g.PromptTokens), lp)
	}
	if get(lp, "token_logprobs", 0) != nil || get(lp, "top_logprobs", 0) != nil {
		t.Errorf("the first token has logprobs: %v", lp)
	}
	piece := func(id int32) string {
		// The reference gives ids; the daemon keys alternatives by text.
		r := ts.post("/v1/detokenize", fmt.Sprintf(`{"tokens":[%d,%d]}`, g.PromptTokens[1], id), 200)
		first := ts.post("/v1/detokenize", fmt.Sprintf(`{"tokens":[%d]}`, g.PromptTokens[1]), 200)
		return strings.TrimPrefix(r["content"].(string), first["content"].(string))
	}
	for i := 1; i < len(g.PromptTokens); i++ {
		top, _ := get(lp, "top_logprobs", i).(map[string]any)
		ref := g.Positions[i-1].Top
		for _, e := range ref {
			p := piece(int32(e[0]))
			v, ok := top[p].(float64)
			if !ok {
				t.Errorf("position %d: reference alternative %q (%v) missing from %v", i, p, e, top)
				continue
			}
			if math.Abs(v-e[1]) > 2e-2 {
				t.Errorf("position %d: %q logprob %v, reference %v", i, p, v, e[1])
			}
			if int32(e[0]) == g.PromptTokens[i] {
				if tl, _ := get(lp, "token_logprobs", i).(float64); math.Abs(tl-e[1]) > 2e-2 {
					t.Errorf("position %d: token logprob %v, reference %v", i, tl, e[1])
				}
			}
		}
	}
}

// TestRealEchoTextOffset: with echo, text_offset[i] is where token i starts in the returned text,
// streamed or not, though the SentencePiece pieces carry a space the decoded text drops.
func TestRealEchoTextOffset(t *testing.T) {
	ts, _ := realServer(t)
	check := func(what string, text []rune, tokens []any, offsets []any) {
		if len(tokens) != len(offsets) || len(tokens) < 8 {
			t.Fatalf("%s: %d tokens, %d offsets", what, len(tokens), len(offsets))
		}
		for i := range tokens {
			tok, _ := tokens[i].(string)
			off := int(offsets[i].(float64))
			if off < 0 || off > len(text) {
				t.Errorf("%s: token %d %q: offset %d outside the text %q", what, i, tok, off, string(text))
				continue
			}
			// A token at offset 0 may be BOS or the dropped leading space; any other starts there.
			if off > 0 && !strings.HasPrefix(string(text[off:]), tok) {
				t.Errorf("%s: token %d %q at offset %d, but the text there is %q", what, i, tok, off, string(text[off:]))
			}
		}
	}
	const body = `{"prompt":"Once upon a time","max_tokens":6,"temperature":0,"echo":true,"logprobs":1`
	r := ts.post("/v1/completions", body+`}`, 200)
	text := []rune(get(r, "choices", 0, "text").(string))
	lp := get(r, "choices", 0, "logprobs")
	toks, _ := get(lp, "tokens").([]any)
	offs, _ := get(lp, "text_offset").([]any)
	check("whole", text, toks, offs)

	resp, b := ts.do("POST", "/v1/completions", body+`,"stream":true}`)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	var stext string
	var stoks, soffs []any
	for _, line := range strings.Split(string(b), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		s, _ := get(c, "choices", 0, "text").(string)
		stext += s
		if l, ok := get(c, "choices", 0, "logprobs").(map[string]any); ok {
			tk, _ := l["tokens"].([]any)
			of, _ := l["text_offset"].([]any)
			stoks, soffs = append(stoks, tk...), append(soffs, of...)
		}
	}
	check("stream", []rune(stext), stoks, soffs)
}

// TestRealChat runs a chat, ChatML configured as the model has no template.
func TestRealChat(t *testing.T) {
	ts, _ := realServer(t)
	r := ts.post("/v1/chat/completions", `{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8,"temperature":0}`, 200)
	if get(r, "choices", 0, "message", "role") != "assistant" || get(r, "usage", "completion_tokens") == 0.0 {
		t.Errorf("chat: %v", r)
	}
	chunks := ts.stream("/v1/chat/completions", `{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8,"temperature":0,"stream":true}`)
	var text strings.Builder
	for _, c := range chunks {
		if s, ok := get(c, "choices", 0, "delta", "content").(string); ok {
			text.WriteString(s)
		}
	}
	if text.String() != get(r, "choices", 0, "message", "content") {
		t.Errorf("greedy chat stream %q, non-streamed %q", text.String(), get(r, "choices", 0, "message", "content"))
	}

}

// slowClient wraps the engine so each token takes a while to hand over, as to a slow client, and
// reports how each Generate ended.
type slowClient struct {
	*engine.Engine
	ended chan genEnd
}

type genEnd struct {
	tokens int
	err    error
}

func (s slowClient) Generate(ctx context.Context, req engine.Request, on func(engine.Event) error) (*engine.Result, error) {
	res, err := s.Engine.Generate(ctx, req, func(ev engine.Event) error {
		time.Sleep(5 * time.Millisecond)
		return on(ev)
	})
	n := 0
	if res != nil {
		n = len(res.Tokens)
	}
	s.ended <- genEnd{n, err}
	return res, err
}

// TestRealDisconnect: a client leaving mid-stream stops its generation early and frees its
// sequence in the engine.
func TestRealDisconnect(t *testing.T) {
	dir := testshared.Dir(t)
	eng, err := engine.Load(filepath.Join(dir, "models", "aidreams260K-q8_0.gguf"), engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	sc := slowClient{eng, make(chan genEnd, 1)}
	ts := startBackend(t, sc, Settings{})
	// The small model makes 100 tokens in a few milliseconds, before a close can be noticed; 4000
	// (past its context, so sink-window shifting runs too) take long enough.
	resp, err := ts.client.Post("http://edgelm/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"Once upon a time","max_tokens":4000,"ignore_eos":true,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ts.client.CloseIdleConnections()
	select {
	case e := <-sc.ended:
		// Stopped by the canceled context or by the token callback failing, whichever came first.
		if e.tokens >= 4000 || !(errors.Is(e.err, context.Canceled) || errors.Is(e.err, errClientGone)) {
			t.Errorf("generation after the client left: %d tokens, err %v; want fewer than 4000 and a cancellation", e.tokens, e.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("generation did not stop after the client left")
	}
	if st := eng.Stats(); st.ActiveSequences != 0 || st.QueueDepth != 0 {
		t.Errorf("after the client left: %d active sequences, %d queued", st.ActiveSequences, st.QueueDepth)
	}
}
