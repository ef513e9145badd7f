// Command kvplots draws the two figures of docs/kv-cache.md: KV cache memory against context length
// for each cache type (measured by filling real caches), and running perplexity along a long text for
// sink-window, window and exact recomputation.
//
//	go run ./internal/kvplots --model ../shared/models/aidreams260K-f32.gguf \
//	    --text perplexity/testdata/aidreams-sample.txt --ctx 128 --out docs/img
package main

import (
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/kvcache"
	"edgelm/model"
	"edgelm/perplexity"
	"edgelm/tokenizer"
)

func main() {
	modelPath := flag.String("model", "", "GGUF model for the perplexity stream")
	textPath := flag.String("text", "", "long text")
	ctx := flag.Int("ctx", 128, "context for the stream")
	out := flag.String("out", "docs/img", "output directory")
	flag.Parse()
	if err := run(*modelPath, *textPath, *ctx, *out); err != nil {
		log.Fatal(err)
	}
}

var colors = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255},
}

func run(modelPath, textPath string, ctx int, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// Figure 1: bytes held by one sequence of the bench-1b shape (16 layers, 8 KV heads of 64), filled
	// to each length, for each type: measured on real caches, not computed from a formula.
	p := plot.New()
	p.Title.Text = "KV cache memory per sequence (bench-1b shape: 16 layers, 8 KV heads x 64)"
	p.X.Label.Text = "context length (tokens)"
	p.Y.Label.Text = "MiB"
	p.Legend.Top, p.Legend.Left = true, true
	for i, typ := range []kvcache.Type{kvcache.F32, kvcache.F16, kvcache.Q8_0, kvcache.Q4_0} {
		var pts plotter.XYs
		for n := 512; n <= 8192; n *= 2 {
			s := kvcache.NewSeq(kvcache.Shape{Layers: 16, KVHeads: 8, HeadDim: 64, TypeK: typ, TypeV: typ}, n)
			for k := 0; k < n; k++ {
				if _, err := s.Append(int32(k)); err != nil {
					return err
				}
			}
			pts = append(pts, plotter.XY{X: float64(n), Y: float64(s.Bytes()) / (1 << 20)})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = colors[i]
		l.Width = vg.Points(2)
		p.Add(l)
		p.Legend.Add(typ.String(), l)
	}
	if err := p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(out, "kv-memory.png")); err != nil {
		return err
	}

	// Figure 2: running perplexity along the text.
	f, err := gguf.Open(modelPath)
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
	text, err := os.ReadFile(textPath)
	if err != nil {
		return err
	}
	ids := tok.Encode(string(text), tok.AddBOS(), false)
	pool := kernels.NewPool(0)
	defer pool.Close()
	shape := kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}
	p = plot.New()
	p.Title.Text = fmt.Sprintf("Perplexity along a %d-token text, context %d (each point: the last %d tokens)", len(ids), ctx, ctx)
	p.X.Label.Text = "tokens"
	p.Y.Label.Text = "perplexity"
	p.Legend.Top = true
	for i, pol := range []perplexity.Policy{perplexity.SinkWindow, perplexity.Window, perplexity.Recompute} {
		r, err := perplexity.Stream(m, pool, ids, ctx, 4, 0, shape, pol, 16)
		if err != nil {
			return err
		}
		fmt.Printf("%s: perplexity %.4f over %d tokens, cache at most %d tokens (%d bytes)\n", pol, r.PPL, r.Tokens, r.MaxLen, r.MaxBytes)
		var pts plotter.XYs
		for end := ctx; end <= len(r.NLL); end += 16 {
			sum := 0.0
			for _, v := range r.NLL[end-ctx : end] {
				sum += v
			}
			pts = append(pts, plotter.XY{X: float64(end), Y: math.Exp(sum / float64(ctx))})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = colors[i]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(string(pol), l)
	}
	return p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(out, "kv-stream-perplexity.png"))
}
