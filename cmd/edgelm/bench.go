package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"

	"edgelm/bench"
	"edgelm/client"
	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/model"
)

func init() {
	register("bench", "measure prefill and decode speed like llama-bench (or a daemon's with --socket)", func(args []string) error {
		return benchCmd(args, os.Stdout, os.Stderr)
	})
}

func benchCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "--model FILE [-p 512] [-n 128] [-d 0] [-t THREADS] [-r 3] [--json]\n       edgelm bench --socket PATH [--clients 4] [-n 64] [-r 1] [--temperature T] [--prompt TEXT] [--json]")
	modelPath := fs.String("model", "", "GGUF model file")
	prompt := fs.Int("p", 512, "prefill test: tokens in one batch (0 skips)")
	gen := fs.Int("n", 128, "decode test: tokens generated one at a time (0 skips)")
	depth := fs.Int("d", 0, "tokens already in the cache when each test starts (prefilled untimed), as llama-bench -d")
	threads := fs.Int("t", 0, "threads (0 = one per core)")
	reps := fs.Int("r", 3, "repetitions of each test (with --socket: requests per client)")
	asJSON := fs.Bool("json", false, "print a JSON list instead of a table")
	kvType := fs.String("kv-type", "f32", "cache type of keys and values: f32 (the engine's default), f16 (llama-bench's default), q8_0, q4_0")
	kernelCap := fs.String("kernels", "", "cap the kernels used (e.g. generic)")
	seed := fs.Uint64("seed", 1, "seed of the random prompt tokens")
	noRead := fs.Bool("no-read", false, "skip the plain read of the weights before each decode run (the memory bandwidth of the moment)")
	reread := fs.Bool("reread", false, "drop the model's cached pages first, so it is read again in 2 MB pages")
	socket := fs.String("socket", "", "benchmark the daemon on this Unix socket instead of a model file")
	clients := fs.Int("clients", 4, "with --socket: concurrent streams")
	temp := fs.Float64("temperature", -1, "with --socket: the requests' temperature (0: greedy; default: the server's)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runs to this file (go tool pprof)")
	text := fs.String("prompt", "Once upon a time, in a small village by the sea,", "with --socket: the prompt of every request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*modelPath == "") == (*socket == "") {
		return fmt.Errorf("%w: exactly one of --model FILE or --socket PATH is required", errUsage)
	}
	if *socket != "" {
		return benchSocket(stdout, *socket, *clients, *reps, *gen, *text, *temp, *asJSON)
	}
	if *kernelCap != "" {
		if err := kernels.SetMaxFeatures(*kernelCap); err != nil {
			return err
		}
	}
	f, err := gguf.Open(*modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if *reread {
		if err := f.Mapping().DropCache(); err != nil {
			return err
		}
	}
	m, err := model.Load(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	// The defaults are llama-bench's (pp512, tg128); a model with a shorter context gets the
	// largest tests that fit, said aloud. Sizes given on the command line are kept (and checked).
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if room := m.ContextLength - *depth; room > 0 && (*prompt > room && !given["p"] || *gen > room && !given["n"]) {
		was := fmt.Sprintf("-p %d -n %d", *prompt, *gen)
		if !given["p"] {
			*prompt = min(*prompt, room)
		}
		if !given["n"] {
			*gen = min(*gen, room)
		}
		fmt.Fprintf(stderr, "edgelm bench: the model's context is %d tokens, so -p %d -n %d instead of the defaults %s\n", m.ContextLength, *prompt, *gen, was)
	}
	if *threads <= 0 {
		*threads = runtime.GOMAXPROCS(0) // as the engine: one per CPU the process may use
	}
	pool := kernels.NewPool(*threads)
	defer pool.Close()
	bos := int32(-1)
	if add, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok && add {
		if id, ok := f.Uint("tokenizer.ggml.bos_token_id"); ok {
			bos = int32(id)
		}
	}
	opt := bench.Options{Prompt: *prompt, Gen: *gen, Depth: *depth, Reps: *reps, KVType: *kvType, BOS: bos, Seed: *seed}
	if !*noRead {
		for _, t := range f.Tensors {
			opt.Weights = append(opt.Weights, t.Data)
		}
	}
	if !*asJSON && isTerminal(stderr) {
		opt.Progress = func(s string) { fmt.Fprintf(stderr, "\r\033[Kbench: %s", s) }
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rs, err := bench.Run(m, pool, opt)
	if opt.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if huge, err := f.Mapping().HugeBytes(); err == nil && f.Mapping().Mapped() {
		// Decode speed depends on it (docs/performance.md): say it beside the figures.
		fmt.Fprintf(stderr, "edgelm bench: %s of the %s file mapped in 2 MB pages\n", bytesStr(huge), bytesStr(int64(f.Mapping().Len())))
	}
	info := benchInfo(f, m, *threads)
	for _, r := range rs {
		if r.ReadGBps > 0 {
			// Decode reads every weight once per token: its rate set beside the machine's at the time.
			moved := r.TPS * float64(info.Size) / 1e9
			fmt.Fprintf(stderr, "edgelm bench: %s read %.1f GB/s of weights (%.2f t/s × %s); a plain read of them with %d threads between the runs: %.1f GB/s (%.0f %%)\n",
				r.Test, moved, r.TPS, bytesStr(info.Size), *threads, r.ReadGBps, 100*moved/r.ReadGBps)
		}
	}
	if *asJSON {
		return bench.WriteJSON(stdout, rs)
	}
	return bench.WriteTable(stdout, info, rs)
}

// benchInfo fills llama-bench's model columns: "llama 1B Q4_0", weight bytes, parameters.
func benchInfo(f *gguf.File, m *model.Model, threads int) bench.Info {
	var size int64
	counts := map[gguf.Type]int64{}
	for _, t := range f.Tensors {
		size += int64(len(t.Data))
		counts[t.Type] += int64(len(t.Data))
	}
	var dominant gguf.Type
	for t, n := range counts {
		if n > counts[dominant] {
			dominant = t
		}
	}
	scale := "M"
	p := float64(m.Params) / 1e6
	if p >= 1000 {
		scale, p = "B", p/1000
	}
	return bench.Info{
		Model:   fmt.Sprintf("%s %.0f%s %s", m.Arch, p, scale, strings.ToUpper(dominant.String())),
		Size:    size,
		Params:  m.Params,
		Backend: "CPU " + kernels.Features(),
		Threads: threads,
	}
}

// benchSocket runs clients concurrent streamed completions of n tokens against a daemon.
func benchSocket(stdout io.Writer, socket string, clients, perClient, n int, prompt string, temp float64, asJSON bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := client.New(socket)
	defer c.Close()
	req := client.CompletionRequest{Prompt: prompt}
	req.MaxTokens = &n
	if temp >= 0 {
		req.Temperature = &temp
	}
	r, err := c.Load(ctx, clients, max(perClient, 1), req)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"test": fmt.Sprintf("clients%d_tg%d", clients, n), "clients": r.Clients, "requests": r.Requests,
			"prompt_tokens": r.PromptTokens, "completion_tokens": r.CompletionTokens, "wall_s": r.Wall.Seconds(),
			"aggregate_tps": r.AggregateTPS, "stream_tps": r.DecodeTPS, "ttft_s": r.TTFT.Seconds(),
		})
	}
	_, err = fmt.Fprintln(stdout, r)
	return err
}
