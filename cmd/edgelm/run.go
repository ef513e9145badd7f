package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"edgelm/client"
	"edgelm/daemon"
	"edgelm/engine"
)

func init() {
	register("run", "generate text from a prompt with a local model (or through a daemon with --socket)", func(args []string) error {
		return runCmd(args, os.Stdout, os.Stderr)
	})
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runJSON is what --json prints: the fields of ../shared/golden/README.md.
type runJSON struct {
	Model        string             `json:"model"`
	Prompt       string             `json:"prompt"`
	PromptTokens []int32            `json:"prompt_tokens"`
	Tokens       []int32            `json:"tokens"`
	Text         string             `json:"text"`
	FinishReason string             `json:"finish_reason"`
	Positions    []positionOut      `json:"positions,omitempty"`
	Trace        []engine.TraceStep `json:"trace,omitempty"`
	Timings      timingsOut         `json:"timings"`
}

type positionOut struct {
	Top [][2]any `json:"top"` // [token_id, logprob]
}

type timingsOut struct {
	PrefillMS  float64 `json:"prefill_ms"`
	DecodeMS   float64 `json:"decode_ms"`
	PrefillTPS float64 `json:"prefill_tokens_per_second"`
	DecodeTPS  float64 `json:"decode_tokens_per_second"`
}

func runCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "--model FILE --prompt TEXT [flags]")
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "GGUF model file (with --socket: the daemon's model to ask for, by file name)")
	socket := fs.String("socket", "", "send the request to the edgelm daemon on this Unix socket (default without --model: serve's default socket, when a daemon listens there); its tokenizer parses special-token texts, and --threads, --ctx, --no-cache, --no-bos and --kernels are refused")
	prompt := fs.String("prompt", "", "prompt text")
	promptFile := fs.String("file", "", "read the prompt from this file (- for stdin)")
	maxTokens := fs.Int("max-tokens", 128, "tokens to generate")
	temp := fs.Float64("temperature", 0.8, "sampling temperature; 0 is greedy")
	topK := fs.Int("top-k", 40, "keep the k most likely tokens (0 = all)")
	topP := fs.Float64("top-p", 0.95, "keep the smallest set of tokens whose probability reaches p (1 = all)")
	minP := fs.Float64("min-p", 0.05, "drop tokens less likely than min-p times the most likely one")
	repeat := fs.Float64("repeat-penalty", 1.0, "penalty for tokens among the last --repeat-last-n (1 = off)")
	repeatN := fs.Int("repeat-last-n", 64, "tokens the repeat penalty looks back at")
	seed := fs.Uint64("seed", 0, "random seed (0 = random)")
	var stops stringList
	fs.Var(&stops, "stop", "stop before this text (repeatable)")
	ignoreEOS := fs.Bool("ignore-eos", false, "keep generating past end-of-generation tokens")
	threads := fs.Int("threads", 0, "threads (0 = one per core)")
	ctxLen := fs.Int("ctx", 0, "context length (0 = the model's)")
	asJSON := fs.Bool("json", false, "print one JSON object with tokens, text and (with --logprobs) positions (with --socket: the daemon's /v1/completions answer)")
	echo := fs.Bool("echo", false, "with --json --logprobs: include teacher-forced positions for the prompt")
	logprobs := fs.Int("logprobs", 0, "with --json: report this many most likely tokens per position")
	trace := fs.Bool("trace", false, "print per step: prefill/decode, per-layer output shapes, KV length, time")
	noCache := fs.Bool("no-cache", false, "recompute the whole sequence every step (slow; shows what the KV cache saves)")
	noBOS := fs.Bool("no-bos", false, "do not add BOS even when the model asks for it")
	special := fs.Bool("special", false, "parse special-token texts in the prompt (e.g. <start_of_turn>) as their ids")
	kernelsCap := fs.String("kernels", "", "cap the kernels used (e.g. generic)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	text := *prompt
	if *promptFile != "" {
		var b []byte
		var err error
		if *promptFile == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*promptFile)
		}
		if err != nil {
			return err
		}
		text = string(b)
	}
	samp := engine.Sampling{
		Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
		RepeatPenalty: float32(*repeat), RepeatLastN: *repeatN, Seed: *seed,
	}
	// The same bounds as the API's, so a mistake is told rather than quietly sampled with.
	if err := samp.Check(); err != nil {
		return usageError("--" + strings.ReplaceAll(err.Error(), "_", "-"))
	}
	switch {
	case *maxTokens < 0:
		return usageError(fmt.Sprintf("--max-tokens %d: want >= 0", *maxTokens))
	case *ctxLen < 0:
		return usageError(fmt.Sprintf("--ctx %d: want >= 0 (0: the model's context)", *ctxLen))
	case *logprobs < 0 || *logprobs > 20:
		return usageError(fmt.Sprintf("--logprobs %d: want 0..20", *logprobs))
	case *threads < 0:
		return usageError(fmt.Sprintf("--threads %d: want >= 0 (0: one per core)", *threads))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	defaultSocket, _ := daemon.DefaultSocket()
	if *modelPath == "" && *socket == "" && defaultSocket != "" {
		// No model: the daemon at the default socket, as chat and status use, when one listens.
		if st, err := os.Stat(defaultSocket); err == nil && st.Mode()&os.ModeSocket != 0 {
			*socket = defaultSocket
		}
	}
	if *socket != "" {
		// What the API cannot express is refused, not silently dropped.
		for _, name := range []string{"threads", "ctx", "no-cache", "no-bos", "kernels"} {
			if given[name] {
				return usageError(fmt.Sprintf("--%s applies to a local model; the daemon's own settings rule with --socket (drop it, or use --model without --socket)", name))
			}
		}
		// As with a local model, --echo shapes only the --json answer (the text stays the completion).
		req := client.CompletionRequest{Prompt: text, Echo: *echo && *asJSON, IgnoreEOS: *ignoreEOS, Trace: *trace}
		if *modelPath != "" {
			req.Model = filepath.Base(*modelPath) // the daemon names its model by file name
		}
		if *logprobs > 0 {
			req.Logprobs = logprobs
		}
		return runRemote(ctx, *socket, req, *maxTokens, samp, stops, *asJSON, stdout, stderr)
	}
	if *modelPath == "" {
		return fmt.Errorf("%w: --model FILE is required (or --socket PATH to use a running daemon; none listens at the default %s)", errUsage, defaultSocket)
	}
	e, err := engine.Load(*modelPath, engine.Options{Threads: *threads, ContextLength: *ctxLen, Kernels: *kernelsCap})
	if err != nil {
		return err
	}
	defer e.Close()
	if trained := e.Model().ContextLength; *ctxLen > trained {
		return usageError(fmt.Sprintf("--ctx %d: %s was trained for %d tokens; positions past that give nonsense (want 0..%d)", *ctxLen, filepath.Base(*modelPath), trained, trained))
	}
	ids := e.Tokenize(text, !*noBOS, *special)
	req := engine.Request{
		Prompt: ids, MaxTokens: *maxTokens, Sampling: samp, Stop: stops, IgnoreEOS: *ignoreEOS,
		Logprobs: *logprobs, Echo: *echo, Trace: *trace,
	}
	if *trace && !*asJSON {
		fmt.Fprintf(stderr, "model %s: %s, %d layers, dim %d, %d heads (%d KV), kernels %s\n",
			e.Info().Model, e.Info().Arch, e.Model().Layers, e.Model().Dim, e.Model().Heads, e.Model().KVHeads, e.Info().Kernels)
		fmt.Fprintf(stderr, "prompt: %d tokens\n", len(ids))
	}
	req.NoCache = *noCache
	res, err := e.Generate(ctx, req, streamTo(stdout, !*asJSON))
	if err != nil {
		return err
	}
	if *trace && !*asJSON {
		printTrace(stderr, res.Trace)
	}
	if !*asJSON {
		fmt.Fprintln(stdout)
		pt, dt := res.PrefillTime.Seconds(), res.DecodeTime.Seconds()
		fmt.Fprintf(stderr, "\n[%d prompt tokens in %.0f ms (%.1f t/s), %d generated in %.0f ms (%.1f t/s), %s]\n",
			res.PromptTokens, pt*1000, rate(res.PromptTokens, pt), len(res.Tokens), dt*1000, rate(len(res.Tokens), dt), res.FinishReason)
		return nil
	}
	out := runJSON{
		Model: e.Info().Model, Prompt: text, PromptTokens: ids, Tokens: res.Tokens, Text: res.Text,
		FinishReason: res.FinishReason, Trace: res.Trace,
		Timings: timingsOut{
			PrefillMS: res.PrefillTime.Seconds() * 1000, DecodeMS: res.DecodeTime.Seconds() * 1000,
			PrefillTPS: rate(res.PromptTokens, res.PrefillTime.Seconds()), DecodeTPS: rate(len(res.Tokens), res.DecodeTime.Seconds()),
		},
	}
	if out.Tokens == nil {
		out.Tokens = []int32{}
	}
	for _, p := range res.Logprobs {
		po := positionOut{Top: make([][2]any, len(p.Top))}
		for i, tp := range p.Top {
			po.Top[i] = [2]any{tp.ID, tp.Logprob}
		}
		out.Positions = append(out.Positions, po)
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(out)
}

func rate(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}

// streamTo prints each token's text as it is generated.
func streamTo(w io.Writer, on bool) func(engine.Event) error {
	if !on {
		return nil
	}
	return func(ev engine.Event) error {
		_, err := io.WriteString(w, ev.Text)
		return err
	}
}

// printTrace shows what each step computed: the answer to why the MLP output is (1, n, hidden) on
// the first step and (1, 1, hidden) afterwards.
func printTrace(w io.Writer, steps []engine.TraceStep) {
	fmt.Fprintln(w, "\ntrace:")
	for _, s := range steps {
		fmt.Fprintf(w, "step %3d  %-7s  tokens %3d  reused %3d  kv_len %4d  batch %d  %8.2f ms\n",
			s.Step, s.Kind, s.Tokens, s.Reused, s.KVLen, s.Batch, float64(s.Duration)/float64(time.Millisecond))
		for il, l := range s.Layers {
			if s.Step > 1 && il > 0 && il < len(s.Layers)-1 {
				continue // decode layers all look alike; show the first and last
			}
			if s.Step > 1 && il == len(s.Layers)-1 && len(s.Layers) > 2 {
				fmt.Fprintf(w, "          ...\n")
			}
			fmt.Fprintf(w, "          layer %2d  attn_out %v  mlp_out %v\n", il, l.Attn, l.MLP)
		}
	}
}

// runRemote sends one completion to a daemon: streamed text, or with --json the daemon's answer
// as it came (an OpenAI completion object, with logprobs and trace when asked for).
func runRemote(ctx context.Context, socket string, req client.CompletionRequest, maxTokens int, s engine.Sampling, stops []string, asJSON bool, stdout, stderr io.Writer) error {
	c := client.New(socket)
	defer c.Close()
	temp, topP, minP, rp := float64(s.Temperature), float64(s.TopP), float64(s.MinP), float64(s.RepeatPenalty)
	req.MaxTokens, req.Temperature, req.TopP, req.TopK, req.MinP, req.RepeatPenalty = &maxTokens, &temp, &topP, &s.TopK, &minP, &rp
	req.RepeatLastN = &s.RepeatLastN
	if s.Seed != 0 {
		seed := int64(s.Seed)
		req.Seed = &seed
	}
	req.Stop = stops
	wrap := func(err error) error {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) {
			return fmt.Errorf("daemon at %s: %w", socket, err)
		}
		return err
	}
	if asJSON || req.Trace {
		b, err := c.CompletionsJSON(ctx, req)
		if err != nil {
			return wrap(err)
		}
		if asJSON {
			_, err = fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(b))
			return err
		}
		var ans struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Trace []engine.TraceStep `json:"trace"`
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			return fmt.Errorf("daemon at %s: %w", socket, err)
		}
		if len(ans.Choices) > 0 {
			fmt.Fprintln(stdout, ans.Choices[0].Text)
		}
		printTrace(stderr, ans.Trace)
		return nil
	}
	_, err := c.Completions(ctx, req, func(t string) error {
		_, err := io.WriteString(stdout, t)
		return err
	})
	fmt.Fprintln(stdout)
	return wrap(err)
}
