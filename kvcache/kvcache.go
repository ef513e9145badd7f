// Package kvcache stores the keys and values of earlier tokens, per sequence and per layer, so that a
// decode step computes one new token instead of the whole sequence again.
package kvcache

import (
	"errors"
	"fmt"
	"math"

	"edgelm/kernels"
)

// ErrFull is returned when a sequence has no room for another token.
var ErrFull = errors.New("kvcache: context full")

// Shape is what one sequence stores per token.
type Shape struct {
	Layers  int
	KVHeads int
	HeadDim int
}

// KVDim is the width of one token's keys (or values) in one layer.
func (s Shape) KVDim() int { return s.KVHeads * s.HeadDim }

// Seq is the cache of one sequence: for each slot, the position of its token and, per layer, its key
// (already rotated by RoPE at that position) and value.
type Seq struct {
	shape Shape
	cap   int
	n     int
	pos   []int32     // (cap) position of the token in each slot
	k, v  [][]float32 // per layer: (cap, kv_dim)
}

// NewSeq makes an empty sequence cache with room for capacity tokens.
func NewSeq(shape Shape, capacity int) *Seq {
	s := &Seq{shape: shape, cap: capacity, pos: make([]int32, capacity)}
	s.k = make([][]float32, shape.Layers)
	s.v = make([][]float32, shape.Layers)
	for l := range s.k {
		s.k[l] = make([]float32, capacity*shape.KVDim())
		s.v[l] = make([]float32, capacity*shape.KVDim())
	}
	return s
}

// Len is the number of cached tokens.
func (s *Seq) Len() int { return s.n }

// Cap is the number of tokens the sequence can hold.
func (s *Seq) Cap() int { return s.cap }

// Bytes is the memory the cache holds for its capacity.
func (s *Seq) Bytes() int64 { return int64(s.cap) * int64(s.shape.Layers) * int64(s.shape.KVDim()) * 8 }

// Positions returns the positions of the cached tokens, in slot order.
func (s *Seq) Positions() []int32 { return s.pos[:s.n] }

// Append reserves a slot for a token at pos and returns it.
func (s *Seq) Append(pos int32) (int, error) {
	if s.n == s.cap {
		return 0, fmt.Errorf("%w (%d tokens)", ErrFull, s.cap)
	}
	s.pos[s.n] = pos
	s.n++
	return s.n - 1, nil
}

// Truncate drops the tokens from slot n on.
func (s *Seq) Truncate(n int) {
	if n < s.n {
		s.n = n
	}
}

// Store writes the key and value of layer l for slot.
func (s *Seq) Store(l, slot int, k, v []float32) {
	d := s.shape.KVDim()
	copy(s.k[l][slot*d:(slot+1)*d], k)
	copy(s.v[l][slot*d:(slot+1)*d], v)
}

// Attention describes how a query attends to the cache.
type Attention struct {
	Heads   int     // query heads; Heads/KVHeads share each key head
	Scale   float32 // multiplies q·k
	Softcap float32 // 0 = none; else score = cap*tanh(score/cap)
	Window  int     // 0 = none; else keys with pos <= qpos-Window are masked
}

// Attend computes, for each query head, softmax(scores)·V over the cached slots whose position is at
// most qpos (and within the window), writing (heads*head_dim) floats to out. scores is scratch of at
// least Len() floats.
func (s *Seq) Attend(l int, a Attention, q []float32, qpos int32, out, scores []float32) {
	hd := s.shape.HeadDim
	d := s.shape.KVDim()
	group := a.Heads / s.shape.KVHeads
	scores = scores[:s.n]
	ks, vs := s.k[l], s.v[l]
	for h := 0; h < a.Heads; h++ {
		kh := h / group
		qh := q[h*hd : (h+1)*hd]
		oh := out[h*hd : (h+1)*hd]
		for j := range scores {
			p := s.pos[j]
			if p > qpos || (a.Window > 0 && qpos-p >= int32(a.Window)) {
				scores[j] = float32(math.Inf(-1))
				continue
			}
			sc := kernels.Dot(qh, ks[j*d+kh*hd:j*d+(kh+1)*hd]) * a.Scale
			if a.Softcap > 0 {
				sc = a.Softcap * float32(math.Tanh(float64(sc/a.Softcap)))
			}
			scores[j] = sc
		}
		kernels.Softmax(scores)
		clear(oh)
		for j, w := range scores {
			if w != 0 {
				kernels.Axpy(w, vs[j*d+kh*hd:j*d+(kh+1)*hd], oh)
			}
		}
	}
}
