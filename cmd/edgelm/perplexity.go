package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"

	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/kvcache"
	"edgelm/model"
	"edgelm/perplexity"
	"edgelm/tokenizer"
)

func init() {
	register("perplexity", "perplexity and KL divergence of a text under a KV cache configuration", func(args []string) error {
		return perplexityCmd(args, os.Stdout)
	})
}

func perplexityCmd(args []string, stdout io.Writer) error {
	fs := newFlags("perplexity", "--model FILE --file TEXT --ctx N [--kv-type-k T --kv-type-v T] [--kl-base f32] [--json] [--stream --policy P]")
	modelPath := fs.String("model", "", "GGUF model file")
	file := fs.String("file", "", "text file to score")
	ctx := fs.Int("ctx", 0, "context length (0 = the model's)")
	tk := fs.String("kv-type-k", "f32", "key cache type: f32, f16, q8_0, q4_0")
	tv := fs.String("kv-type-v", "f32", "value cache type")
	klBase := fs.String("kl-base", "", "compare with the same run under this cache type for keys and values (e.g. f32): KL divergence and same-top-1")
	asJSON := fs.Bool("json", false, "print one JSON object")
	stream := fs.Bool("stream", false, "stream the whole text token by token through the eviction policy instead of chunks")
	policy := fs.String("policy", "sink-window", "with --stream: sink-window, window (no sinks) or recompute (exact sliding window, slow)")
	sinks := fs.Int("sinks", 4, "with --stream: tokens kept at the start by sink-window")
	discard := fs.Int("discard", 0, "with --stream: tokens dropped when the cache is full (0 = half)")
	every := fs.Int("every", 16, "with --stream --json: running perplexity every this many tokens")
	threads := fs.Int("threads", 0, "threads (0 = one per core)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" || *file == "" {
		return fmt.Errorf("%w: --model and --file are required", errUsage)
	}
	text, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	f, err := gguf.Open(*modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := model.Load(f)
	if err != nil {
		return err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	n := *ctx
	if n <= 0 {
		n = m.ContextLength
	}
	shape := func(k, v string) (kvcache.Shape, error) {
		a, err := kvcache.ParseType(k)
		if err != nil {
			return kvcache.Shape{}, err
		}
		b, err := kvcache.ParseType(v)
		if err != nil {
			return kvcache.Shape{}, err
		}
		s := kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim, TypeK: a, TypeV: b}
		return s, s.Check()
	}
	test, err := shape(*tk, *tv)
	if err != nil {
		return err
	}
	if *threads <= 0 {
		*threads = runtime.GOMAXPROCS(0)
	}
	pool := kernels.NewPool(*threads)
	defer pool.Close()
	ids := tok.Encode(string(text), tok.AddBOS(), false)
	if *stream {
		res, err := perplexity.Stream(m, pool, ids, n, *sinks, *discard, test, perplexity.Policy(*policy), *every)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		fmt.Fprintf(stdout, "%s: perplexity %.4f over %d tokens (context %d, cache at most %d tokens, %s; %s at the end)\n",
			res.Policy, res.PPL, res.Tokens, n, res.MaxLen, bytesStr(res.MaxBytes), bytesStr(res.EndBytes))
		return nil
	}
	var base kvcache.Shape
	if *klBase != "" {
		if base, err = shape(*klBase, *klBase); err != nil {
			return err
		}
	}
	bos := int32(-1)
	if tok.AddBOS() {
		bos = tok.BOS()
	}
	rep, err := perplexity.Chunks(m, pool, ids, n, bos, test, base, *klBase != "")
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "perplexity %.4f over %d tokens (%d chunks of %d), KV %s/%s %d bytes/token\n",
		rep.PPL, rep.Tokens, len(ids)/n, n, rep.KVTypeK, rep.KVTypeV, rep.KVBytesPerToken)
	if *klBase != "" {
		fmt.Fprintf(stdout, "vs %s cache: KLD mean %.6f, p99 %.6f, same top-1 %.2f%%\n", *klBase, rep.KLDMean, rep.KLDP99, 100*rep.SameTop1)
	}
	return nil
}
