// Package perplexity measures how well a model predicts a text under a given KV cache configuration:
// perplexity, and against a base configuration (the f32 cache) the KL divergence of the predicted
// distributions and how often the most likely token agrees — the figures llama-perplexity reports
// with --kl-divergence. It also streams a text far longer than the context through the eviction
// policies, to show what sink-window costs against recomputing a sliding window exactly.
package perplexity

import (
	"fmt"
	"math"
	"sort"

	"edgelm/kernels"
	"edgelm/kvcache"
	"edgelm/model"
)

// Report is the result of a run.
type Report struct {
	PPL             float64 `json:"ppl"`
	BasePPL         float64 `json:"base_ppl,omitempty"` // perplexity under the base configuration
	KLDMean         float64 `json:"kld_mean"`
	KLDP99          float64 `json:"kld_p99"`
	SameTop1        float64 `json:"same_top1"`
	Tokens          int     `json:"tokens"` // tokens scored
	KVBytesPerToken int64   `json:"kv_bytes_per_token"`
	KVTypeK         string  `json:"kv_type_k"`
	KVTypeV         string  `json:"kv_type_v"`
	Ctx             int     `json:"ctx"`
}

// Compare says whether and how Chunks compares each scored distribution with the base's.
type Compare int

const (
	NoCompare Compare = iota
	// Exact compares with the base's distributions as computed, in float64.
	Exact
	// Stored compares with the base's distributions as llama-perplexity stores them in its
	// --kl-divergence-base file, so that the figures are those llama-perplexity would print: each
	// log-probability rounded to one of 65536 steps between the largest and 16 below it (lower
	// ones clamped there), and the terms whose base log-probability is -16 or less left out of the
	// KL sum. The rounding alone gives f32 against itself a mean KLD of a few 1e-6.
	Stored
)

// Chunks scores tokens as llama-perplexity does: the text is cut into chunks of ctx tokens, each
// evaluated from an empty cache (its first token replaced by BOS when bos >= 0), and the second half
// of each chunk is scored (positions ctx/2 .. ctx-2 predicting the token after them). With cmp set
// the distributions are compared with the same run under base (typically the f32 cache) as well.
func Chunks(m *model.Model, pool *kernels.Pool, tokens []int32, ctx int, bos int32, test, base kvcache.Shape, cmp Compare) (*Report, error) {
	compare := cmp != NoCompare
	if ctx < 4 {
		return nil, fmt.Errorf("perplexity: context %d too small", ctx)
	}
	nChunks := len(tokens) / ctx
	if nChunks == 0 {
		return nil, fmt.Errorf("perplexity: %d tokens, need at least one chunk of %d", len(tokens), ctx)
	}
	r := model.NewRunner(m, pool)
	logits := make([]float32, ctx*m.Vocab)
	var baseLogits []float32
	if compare {
		baseLogits = make([]float32, ctx*m.Vocab)
	}
	var nll, nllBase float64
	var klds []float64
	same := 0
	scored := 0
	flags := make([]bool, ctx)
	for i := ctx / 2; i < ctx-1; i++ {
		flags[i] = true
	}
	first := ctx / 2
	for c := 0; c < nChunks; c++ {
		chunk := append([]int32(nil), tokens[c*ctx:(c+1)*ctx]...)
		if bos >= 0 {
			chunk[0] = bos
		}
		if err := forward(r, chunk, test, ctx, flags, logits); err != nil {
			return nil, err
		}
		if compare {
			if err := forward(r, chunk, base, ctx, flags, baseLogits); err != nil {
				return nil, err
			}
		}
		for i := first; i < ctx-1; i++ {
			o := i - first
			lt := logits[o*m.Vocab : (o+1)*m.Vocab]
			lpt := logSoftmax(lt)
			nll -= lpt[chunk[i+1]]
			scored++
			if compare {
				lb := baseLogits[o*m.Vocab : (o+1)*m.Vocab]
				lpb := logSoftmax(lb)
				nllBase -= lpb[chunk[i+1]]
				if cmp == Stored {
					lpb = storedLogProbs(lb)
					klds = append(klds, kldStored(lpb, lpt))
				} else {
					klds = append(klds, kld(lpb, lpt))
				}
				if argmax(lpb) == argmax(lpt) {
					same++
				}
			}
		}
	}
	rep := &Report{
		PPL: math.Exp(nll / float64(scored)), Tokens: scored, Ctx: ctx,
		KVBytesPerToken: test.BytesPerToken(), KVTypeK: test.TypeK.String(), KVTypeV: test.TypeV.String(),
	}
	if compare {
		rep.KLDMean, rep.KLDP99 = meanP99(klds)
		rep.SameTop1 = float64(same) / float64(scored)
		rep.BasePPL = math.Exp(nllBase / float64(scored))
	}
	return rep, nil
}

// forward evaluates one chunk from an empty cache of the given shape, writing the logits of the
// flagged positions in order.
func forward(r *model.Runner, chunk []int32, shape kvcache.Shape, ctx int, flags []bool, logits []float32) error {
	seq := kvcache.NewSeq(shape, ctx)
	b := &model.Batch{Tokens: chunk, Pos: make([]int32, len(chunk)), Seqs: make([]*kvcache.Seq, len(chunk)), Logits: flags[:len(chunk)]}
	for i := range chunk {
		b.Pos[i] = int32(i)
		b.Seqs[i] = seq
	}
	return r.Forward(b, logits)
}

// logSoftmax returns log-probabilities (float64) of logits.
func logSoftmax(l []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range l {
		mx = math.Max(mx, float64(v))
	}
	sum := 0.0
	for _, v := range l {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	out := make([]float64, len(l))
	for i, v := range l {
		out[i] = float64(v) - lse
	}
	return out
}

// kld is KL(base || test) from log-probabilities.
func kld(base, test []float64) float64 {
	s := 0.0
	for i, lb := range base {
		s += math.Exp(lb) * (lb - test[i])
	}
	return math.Max(s, 0)
}

// storedLogProbs returns the log-probabilities of logits l as llama-perplexity stores and reads
// them back (see Stored): lp = min + scale*q, q a 16-bit step of (max-min)/65535, min = max-16 at
// least, in float32 arithmetic as it does.
func storedLogProbs(l []float32) []float64 {
	mx, mn := l[0], l[0]
	for _, v := range l {
		mx, mn = max(mx, v), min(mn, v)
	}
	mn = max(mn, mx-16)
	sum := 0.0
	for _, v := range l {
		sum += math.Exp(float64(v - mx))
	}
	lse := float32(math.Log(sum))
	minLP := mn - mx - lse
	scale := (mx - mn) / 65535
	out := make([]float64, len(l))
	for i, v := range l {
		q := float32(0)
		if scale != 0 && v > mn {
			q = float32(math.RoundToEven(float64((1 / scale) * (v - mn))))
		}
		out[i] = float64(scale*q + minLP)
	}
	return out
}

// kldStored is kld with a stored base: terms whose base log-probability is -16 or less are left
// out, as llama-perplexity does.
func kldStored(base, test []float64) float64 {
	s := 0.0
	for i, lb := range base {
		if lb > -16 {
			s += math.Exp(lb) * (lb - test[i])
		}
	}
	return s
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func meanP99(x []float64) (float64, float64) {
	if len(x) == 0 {
		return 0, 0
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	sorted := append([]float64(nil), x...)
	sort.Float64s(sorted)
	// Interpolated between neighbours, as llama-perplexity's "99.0% KLD".
	p := 0.99 * float64(len(sorted)-1)
	i := int(p)
	f := p - float64(i)
	return s / float64(len(x)), (1-f)*sorted[i] + f*sorted[min(i+1, len(sorted)-1)]
}

// Policy is how Stream keeps a text longer than the context.
type Policy string

const (
	SinkWindow Policy = "sink-window" // keep the first sinks tokens and the recent ones, drop the middle
	Window     Policy = "window"      // the same without sinks: drop the oldest
	Recompute  Policy = "recompute"   // each token from scratch over the last ctx-1 tokens (exact, slow)
)

// StreamResult is the running quality of one pass over a long text.
type StreamResult struct {
	Policy   Policy    `json:"policy"`
	PPL      float64   `json:"ppl"`
	Tokens   int       `json:"tokens"`
	Running  []float64 `json:"running_ppl"`   // perplexity of tokens[1..i+1], every Every tokens
	Every    int       `json:"every"`         // spacing of Running
	MaxBytes int64     `json:"max_kv_bytes"`  // the cache's largest size along the way
	EndBytes int64     `json:"end_kv_bytes"`  // its size at the end
	MaxLen   int       `json:"max_kv_tokens"` // the most tokens cached at once
	NLL      []float64 `json:"-"`             // negative log-likelihood of each scored token
}

// Stream feeds tokens one at a time, predicting each from those before it, with the cache bounded by
// ctx tokens under the policy (discard tokens dropped at once when full; 0 means half of the
// non-sink part, as llama.cpp's context shift).
func Stream(m *model.Model, pool *kernels.Pool, tokens []int32, ctx, sinks, discard int, shape kvcache.Shape, p Policy, every int) (*StreamResult, error) {
	if every <= 0 {
		every = 16
	}
	r := model.NewRunner(m, pool)
	res := &StreamResult{Policy: p, Every: every}
	logits := make([]float32, m.Vocab)
	var nll float64
	score := func(i int) {
		if i+1 < len(tokens) {
			l := -logSoftmax(logits)[tokens[i+1]]
			nll += l
			res.NLL = append(res.NLL, l)
			res.Tokens++
			if res.Tokens%every == 0 {
				res.Running = append(res.Running, math.Exp(nll/float64(res.Tokens)))
			}
		}
	}
	if p == Recompute {
		for i := 0; i < len(tokens)-1; i++ {
			from := max(0, i-ctx+1)
			win := tokens[from : i+1]
			seq := kvcache.NewSeq(shape, ctx)
			b := &model.Batch{Tokens: win, Pos: make([]int32, len(win)), Seqs: make([]*kvcache.Seq, len(win))}
			for k := range win {
				b.Pos[k], b.Seqs[k] = int32(k), seq
			}
			if err := r.Forward(b, logits); err != nil {
				return nil, err
			}
			res.MaxBytes = max(res.MaxBytes, seq.Bytes())
			res.MaxLen = max(res.MaxLen, seq.Len())
			score(i)
		}
		res.PPL = math.Exp(nll / float64(res.Tokens))
		return res, nil
	}
	keep := sinks
	if p == Window {
		keep = 0
	}
	seq := kvcache.NewSeq(shape, ctx)
	pos := int32(0)
	b := &model.Batch{Tokens: make([]int32, 1), Pos: make([]int32, 1), Seqs: []*kvcache.Seq{seq}}
	for i := 0; i < len(tokens)-1; i++ {
		if seq.Len() == ctx {
			d := discard
			if d <= 0 {
				d = max(1, (ctx-keep)/2)
			}
			seq.Shift(keep, d)
			pos -= int32(d)
		}
		b.Tokens[0], b.Pos[0] = tokens[i], pos
		if err := r.Forward(b, logits); err != nil {
			return nil, err
		}
		pos++
		res.MaxBytes = max(res.MaxBytes, seq.Bytes())
		res.MaxLen = max(res.MaxLen, seq.Len())
		score(i)
	}
	res.EndBytes = seq.Bytes()
	res.PPL = math.Exp(nll / float64(res.Tokens))
	return res, nil
}
