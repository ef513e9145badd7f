package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/chzyer/readline"

	"edgelm/client"
)

func init() {
	register("chat", "chat with a running daemon (interactive)", runChat)
}

func runChat(args []string) error {
	fs := newFlags("chat", "[--socket PATH] [--system TEXT] [--max-tokens N] [--temperature T]")
	socket := fs.String("socket", "", "daemon socket (default: as edgelm serve, $XDG_RUNTIME_DIR/edgelm.sock, else /run/edgelm/edgelm.sock, else $TMPDIR/edgelm-UID/edgelm.sock)")
	system := fs.String("system", "", "system message starting the conversation")
	maxTokens := fs.Int("max-tokens", 512, "tokens per reply at most")
	temperature := fs.Float64("temperature", -1, "sampling temperature (-1: the daemon's default)")
	history := fs.String("history", "", "keep the typed lines in this file across sessions (default: this session only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := clientSocket(*socket)
	if err != nil {
		return err
	}
	c := client.New(path)
	defer c.Close()
	s := &chatSession{c: c, out: os.Stdout, system: *system}
	if isTerminal(os.Stdin) && isTerminal(os.Stdout) {
		rl, err := readline.NewEx(&readline.Config{Prompt: "> ", HistoryFile: *history, HistoryLimit: 1000, InterruptPrompt: "^C", EOFPrompt: ""})
		if err != nil {
			return fmt.Errorf("chat: terminal: %w", err)
		}
		defer rl.Close()
		s.in = editor{rl}
	} else {
		s.in = newScanLines(os.Stdin, os.Stdout)
	}
	s.sampling.MaxTokens = maxTokens
	if *temperature >= 0 {
		s.sampling.Temperature = temperature
	}
	return s.run()
}

// lineReader gives the typed lines: io.EOF at the end, readline.ErrInterrupt for Ctrl-C.
type lineReader interface {
	ReadLine() (string, error)
}

// editor reads lines from a terminal with line editing and history.
type editor struct{ rl *readline.Instance }

func (e editor) ReadLine() (string, error) { return e.rl.Readline() }

// scanLines reads lines from a pipe or file, prompting on out as the terminal does.
type scanLines struct {
	sc  *bufio.Scanner
	out io.Writer
}

func newScanLines(in io.Reader, out io.Writer) *scanLines {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &scanLines{sc: sc, out: out}
}

func (s *scanLines) ReadLine() (string, error) {
	fmt.Fprint(s.out, "> ")
	if !s.sc.Scan() {
		if err := s.sc.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return s.sc.Text(), nil
}

// chatSession is the REPL's state: the conversation so far and how to send it.
type chatSession struct {
	c        *client.Client
	in       lineReader
	out      io.Writer
	system   string
	sampling client.Sampling
	plain    bool // the model has no chat template: plain completions of the transcript
	history  []client.Message
	last     *client.Completion
	lastTime time.Duration
}

func (s *chatSession) run() error {
	ctx := context.Background()
	h, err := s.c.Health(ctx)
	if errors.Is(err, client.ErrLoading) {
		return errors.New("the daemon is still loading its model; try again shortly")
	}
	if err != nil {
		return err
	}
	s.plain = h.ChatTemplate == ""
	fmt.Fprintf(s.out, "edgelm chat with %s (%s). Ctrl-C stops a reply, /reset starts over, /stats shows speed, /quit leaves.\n", h.Model, h.Architecture)
	if s.plain {
		fmt.Fprintln(s.out, "note: this model has no chat template, so the conversation is sent as a plain-text transcript to /v1/completions.")
	}
	s.reset()
	for {
		line, err := s.in.ReadLine()
		if errors.Is(err, readline.ErrInterrupt) {
			continue // Ctrl-C at the prompt drops the line, as in a shell
		}
		if err != nil {
			fmt.Fprintln(s.out)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = strings.TrimSpace(line)
		switch line {
		case "":
			continue
		case "/quit", "/exit":
			return nil
		case "/reset":
			s.reset()
			fmt.Fprintln(s.out, "(conversation cleared)")
			continue
		case "/stats":
			s.stats(ctx)
			continue
		}
		if strings.HasPrefix(line, "/") {
			fmt.Fprintln(s.out, "commands: /reset, /stats, /quit")
			continue
		}
		if err := s.turn(line); err != nil {
			fmt.Fprintf(s.out, "\nerror: %v\n", err)
		}
	}
}

func (s *chatSession) reset() {
	s.history = s.history[:0]
	if s.system != "" {
		s.history = append(s.history, client.Message{Role: "system", Content: s.system})
	}
}

// turn sends one user message and streams the reply; Ctrl-C stops the reply, not the REPL.
func (s *chatSession) turn(text string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s.history = append(s.history, client.Message{Role: "user", Content: text})
	print := func(piece string) error {
		_, err := io.WriteString(s.out, piece)
		return err
	}
	start := time.Now()
	var res *client.Completion
	var err error
	if s.plain {
		res, err = s.c.Completions(ctx, client.CompletionRequest{Prompt: transcript(s.history), Sampling: s.withStop()}, print)
	} else {
		res, err = s.c.Chat(ctx, client.ChatRequest{Messages: s.history, Sampling: s.sampling}, print)
	}
	fmt.Fprintln(s.out)
	if err != nil {
		s.history = s.history[:len(s.history)-1]
		if ctx.Err() != nil {
			fmt.Fprintln(s.out, "(stopped)")
			return nil // Ctrl-C: the reply is dropped, the chat goes on
		}
		return err
	}
	s.last, s.lastTime = res, time.Since(start)
	s.history = append(s.history, client.Message{Role: "assistant", Content: strings.TrimSpace(res.Text)})
	return nil
}

// withStop ends a plain-transcript reply where the model starts writing the user's next line.
func (s *chatSession) withStop() client.Sampling {
	p := s.sampling
	p.Stop = append(append([]string(nil), p.Stop...), "\nUser:")
	return p
}

// transcript is the conversation as plain text for a model without a chat format.
func transcript(msgs []client.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		switch m.Role {
		case "system":
			b.WriteString(m.Content + "\n\n")
		case "user":
			b.WriteString("User: " + m.Content + "\n")
		case "assistant":
			b.WriteString("Assistant: " + m.Content + "\n")
		}
	}
	b.WriteString("Assistant:")
	return b.String()
}

func (s *chatSession) stats(ctx context.Context) {
	if s.last != nil {
		u := s.last.Usage
		fmt.Fprintf(s.out, "last reply: %d prompt + %d generated tokens in %s (%.1f tok/s end to end), finish %s\n",
			u.PromptTokens, u.CompletionTokens, s.lastTime.Round(time.Millisecond), float64(u.CompletionTokens)/s.lastTime.Seconds(), s.last.FinishReason)
	}
	fmt.Fprintf(s.out, "conversation: %d messages\n", len(s.history))
	if m, err := s.c.Metrics(ctx); err == nil {
		fmt.Fprintf(s.out, "daemon: prefill %.1f tok/s, decode %.1f tok/s, KV %s, %0.f active sequences\n",
			m["edgelm_prefill_tokens_per_second"], m["edgelm_decode_tokens_per_second"], bytesIEC(int64(m["edgelm_kv_bytes"])), m["edgelm_active_sequences"])
	}
}
