package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"edgelm/gguf"
	"edgelm/quantize"
	"edgelm/synth"
)

func init() {
	register("quantize", "convert a model's weights to q8_0 or q4_0 (like llama-quantize)", func(args []string) error {
		return quantizeCmd(args, os.Stdout, os.Stderr)
	})
}

func quantizeCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quantize", "--model IN.gguf --out OUT.gguf --type q8_0|q4_0\n       edgelm quantize IN.gguf OUT.gguf q8_0|q4_0")
	fs.SetOutput(stderr)
	inFlag := fs.String("model", "", "input GGUF file (F32, F16, BF16, Q8_0 or Q4_0 weights)")
	outFlag := fs.String("out", "", "output GGUF file")
	typeFlag := fs.String("type", "", "weight type of the output: q8_0 or q4_0")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	inPath, outPath, typ := *inFlag, *outFlag, *typeFlag
	switch {
	case fs.NArg() == 3 && inPath == "" && outPath == "" && typ == "":
		inPath, outPath, typ = fs.Arg(0), fs.Arg(1), fs.Arg(2) // llama-quantize's order
	case fs.NArg() != 0:
		return usageError(fmt.Sprintf("unexpected arguments %q: give --model IN --out OUT --type T, or the three as IN OUT T", fs.Args()))
	case inPath == "" || outPath == "" || typ == "":
		return usageError("--model IN.gguf, --out OUT.gguf and --type q8_0|q4_0 are all required")
	}
	t, err := synth.ParseType(typ)
	if err != nil || (t != gguf.Q8_0 && t != gguf.Q4_0) {
		return fmt.Errorf("%w: type %q: want q8_0 or q4_0", errUsage, typ)
	}
	in, err := gguf.Open(inPath)
	if err != nil {
		return err
	}
	defer in.Close()
	start := time.Now()
	var progress quantize.Progress
	if isTerminal(stderr) {
		progress = func(done, total int64) { drawBar(stderr, done, total, time.Since(start)) }
	}
	if err := quantize.File(in, outPath, t, progress); err != nil {
		return err
	}
	if progress != nil {
		fmt.Fprintln(stderr)
	}
	var inSize, outSize int64
	if st, err := os.Stat(inPath); err == nil {
		inSize = st.Size()
	}
	if st, err := os.Stat(outPath); err == nil {
		outSize = st.Size()
	}
	fmt.Fprintf(stdout, "%s: %s, %.1f MB -> %.1f MB in %s, verified\n", outPath, t, float64(inSize)/1e6, float64(outSize)/1e6, time.Since(start).Round(time.Millisecond))
	return nil
}

// isTerminal reports whether w is a terminal (a file whose terminal attributes can be read).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// drawBar redraws a one-line progress bar in place.
func drawBar(w io.Writer, done, total int64, elapsed time.Duration) {
	const width = 40
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	fmt.Fprintf(w, "\r[%s%s] %3.0f%% %6.1f/%.1f MB %s", strings.Repeat("=", n), strings.Repeat(" ", width-n),
		100*frac, float64(done)/1e6, float64(total)/1e6, elapsed.Round(100*time.Millisecond))
}
