// Package bench measures a model's forward pass the way llama-bench does, so the two can be put
// side by side: ppN is the prefill of N tokens as one batch into an empty cache, tgN the decode of N
// tokens one at a time from an empty cache; each is repeated and reported as mean ± standard
// deviation of tokens per second. Only the forward pass is timed (model.Runner driven directly: no
// tokenizer, sampler or scheduler), after one untimed warm-up run of each test.
package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"edgelm/kernels"
	"edgelm/kvcache"
	"edgelm/model"
)

// Options select the tests.
type Options struct {
	Prompt int // ppN: prefill this many tokens; 0 skips the test
	Gen    int // tgN: decode this many tokens; 0 skips the test
	// Depth, as llama-bench's -d: each run starts after this many tokens already in the cache
	// (prefilled untimed), so attention reads that much more; the tests are named "tg128 @ d2048".
	Depth  int
	Reps   int    // timed repetitions of each test (0 means 1)
	KVType string // cache type of keys and values ("" means the engine's default, f32; llama-bench's is f16)
	BOS    int32  // first token of every run (llama-bench starts with BOS when the model adds one); -1: random
	Seed   uint64 // of the random tokens
	// Weights, when set, are read once before each timed decode run at depth 0 (deeper, the cache is
	// read as well), split over the pool's threads,
	// and the rate reported as the run's ReadGBps: the memory bandwidth of that moment, which bounds
	// decode (every weight is read once per token). On a shared machine it moves from run to run,
	// so a decode figure is only comparable with the bandwidth measured beside it.
	Weights [][]byte
	// Progress, when set, is told before each run ("pp512 2/3", "tg128 warm-up").
	Progress func(string)
}

// Result is one test's figures.
type Result struct {
	Test    string    `json:"test"`   // "pp512", "tg128"
	TPS     float64   `json:"tps"`    // mean tokens per second over the repetitions
	Stddev  float64   `json:"stddev"` // sample standard deviation of the per-run tokens per second
	Samples []float64 `json:"samples"`
	// ReadGBps is the mean rate (10^9 bytes/s) of a plain read of Options.Weights before each run
	// of a tgN test; 0 when not measured.
	ReadGBps float64 `json:"read_gbps,omitempty"`
}

// Run runs the tests of o on m with pool's threads and returns their results, prefill first.
func Run(m *model.Model, pool *kernels.Pool, o Options) ([]Result, error) {
	if o.Prompt < 0 || o.Gen < 0 || o.Reps < 0 || o.Depth < 0 {
		return nil, fmt.Errorf("bench: negative count: -p %d -n %d -r %d -d %d", o.Prompt, o.Gen, o.Reps, o.Depth)
	}
	if n := o.Depth + max(o.Prompt, o.Gen); n > m.ContextLength {
		return nil, fmt.Errorf("bench: -d %d and %d tokens need a context of %d, more than the model's %d",
			o.Depth, max(o.Prompt, o.Gen), n, m.ContextLength)
	}
	reps := max(o.Reps, 1)
	kt, err := kvcache.ParseType(o.KVType)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	shape := kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim, TypeK: kt, TypeV: kt}
	if err := shape.Check(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	b := &runner{r: model.NewRunner(m, pool), vocab: m.Vocab, bos: o.BOS,
		rng: rand.New(rand.NewPCG(o.Seed, 0x62656e6368)), logits: make([]float32, m.Vocab),
		seq: kvcache.NewSeq(shape, o.Depth+max(o.Prompt, o.Gen, 1)), depth: o.Depth}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	var out []Result
	type test struct {
		name string
		n    int
		run  func(n int) (time.Duration, error)
	}
	var tests []test
	at := ""
	if o.Depth > 0 {
		at = fmt.Sprintf(" @ d%d", o.Depth)
	}
	if o.Prompt > 0 {
		tests = append(tests, test{fmt.Sprintf("pp%d%s", o.Prompt, at), o.Prompt, b.prefill})
	}
	if o.Gen > 0 {
		tests = append(tests, test{fmt.Sprintf("tg%d%s", o.Gen, at), o.Gen, b.decode})
	}
	for _, t := range tests {
		// The warm-up touches every weight page (and, for the prefill, grows the runner's buffers).
		progress(t.name + " warm-up")
		warm := t.n
		if strings.HasPrefix(t.name, "tg") {
			warm = 1 // llama-bench warms generation with one token
		}
		if _, err := t.run(warm); err != nil {
			return nil, err
		}
		res := Result{Test: t.name}
		var reads []float64
		for i := range reps {
			progress(fmt.Sprintf("%s %d/%d", t.name, i+1, reps))
			if strings.HasPrefix(t.name, "tg") && len(o.Weights) > 0 && o.Depth == 0 {
				reads = append(reads, ReadRate(pool, o.Weights))
			}
			d, err := t.run(t.n)
			if err != nil {
				return nil, err
			}
			res.Samples = append(res.Samples, float64(t.n)/d.Seconds())
		}
		res.TPS, res.Stddev = meanStddev(res.Samples)
		res.ReadGBps, _ = meanStddev(reads)
		out = append(out, res)
	}
	return out, nil
}

// runner holds a bench's forward-pass state.
type runner struct {
	r      *model.Runner
	seq    *kvcache.Seq // emptied before each run; its storage, grown once, is reused
	vocab  int
	bos    int32
	rng    *rand.Rand
	logits []float32
	depth  int // tokens in the cache before each run
}

// start empties the cache and prefills the depth tokens, untimed, as llama-bench does before a
// run at a depth.
func (b *runner) start() error {
	b.seq.Truncate(0)
	if b.depth == 0 {
		return nil
	}
	batch := &model.Batch{Tokens: make([]int32, b.depth), Pos: make([]int32, b.depth), Seqs: make([]*kvcache.Seq, b.depth)}
	for i := range b.depth {
		batch.Tokens[i] = b.token(i == 0)
		batch.Pos[i] = int32(i)
		batch.Seqs[i] = b.seq
	}
	if err := b.r.Forward(batch, b.logits); err != nil {
		return fmt.Errorf("bench: depth %d: %w", b.depth, err)
	}
	return nil
}

func (b *runner) token(first bool) int32 {
	if first && b.bos >= 0 && int(b.bos) < b.vocab {
		return b.bos
	}
	return int32(b.rng.IntN(b.vocab))
}

// prefill times one forward step over n tokens of a new sequence.
func (b *runner) prefill(n int) (time.Duration, error) {
	seq := b.seq
	if err := b.start(); err != nil {
		return 0, err
	}
	batch := &model.Batch{Tokens: make([]int32, n), Pos: make([]int32, n), Seqs: make([]*kvcache.Seq, n)}
	for i := range n {
		batch.Tokens[i] = b.token(i == 0 && b.depth == 0)
		batch.Pos[i] = int32(b.depth + i)
		batch.Seqs[i] = seq
	}
	start := time.Now()
	if err := b.r.Forward(batch, b.logits); err != nil {
		return 0, fmt.Errorf("bench: prefill: %w", err)
	}
	return time.Since(start), nil
}

// decode times n single-token steps of a new sequence, each feeding a random token (as
// llama-bench's generation test does: the logits are computed, not sampled).
func (b *runner) decode(n int) (time.Duration, error) {
	seq := b.seq
	if err := b.start(); err != nil {
		return 0, err
	}
	tok, pos := []int32{b.token(b.depth == 0)}, []int32{0}
	batch := &model.Batch{Tokens: tok, Pos: pos, Seqs: []*kvcache.Seq{seq}}
	start := time.Now()
	for i := range n {
		pos[0] = int32(b.depth + i)
		if err := b.r.Forward(batch, b.logits); err != nil {
			return 0, fmt.Errorf("bench: decode: %w", err)
		}
		tok[0] = b.token(false)
	}
	return time.Since(start), nil
}

// readChunk is the piece of the weights one participant reads at a time in ReadRate.
const readChunk = 1 << 20

// ReadRate reads every cache line of bufs once, spread over pool's threads in chunks of 1 MiB as a
// matmul spreads its rows, and returns the rate in 10^9 bytes per second.
func ReadRate(pool *kernels.Pool, bufs [][]byte) float64 {
	var pieces [][]byte
	var total int
	for _, b := range bufs {
		total += len(b)
		for len(b) > 0 {
			n := min(len(b), readChunk)
			pieces = append(pieces, b[:n])
			b = b[n:]
		}
	}
	sums := make([]uint64, max(pool.Threads(), 1))
	start := time.Now()
	pool.Run(len(pieces), func(i, id int) { sums[id] += readLines(pieces[i]) })
	d := time.Since(start)
	var s uint64
	for _, v := range sums {
		s += v
	}
	sink = s
	return float64(total) / d.Seconds() / 1e9
}

// sink keeps readLines' result alive so the reads are not optimised away.
var sink uint64

// readLines sums one word of every 16 bytes of b: a plain read of every cache line of it, with four
// independent sums so loads, not the adds, are the bound.
func readLines(b []byte) uint64 {
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+64 <= len(b); i += 64 {
		s0 += binary.LittleEndian.Uint64(b[i:])
		s1 += binary.LittleEndian.Uint64(b[i+16:])
		s2 += binary.LittleEndian.Uint64(b[i+32:])
		s3 += binary.LittleEndian.Uint64(b[i+48:])
	}
	for ; i < len(b); i++ {
		s0 += uint64(b[i])
	}
	return s0 + s1 + s2 + s3
}

// meanStddev returns the mean and the sample standard deviation (0 for one sample), as
// llama-bench reports them.
func meanStddev(x []float64) (float64, float64) {
	if len(x) == 0 {
		return 0, 0
	}
	var s float64
	for _, v := range x {
		s += v
	}
	mean := s / float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(x)-1))
}

// Info describes the run for the table, in llama-bench's columns.
type Info struct {
	Model   string // e.g. "llama 1B Q4_0"
	Size    int64  // bytes of weights
	Params  int64
	Backend string // e.g. "CPU avx2+fma"
	Threads int
}

// WriteTable prints results as llama-bench's markdown table:
//
//	| model | size | params | backend | threads | test | t/s |
//
// with sizes in MiB or GiB and params in K, M or B as llama-bench writes them, t/s as "mean ± stddev"
// with two decimals.
func WriteTable(w io.Writer, info Info, rs []Result) error {
	var sb strings.Builder
	sb.WriteString("| model | size | params | backend | threads | test | t/s |\n")
	sb.WriteString("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n")
	for _, r := range rs {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %d | %s | %.2f ± %.2f |\n",
			info.Model, bytesText(info.Size), countText(info.Params), info.Backend, info.Threads, r.Test, r.TPS, r.Stddev)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteJSON prints results as a JSON list of {"test","tps","stddev","samples"} objects.
func WriteJSON(w io.Writer, rs []Result) error {
	if rs == nil {
		rs = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

func bytesText(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

func countText(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f K", float64(n)/1e3)
}
