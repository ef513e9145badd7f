package kernels

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs MatMul on a fixed set of worker goroutines that live as long
// as the pool. A call hands out work without creating goroutines or
// sending on channels: workers spin briefly on a generation counter after
// each call (the next matmul of a forward pass follows within microseconds)
// and then park on a condition variable.
//
// A nil *Pool runs every call serially on the caller's goroutine. Calls on
// one Pool are serialized; use one Pool per concurrent forward pass, or
// share one so that passes take turns.
type Pool struct {
	threads int
	kern    Set        // the kernels of every call
	callMu  sync.Mutex // one call at a time owns job and the scratch buffers

	mu      sync.Mutex
	wake    sync.Cond // workers wait for gen to move
	done    sync.Cond // the caller waits for pending to reach 0
	gen     atomic.Uint32
	pending atomic.Int32
	closed  bool
	exited  sync.WaitGroup

	job      job
	next     atomic.Int32 // next chunk to take
	panicMu  sync.Mutex
	panicked bool
	panicVal any

	// Claims ahead (Then): then is the product the next call was said to be, for the
	// participants of the current call to claim chunks of when they run out of work; claimed is
	// what the pre claims were made for, for the next call to check.
	then, claimed hint
	pre           atomic.Int32
	calls         uint32 // calls dispatched (job.seq)

	xq      []byte       // the activations quantized to Q8_0
	xa      []xaux       // their block sums for the 8-row tiles, block-major (auxOf)
	scratch [][]float32  // per participant (0 is the caller): one dequantized row
	outs    []kernelOuts // per participant: a kernel's results (a local would escape)
}

// kernelOuts receives the results of the multi-result kernels. The padding
// keeps two participants' results off a shared cache line, which every call
// of a decode kernel would otherwise bounce between cores.
type kernelOuts struct {
	quad     [4]float32   // 4-token and 4-row kernels
	oct      [8]float32   // 8-row kernels
	tile     [16]float32  // 4×4 tiles
	tile8    [32]float32  // 8×4 tiles
	tile9    [64]float32  // 8×8 tiles
	tile16   [128]float32 // 16×8 tiles
	tile1616 [256]float32 // 16×16 tiles
	ahead    int          // a chunk claimed before its turn (decode prefetches it), or -1
	// preLo..preHi: chunks of the next call claimed at the end of this one (Then), in L2.
	preLo, preHi int
	preFor       uint32 // the call (job.seq) they are chunks of
	_            [64]byte
}

// xaux is what the 8-row tiles need of one token's activation block
// besides its quants: corr = -off·Σq, the correction for weights that
// enter the tile offset by off to be unsigned (8 for Q4_0, 128 for Q8_0),
// and d, the block's scale as float32.
type xaux struct {
	corr int32
	d    float32
}

// auxOf fills (reusing buf) the entries of the n tokens of xq, token t's
// blocks at xq[t*stride:], block-major: entry b*n+t.
func auxOf(buf []xaux, xq []byte, stride, n int, off int32) []xaux {
	nb := stride / q8b
	if cap(buf) < nb*n {
		buf = make([]xaux, nb*n)
	}
	buf = buf[:nb*n]
	for t := range n {
		row := xq[t*stride : (t+1)*stride]
		for b := range nb {
			blk := row[b*q8b : (b+1)*q8b]
			buf[b*n+t] = xaux{corr: -off * quantSum(blk[2:q8b]), d: f16(blk)}
		}
	}
	return buf
}

// auxFrom is xa from token t's entries on; nil when the variant has none.
func auxFrom(xa []xaux, t int) []xaux {
	if len(xa) == 0 {
		return nil
	}
	return xa[t:]
}

// quantSum returns the sum of the 32 int8 quants q, eight bytes at a time:
// each byte offset by 128 to be unsigned, pairs of bytes summed into 16-bit
// lanes (at most 4·2·255 after four words), the lanes summed by a multiply.
func quantSum(q []byte) int32 {
	const (
		flip = 0x8080808080808080
		even = 0x00ff00ff00ff00ff
	)
	var acc uint64
	for i := 0; i < qk; i += 8 {
		v := binary.LittleEndian.Uint64(q[i:]) ^ flip
		acc += v&even + v>>8&even
	}
	return int32((acc*0x0001000100010001)>>48) - 128*qk
}

// job is one MatMul split into chunks of rows × tokens.
type job struct {
	dst     []float32
	m       Mat
	x       []float32
	n       int
	v       *variant
	stride  int // bytes of one token's quantized activations
	rowsPer int // rows per chunk
	tokPer  int // tokens per chunk
	nRowCh  int // chunks along the rows
	nChunks int
	fn      func(i, id int) // Run's work: chunk i on participant id (MatMul's fields unused)
	pre     bool            // the participants' claims (preLo..preHi) are chunks of this job
	seq     uint32          // the pool's count of calls, this one included
}

// hint is a decode product announced by Then: its matrix and tokens, its chunks as matmul
// will cut them, and how many of those one participant claims at a time.
type hint struct {
	m                Mat
	n                int
	rowsPer, nChunks int
	per              int
}

// claimBytes is about how many weight bytes a participant claims and prefetches, in whole
// chunks, when it runs out of work before the product that Then announced: enough to keep the
// memory busy over the few microseconds of serial work between two products, and a small part
// of a 1 MB L2.
const claimBytes = 128 << 10

// decodeRowsPer is the rows of a decode chunk of a matrix of rows rows over parts
// participants: 16 chunks each, at least eight rows (the 8-row kernels).
func decodeRowsPer(rows, parts int) int {
	return max(8, (rows+parts*16-1)/(parts*16))
}

// spinFor bounds how long a worker, and the caller waiting for workers,
// polls before parking. It must span the wait for the last chunk of a
// matmul (tens of µs for a decode chunk from DRAM) plus the vector work
// before the next matmul: a parked worker costs a futex wake on the next
// call. At about 20µs (a count of 2^14 polls) a decode token parked a
// worker 11 times; 200µs is still nothing between requests.
const spinFor = 200 * time.Microsecond

// spin polls done (yielding every 256 polls) until it reports true or
// spinFor has passed; it reports whether done did.
func spin(done func() bool) bool {
	var deadline time.Time
	for i := 1; ; i++ {
		if done() {
			return true
		}
		if i%256 == 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(spinFor)
			} else if now.After(deadline) {
				return false
			}
			runtime.Gosched()
		}
	}
}

// NewPool starts a pool of threads participants: the caller of MatMul and
// threads-1 workers. threads <= 0 means runtime.GOMAXPROCS(0).
func NewPool(threads int) *Pool { return NewPoolWith(threads, Set{}) }

// NewPoolWith is NewPool whose products run on the kernels k (Choose); NewPool's follow the
// process's choice.
func NewPoolWith(threads int, k Set) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, kern: k, scratch: make([][]float32, threads),
		outs: make([]kernelOuts, threads)}
	p.wake.L = &p.mu
	p.done.L = &p.mu
	for id := 1; id < threads; id++ {
		p.exited.Add(1)
		go p.worker(id)
	}
	return p
}

// Kernels returns the kernels the pool's products run on, for the rest of a forward pass to run
// on the same (the zero Set for a nil pool: the process's choice).
func (p *Pool) Kernels() Set {
	if p == nil {
		return Set{}
	}
	return p.kern
}

// Threads returns the number of participants in a call (1 for a nil pool).
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

// Close stops the workers and waits for them to exit. Later MatMul calls
// run on the caller alone. Close on a nil or closed pool does nothing.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.callMu.Lock()
	defer p.callMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
	p.exited.Wait()
}

func (p *Pool) worker(id int) {
	defer p.exited.Done()
	// A read of a truncated mapped file must become a panic we can hand
	// to the caller, not a crash of the process.
	debug.SetPanicOnFault(true)
	var seen uint32 // gen starts at 0; a call may already have moved it
	for {
		var g uint32
		if !spin(func() bool { g = p.gen.Load(); return g != seen }) {
			p.mu.Lock()
			for p.gen.Load() == seen && !p.closed {
				p.wake.Wait()
			}
			g = p.gen.Load()
			closed := p.closed
			p.mu.Unlock()
			if g == seen && closed {
				return
			}
		}
		seen = g
		p.work(id)
		if p.pending.Add(-1) == 0 {
			p.mu.Lock()
			p.done.Signal()
			p.mu.Unlock()
		}
	}
}

// work takes chunks of the current job until none are left. A panic is
// recorded for the caller and stops the other participants early.
func (p *Pool) work(id int) {
	defer func() {
		if r := recover(); r != nil {
			p.panicMu.Lock()
			if !p.panicked {
				p.panicked, p.panicVal = true, r
			}
			p.panicMu.Unlock()
			p.next.Store(1 << 30)
		}
	}()
	j := &p.job
	o := &p.outs[id]
	o.ahead = -1
	if !j.pre || o.preFor != j.seq {
		o.preLo, o.preHi = 0, 0
	}
	for {
		var c int
		switch {
		case o.preLo < o.preHi:
			c = o.preLo
			o.preLo++
		case o.ahead >= 0:
			c, o.ahead = o.ahead, -1
		default:
			c = int(p.next.Add(1)) - 1
		}
		if c >= j.nChunks {
			break
		}
		p.chunk(j, id, c)
	}
	p.claimAhead(o)
}

// claimAhead claims, for participant o that has run out of work, the next few chunks of the
// product Then announced, and prefetches their weights into its L2 while the others finish and
// the caller does the serial work before that product.
func (p *Pool) claimAhead(o *kernelOuts) {
	h := &p.then
	if h.nChunks == 0 {
		return
	}
	c0 := int(p.pre.Add(int32(h.per))) - h.per
	if c0 >= h.nChunks {
		return
	}
	c1 := min(c0+h.per, h.nChunks)
	o.preLo, o.preHi, o.preFor = c0, c1, p.job.seq+1 // p.job is the current call
	rb := h.m.RowBytes()
	prefetchL2(h.m.Data[c0*h.rowsPer*rb : min(c1*h.rowsPer, h.m.Rows)*rb])
}

// Then announces that the pool's next call is MatMul(_, m, _, n): participants of the call that
// follows Then that run out of work claim the first chunks of that product and prefetch their
// weights, so that memory keeps streaming over the serial work between two calls (a decode
// token spends about 5 % of its time outside the products, the weights idle). A next call that
// is not that product drops the claims; results do not depend on them. Only decode products
// (n < 8) are announced; for others, and on a nil pool, Then does nothing.
func (p *Pool) Then(m Mat, n int) {
	if p == nil || n <= 0 || n >= 8 || m.Rows == 0 || m.Cols == 0 {
		return
	}
	p.callMu.Lock()
	defer p.callMu.Unlock()
	parts := p.threads
	if p.closed {
		parts = 1
	}
	rowsPer := decodeRowsPer(m.Rows, parts)
	nChunks := (m.Rows + rowsPer - 1) / rowsPer
	per := max(1, claimBytes/(rowsPer*m.RowBytes()))
	per = min(per, max(1, nChunks/(2*parts))) // most chunks stay with the counter, for balance
	p.then = hint{m: m, n: n, rowsPer: rowsPer, nChunks: nChunks, per: per}
}

// sameProduct reports whether job j is the product h announced, cut the same way.
func sameProduct(j *job, h *hint) bool {
	return j.fn == nil && h.nChunks > 0 && j.n == h.n && j.m.Type == h.m.Type &&
		j.m.Rows == h.m.Rows && j.m.Cols == h.m.Cols && len(j.m.Data) == len(h.m.Data) &&
		len(j.m.Data) > 0 && &j.m.Data[0] == &h.m.Data[0] &&
		j.rowsPer == h.rowsPer && j.nChunks == h.nChunks
}

// prefetchNext returns the weights participant id reads prefetchGroups
// groups after the eight rows at r (of the chunk ending at r1), for the
// kernel to prefetch meanwhile: rows of the same chunk, or, near a decode
// chunk's end, rows of the chunk it claims now for its next turn. Chunks are handed out one at a time, so
// without the claim the prefetch would run into a chunk another participant
// takes, and each chunk would start on a cold stream. nil when nothing
// follows.
func (p *Pool) prefetchNext(j *job, id, r, r1 int) []byte {
	m := j.m
	rb := m.RowBytes()
	tr := r + 8*prefetchGroups // the first row to prefetch
	switch {
	case tr+8 <= r1:
		return m.Data[tr*rb : (tr+8)*rb]
	case j.n < 8 && j.fn == nil:
		o := &p.outs[id]
		next := o.preLo // a claimed chunk comes first (and is in L2 already)
		if o.preLo >= o.preHi {
			if o.ahead < 0 {
				o.ahead = int(p.next.Add(1)) - 1
			}
			next = o.ahead
		}
		if next >= j.nChunks {
			return nil
		}
		nr := next%j.nRowCh*j.rowsPer + max(0, tr-r1)
		if nr >= m.Rows {
			return nil
		}
		return m.Data[nr*rb : min(nr+8, m.Rows)*rb]
	case tr < m.Rows:
		return m.Data[tr*rb : min(tr+8, m.Rows)*rb]
	}
	return nil
}

// prefetchGroups is how far ahead, in groups of eight rows, the kernels
// prefetch. Two beat one on bench-1b's decode with 2 threads (Q4_0 tg128,
// alternating builds: 38.2, 38.3 t/s at one; 41.0, 41.2, 43.4, 39.9 at two;
// 44.0, 39.9, 42.4, 38.2 at three; Q8_0 23.6 / 24.3 / 23.3), and tie on
// one thread.
const prefetchGroups = 2

var serialPools = sync.Pool{New: func() any {
	return &Pool{threads: 1, scratch: make([][]float32, 1), outs: make([]kernelOuts, 1)}
}}

// MatMul computes dst[t*m.Rows+r] = (row r of m) · x[t*m.Cols:(t+1)*m.Cols]
// for r < m.Rows and t < n.
//
// For Q8_0 and Q4_0 weights each x_t is first quantized to Q8_0 as
// llama.cpp does at run time (d = amax/127, q = round-to-even(x·127/amax);
// see quantizeQ8 for how that differs from quant.QuantizeQ8_0) and every
// block contributes
// f16(d_w)*f16(d_x)*sumi with sumi the exact integer dot product of the
// quants (Q4_0: nibble-8), accumulated in float32, as llama.cpp's
// vec_dot_q8_0_q8_0 and vec_dot_q4_0_q8_0. Q5_0 weights take the same Q8_0
// activations, Q4_1 and Q5_1 Q8_1 ones (quantizeQ8_1), the K-quants Q8_K
// (quant.QuantizeQ8_K); their row dots are specified in kquant.go. F16 and BF16 rows are converted
// to float32 and dotted with x; F32 rows are dotted directly.
//
// A token's results do not depend on n, on the other tokens, or on the
// number of threads, bit for bit. dst must not overlap x.
//
// It panics if m is not valid (see Mat.Validate), n < 0, or x or dst is too
// short. A panic in a worker (such as a fault reading a truncated mapped
// file, which workers turn into a panic with debug.SetPanicOnFault) is
// re-raised on the caller's goroutine with the same value once every
// worker has stopped.
func (p *Pool) MatMul(dst []float32, m Mat, x []float32, n int) {
	m.mustValid()
	if n < 0 || len(x) < n*m.Cols || len(dst) < n*m.Rows {
		panic(fmt.Sprintf("kernels: MatMul of a %dx%d matrix with %d tokens: x has %d values, dst %d",
			m.Rows, m.Cols, n, len(x), len(dst)))
	}
	if n == 0 || m.Rows == 0 {
		return
	}
	if p == nil {
		sp := serialPools.Get().(*Pool)
		sp.matmul(dst, m, x, n)
		serialPools.Put(sp)
		return
	}
	p.callMu.Lock()
	defer p.callMu.Unlock()
	p.matmul(dst, m, x, n)
}

func (p *Pool) matmul(dst []float32, m Mat, x []float32, n int) {
	v := p.kern.variant()
	j := job{dst: dst, m: m, x: x, n: n, v: v}
	if a := actOf(m.Type); a != actNone {
		j.stride = actBytes(a, m.Cols)
		need := n * j.stride
		if cap(p.xq) < need {
			p.xq = make([]byte, need)
		}
		p.xq = p.xq[:need]
		for t := range n {
			quantizeAct(a, p.xq[t*j.stride:(t+1)*j.stride], x[t*m.Cols:(t+1)*m.Cols], v.quant)
		}
		p.xa = p.xa[:0]
		if (m.Type == Q8_0 || m.Type == Q4_0) && v.q4t84 != nil && (n >= 4 || m.Type == Q4_0 && v.q4r8Aux) {
			// The 8-row tiles take these, and a variant's Q4_0 decode kernel that says so; other
			// decode steps would compute them for nothing, on every matmul of every token.
			off := int32(128)
			if m.Type == Q4_0 {
				off = 8
			}
			p.xa = auxOf(p.xa, p.xq, j.stride, n, off)
		}
	}
	workers := p.threads - 1
	if p.closed {
		workers = 0
	}
	parts := workers + 1
	if n < 8 {
		// Decode: every row once, all tokens against it while it is hot.
		j.tokPer = n
		j.rowsPer = decodeRowsPer(m.Rows, parts)
	} else {
		// Prefill: tiles of 16 rows × 32 tokens keep both operands in L1/L2.
		j.tokPer = 32
		j.rowsPer = 16
	}
	j.nRowCh = (m.Rows + j.rowsPer - 1) / j.rowsPer
	j.nChunks = j.nRowCh * ((n + j.tokPer - 1) / j.tokPer)
	p.dispatch(j, workers)
}

// Run calls fn(i, id) for every i in [0, n), spread over the pool's participants; id, in
// [0, Threads()), names the participant so fn can use per-participant scratch. It returns when every
// call is done; a panic in fn is re-raised on the caller as MatMul's are. A nil pool runs serially.
func (p *Pool) Run(n int, fn func(i, id int)) {
	if n <= 0 {
		return
	}
	if p == nil {
		for i := 0; i < n; i++ {
			fn(i, 0)
		}
		return
	}
	p.callMu.Lock()
	defer p.callMu.Unlock()
	workers := p.threads - 1
	if p.closed {
		workers = 0
	}
	p.dispatch(job{fn: fn, nChunks: n}, workers)
}

// dispatch runs the chunks of j on the caller and workers other participants, and waits for them.
func (p *Pool) dispatch(j job, workers int) {
	// Chunks claimed during the last call for this one are done first by their claimers; the
	// counter starts after them. Claims for another product are dropped.
	// (Alone, the caller runs every chunk: with workers, only when it made every claim.)
	alone := workers == 0 || j.nChunks == 1
	p.calls++
	j.seq = p.calls
	start := int32(0)
	claims := p.pre.Swap(0)
	if claims > 0 && (workers == 0 || !alone) && sameProduct(&j, &p.claimed) {
		j.pre = true
		start = min(claims, int32(j.nChunks))
	}
	p.claimed = hint{}

	if alone {
		p.job = j
		p.next.Store(start)
		p.work(0)
		p.claimed, p.then = p.then, hint{}
		p.rethrow()
		return
	}

	p.mu.Lock()
	p.job = j
	p.next.Store(start)
	p.pending.Store(int32(workers))
	p.gen.Add(1)
	p.wake.Broadcast()
	p.mu.Unlock()

	p.work(0)

	if !spin(func() bool { return p.pending.Load() == 0 }) {
		p.mu.Lock()
		for p.pending.Load() != 0 {
			p.done.Wait()
		}
		p.mu.Unlock()
	}
	p.claimed, p.then = p.then, hint{}
	p.rethrow()
}

// rethrow re-raises the first panic of the last call, if any.
func (p *Pool) rethrow() {
	if !p.panicked {
		return
	}
	r := p.panicVal
	p.panicked, p.panicVal = false, nil
	// A participant may have stopped inside its claimed chunks: drop every claim.
	p.pre.Store(0)
	p.then, p.claimed = hint{}, hint{}
	for i := range p.outs {
		p.outs[i].preLo, p.outs[i].preHi = 0, 0
	}
	p.job = job{}
	panic(r)
}

// chunk computes chunk c of job j on participant id.
func (p *Pool) chunk(j *job, id, c int) {
	if j.fn != nil {
		j.fn(c, id)
		return
	}
	m := j.m
	r0 := c % j.nRowCh * j.rowsPer
	r1 := min(r0+j.rowsPer, m.Rows)
	t0 := c / j.nRowCh * j.tokPer
	t1 := min(t0+j.tokPer, j.n)
	rb := m.RowBytes()
	rows, dst := m.Rows, j.dst

	switch m.Type {
	case Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K:
		p.kRect(j, r0, r1, t0, t1)
	case Q8_0, Q4_0:
		if t1-t0 <= 8 {
			// Decode and small batches: each weight row is read once, all
			// tokens against it while it is in L1.
			p.blockRect(j, id, r0, r1, t0, t1)
			return
		}
		// Prefill: eight tokens at a time (their activations stay in L1)
		// against every row of the chunk; sixteen where the variant has
		// 16×16 tiles.
		step := 8
		if m.Type == Q4_0 && j.v.q4t1616 != nil || m.Type == Q8_0 && j.v.q8t1616 != nil {
			step = 16
		}
		for t := t0; t < t1; t += step {
			p.blockRect(j, id, r0, r1, t, min(t+step, t1))
		}
	default:
		cols := m.Cols
		var row []float32
		if m.Type != F32 || !littleEndian {
			if len(p.scratch[id]) < cols {
				p.scratch[id] = make([]float32, cols)
			}
			row = p.scratch[id][:cols]
		}
		half := j.v.f16
		if m.Type == BF16 {
			half = j.v.bf16
		}
		if t1-t0 == 1 && (m.Type == F16 || m.Type == BF16) && half != nil {
			// One token: convert on the fly, each half read once.
			xt := j.x[t0*cols : (t0+1)*cols]
			for r := r0; r < r1; r++ {
				dst[t0*rows+r] = half(m.Data[r*rb:(r+1)*rb], xt)
			}
			return
		}
		for r := r0; r < r1; r++ {
			w := m.Data[r*rb : (r+1)*rb]
			if row == nil {
				// F32 on a little-endian host: read the mapping in place.
				for t := t0; t < t1; t++ {
					dst[t*rows+r] = j.v.dot(f32view(w), j.x[t*cols:(t+1)*cols])
				}
				continue
			}
			rowTo(m.Type, row, w)
			for t := t0; t < t1; t++ {
				dst[t*rows+r] = j.v.dot(row, j.x[t*cols:(t+1)*cols])
			}
		}
	}
}

// blockRect computes rows [r0,r1) × tokens [t0,t1) of a quantized job with
// the widest kernels that fit: 4×4 tiles, then four rows × one token, one
// row × four tokens, and single dots for what is left.
func (p *Pool) blockRect(j *job, id, r0, r1, t0, t1 int) {
	m, v := j.m, j.v
	one, four, rows4, rows8, tile := v.q8, v.q8x4, v.q8r4, v.q8r8, v.q8t44
	if m.Type == Q4_0 {
		one, four, rows4, rows8, tile = v.q4, v.q4x4, v.q4r4, v.q4r8, v.q4t44
	}
	rb, rows, dst := m.RowBytes(), m.Rows, j.dst
	xq, stride := p.xq, j.stride
	out, o16 := &p.outs[id].quad, &p.outs[id].tile
	r := r0
	t84, t88 := v.q8t84, v.q8t88
	if m.Type == Q4_0 {
		t84, t88 = v.q4t84, v.q4t88
	}
	t168, t1616 := v.q8t168, v.q8t1616
	if m.Type == Q4_0 {
		t168, t1616 = v.q4t168, v.q4t1616
	}
	if t168 != nil && t1-t0 >= 8 && (t1-t0)%8 == 0 {
		// Prefill where the variant has 16-row tiles: they take all the tokens of sixteen rows at a
		// time, sixteen tokens a call where they can; the rows left over go to the 8-row tiles below.
		o128, o256, xa, n := &p.outs[id].tile16, &p.outs[id].tile1616, p.xa, j.n
		for ; r+16 <= r1; r += 16 {
			w := m.Data[r*rb : (r+16)*rb]
			pf := p.prefetchNext(j, id, r, r1)
			t := t0
			for ; t1616 != nil && t+16 <= t1; t += 16 {
				t1616(w, rb, xq[t*stride:], stride, xa[t:], n, pf, o256)
				for k := range 16 {
					copy(dst[(t+k)*rows+r:(t+k)*rows+r+16], o256[16*k:16*k+16])
				}
			}
			for ; t < t1; t += 8 {
				t168(w, rb, xq[t*stride:], stride, xa[t:], n, pf, o128)
				for k := range 8 {
					copy(dst[(t+k)*rows+r:(t+k)*rows+r+16], o128[16*k:16*k+16])
				}
			}
		}
	}
	if t84 != nil && t1-t0 >= 4 {
		// Prefill: 8×8 and 8×4 tiles where the variant has them; the rest below.
		o32, o64 := &p.outs[id].tile8, &p.outs[id].tile9
		xa, n := p.xa, j.n
		for ; r+8 <= r1; r += 8 {
			w := m.Data[r*rb : (r+8)*rb]
			pf := p.prefetchNext(j, id, r, r1)
			t := t0
			for ; t88 != nil && t+8 <= t1; t += 8 {
				t88(w, rb, xq[t*stride:], stride, xa[t:], n, pf, o64)
				for k := range 8 {
					copy(dst[(t+k)*rows+r:(t+k)*rows+r+8], o64[8*k:8*k+8])
				}
			}
			for ; t+4 <= t1; t += 4 {
				t84(w, rb, xq[t*stride:], stride, xa[t:], n, pf, o32)
				for k := range 4 {
					copy(dst[(t+k)*rows+r:(t+k)*rows+r+8], o32[8*k:8*k+8])
				}
			}
			for ; t < t1; t++ {
				rows8(w, rb, xq[t*stride:(t+1)*stride], auxFrom(xa, t), n, pf, &p.outs[id].oct)
				copy(dst[t*rows+r:t*rows+r+8], p.outs[id].oct[:])
			}
		}
	}
	if t1-t0 < 4 {
		// Decode: no tile fits, so eight rows per token, then what is left.
		o8 := &p.outs[id].oct
		for ; r+8 <= r1; r += 8 {
			w := m.Data[r*rb : (r+8)*rb]
			pf := p.prefetchNext(j, id, r, r1)
			for t := t0; t < t1; t++ {
				rows8(w, rb, xq[t*stride:(t+1)*stride], auxFrom(p.xa, t), j.n, pf, o8)
				copy(dst[t*rows+r:t*rows+r+8], o8[:])
			}
		}
	}
	for ; r+4 <= r1; r += 4 {
		w := m.Data[r*rb : (r+4)*rb]
		t := t0
		for ; t+4 <= t1; t += 4 {
			tile(w, rb, xq[t*stride:], stride, o16)
			for k := range 4 {
				dst[t*rows+r+k], dst[(t+1)*rows+r+k], dst[(t+2)*rows+r+k], dst[(t+3)*rows+r+k] = o16[4*k], o16[4*k+1], o16[4*k+2], o16[4*k+3]
			}
		}
		for ; t < t1; t++ {
			rows4(w[:rb], w[rb:2*rb], w[2*rb:3*rb], w[3*rb:], xq[t*stride:(t+1)*stride], out)
			dst[t*rows+r], dst[t*rows+r+1], dst[t*rows+r+2], dst[t*rows+r+3] = out[0], out[1], out[2], out[3]
		}
	}
	for ; r < r1; r++ {
		w := m.Data[r*rb : (r+1)*rb]
		t := t0
		for ; t+4 <= t1; t += 4 {
			four(w, xq[t*stride:], stride, out)
			dst[t*rows+r], dst[(t+1)*rows+r], dst[(t+2)*rows+r], dst[(t+3)*rows+r] = out[0], out[1], out[2], out[3]
		}
		for ; t < t1; t++ {
			dst[t*rows+r] = one(w, xq[t*stride:(t+1)*stride])
		}
	}
}
