package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/client"
	"edgelm/daemon"
	"edgelm/engine"
	"edgelm/internal/testshared"
)

// TestChatPastContext drives `edgelm chat` through 20 turns on aidreams (context 128), whose
// conversation outgrows the context after a few: with a chat format (the daemon drops the oldest
// turns) and without one (the transcript goes to /v1/completions and the client drops them). No
// turn may fail, and the user is told when old turns were left out.
func TestChatPastContext(t *testing.T) {
	eng, err := engine.Load(filepath.Join(testshared.Dir(t), "models", "aidreams260K-q8_0.gguf"), engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if c := eng.Info().ContextLength; c != 128 {
		t.Fatalf("context %d, want 128", c)
	}
	for _, tmpl := range []string{"chatml", ""} {
		t.Run("template="+tmpl, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "edgelm-chat")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			set := daemon.Settings{ChatTemplate: tmpl, Socket: filepath.Join(dir, "d.sock")}
			srv := daemon.New(eng, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
			l, err := daemon.Listen(set)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, l) }()
			defer func() {
				cancel()
				<-done
				l.Close()
			}()
			c := client.New(set.Socket)
			defer c.Close()
			var out bytes.Buffer
			in := strings.Repeat("Tell me about the little cat who lived in the big garden.\n", 20)
			s := &chatSession{c: c, in: newScanLines(strings.NewReader(in), &out), out: &out, system: "You tell short dreams."}
			maxTokens, temp := 24, 0.0
			s.sampling.MaxTokens, s.sampling.Temperature = &maxTokens, &temp
			if err := s.run(); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			if strings.Contains(text, "error:") {
				t.Fatalf("a turn failed:\n%s", text)
			}
			if n := strings.Count(text, "> "); n != 21 { // 20 turns and the prompt left at the end
				t.Errorf("%d prompts, want 21:\n%s", n, text)
			}
			if !strings.Contains(text, "no longer fit the model's context and were left out") {
				t.Errorf("no notice of dropped turns:\n%s", text)
			}
			if len(s.history) < 3 || s.history[0].Role != "system" || len(s.history) > 21 {
				t.Errorf("history of %d messages at the end, first %q; want the system message kept and old turns gone", len(s.history), s.history[0].Role)
			}
		})
	}
}
