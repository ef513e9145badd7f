// Package kvcache stores the keys and values of earlier tokens, per sequence and per layer, so that a
// decode step computes one new token instead of the whole sequence again. Keys and values are stored
// as f32, f16, q8_0 or q4_0 (chosen separately), read directly by attention (one row at a time, never a
// dequantized copy of the cache), and a full sequence can drop tokens from its middle (attention sinks
// plus a sliding window) without touching the keys it keeps: see Shift.
package kvcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"edgelm/kernels"
	"edgelm/quant"
)

// ErrFull is returned when a sequence has no room for another token.
var ErrFull = errors.New("kvcache: context full")

// Type is how keys or values are stored.
type Type uint8

const (
	F32 Type = iota
	F16
	Q8_0
	Q4_0
)

var typeNames = [...]string{"f32", "f16", "q8_0", "q4_0"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", t)
}

// ParseType reads "f32", "f16", "q8_0" or "q4_0" ("" is f32).
func ParseType(s string) (Type, error) {
	if s == "" {
		return F32, nil
	}
	for i, n := range typeNames {
		if s == n {
			return Type(i), nil
		}
	}
	return 0, fmt.Errorf("kvcache: unknown cache type %q (want f32, f16, q8_0 or q4_0)", s)
}

// RowBytes is the storage of n values of type t (n a multiple of 32 for the block types).
func (t Type) RowBytes(n int) int {
	switch t {
	case F16:
		return 2 * n
	case Q8_0:
		return n / quant.QK * quant.Q8_0Bytes
	case Q4_0:
		return n / quant.QK * quant.Q4_0Bytes
	}
	return 4 * n
}

// Shape is what one sequence stores per token, and how.
type Shape struct {
	Layers  int
	KVHeads int
	HeadDim int
	TypeK   Type
	TypeV   Type
}

// KVDim is the width of one token's keys (or values) in one layer.
func (s Shape) KVDim() int { return s.KVHeads * s.HeadDim }

// BytesPerToken is the storage of one token's keys and values over all layers.
func (s Shape) BytesPerToken() int64 {
	return int64(s.Layers) * int64(s.TypeK.RowBytes(s.KVDim())+s.TypeV.RowBytes(s.KVDim()))
}

// rotatesKeys says whether keys are stored rotated (hadamard over spans of keySpan values, the
// query rotated alike): 4-bit keys whose heads are whole 32-value blocks, so that no rotated span
// mixes two heads, whose queries differ. On tinydoc it lowers the q4_0 cache's mean KLD by 7 % and
// its 99th percentile by 16 % (docs/kv-cache.md); spans of 32 did not help there.
func (s Shape) rotatesKeys() bool { return s.TypeK == Q4_0 && s.HeadDim%32 == 0 && rotateKeys }

// keySpan is the span of the keys' rotation: the largest power of two dividing the head size (the
// whole head for the usual sizes), at most maxRotation.
func (s Shape) keySpan() int { return min(s.HeadDim&-s.HeadDim, maxRotation) }

// rotatesValues says whether values are stored rotated by hadamard over each 32-value block;
// attention rotates its output back (a weighted sum of rotated values is the rotated sum). On
// tinydoc it lowers the mean KLD of 4-bit values by 40 %; spans of a whole head helped less.
func (s Shape) rotatesValues() bool { return s.TypeV == Q4_0 && s.HeadDim%32 == 0 && rotateValues }

// valueSpan is the span of the values' rotation.
const valueSpan = 32

// rotateKeys and rotateValues are switched off only by tests, to compare.
var rotateKeys, rotateValues = true, true

// Check reports whether the types fit the shape: block types need rows of whole blocks.
func (s Shape) Check() error {
	for _, t := range []Type{s.TypeK, s.TypeV} {
		if (t == Q8_0 || t == Q4_0) && s.KVDim()%quant.QK != 0 {
			return fmt.Errorf("kvcache: %s needs rows of a multiple of %d values; this model's are %d", t, quant.QK, s.KVDim())
		}
		if t > Q4_0 {
			return fmt.Errorf("kvcache: unknown type %d", t)
		}
	}
	return nil
}

// Seq is the cache of one sequence. For each slot it keeps the token's logical position (the one
// attention masks and distances use) and its rotation offset: how far the stored key's RoPE position
// lies beyond the logical one after Shift moved the token down. Keys are never re-rotated; a query
// is rotated by the offset instead, so a quantized key never drifts.
type Seq struct {
	shape      Shape
	cap        int
	n          int
	pos        []int32  // (cap) logical position of each slot
	off        []int32  // (cap) stored rotation position minus logical position
	k, v       [][]byte // per layer: (allocated slots, row bytes)
	rowK, rowV int
	rotK, rotV bool // keys, values are stored rotated (rotatesKeys, rotatesValues)
	rotNK      int  // over spans of this many values
	rotNV      int
	alloc      int // slots allocated in k and v
	shifted    int // tokens dropped by Shift over the sequence's life
}

// NewSeq makes an empty sequence cache with room for capacity tokens. Storage grows as tokens come.
func NewSeq(shape Shape, capacity int) *Seq {
	d := shape.KVDim()
	return &Seq{
		shape: shape, cap: capacity,
		pos: make([]int32, capacity), off: make([]int32, capacity),
		k: make([][]byte, shape.Layers), v: make([][]byte, shape.Layers),
		rowK: shape.TypeK.RowBytes(d), rowV: shape.TypeV.RowBytes(d),
		rotK: shape.rotatesKeys(), rotV: shape.rotatesValues(), rotNK: shape.keySpan(), rotNV: valueSpan,
	}
}

// Shape returns what the sequence stores per token.
func (s *Seq) Shape() Shape { return s.shape }

// Len is the number of cached tokens.
func (s *Seq) Len() int { return s.n }

// Cap is the number of tokens the sequence can hold.
func (s *Seq) Cap() int { return s.cap }

// Shifted is the number of tokens Shift has dropped.
func (s *Seq) Shifted() int { return s.shifted }

// Bytes is the memory the cache holds now.
func (s *Seq) Bytes() int64 {
	return int64(s.alloc)*int64(s.shape.Layers)*int64(s.rowK+s.rowV) + int64(s.cap)*8
}

// Positions returns the logical positions of the cached tokens, in slot order.
func (s *Seq) Positions() []int32 { return s.pos[:s.n] }

// Append reserves a slot for a token at logical position pos and returns it.
func (s *Seq) Append(pos int32) (int, error) {
	if s.n == s.cap {
		return 0, fmt.Errorf("%w (%d tokens)", ErrFull, s.cap)
	}
	if s.n == s.alloc {
		s.grow(min(s.cap, max(16, 2*s.alloc)))
	}
	s.pos[s.n] = pos
	s.off[s.n] = 0
	s.n++
	return s.n - 1, nil
}

func (s *Seq) grow(slots int) {
	for l := range s.k {
		k := make([]byte, slots*s.rowK)
		copy(k, s.k[l])
		s.k[l] = k
		v := make([]byte, slots*s.rowV)
		copy(v, s.v[l])
		s.v[l] = v
	}
	s.alloc = slots
}

// Truncate drops the tokens from slot n on.
func (s *Seq) Truncate(n int) {
	if n < s.n {
		s.n = max(n, 0)
	}
}

// CopyPrefix makes s hold the first n tokens of src (same shape), replacing what it held.
func (s *Seq) CopyPrefix(src *Seq, n int) {
	n = min(n, src.n, s.cap)
	if s.alloc < n {
		s.grow(n)
	}
	for l := range s.k {
		copy(s.k[l][:n*s.rowK], src.k[l][:n*s.rowK])
		copy(s.v[l][:n*s.rowV], src.v[l][:n*s.rowV])
	}
	copy(s.pos, src.pos[:n])
	copy(s.off, src.off[:n])
	s.n = n
}

// Shift drops the discard tokens after the first keep (the attention sinks), moves the later ones
// down and makes their logical positions discard smaller, so the sequence goes on with positions it
// was trained on. Their keys stay as stored: the rotation offset records the difference.
func (s *Seq) Shift(keep, discard int) {
	if keep < 0 || discard <= 0 || keep+discard > s.n {
		return
	}
	from, to := keep+discard, keep
	m := s.n - from
	for l := range s.k {
		copy(s.k[l][to*s.rowK:], s.k[l][from*s.rowK:(from+m)*s.rowK])
		copy(s.v[l][to*s.rowV:], s.v[l][from*s.rowV:(from+m)*s.rowV])
	}
	for i := 0; i < m; i++ {
		s.pos[to+i] = s.pos[from+i] - int32(discard)
		s.off[to+i] = s.off[from+i] + int32(discard)
	}
	s.n -= discard
	s.shifted += discard
}

// Store writes the key and value of layer l for slot. k must already be rotated for the slot's
// logical position.
func (s *Seq) Store(l, slot int, k, v []float32) {
	if s.rotK {
		quantizeQ4_0Rotated(s.k[l][slot*s.rowK:(slot+1)*s.rowK], k, s.rotNK)
	} else {
		encode(s.shape.TypeK, s.k[l][slot*s.rowK:(slot+1)*s.rowK], k)
	}
	if s.rotV {
		quantizeQ4_0Rotated(s.v[l][slot*s.rowV:(slot+1)*s.rowV], v, s.rotNV)
	} else {
		encode(s.shape.TypeV, s.v[l][slot*s.rowV:(slot+1)*s.rowV], v)
	}
}

// Key decodes the stored key of layer l at slot into dst (kv_dim values), as attention sees it.
func (s *Seq) Key(l, slot int, dst []float32) {
	decode(s.shape.TypeK, dst, s.k[l][slot*s.rowK:(slot+1)*s.rowK])
	if s.rotK {
		s.rotateSpans(dst, s.rotNK)
	}
}

// Offset is the rotation offset of slot.
func (s *Seq) Offset(slot int) int32 { return s.off[slot] }

func encode(t Type, dst []byte, src []float32) {
	switch t {
	case F32:
		for i, x := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	case F16:
		kernels.FloatToHalf(dst, src) // quant.F32ToF16 per value, bit for bit
	case Q8_0:
		quant.QuantizeQ8_0(dst, src)
	case Q4_0:
		quantizeQ4_0(dst, src) // ggml's layout, a better scale per block
	}
}

func decode(t Type, dst []float32, src []byte) {
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		kernels.HalfToFloat(dst, src) // quant.F16ToF32 per value, bit for bit
	case Q8_0:
		kernels.DequantQ8_0(dst, src) // quant.DequantizeQ8_0, bit for bit
	case Q4_0:
		kernels.DequantQ4_0(dst, src) // quant.DequantizeQ4_0, bit for bit
	}
}

// Attention describes how a query attends to the cache.
type Attention struct {
	Heads   int     // query heads; Heads/KVHeads share each key head
	Scale   float32 // multiplies q·k
	Softcap float32 // 0 = none; else score = cap*tanh(score/cap)
	Window  int     // 0 = none; else keys with pos <= qpos-Window are masked
	// Rotate applies the RoPE rotation of delta positions to every head of q (in place). It is
	// needed only once Shift has run.
	Rotate func(q []float32, delta int32)
	// Kernels run the products and the softmax: the model's choice (the zero Set: the process's).
	Kernels kernels.Set
}

// score is a query head's attention score for the dot product sv of its query and a key: scaled,
// then soft-capped where the model caps.
func (a Attention) score(sv float32) float32 {
	sv *= a.Scale
	if a.Softcap > 0 {
		sv = a.Softcap * float32(math.Tanh(float64(sv/a.Softcap)))
	}
	return sv
}

// Scratch is the per-call working memory of Attend; one per goroutine, reused across calls.
type Scratch struct {
	scores []float32 // (heads, len)
	rows   []float32 // (attendChunk, kv_dim) decoded keys or values
	qrot   [][]float32
	qoff   []int32
	ends   []int     // the slots each query sees
	one    [1]int32  // AttendHeads' one query position
	qh     []float32 // the query rotated as the keys are stored (rotK)
}

// Attend computes, for each query head, softmax(scores)·V over the cached slots whose logical position
// is at most qpos (and within the window), writing heads*head_dim floats to out. Each key and value row
// is decoded once per call, into a row-sized scratch.
func (s *Seq) Attend(l int, a Attention, q []float32, qpos int32, out []float32, sc *Scratch) {
	s.AttendHeads(l, a, q, qpos, out, sc, 0, s.shape.KVHeads)
}

// AttendHeads is Attend for the query heads that share key heads [kh0, kh1) only: it reads those
// heads of q and writes those heads of out, leaving the others alone, with the bits Attend gives them.
// Calls for disjoint ranges may run at once (each with its own Scratch), which is how one token's
// attention is spread over several cores.
func (s *Seq) AttendHeads(l int, a Attention, q []float32, qpos int32, out []float32, sc *Scratch, kh0, kh1 int) {
	sc.one[0] = qpos
	s.attend(l, a, q, sc.one[:], out, sc, kh0, kh1)
}

// AttendBlock is Attend for m = len(qpos) queries of this sequence at once (a prompt's tokens during
// prefill): query g is q[g*qd:(g+1)*qd] at position qpos[g], its result out[g*qd:(g+1)*qd], with
// qd = a.Heads*head_dim, and every query's result has the bits Attend gives it. Each key and value
// row is decoded once for all m queries instead of once per query, which is what a quantized or f16
// cache spends most of a prefill's attention on.
func (s *Seq) AttendBlock(l int, a Attention, q []float32, qpos []int32, out []float32, sc *Scratch) {
	qd := a.Heads * s.shape.HeadDim
	shifted := false
	if a.Rotate != nil {
		for _, o := range s.off[:s.n] {
			shifted = shifted || o != 0
		}
	}
	if shifted || (s.shape.TypeK == F32 && s.shape.TypeV == F32) {
		// Each query needs its own rotations, or there is nothing to share (f32 rows are read in place).
		for g, p := range qpos {
			s.Attend(l, a, q[g*qd:(g+1)*qd], p, out[g*qd:(g+1)*qd], sc)
		}
		return
	}
	s.attend(l, a, q, qpos, out, sc, 0, s.shape.KVHeads)
}

// attend is AttendHeads for the len(qpos) queries of AttendBlock. Per query it does what attention of
// that query alone does, in the same order (so the same bits); the queries only share the decoding of
// each key and value row. With more than one query no slot may need a query rotation (AttendBlock
// sees to it): the rotation cache of sc holds one query's.
func (s *Seq) attend(l int, a Attention, q []float32, qpos []int32, out []float32, sc *Scratch, kh0, kh1 int) {
	m := len(qpos)
	hd := s.shape.HeadDim
	qd := a.Heads * hd
	group := a.Heads / s.shape.KVHeads
	h0, h1 := kh0*group, kh1*group // the query heads
	nh := h1 - h0
	e0, e1 := kh0*hd, kh1*hd // their keys' and values' elements in a row
	if t := s.shape.TypeK; (t == Q8_0 || t == Q4_0) && (e0%32 != 0 || e1%32 != 0) {
		e0, e1 = 0, s.shape.KVDim() // blocks straddle the range: decode whole rows
	}
	if t := s.shape.TypeV; (t == Q8_0 || t == Q4_0) && (e0%32 != 0 || e1%32 != 0) {
		e0, e1 = 0, s.shape.KVDim()
	}
	// Slots past the last one a query sees take no part: a prompt's token during prefill sees the
	// slots before it, as it will in decode, and its softmax has the same length either way.
	if cap(sc.ends) < m {
		sc.ends = make([]int, m)
	}
	ends := sc.ends[:m]
	nmax := 0
	for g, p := range qpos {
		n := s.n
		for n > 0 && masked(s.pos[n-1], p, a.Window) {
			n--
		}
		ends[g] = n
		nmax = max(nmax, n)
	}
	if cap(sc.scores) < m*nh*nmax {
		sc.scores = make([]float32, m*nh*nmax)
	}
	w := e1 - e0
	if cap(sc.rows) < attendChunk*w {
		sc.rows = make([]float32, attendChunk*w)
	}
	// Query g's scores are scores[g*nh*nmax:][h*ends[g]+j], heads h counted from h0.
	scores := sc.scores[:m*nh*nmax]
	sc.qoff = sc.qoff[:0]
	if s.rotK {
		// The stored keys are rotated: so are the queries' heads, once per call.
		if cap(sc.qh) < len(q) {
			sc.qh = make([]float32, len(q))
		}
		for g := range m {
			r := sc.qh[g*qd+h0*hd : g*qd+h1*hd]
			copy(r, q[g*qd+h0*hd:g*qd+h1*hd])
			s.rotateSpans(r, s.rotNK)
		}
	}
	ninf := float32(math.Inf(-1))
	// Keys, then values, come attendChunk slots at a time (decoded once for all queries), and each
	// query's heads meet them in one kernel call per key head: per score and per output element the
	// arithmetic of one DotHeads or AxpyHeads per slot, in slot order, so the bits of those calls.
	for j0 := 0; j0 < nmax; j0 += attendChunk {
		j1 := min(j0+attendChunk, nmax)
		k, ks := s.rows(s.shape.TypeK, s.k[l], s.rowK, j0, j1, e0, e1, sc.rows)
		s.prefetch(s.shape.TypeK, s.k[l], s.rowK, j1, min(j1+attendChunk, nmax), e0, e1)
		for g, n := range ends {
			jn := min(j1, n)
			if j0 >= jn {
				continue
			}
			sg := scores[g*nh*nmax:]
			qg := q[g*qd : (g+1)*qd]
			for a0 := j0; a0 < jn; {
				a1 := a0 + 1 // a run of slots with one query rotation
				for a1 < jn && s.off[a1] == s.off[a0] {
					a1++
				}
				var qj []float32
				if off := s.off[a0]; s.rotK && (off == 0 || a.Rotate == nil) {
					qj = sc.qh[g*qd : (g+1)*qd]
				} else {
					qj = s.query(qg, off, a, sc)
				}
				if k == nil {
					// All the key heads at once: each key row is read front to back.
					a.Kernels.DotHeadsRowsF16(sg[a0:], n, qj[h0*hd:h1*hd], nh, kh1-kh0, s.k[l][a0*s.rowK+2*kh0*hd:], s.rowK/2, a1-a0)
				}
				// Float keys one key head at a time: measured faster than all at once for f32 rows
				// (bench-1b tg32 @ d2048: 30.6 against 28.2 t/s), which are twice as long.
				for kh := kh0; kh < kh1 && k != nil; kh++ {
					a.Kernels.DotHeadsRows(sg[(kh-kh0)*group*n+a0:], n, qj[kh*group*hd:(kh+1)*group*hd], group, 1,
						k[(a0-j0)*ks+kh*hd-e0:], ks, a1-a0)
				}
				a0 = a1
			}
			for h := range nh {
				row := sg[h*n+j0 : h*n+jn]
				if a.Softcap > 0 {
					for i, sv := range row {
						row[i] = a.score(sv)
					}
				} else {
					a.Kernels.Scale(row, a.Scale) // score without a cap
				}
			}
			for j := j0; j < jn; j++ {
				if masked(s.pos[j], qpos[g], a.Window) {
					for h := range nh {
						sg[h*n+j] = ninf
					}
				}
			}
		}
	}
	for g, n := range ends {
		sg := scores[g*nh*nmax:]
		for h := 0; h < nh; h++ {
			a.Kernels.Softmax(sg[h*n : (h+1)*n])
		}
		clear(out[g*qd+h0*hd : g*qd+h1*hd])
	}
	// A weight of 0 (a masked slot) adds 0·v, +0 or -0, which leaves every sum as it is (none
	// starts at -0).
	for j0 := 0; j0 < nmax; j0 += attendChunk {
		j1 := min(j0+attendChunk, nmax)
		v, vs := s.rows(s.shape.TypeV, s.v[l], s.rowV, j0, j1, e0, e1, sc.rows)
		s.prefetch(s.shape.TypeV, s.v[l], s.rowV, j1, min(j1+attendChunk, nmax), e0, e1)
		for g, n := range ends {
			jn := min(j1, n)
			if j0 >= jn {
				continue
			}
			sg := scores[g*nh*nmax:]
			og := out[g*qd : (g+1)*qd]
			for kh := kh0; kh < kh1; kh++ {
				wh, oh := sg[(kh-kh0)*group*n+j0:], og[kh*group*hd:(kh+1)*group*hd]
				if v == nil {
					a.Kernels.AxpyHeadsRowsF16(wh, n, group, s.v[l][j0*s.rowV+2*kh*hd:], s.rowV/2, jn-j0, oh)
				} else {
					a.Kernels.AxpyHeadsRows(wh, n, group, v[kh*hd-e0:], vs, jn-j0, oh)
				}
			}
		}
	}
	if s.rotV {
		for g := range ends {
			s.rotateSpans(out[g*qd+h0*hd:g*qd+h1*hd], s.rotNV)
		}
	}
}

// attendChunk is how many slots attend takes at a time: their keys or values decoded (a quantized
// cache) fill attendChunk rows of scratch, 64 KB for 512 elements.
const attendChunk = 32

// rows returns elements [e0, e1) of the cached rows [j0, j1) of data (rowBytes apart, type t) as
// floats, and the distance between rows in them: a view of an f32 cache, nil for an f16 one (the
// F16 kernels read it as it is stored), else decoded into buf.
func (s *Seq) rows(t Type, data []byte, rowBytes, j0, j1, e0, e1 int, buf []float32) ([]float32, int) {
	switch t {
	case F16:
		return nil, 0
	case F32:
		stride := rowBytes / 4
		return f32view(data)[j0*stride+e0 : (j1-1)*stride+e1], stride
	}
	w := e1 - e0
	for j := j0; j < j1; j++ {
		decode(t, buf[(j-j0)*w:(j-j0+1)*w], data[j*rowBytes+t.RowBytes(e0):j*rowBytes+t.RowBytes(e1)])
	}
	return buf[:(j1-j0)*w], w
}

// prefetch asks for elements [e0, e1) of the cached rows [j0, j1) in L2, while the chunk before
// them is computed: the kernels read a chunk's rows in an order (a pair of keys at a time, all
// their key heads) that the hardware prefetchers follow late from DRAM.
func (s *Seq) prefetch(t Type, data []byte, rowBytes, j0, j1, e0, e1 int) {
	if j0 >= j1 {
		return
	}
	b0, b1 := t.RowBytes(e0), t.RowBytes(e1)
	kernels.PrefetchRows(data[j0*rowBytes+b0:], b1-b0, rowBytes, j1-j0)
}

// masked reports whether a query at qpos does not see a key at p: p is
// ahead of it, or (window > 0) window or more positions behind.
func masked(p, qpos int32, window int) bool {
	return p > qpos || (window > 0 && qpos-p >= int32(window))
}

// query returns q rotated by off more positions (and by the keys' Hadamard rotation when they are
// stored rotated), computing each distinct offset's rotation once.
func (s *Seq) query(q []float32, off int32, a Attention, sc *Scratch) []float32 {
	if off == 0 || a.Rotate == nil {
		return q
	}
	for i, o := range sc.qoff {
		if o == off {
			return sc.qrot[i][:len(q)]
		}
	}
	i := len(sc.qoff)
	sc.qoff = append(sc.qoff, off)
	if len(sc.qrot) <= i {
		sc.qrot = append(sc.qrot, make([]float32, len(q)))
	}
	if cap(sc.qrot[i]) < len(q) {
		sc.qrot[i] = make([]float32, len(q))
	}
	r := sc.qrot[i][:len(q)]
	copy(r, q)
	a.Rotate(r, off)
	if s.rotK {
		s.rotateSpans(r, s.rotNK) // after RoPE, as the stored keys were
	}
	return r
}

// rotateSpans applies hadamard to each span of n values of x.
func (s *Seq) rotateSpans(x []float32, n int) {
	for i := 0; i+n <= len(x); i += n {
		hadamard(x[i : i+n])
	}
}
