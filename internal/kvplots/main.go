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
	"gonum.org/v1/plot/vg/draw"

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
	// Log-log: memory is proportional to length, so each type is a straight line, the lines are
	// parallel, and their gaps are the types' size ratios. Ticks at the lengths measured.
	p := plot.New()
	p.Title.Text = "KV cache memory of one sequence\n(bench-1b shape: 16 layers, 8 KV heads x 64)"
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "context length (tokens)"
	p.Y.Label.Text = "MiB"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(ticks([]float64{512, 1024, 2048, 4096, 8192}, "%.0f"))
	p.Y.Tick.Marker = plot.ConstantTicks(ticks([]float64{4, 8, 16, 32, 64, 128, 256, 512}, "%.0f"))
	p.X.Min, p.X.Max = 450, 9300
	p.Y.Min, p.Y.Max = 3.5, 600
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(12), -vg.Points(6) // inside the axes, clear of the Y axis
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
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, sc.Color = colors[i], colors[i]
		l.Width = vg.Points(2)
		sc.Shape = draw.CircleGlyph{}
		p.Add(l, sc)
		p.Legend.Add(typ.String(), l, sc)
	}
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(out, "kv-memory.png")); err != nil {
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
	// The three policies' perplexities differ by a few percent along a curve that swings by a
	// factor of three, so drawn as such the lines hide each other: the figure shows each bounded
	// policy's running perplexity relative to exact recomputation instead.
	p = plot.New()
	p.Title.Text = fmt.Sprintf("Running perplexity (last %d tokens) along a %d-token text, context %d,\nrelative to exact recomputation", ctx, len(ids), ctx)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "tokens read"
	p.Y.Label.Text = "perplexity vs recompute (%)"
	p.Y.Tick.Marker = plot.ConstantTicks(ticks([]float64{-12, -10, -8, -6, -4, -2, 0, 2, 4}, "%+.0f"))
	p.X.Tick.Marker = plot.ConstantTicks(ticks([]float64{0, 500, 1000, 1500, 2000, 2500, 3000}, "%.0f"))
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(12), -vg.Points(6)
	running := func(nll []float64) plotter.XYs {
		var pts plotter.XYs
		for end := ctx; end <= len(nll); end += 16 {
			sum := 0.0
			for _, v := range nll[end-ctx : end] {
				sum += v
			}
			pts = append(pts, plotter.XY{X: float64(end), Y: math.Exp(sum / float64(ctx))})
		}
		return pts
	}
	var exact plotter.XYs
	var exactPPL float64
	results := map[perplexity.Policy]plotter.XYs{}
	ppl := map[perplexity.Policy]float64{}
	for _, pol := range []perplexity.Policy{perplexity.Recompute, perplexity.SinkWindow, perplexity.Window} {
		r, err := perplexity.Stream(m, pool, ids, ctx, 4, 0, shape, pol, 16)
		if err != nil {
			return err
		}
		fmt.Printf("%s: perplexity %.4f over %d tokens, cache at most %d tokens (%d bytes)\n", pol, r.PPL, r.Tokens, r.MaxLen, r.MaxBytes)
		results[pol], ppl[pol] = running(r.NLL), r.PPL
	}
	exact, exactPPL = results[perplexity.Recompute], ppl[perplexity.Recompute]
	zero, err := plotter.NewLine(plotter.XYs{{X: exact[0].X, Y: 0}, {X: exact[len(exact)-1].X, Y: 0}})
	if err != nil {
		return err
	}
	zero.Color, zero.Width = color.Gray{Y: 80}, vg.Points(1)
	zero.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(zero)
	p.Legend.Add(fmt.Sprintf("recompute (exact): %.3f", exactPPL), zero)
	for i, pol := range []perplexity.Policy{perplexity.SinkWindow, perplexity.Window} {
		pts := make(plotter.XYs, len(exact))
		for j := range exact {
			pts[j] = plotter.XY{X: exact[j].X, Y: 100 * (results[pol][j].Y/exact[j].Y - 1)}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color, l.Width = colors[i], vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s: %.3f", pol, ppl[pol]), l)
	}
	p.X.Min, p.Y.Max = 0, 11 // room above the curves for the legend
	return p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(out, "kv-stream-perplexity.png"))
}

// ticks labels each value with format.
func ticks(values []float64, format string) []plot.Tick {
	t := make([]plot.Tick, len(values))
	for i, v := range values {
		t[i] = plot.Tick{Value: v, Label: fmt.Sprintf(format, v)}
		if v == 0 {
			t[i].Label = "0" // not "+0"
		}
	}
	return t
}
