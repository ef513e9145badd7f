// Command perfplot draws the README's performance chart from docs/performance-summary.tsv: tokens per
// second of llama.cpp and edgelm on the bench-1b files, prefill and decode side by side. Update the
// data file after a run (scripts/compare/run.sh) and run it again:
//
//	go run ./internal/perfplot [--data docs/performance-summary.tsv] [--out docs/img/performance.png]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image/color"
	"log"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// row is one line of the data file.
type row struct {
	file, test       string
	llama, edgelm    float64 // t/s, when measured
	measured         bool
	when, commit, lc string
}

func main() {
	data := flag.String("data", "docs/performance-summary.tsv", "the figures")
	out := flag.String("out", "docs/img/performance.png", "the chart")
	flag.Parse()
	rows, err := read(*data)
	if err != nil {
		log.Fatal(err)
	}
	if err := draw2(rows, *out); err != nil {
		log.Fatal(err)
	}
}

// read parses the tab-separated file: comment lines start with #, the first other line names the
// columns, "-" marks a figure not measured.
func read(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []row
	header := true
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if header {
			header = false
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 7 {
			return nil, fmt.Errorf("%s:%d: %d columns, want 7", path, n, len(c))
		}
		r := row{file: c[0], test: c[1], when: c[4], commit: c[5], lc: c[6]}
		if c[2] != "-" || c[3] != "-" {
			if r.llama, err = strconv.ParseFloat(c[2], 64); err != nil {
				return nil, fmt.Errorf("%s:%d: llama.cpp t/s: %w", path, n, err)
			}
			if r.edgelm, err = strconv.ParseFloat(c[3], 64); err != nil {
				return nil, fmt.Errorf("%s:%d: edgelm t/s: %w", path, n, err)
			}
			r.measured = true
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

var (
	llamaColor  = color.RGBA{R: 150, G: 150, B: 150, A: 255}
	edgelmColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
)

// draw2 draws two panels, prefill (pp) and decode (tg), each with a pair of bars per file.
func draw2(rows []row, out string) error {
	var panels []*plot.Plot
	var sources []string
	for _, kind := range []string{"pp", "tg"} {
		var files []string
		var ll, el plotter.Values
		test := ""
		for _, r := range rows {
			if !strings.HasPrefix(r.test, kind) {
				continue
			}
			test = r.test
			name := r.file
			if !r.measured {
				name += "\n(not measured)"
			} else if s := fmt.Sprintf("%s, edgelm %s, llama.cpp %s", r.when, r.commit, r.lc); !contains(sources, s) {
				sources = append(sources, s)
			}
			files = append(files, name)
			ll, el = append(ll, r.llama), append(el, r.edgelm)
		}
		if len(files) == 0 {
			continue
		}
		p := plot.New()
		title := map[string]string{"pp": "prefill", "tg": "decode"}[kind]
		p.Title.Text = fmt.Sprintf("%s (%s)", title, test)
		p.Y.Label.Text = "tokens/s"
		p.Y.Min = 0
		p.Add(plotter.NewGrid())
		w := vg.Points(18)
		for _, s := range []struct {
			name string
			v    plotter.Values
			c    color.Color
			off  vg.Length
		}{{"llama.cpp", ll, llamaColor, -w / 2}, {"edgelm", el, edgelmColor, w / 2}} {
			b, err := plotter.NewBarChart(s.v, w)
			if err != nil {
				return err
			}
			b.Color, b.LineStyle.Width, b.Offset = s.c, 0, s.off
			p.Add(b)
			if kind == "pp" {
				p.Legend.Add(s.name, b)
			}
		}
		p.Legend.Top = true
		// Headroom above the tallest bar for the legend and the ratio labels.
		top := 0.0
		for i := range ll {
			top = max(top, ll[i], el[i])
		}
		p.Y.Max = 1.4 * top
		var xys plotter.XYs
		var labels []string
		for i := range el {
			if el[i] > 0 && ll[i] > 0 {
				xys = append(xys, plotter.XY{X: float64(i), Y: max(el[i], ll[i]) + 0.03*top})
				labels = append(labels, fmt.Sprintf("%.2fx", el[i]/ll[i]))
			}
		}
		if len(xys) > 0 {
			l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
			if err != nil {
				return err
			}
			for i := range l.TextStyle {
				l.TextStyle[i].XAlign = draw.XCenter
			}
			p.Add(l)
		}
		p.NominalX(files...)
		panels = append(panels, p)
	}
	const width, height = 7 * vg.Inch, 3.6 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	caption := []string{"bench-1b (1.1 B parameters, llama shape), 2 threads, a 2-core EPYC; edgelm/llama.cpp above the bars", strings.Join(sources, "; ")}
	top := draw.Crop(dc, 0, 0, vg.Points(32), 0)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Points(18), PadTop: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(6)}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, top)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	style := plot.New().Title.TextStyle
	style.Font.Size = vg.Points(8)
	style.XAlign = draw.XCenter
	for i, line := range caption {
		dc.FillText(style, vg.Point{X: width / 2, Y: vg.Points(20 - 11*float64(i))}, line)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
