package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"edgelm/kvcache"
	"edgelm/mmap"
	"edgelm/model"
	"edgelm/tokenizer"
)

// prefillChunk caps the prompt tokens computed in one step, so one long prompt is prefilled in pieces
// interleaved with the decode steps of other requests instead of stalling them.
const prefillChunk = 256

// job is a request inside the engine. The fields below the line belong to the scheduler goroutine.
type job struct {
	ctx    context.Context
	req    Request
	cancel atomic.Bool

	mu      sync.Mutex
	pending []Event
	notify  chan struct{} // cap 1: events are pending
	result  chan jobResult

	// scheduler state
	seq      *kvcache.Seq
	tokens   []int32 // prompt, then generated
	nPrompt  int
	fed      int   // tokens[:fed] have been computed
	shift    int   // tokens dropped from the cache: token i sits at position i-shift
	reserved int64 // KV bytes reserved for the job
	lastFeed bool  // feed the final token once more for its teacher-forced logprobs
	samp     *sampler
	stream   *tokenizer.Stream
	text     strings.Builder // generated text so far (cut before a stop string)
	emitted  int             // bytes of text already sent in events
	stopped  bool            // a stop string ended generation
	predLP   float32         // with echo: logprob of the next position's token, for its Position
	res      Result
	started  time.Time
	prefill  time.Duration
}

type jobResult struct {
	res *Result
	err error
}

func (j *job) emit(ev Event) {
	j.mu.Lock()
	j.pending = append(j.pending, ev)
	j.mu.Unlock()
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

func (j *job) take() []Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	evs := j.pending
	j.pending = nil
	return evs
}

// schedule is the scheduler goroutine: it admits queued jobs up to MaxSequences, runs one forward
// step over all of them, samples, and repeats.
func (e *Engine) schedule() {
	defer close(e.done)
	var active []*job
	runner := model.NewRunner(e.model, e.pool)
	var logits []float32
	var spans []span
	b := &model.Batch{}
	for {
		e.beat.Store(time.Now().UnixNano())
		// Admit: block only when there is nothing to do.
		for len(active) < e.opt.MaxSequences {
			var j *job
			if e.held != nil {
				j, e.held = e.held, nil
			} else if len(active) == 0 {
				e.setActive(0)
				e.idle.Store(true)
				select {
				case j = <-e.queue:
				case <-e.quit:
				}
				e.idle.Store(false)
				e.beat.Store(time.Now().UnixNano())
			} else {
				select {
				case j = <-e.queue:
				default:
				}
			}
			if j == nil {
				break
			}
			e.waiting.Add(-1)
			if !e.reserve(j, len(active)) {
				if e.held == j {
					break // waits for a running request to give back its cache
				}
				continue
			}
			if e.start(j) {
				active = append(active, j)
			}
		}
		select {
		case <-e.quit:
			for _, j := range active {
				e.finish(j, ErrClosed)
			}
			for {
				select {
				case j := <-e.queue:
					e.waiting.Add(-1)
					e.finish(j, ErrClosed)
				default:
					return
				}
			}
		default:
		}

		// Drop requests whose client is gone.
		live := active[:0]
		for _, j := range active {
			if err := j.ctx.Err(); err != nil {
				e.finish(j, err)
			} else if j.cancel.Load() {
				e.finish(j, context.Canceled)
			} else {
				live = append(live, j)
			}
		}
		active = live
		e.setActive(len(active))
		if len(active) == 0 {
			continue
		}

		// Build one batch: each decoding job feeds its last token, prefilling jobs a chunk each.
		b.Tokens, b.Pos, b.Seqs, b.Logits = b.Tokens[:0], b.Pos[:0], b.Seqs[:0], b.Logits[:0]
		budget := prefillChunk
		nOut := 0
		spans = spans[:0]
		for _, j := range active {
			want := len(j.tokens) - j.fed
			if j.lastFeed {
				want = 1
			}
			if want > 1 {
				want = max(1, min(want, budget))
				budget -= want
			}
			from := j.fed
			if j.lastFeed {
				from = len(j.tokens) - 1
			}
			start := from
			if j.req.NoCache && from > 0 && from >= j.nPrompt {
				// The naive loop: forget the cache and compute the whole sequence again.
				j.seq = kvcache.NewSeq(e.shape, j.seq.Cap())
				start = 0
			} else if j.seq.Len()+want > j.seq.Cap() {
				// Full: keep the sinks and the recent half, drop the middle (llama.cpp's context shift).
				keep := min(e.opt.KVSinks, j.seq.Len())
				discard := max(want, (j.seq.Len()-keep)/2)
				if e.opt.KVPolicy == "none" || keep+discard > j.seq.Len() {
					e.finish(j, fmt.Errorf("%w: %d tokens (policy %s)", ErrContextFull, j.seq.Cap(), e.opt.KVPolicy))
					continue
				}
				j.seq.Shift(keep, discard)
				j.shift += discard
			}
			spans = append(spans, span{j, from, from + want, start})
			echo := j.req.Echo && j.req.Logprobs > 0
			for p := start; p < from+want; p++ {
				b.Tokens = append(b.Tokens, j.tokens[p])
				b.Pos = append(b.Pos, int32(p-j.shift))
				b.Seqs = append(b.Seqs, j.seq)
				out := (echo && p >= from) || p == len(j.tokens)-1
				b.Logits = append(b.Logits, out)
				if out {
					nOut++
				}
			}
		}
		if n := nOut * e.model.Vocab; len(logits) < n {
			logits = make([]float32, n)
		}
		t0 := time.Now()
		var ferr error
		err := mmap.Guard(func() { ferr = runner.Forward(b, logits) })
		if err == nil {
			err = ferr
		}
		dt := time.Since(t0)
		if err != nil {
			for _, j := range active {
				e.finish(j, fmt.Errorf("engine: forward step: %w", err))
			}
			active = active[:0]
			continue
		}
		e.mu.Lock()
		e.account(spans, dt)
		e.mu.Unlock()

		// Hand each job its logits: teacher-forced positions, then the next token.
		o := 0
		live = active[:0]
		for _, s := range spans {
			j := s.j
			echo := j.req.Echo && j.req.Logprobs > 0
			if rows := s.outputs(); !finite(logits[o*e.model.Vocab : (o+rows)*e.model.Vocab]) {
				o += rows
				e.fault(ErrNonFinite)
				e.finish(j, ErrNonFinite)
				continue
			}
			if j.req.Trace {
				j.res.Trace = append(j.res.Trace, e.traceStep(j, runner, len(spans), s.to-s.start, len(b.Tokens), dt))
			}
			var last []float32
			for p := s.from; p < s.to; p++ {
				if !echo && p != len(j.tokens)-1 {
					continue
				}
				lg := logits[o*e.model.Vocab : (o+1)*e.model.Vocab]
				o++
				if echo {
					next := int32(-1)
					if p+1 < len(j.tokens) {
						next = j.tokens[p+1]
					}
					top, lpNext := topLogprobs(nil, lg, j.req.Logprobs, next)
					j.res.Logprobs = append(j.res.Logprobs, Position{Token: j.tokens[p], Logprob: j.predLP, Top: top})
					j.predLP = lpNext
				}
				if p == len(j.tokens)-1 {
					last = lg
				}
			}
			if j.lastFeed {
				e.finish(j, nil)
				continue
			}
			j.fed = s.to
			if j.fed < len(j.tokens) {
				live = append(live, j) // still prefilling
				continue
			}
			if j.res.PromptTokens > 0 && len(j.res.Tokens) == 0 && j.prefill == 0 {
				j.prefill = time.Since(j.started)
			}
			if e.next(j, last) {
				live = append(live, j)
			}
		}
		active = live
	}
}

// span is the part of a job's tokens fed in one step.
type span struct {
	j        *job
	from, to int // tokens[from:to] are new in the step
	start    int // the step computes tokens[start:to] (start < from without the cache)
}

// outputs is the number of logits rows the span asked for, as the batch was built.
func (s span) outputs() int {
	if s.j.req.Echo && s.j.req.Logprobs > 0 {
		return s.to - s.from
	}
	if s.to == len(s.j.tokens) {
		return 1
	}
	return 0
}

// finite reports whether x holds no NaN or infinity. One pass over the step's logits: tiny
// beside the product that made them.
func finite(x []float32) bool {
	var sum float32
	for _, v := range x {
		sum += v * 0 // 0 for finite v, NaN for NaN and ±Inf
	}
	return sum == 0
}

// fault records the first sign of a broken model for Stats.Fault.
func (e *Engine) fault(err error) {
	e.mu.Lock()
	if e.stats.Fault == "" {
		e.stats.Fault = err.Error()
	}
	e.mu.Unlock()
}

// start prepares a job for its first step; it reports false when the job finished at once.
func (e *Engine) start(j *job) bool {
	j.started = time.Now()
	j.tokens = append(make([]int32, 0, len(j.req.Prompt)+min(j.req.MaxTokens, e.opt.ContextLength)), j.req.Prompt...)
	j.nPrompt = len(j.req.Prompt)
	j.res.PromptTokens = j.nPrompt
	e.mu.Lock()
	e.stats.PromptTokens += int64(j.nPrompt)
	e.mu.Unlock()
	j.samp = newSampler(j.req.Sampling)
	j.stream = e.tok.NewStream()
	if j.req.MaxTokens == 0 && !(j.req.Echo && j.req.Logprobs > 0) {
		e.finishReason(j, "length")
		return false
	}
	// Reuse the longest cached prefix; the last prompt token is always computed for its logits, and
	// echo needs every prompt position's logits.
	if !e.opt.NoPrefixCache && !j.req.NoCache && !j.req.Echo {
		if el, n := e.prefix.match(j.tokens); el != nil {
			n = min(n, j.nPrompt-1, j.seq.Cap())
			if n > 0 {
				j.seq.CopyPrefix(el.Value.(*prefixEntry).seq, n)
				j.fed = n
				j.res.Reused = n
				e.prefix.touch(el)
				e.mu.Lock()
				e.stats.PrefixHits++
				e.stats.PrefixTokens += int64(n)
				e.mu.Unlock()
			}
		}
	}
	return true
}

// reserve admits j under the KV budget: its sequence's bytes at full capacity, made room for by
// evicting prefix-cache entries. When the budget cannot hold it while others run, j is held until
// they finish; when it could never fit, it fails with ErrBudget.
func (e *Engine) reserve(j *job, running int) bool {
	capacity := min(e.opt.ContextLength, len(j.req.Prompt)+j.req.MaxTokens+1)
	if j.req.Echo && j.req.Logprobs > 0 {
		capacity = min(e.opt.ContextLength, capacity+1)
	}
	need := int64(capacity) * e.seqBytesPerToken()
	if el, n := e.prefix.match(j.req.Prompt); n > 0 {
		e.prefix.touch(el) // about to be reused: evict others first
	}
	for e.live+e.prefix.bytes+need > e.budget && e.prefix.evictOldest() {
		e.mu.Lock()
		e.stats.PrefixEvictions++
		e.mu.Unlock()
	}
	if e.live+e.prefix.bytes+need > e.budget {
		if running > 0 && need <= e.budget {
			e.held = j
			e.waiting.Add(1) // still waiting, as far as the queue depth goes
			return false
		}
		e.finish(j, fmt.Errorf("%w: %d tokens need %d bytes, budget %d", ErrBudget, capacity, need, e.budget))
		return false
	}
	j.reserved = need
	e.live += need
	j.seq = kvcache.NewSeq(e.shape, capacity)
	e.kvStats()
	return true
}

func (e *Engine) setActive(n int) {
	e.mu.Lock()
	e.stats.ActiveSequences = n
	e.mu.Unlock()
}

func (e *Engine) kvStats() {
	e.mu.Lock()
	e.stats.KVBytes = e.live + e.prefix.bytes
	e.mu.Unlock()
}

// next takes the logits after the job's last token: samples, emits, and decides whether to go on.
func (e *Engine) next(j *job, logits []float32) bool {
	if len(j.res.Tokens) >= j.req.MaxTokens {
		return e.end(j, "length")
	}
	hist := j.tokens
	t := j.samp.sample(logits, hist)
	var lp float32
	var top []TokenProb
	if j.req.Logprobs > 0 {
		top, lp = topLogprobs(nil, logits, j.req.Logprobs, t)
	}
	if !j.req.IgnoreEOS && e.tok.IsEOG(t) {
		return e.end(j, "stop")
	}
	j.tokens = append(j.tokens, t)
	j.res.Tokens = append(j.res.Tokens, t)
	j.predLP = lp
	j.text.WriteString(j.stream.Push(t))
	full := j.text.String()
	// A stop string ends generation before it; text that may still become one is held back.
	hold := 0
	for _, s := range j.req.Stop {
		if s == "" {
			continue
		}
		if i := strings.Index(full[max(0, j.emitted-len(s)):], s); i >= 0 {
			cut := max(0, j.emitted-len(s)) + i
			j.text.Reset()
			j.text.WriteString(full[:cut])
			j.emit(Event{Token: t, Text: full[j.emitted:cut], Logprob: lp, Top: top})
			j.emitted = cut
			j.stopped = true
			return e.end(j, "stop")
		}
		for k := min(len(s)-1, len(full)); k > hold; k-- {
			if strings.HasSuffix(full, s[:k]) {
				hold = k
				break
			}
		}
	}
	upto := max(j.emitted, len(full)-hold)
	j.emit(Event{Token: t, Text: full[j.emitted:upto], Logprob: lp, Top: top})
	j.emitted = upto
	switch {
	case len(j.res.Tokens) >= j.req.MaxTokens:
		return e.end(j, "length")
	case j.req.NoCache && len(j.tokens) > j.seq.Cap():
		return e.end(j, "length") // the naive loop recomputes from position 0: no room to go on
	}
	return true
}

// end finishes a job normally. With echo logprobs and a generated last token, the job stays for one
// more step that computes that token's teacher-forced distribution.
func (e *Engine) end(j *job, reason string) bool {
	j.res.FinishReason = reason
	echo := j.req.Echo && j.req.Logprobs > 0
	if echo && len(j.res.Tokens) > 0 && j.fed < len(j.tokens) && len(j.tokens) <= j.seq.Cap() {
		j.lastFeed = true
		return true
	}
	e.finish(j, nil)
	return false
}

func (e *Engine) finishReason(j *job, reason string) {
	j.res.FinishReason = reason
	e.finish(j, nil)
}

// finish delivers the job's result (or err) and releases its cache.
func (e *Engine) finish(j *job, err error) {
	if err == nil {
		if !j.stopped {
			j.text.WriteString(j.stream.Flush())
		}
		if full := j.text.String(); j.emitted < len(full) {
			j.emit(Event{Token: -1, Text: full[j.emitted:]})
			j.emitted = len(full)
		}
		j.res.Text = j.text.String()
		j.res.PrefillTime = j.prefill
		j.res.DecodeTime = time.Since(j.started) - j.prefill
		e.mu.Lock()
		e.stats.Requests++
		e.stats.GeneratedTokens += int64(len(j.res.Tokens))
		e.mu.Unlock()
	}
	e.live -= j.reserved
	j.reserved = 0
	if s := j.seq; s != nil && !e.opt.NoPrefixCache && !j.req.NoCache && s.Shifted() == 0 && s.Len() > 0 && (err == nil || j.ctx.Err() != nil || j.cancel.Load()) {
		if e.prefix.add(append([]int32(nil), j.tokens[:s.Len()]...), s) {
			for e.live+e.prefix.bytes > e.budget && e.prefix.evictOldest() {
				e.mu.Lock()
				e.stats.PrefixEvictions++
				e.mu.Unlock()
			}
		}
	}
	j.seq = nil
	e.kvStats()
	res := &j.res
	if err != nil {
		res = nil
	}
	j.result <- jobResult{res: res, err: err}
}

// account adds a step to the counters.
func (e *Engine) account(spans []span, dt time.Duration) {
	prefill, fed := false, 0
	for _, s := range spans {
		fed += s.to - s.from
		if s.from < s.j.nPrompt {
			prefill = true
			e.stats.PrefillTokens += int64(min(s.to, s.j.nPrompt) - s.from)
		}
	}
	if prefill {
		e.stats.PrefillSeconds += dt.Seconds()
	} else {
		e.stats.DecodeSeconds += dt.Seconds()
		e.stats.DecodeTokens += int64(fed)
	}
}

func (e *Engine) traceStep(j *job, r *model.Runner, nseq, n, rows int, dt time.Duration) TraceStep {
	kind := "decode"
	if j.fed < j.nPrompt {
		kind = "prefill"
	}
	st := TraceStep{Step: len(j.res.Trace), Kind: kind, Tokens: n, KVLen: j.seq.Len(), Batch: nseq, Duration: dt}
	if st.Step == 0 {
		st.Reused = j.res.Reused
	}
	dim := e.model.Dim
	for _, l := range r.Shapes {
		shape := func(rows int) [3]int {
			if rows%nseq == 0 && rows/nseq == n {
				return [3]int{nseq, n, dim}
			}
			return [3]int{1, rows, dim}
		}
		st.Layers = append(st.Layers, LayerShapes{Attn: shape(l.Attn), MLP: shape(l.MLP)})
	}
	return st
}
