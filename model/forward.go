package model

import (
	"fmt"
	"math"
	"sync"

	"edgelm/kernels"
	"edgelm/kvcache"
)

// Batch is one forward step: entry i is token Tokens[i] at position Pos[i] of sequence Seqs[i].
// A prefill is many entries of one sequence, a decode one entry, a continuous-batching step one entry
// of each of many sequences; entries of one sequence must be in position order.
type Batch struct {
	Tokens []int32
	Pos    []int32
	Seqs   []*kvcache.Seq
	Logits []bool // entry i wants logits; nil means only the last entry
	// Hidden marks the entries whose final hidden state (after the output norm: what the output
	// matrix turns into logits, Dim floats) Forward writes to HiddenOut, in entry order; nil means
	// none. Embeddings are made of these. An entry may want logits, its hidden state, both or neither.
	Hidden    []bool
	HiddenOut []float32
}

// Rows records the shapes one layer produced in the last step: the rows of its attention output and
// of its MLP output, each row Dim wide.
type Rows struct{ Attn, MLP int }

// Runner runs forward steps of a Model. It owns the scratch memory of a step, so one Runner runs one
// step at a time; it grows its buffers to the largest batch seen and allocates nothing after that.
type Runner struct {
	m    *Model
	pool *kernels.Pool

	// Shapes holds, after each Forward, what every layer produced.
	Shapes []Rows

	cap                 int
	x, xb, xb2, q, k, v []float32              // (n, dim) (n, dim) (n, dim) (n, q_dim) (n, kv_dim) (n, kv_dim)
	att                 []float32              // (n, q_dim)
	hb, hb2             []float32              // (n, ffn)
	attn                []kvcache.Scratch      // one per pool participant
	attnFn              func(i, id int)        // attendToken, bound once
	rotG, rotL          func([]float32, int32) // rotateGlobal, rotateLocal, bound once
	step                struct {               // what attendToken reads, set per layer
		b      *Batch
		layer  int
		a      kvcache.Attention
		q, att []float32
		groups int   // parts each token's attention is split into, by key heads
		blocks []int // with groups 1: part c is entries [blocks[c], blocks[c+1]) of one sequence
	}
	rotMu        sync.Mutex // rotations after a context shift may come from several participants
	rotTab       []float32  // (rope_dim) cos/sin pairs for a query rotation
	rotPos       [1]int32
	ropeG, ropeL []float32 // (n, rope_dim) cos/sin pairs per token, global and local layers
	slots        []int
}

// NewRunner makes a runner of m whose matrix products run on pool (nil: serially).
func NewRunner(m *Model, pool *kernels.Pool) *Runner {
	r := &Runner{m: m, pool: pool, Shapes: make([]Rows, m.Layers), attn: make([]kvcache.Scratch, pool.Threads())}
	r.attnFn = r.attendToken
	r.rotG, r.rotL = r.rotateGlobal, r.rotateLocal
	return r
}

// attendToken is part c of the current step's attention, on pool participant id: part g of entry i,
// c = i*groups+g, covers the g-th of groups equal ranges of key heads. Parts are independent (each
// reads its sequence's cache and writes its own heads of its own output row).
func (r *Runner) attendToken(c, id int) {
	st := &r.step
	if st.groups == 1 {
		// Consecutive tokens of one sequence together, each of its cache rows decoded once for all.
		qd := r.m.Heads * r.m.HeadDim
		i0, i1 := st.blocks[c], st.blocks[c+1]
		st.b.Seqs[i0].AttendBlock(st.layer, st.a, st.q[i0*qd:i1*qd], st.b.Pos[i0:i1], st.att[i0*qd:i1*qd], &r.attn[id])
		return
	}
	i, g := c/st.groups, c%st.groups
	kvh := r.m.KVHeads
	qd := r.m.Heads * r.m.HeadDim
	st.b.Seqs[i].AttendHeads(st.layer, st.a, st.q[i*qd:(i+1)*qd], st.b.Pos[i], st.att[i*qd:(i+1)*qd], &r.attn[id],
		g*kvh/st.groups, (g+1)*kvh/st.groups)
}

// attnBlock is how many tokens of one sequence share one AttendBlock call in a prefill.
const attnBlock = 4

// attnBlocks splits the batch's n entries into runs of at most attnBlock consecutive entries of the
// same sequence, as start indices followed by n, reusing buf.
func attnBlocks(buf []int, b *Batch, n int) []int {
	buf = buf[:0]
	for i := 0; i < n; i++ {
		if len(buf) == 0 || i-buf[len(buf)-1] == attnBlock || b.Seqs[i] != b.Seqs[buf[len(buf)-1]] {
			buf = append(buf, i)
		}
	}
	return append(buf, n)
}

// attnGroups is how many parts each of n tokens' attention is split into: one when the tokens alone
// keep every participant busy (prefill), else one per participant where the key heads divide evenly
// among them (each part then reads a run of adjacent key heads of every cached row, which the
// memory system streams far better than one head's slice at a time), else one per key head; so that
// a decode step's attention runs on all cores while the others would wait.
func (r *Runner) attnGroups(n int) int {
	t := r.pool.Threads()
	if t == 1 || n >= 2*t {
		return 1
	}
	if r.m.KVHeads%t == 0 {
		return t
	}
	return r.m.KVHeads
}

// Model returns the model the runner runs.
func (r *Runner) Model() *Model { return r.m }

func (r *Runner) grow(n int) {
	if n <= r.cap {
		return
	}
	c := &r.m.Config
	qd := c.Heads * c.HeadDim
	r.cap = n
	r.x = make([]float32, n*c.Dim)
	r.xb = make([]float32, n*c.Dim)
	r.xb2 = make([]float32, n*c.Dim)
	r.q = make([]float32, n*qd)
	r.k = make([]float32, n*c.KVDim())
	r.v = make([]float32, n*c.KVDim())
	r.att = make([]float32, n*qd)
	r.hb = make([]float32, n*c.FFN)
	r.hb2 = make([]float32, n*c.FFN)
	r.ropeG = make([]float32, n*c.RopeDim)
	r.ropeL = make([]float32, n*c.RopeDim)
	r.slots = make([]int, n)
}

// Forward runs one step over b, appending each entry's key and value to its sequence, and writes the
// logits of the entries that want them, in entry order, to logits ((entries wanting logits) × vocab).
func (r *Runner) Forward(b *Batch, logits []float32) error {
	m := r.m
	c := &m.Config
	n := len(b.Tokens)
	if n == 0 {
		return nil
	}
	if len(b.Pos) != n || len(b.Seqs) != n || (b.Logits != nil && len(b.Logits) != n) {
		return fmt.Errorf("model: batch of %d tokens with %d positions, %d sequences, %d logit flags",
			n, len(b.Pos), len(b.Seqs), len(b.Logits))
	}
	nOut := 0
	wants := func(i int) bool { return (b.Logits == nil && i == n-1) || (b.Logits != nil && b.Logits[i]) }
	for i := 0; i < n; i++ {
		if b.Tokens[i] < 0 || int(b.Tokens[i]) >= m.Vocab {
			return fmt.Errorf("model: token %d out of range [0, %d)", b.Tokens[i], m.Vocab)
		}
		if wants(i) {
			nOut++
		}
	}
	if len(logits) < nOut*m.Vocab {
		return fmt.Errorf("model: logits buffer of %d floats for %d outputs of %d", len(logits), nOut, m.Vocab)
	}
	if b.Hidden != nil {
		if len(b.Hidden) != n {
			return fmt.Errorf("model: batch of %d tokens with %d hidden-state flags", n, len(b.Hidden))
		}
		nHid := 0
		for _, h := range b.Hidden {
			if h {
				nHid++
			}
		}
		if len(b.HiddenOut) < nHid*c.Dim {
			return fmt.Errorf("model: hidden-state buffer of %d floats for %d outputs of %d", len(b.HiddenOut), nHid, c.Dim)
		}
	}
	r.grow(n)

	// Reserve cache slots first: on a full sequence nothing of this step is kept.
	for i := 0; i < n; i++ {
		slot, err := b.Seqs[i].Append(b.Pos[i])
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				b.Seqs[j].Truncate(r.slots[j])
			}
			return err
		}
		r.slots[i] = slot
	}

	dim, qd, kvd, hd := c.Dim, c.Heads*c.HeadDim, c.KVDim(), c.HeadDim
	x := r.x[:n*dim]
	for i, tok := range b.Tokens {
		row := x[i*dim : (i+1)*dim]
		m.Embed.Row(int(tok), row)
		if c.EmbedScale != 1 {
			kernels.Scale(row, c.EmbedScale)
		}
	}
	r.ropeTable(r.ropeG, b.Pos, c.RopeBase, c.RopeScale, c.RopeMScale)
	if c.SWAPattern > 0 {
		r.ropeTable(r.ropeL, b.Pos, c.RopeBaseLocal, 1, 1)
	}

	xb, xb2 := r.xb[:n*dim], r.xb2[:n*dim]
	q, k, v, att := r.q[:n*qd], r.k[:n*kvd], r.v[:n*kvd], r.att[:n*qd]
	hb, hb2 := r.hb[:n*c.FFN], r.hb2[:n*c.FFN]
	for il := range m.Blocks {
		l := &m.Blocks[il]
		local := c.Local(il)
		rope := r.ropeG
		if local {
			rope = r.ropeL
		}

		// Attention: (n, dim) -> q (n, heads*hd), k and v (n, kv_heads*hd).
		r.norm(xb, x, l.AttnNorm, n, dim)
		// Each Then names the product after the next call: a decode step's participants
		// claim and prefetch its first weights when they run out of work (kernels.Pool.Then).
		r.pool.Then(l.Wk, n)
		r.pool.MatMul(q, l.Wq, xb, n)
		r.pool.Then(l.Wv, n)
		r.pool.MatMul(k, l.Wk, xb, n)
		r.pool.MatMul(v, l.Wv, xb, n)
		if l.Bq != nil {
			addRows(q, l.Bq, n)
			addRows(k, l.Bk, n)
			addRows(v, l.Bv, n)
		}
		if c.QKNorm {
			r.norm(q, q, l.QNorm, n*c.Heads, hd)
			r.norm(k, k, l.KNorm, n*c.KVHeads, hd)
		}
		for i := 0; i < n; i++ {
			rs := rope[i*c.RopeDim : (i+1)*c.RopeDim]
			for h := 0; h < c.Heads; h++ {
				applyRope(q[i*qd+h*hd:i*qd+(h+1)*hd], rs, c.RopeNeox)
			}
			for h := 0; h < c.KVHeads; h++ {
				applyRope(k[i*kvd+h*hd:i*kvd+(h+1)*hd], rs, c.RopeNeox)
			}
			b.Seqs[i].Store(il, r.slots[i], k[i*kvd:(i+1)*kvd], v[i*kvd:(i+1)*kvd])
		}
		a := kvcache.Attention{Heads: c.Heads, Scale: c.AttnScale, Softcap: c.AttnSoftcap, Rotate: r.rotG}
		if local {
			a.Window = c.SlidingWindow
			a.Rotate = r.rotL
		}
		r.step.b, r.step.layer, r.step.a, r.step.q, r.step.att = b, il, a, q, att
		r.step.groups = r.attnGroups(n)
		r.pool.Then(l.Wo, n)
		if r.step.groups == 1 {
			r.step.blocks = attnBlocks(r.step.blocks, b, n)
			r.pool.Run(len(r.step.blocks)-1, r.attnFn)
		} else {
			r.pool.Run(n*r.step.groups, r.attnFn)
		}
		r.pool.Then(l.Gate, n)
		r.pool.MatMul(xb2, l.Wo, att, n)
		if c.PostNorms {
			r.norm(xb2, xb2, l.PostAttnNorm, n, dim)
		}
		kernels.Add(x, x, xb2)

		// MLP: (n, dim) -> (n, ffn) -> (n, dim).
		r.norm(xb, x, l.FFNNorm, n, dim)
		r.pool.Then(l.Up, n)
		r.pool.MatMul(hb, l.Gate, xb, n)
		r.pool.Then(l.Down, n)
		r.pool.MatMul(hb2, l.Up, xb, n)
		if c.Act == GELU {
			kernels.GELU(hb)
		} else {
			kernels.SiLU(hb)
		}
		kernels.Mul(hb, hb, hb2)
		if il+1 < len(m.Blocks) {
			r.pool.Then(m.Blocks[il+1].Wq, n)
		} else if nOut > 0 {
			r.pool.Then(m.Output, nOut)
		}
		r.pool.MatMul(xb2, l.Down, hb, n)
		if c.PostNorms {
			r.norm(xb2, xb2, l.PostFFNNorm, n, dim)
		}
		kernels.Add(x, x, xb2)
		r.Shapes[il] = Rows{Attn: n, MLP: n}
	}

	// Final norm and logits for the entries that want them only.
	o := 0
	for i := 0; i < n; i++ {
		if wants(i) {
			kernels.RMSNorm(xb[o*dim:(o+1)*dim], x[i*dim:(i+1)*dim], m.OutNorm, c.RMSEps)
			o++
		}
	}
	if b.Hidden != nil {
		// Entries that want logits too have their normed row in xb already.
		o, h := 0, 0
		for i, want := range b.Hidden {
			if want {
				dst := b.HiddenOut[h*dim : (h+1)*dim]
				if wants(i) {
					copy(dst, xb[o*dim:(o+1)*dim])
				} else {
					kernels.RMSNorm(dst, x[i*dim:(i+1)*dim], m.OutNorm, c.RMSEps)
				}
				h++
			}
			if wants(i) {
				o++
			}
		}
	}
	if nOut == 0 {
		return nil
	}
	out := logits[:nOut*m.Vocab]
	r.pool.MatMul(out, m.Output, xb[:nOut*dim], nOut)
	if c.FinalSoftcap > 0 {
		softcap(out, c.FinalSoftcap)
	}
	return nil
}

// addRows adds bias to each of the rows of x, which are len(bias) wide.
func addRows(x, bias []float32, rows int) {
	d := len(bias)
	for i := 0; i < rows; i++ {
		kernels.Add(x[i*d:(i+1)*d], x[i*d:(i+1)*d], bias)
	}
}

// norm applies RMSNorm with weight w to each of the rows of width d of src, into dst.
func (r *Runner) norm(dst, src, w []float32, rows, d int) {
	eps := r.m.RMSEps
	for i := 0; i < rows; i++ {
		kernels.RMSNorm(dst[i*d:(i+1)*d], src[i*d:(i+1)*d], w, eps)
	}
}

// ropeTable fills, for each position, rope_dim/2 (cos, sin) pairs, each times mscale: angle j is
// pos*scale*base^(-2j/rope_dim), divided by the model's frequency factor j when it has them. The
// angles are computed in float32 by repeated multiplication, as ggml does: the float64 angle differs
// by ~1e-5 rad at position 30, enough to round an 8-bit activation the other way now and then.
func (r *Runner) ropeTable(dst []float32, pos []int32, base, scale float64, mscale float32) {
	c := &r.m.Config
	half := c.RopeDim / 2
	thetaScale := float32(math.Pow(float64(float32(base)), float64(-2/float32(c.RopeDim))))
	fs := float32(scale)
	for i, p := range pos {
		t := dst[i*c.RopeDim : (i+1)*c.RopeDim]
		theta := float32(p)
		for j := 0; j < half; j++ {
			th := theta
			if r.m.RopeFreqs != nil {
				th /= r.m.RopeFreqs[j]
			}
			th *= fs
			s, co := math.Sincos(float64(th))
			t[2*j], t[2*j+1] = float32(co)*mscale, float32(s)*mscale
			theta *= thetaScale
		}
	}
}

// rotateGlobal and rotateLocal turn every head of q (already rotated for its position) by delta more
// positions, with the RoPE of global or local layers: rotations of one frequency compose. q already
// carries the RoPE magnitude factor, so these turn it without scaling again.
func (r *Runner) rotateGlobal(q []float32, delta int32) {
	r.rotate(q, delta, r.m.RopeBase, r.m.RopeScale)
}

func (r *Runner) rotateLocal(q []float32, delta int32) { r.rotate(q, delta, r.m.RopeBaseLocal, 1) }

func (r *Runner) rotate(q []float32, delta int32, base, scale float64) {
	r.rotMu.Lock()
	defer r.rotMu.Unlock()
	c := &r.m.Config
	if len(r.rotTab) < c.RopeDim {
		r.rotTab = make([]float32, c.RopeDim)
	}
	r.rotPos[0] = delta
	r.ropeTable(r.rotTab, r.rotPos[:], base, scale, 1)
	for h := 0; h < len(q)/c.HeadDim; h++ {
		applyRope(q[h*c.HeadDim:(h+1)*c.HeadDim], r.rotTab[:c.RopeDim], c.RopeNeox)
	}
}

// applyRope rotates the first len(cs) dimensions of one head by the (cos, sin) pairs cs: adjacent
// pairs (x[2j], x[2j+1]), or with neox the halves (x[j], x[j+d/2]).
func applyRope(x, cs []float32, neox bool) {
	half := len(cs) / 2
	for j := 0; j < half; j++ {
		co, s := cs[2*j], cs[2*j+1]
		a, b := 2*j, 2*j+1
		if neox {
			a, b = j, j+half
		}
		x0, x1 := x[a], x[b]
		x[a] = x0*co - x1*s
		x[b] = x0*s + x1*co
	}
}

func softcap(x []float32, c float32) {
	for i, v := range x {
		x[i] = c * float32(math.Tanh(float64(v/c)))
	}
}
