package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"edgelm/chat"
	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/kvcache"
	"edgelm/model"
	"edgelm/tokenizer"
)

func init() {
	register("info", "describe a GGUF model: architecture, shapes, tensor types, tokenizer, memory", func(args []string) error {
		return infoCmd(args, os.Stdout)
	})
}

func infoCmd(args []string, w io.Writer) error {
	fs := newFlags("info", "--model FILE [--metadata] [--tensors]")
	modelPath := fs.String("model", "", "GGUF file")
	meta := fs.Bool("metadata", false, "list every metadata key")
	tensors := fs.Bool("tensors", false, "list every tensor")
	ctxLen := fs.Int("ctx", 0, "context length for the memory estimate and the RoPE factors chosen (0 = the model's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return fmt.Errorf("%w: --model FILE is required", errUsage)
	}
	f, err := gguf.Open(*modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	size := int64(len(f.Mapping().Bytes()))
	fmt.Fprintf(w, "file:          %s (%s, GGUF v%d, %d keys, %d tensors)\n", *modelPath, bytesStr(size), f.Version, len(f.KV), len(f.Tensors))
	if name, ok := f.String("general.name"); ok {
		fmt.Fprintf(w, "name:          %s\n", name)
	}
	byType := map[string]int64{}
	for _, t := range f.Tensors {
		byType[t.Type.String()] += int64(len(t.Data))
	}
	var types []string
	for t, n := range byType {
		types = append(types, fmt.Sprintf("%s %s", t, bytesStr(n)))
	}
	sort.Strings(types)
	fmt.Fprintf(w, "tensor types:  %s\n", strings.Join(types, ", "))
	fmt.Fprintf(w, "kernels:       %s; available: %s\n", kernels.Features(), kernels.Available())

	m, err := model.Load(f)
	if err != nil {
		fmt.Fprintf(w, "model:         cannot run: %v\n", err)
	} else {
		c := m.Config
		fmt.Fprintf(w, "architecture:  %s, %.1fM parameters\n", c.Arch, float64(m.Params)/1e6)
		fmt.Fprintf(w, "shape:         dim %d, %d layers, %d heads / %d KV heads, head dim %d, FFN %d, vocab %d\n",
			c.Dim, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.FFN, m.Vocab)
		fmt.Fprintf(w, "context:       %d trained; RoPE dim %d base %g", c.ContextLength, c.RopeDim, c.RopeBase)
		if c.RopeNeox {
			fmt.Fprint(w, " (neox)")
		}
		fmt.Fprintln(w)
		if c.SWAPattern > 0 {
			fmt.Fprintf(w, "attention:     sliding window %d on %d of every %d layers (local RoPE base %g)\n",
				c.SlidingWindow, c.SWAPattern-1, c.SWAPattern, c.RopeBaseLocal)
		}
		if c.AttnSoftcap > 0 || c.FinalSoftcap > 0 {
			fmt.Fprintf(w, "soft-capping:  attention %g, final %g\n", c.AttnSoftcap, c.FinalSoftcap)
		}
		if v := variant(f, m); v != "" {
			fmt.Fprintf(w, "variant:       %s\n", v)
		}
		n := *ctxLen
		if n <= 0 {
			n = c.ContextLength
		}
		m.UseContext(n)
		if r := ropeScaling(m, n); r != "" {
			fmt.Fprintf(w, "rope scaling:  %s\n", r)
		}
		fmt.Fprintf(w, "memory:        weights %s mapped from the file (shared, not copied)\n", bytesStr(size))
		fmt.Fprintf(w, "KV cache:     ")
		for _, t := range []kvcache.Type{kvcache.F32, kvcache.F16, kvcache.Q8_0, kvcache.Q4_0} {
			sh := kvcache.Shape{Layers: c.Layers, KVHeads: c.KVHeads, HeadDim: c.HeadDim, TypeK: t, TypeV: t}
			if sh.Check() != nil {
				continue
			}
			fmt.Fprintf(w, " %s %s/token (%s for %d tokens);", t, bytesStr(sh.BytesPerToken()), bytesStr(sh.BytesPerToken()*int64(n)), n)
		}
		fmt.Fprintln(w)
	}
	if tok, err := tokenizer.FromGGUF(f); err != nil {
		fmt.Fprintf(w, "tokenizer:     %v\n", err)
	} else {
		fmt.Fprintf(w, "tokenizer:     %s", tok.Model())
		if tok.Pre() != "" {
			fmt.Fprintf(w, " (pre %s)", tok.Pre())
		}
		fmt.Fprintf(w, ", %d tokens, BOS %d (add %v), EOS %d\n", tok.VocabSize(), tok.BOS(), tok.AddBOS(), tok.EOS())
	}
	if t, ok := f.String("tokenizer.chat_template"); ok {
		fmt.Fprintf(w, "chat template: %d bytes, ", len(t))
		if tm, err := chat.Detect(t); err != nil {
			fmt.Fprintf(w, "%v\n", err)
		} else {
			fmt.Fprintf(w, "format %s\n", tm.Format)
		}
	}
	if *meta {
		fmt.Fprintln(w, "\nmetadata:")
		for _, kv := range f.KV {
			fmt.Fprintf(w, "  %-45s %s\n", kv.Key, kv.Value.String())
		}
	}
	if *tensors {
		fmt.Fprintln(w, "\ntensors:")
		for _, t := range f.Tensors {
			fmt.Fprintf(w, "  %-32s %-6s %v\n", t.Name, t.Type, t.Dims)
		}
	}
	return nil
}

// variant names what sets m's blocks apart from plain llama ones.
func variant(f *gguf.File, m *model.Model) string {
	var v []string
	if m.Layers > 0 {
		l := &m.Blocks[0]
		if l.Bq != nil {
			v = append(v, "q/k/v biases")
		}
		if m.QKNorm {
			v = append(v, "per-head q/k RMSNorm")
		}
		if _, ok := f.Tensor("blk.0.attn_qkv.weight"); ok {
			v = append(v, "fused attn_qkv")
		}
		if _, ok := f.Tensor("blk.0.ffn_gate.weight"); !ok {
			v = append(v, "fused gate+up in ffn_up")
		}
	}
	if m.HeadDim*m.Heads != m.Dim {
		v = append(v, fmt.Sprintf("head dim %d x %d heads != dim %d", m.HeadDim, m.Heads, m.Dim))
	}
	return strings.Join(v, ", ")
}

// ropeScaling describes the RoPE frequency scaling m uses for a context of n tokens, "" for none.
func ropeScaling(m *model.Model, n int) string {
	c := &m.Config
	switch {
	case m.RopeLong != nil:
		which := "short"
		if m.RopeFreqs != nil && &m.RopeFreqs[0] == &m.RopeLong[0] {
			which = "long"
		}
		return fmt.Sprintf("LongRoPE factors: short up to %d tokens of context, long beyond (%s for %d, see --ctx); attention factor %g",
			c.RopeOrigCtx, which, n, c.RopeMScale)
	case c.Llama3Rope:
		return fmt.Sprintf("llama3 (factor %g, low %g, high %g, original context %d)", c.RopeFactor, c.RopeLowFreqFac, c.RopeHighFreqFac, c.RopeOrigCtx)
	case m.RopeFreqs != nil:
		return "frequency divisors from rope_freqs"
	case c.RopeScale != 1:
		return fmt.Sprintf("linear, positions x %g", c.RopeScale)
	}
	return ""
}

func bytesStr(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
