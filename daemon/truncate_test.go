package daemon

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"edgelm/chat"
	"edgelm/engine"
	"edgelm/internal/testshared"
)

// TestFitChat checks the truncation rule against a brute-force search over every possible cut, with
// a render whose token count is easy to follow: 2 tokens per message plus its content's length.
func TestFitChat(t *testing.T) {
	count := func(m []chat.Message) int {
		n := 1 // BOS
		for _, x := range m {
			n += 2 + len(x.Content)
		}
		return n
	}
	msg := func(role string, n int) chat.Message {
		return chat.Message{Role: role, Content: strings.Repeat("x", n)}
	}
	long := []chat.Message{msg("system", 10)}
	for i := range 40 {
		long = append(long, msg("user", 5+i%7), msg("assistant", 20+i%5))
	}
	long = append(long, msg("user", 8))
	asked := 16
	for _, c := range []struct {
		name     string
		msgs     []chat.Message
		limit    int
		asked    *int
		truncate bool
		wantErr  string
	}{
		{"fits", long[:3], 128, &asked, true, ""},
		{"long", long, 128, &asked, true, ""},
		{"long, default room", long, 128, nil, true, ""},
		{"long, no truncation", long, 128, &asked, false, "limit is 128"},
		{"newest turn too long", []chat.Message{msg("user", 5), msg("assistant", 5), msg("user", 200)}, 128, &asked, true, "last turn have"},
		{"one message too long", []chat.Message{msg("user", 200)}, 128, &asked, true, "no older turn"},
		{"no limit", long, 0, &asked, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			render := func(keep []int) ([]int32, error) {
				m := make([]chat.Message, len(keep))
				for k, i := range keep {
					m[k] = c.msgs[i]
				}
				return make([]int32, count(m)), nil
			}
			ids, dropped, err := fitChat(render, c.msgs, c.limit, c.asked, c.truncate)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || classify(err).code != "context_length_exceeded" {
					t.Fatalf("err %v, want context_length_exceeded with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The brute force: the fewest non-system messages dropped, the kept part starting at a user
			// turn, that leave room for the reply.
			all := make([]int32, count(c.msgs))
			room := c.limit / 4
			if c.asked != nil {
				room = min(room, *c.asked)
			}
			want, wantLen := 0, len(all)
			if c.limit > 0 && len(all) > c.limit-room {
				want = -1
				var rest []chat.Message
				for _, m := range c.msgs {
					if m.Role != "system" {
						rest = append(rest, m)
					}
				}
				for d := 1; d < len(rest) && want < 0; d++ {
					kept := append([]chat.Message{}, c.msgs[0]) // the system message
					kept = append(kept, rest[d:]...)
					if n := count(kept); rest[d].Role == "user" && n <= c.limit-room {
						want, wantLen = d, n
					}
				}
			}
			if dropped != want || len(ids) != wantLen {
				t.Errorf("dropped %d messages, prompt %d tokens; want %d, %d", dropped, len(ids), want, wantLen)
			}
		})
	}
}

// TestFitChatRefusedText: a render that refuses a text sure to be over the limit, without
// tokenizing it (as checkPromptText does), gives the same cut as one that tokenizes everything, and
// its refusal is the error when truncation is off.
func TestFitChatRefusedText(t *testing.T) {
	var msgs []chat.Message
	render := func(keep []int) ([]int32, error) {
		n := 1
		for _, i := range keep {
			n += 2 + len(msgs[i].Content)
		}
		return make([]int32, n), nil
	}
	refusing := func(keep []int) ([]int32, error) {
		ids, _ := render(keep)
		if len(ids) > 300 {
			return nil, badRequest("context_length_exceeded", "sure to be too long")
		}
		return ids, nil
	}
	for i := range 40 {
		msgs = append(msgs, chat.Message{Role: "user", Content: strings.Repeat("u", 5+i%3)}, chat.Message{Role: "assistant", Content: strings.Repeat("a", 20)})
	}
	msgs = append(msgs, chat.Message{Role: "user", Content: "last"})
	asked := 16
	want, wd, err := fitChat(render, msgs, 128, &asked, true)
	if err != nil {
		t.Fatal(err)
	}
	got, gd, err := fitChat(refusing, msgs, 128, &asked, true)
	if err != nil || gd != wd || len(got) != len(want) {
		t.Errorf("refusing render: %d tokens, %d dropped, %v; want %d, %d", len(got), gd, err, len(want), wd)
	}
	if _, _, err := fitChat(refusing, msgs, 128, &asked, false); err == nil || !strings.Contains(err.Error(), "sure to be too long") {
		t.Errorf("without truncation: %v, want the refusal", err)
	}
}

// realContextServer serves aidreams (context 128) through the real engine with opt and set.
func realContextServer(t *testing.T, opt engine.Options, set Settings) (*testServer, *engine.Engine) {
	t.Helper()
	opt.Threads = 1
	eng, err := engine.Load(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	set.ChatTemplate = "chatml" // the model has none
	return startBackend(t, eng, set), eng
}

// TestRealPastContext: with sink-window a completion gets three times the context in tokens, every
// one of them (counted by their logprobs), with honest usage; with policy none it ends at the context.
func TestRealPastContext(t *testing.T) {
	ts, eng := realContextServer(t, engine.Options{}, Settings{})
	ctx := eng.Info().ContextLength
	if ctx != 128 {
		t.Fatalf("context %d, want the model's 128", ctx)
	}
	prompt := len(eng.Tokenize("Once upon a time", true, true))
	body := fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d,"ignore_eos":true,"temperature":0,"logprobs":1}`, 3*ctx)
	r := ts.post("/v1/completions", body, 200)
	lp, _ := get(r, "choices", 0, "logprobs", "tokens").([]any)
	if len(lp) != 3*ctx || get(r, "usage", "completion_tokens") != float64(3*ctx) ||
		get(r, "usage", "prompt_tokens") != float64(prompt) || get(r, "usage", "total_tokens") != float64(prompt+3*ctx) {
		t.Errorf("%d tokens with logprobs, usage %v; want %d generated after %d prompt tokens", len(lp), r["usage"], 3*ctx, prompt)
	}
	if get(r, "choices", 0, "finish_reason") != "length" {
		t.Errorf("finish_reason %v", get(r, "choices", 0, "finish_reason"))
	}
	st := eng.Stats()
	// Each shift drops half of what follows the 4 sinks; the sequence grew to prompt+3*ctx tokens.
	if min := int64(prompt + 3*ctx - ctx); st.KVShifts < 3 || st.KVShiftedTokens < min {
		t.Errorf("%d shifts dropping %d tokens; want at least 3 and %d", st.KVShifts, st.KVShiftedTokens, min)
	}
	m := ts.metricsText()
	if !strings.Contains(m, fmt.Sprintf("edgelm_kv_shifts_total %d\n", st.KVShifts)) || !strings.Contains(m, fmt.Sprintf("edgelm_kv_shifted_tokens_total %d\n", st.KVShiftedTokens)) {
		t.Errorf("metrics lack the shifts:\n%s", m)
	}

	none, _ := realContextServer(t, engine.Options{KVPolicy: "none"}, Settings{})
	r = none.post("/v1/completions", body, 200)
	if get(r, "usage", "completion_tokens") != float64(ctx-prompt) || get(r, "choices", 0, "finish_reason") != "length" {
		t.Errorf("policy none: usage %v, finish %v; want %d tokens, length", r["usage"], get(r, "choices", 0, "finish_reason"), ctx-prompt)
	}
}

// longChat is a conversation of about eight times aidreams' context.
func longChat(turns int) []map[string]string {
	msgs := []map[string]string{{"role": "system", "content": "You tell short dreams."}}
	for i := range turns {
		msgs = append(msgs,
			map[string]string{"role": "user", "content": fmt.Sprintf("Tell me dream number %d about a cat and the moon.", i)},
			map[string]string{"role": "assistant", "content": "The cat sat on the moon and sang to the stars all night long."})
	}
	return append(msgs, map[string]string{"role": "user", "content": "And the last one?"})
}

// TestRealLongChat: a chat history of eight times the context is answered, its oldest turns dropped:
// the fewest that leave room for the reply, found here by trying every cut in order.
func TestRealLongChat(t *testing.T) {
	ts, eng := realContextServer(t, engine.Options{}, Settings{})
	msgs := longChat(22)
	tmpl, _ := chat.ByName("chatml")
	tokens := func(ms []map[string]string) int {
		var cm []chat.Message
		for _, m := range ms {
			cm = append(cm, chat.Message{Role: m["role"], Content: m["content"]})
		}
		p, err := tmpl.Render(cm, true)
		if err != nil {
			t.Fatal(err)
		}
		return len(eng.Tokenize(tmpl.StripBOS(p), true, true))
	}
	ctx := eng.Info().ContextLength
	if n := tokens(msgs); n < 8*ctx {
		t.Fatalf("history of %d tokens, want at least %d", n, 8*ctx)
	}
	target := ctx - 16 // room for max_tokens 16
	want := -1
	for d := 2; d < len(msgs)-1; d += 2 { // cuts that keep the system message and start at a user turn
		if n := tokens(append(msgs[:1:1], msgs[1+d:]...)); n <= target {
			want = d
			break
		}
	}
	mj, _ := json.Marshal(msgs)
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"messages":%s,"max_tokens":16,"temperature":0,"stream":%v,"stream_options":{"include_usage":true}}`, mj, stream)
		resp, b := ts.do("POST", "/v1/chat/completions", body)
		if resp.StatusCode != 200 {
			t.Fatalf("stream %v: status %d: %s", stream, resp.StatusCode, b)
		}
		if h := resp.Header.Get(truncatedHeader); h != strconv.Itoa(want) {
			t.Errorf("stream %v: %s: %q, want %d", stream, truncatedHeader, h, want)
		}
		var usage map[string]any
		if !stream {
			var r map[string]any
			json.Unmarshal(b, &r)
			usage, _ = r["usage"].(map[string]any)
		} else {
			for _, line := range strings.Split(string(b), "\n") {
				var c map[string]any
				if d, ok := strings.CutPrefix(line, "data: "); ok && json.Unmarshal([]byte(d), &c) == nil && c["usage"] != nil {
					usage = c["usage"].(map[string]any)
				}
			}
		}
		if usage["truncated_messages"] != float64(want) || usage["prompt_tokens"] != float64(tokens(append(msgs[:1:1], msgs[1+want:]...))) || usage["completion_tokens"] == 0.0 {
			t.Errorf("stream %v: usage %v; want %d messages dropped", stream, usage, want)
		}
	}
	// Ollama's /api/chat cuts the same way (room for the reply: a quarter of the context).
	resp, b := ts.do("POST", "/api/chat", fmt.Sprintf(`{"messages":%s,"stream":false,"options":{"num_predict":16,"temperature":0}}`, mj))
	wantOllama := -1
	for d := 2; d < len(msgs)-1; d += 2 {
		if n := tokens(append(msgs[:1:1], msgs[1+d:]...)); n <= ctx-ctx/4 {
			wantOllama = d
			break
		}
	}
	if resp.StatusCode != 200 || resp.Header.Get(truncatedHeader) != strconv.Itoa(wantOllama) {
		t.Errorf("/api/chat: status %d, %s %q, want %d: %s", resp.StatusCode, truncatedHeader, resp.Header.Get(truncatedHeader), wantOllama, b)
	}
	if m := ts.metricsText(); !strings.Contains(m, fmt.Sprintf("edgelm_chat_truncated_messages_total %d\n", 2*want+wantOllama)) ||
		!strings.Contains(m, "edgelm_chat_truncated_requests_total 3\n") {
		t.Errorf("metrics lack the truncations:\n%s", m)
	}
}

// TestRealContextOverflowError: with context_overflow = "error", or "truncate": false in the
// request, the long chat is refused with context_length_exceeded, naming both sizes.
func TestRealContextOverflowError(t *testing.T) {
	mj, _ := json.Marshal(longChat(22))
	ts, _ := realContextServer(t, engine.Options{}, Settings{ContextOverflow: "error"})
	for _, c := range []struct {
		ts    *testServer
		extra string
		code  int
	}{
		{ts, ``, 400},
		{ts, `,"truncate":true`, 200}, // the request may ask for truncation the config does not do
	} {
		r := c.ts.post("/v1/chat/completions", fmt.Sprintf(`{"messages":%s,"max_tokens":4%s}`, mj, c.extra), c.code)
		if c.code == 400 {
			msg, _ := get(r, "error", "message").(string)
			if get(r, "error", "code") != "context_length_exceeded" || !strings.Contains(msg, "the limit is 128") || !strings.Contains(msg, "tokens") {
				t.Errorf("error %v", r["error"])
			}
		}
	}
	def, _ := realContextServer(t, engine.Options{}, Settings{})
	r := def.post("/v1/chat/completions", fmt.Sprintf(`{"messages":%s,"max_tokens":4,"truncate":false}`, mj), 400)
	if get(r, "error", "code") != "context_length_exceeded" {
		t.Errorf("truncate false: %v", r["error"])
	}
}
