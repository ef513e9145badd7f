package tokenizer

import "math"

// pair is a queued merge of the adjacent symbols left and right. The queue pops the
// smallest key first; a and b are payload (SPM: the merged length; BPE: the tokens the
// two sides spelled when queued).
type pair struct {
	key         uint64
	left, right int32
	a, b        int32
}

// spmKey orders SPM pairs by score, highest first, then by left position.
func spmKey(score float32, left int32) uint64 {
	if score == 0 {
		score = 0 // -0 ties with +0, as the float comparison in llama.cpp has it
	}
	u := math.Float32bits(score)
	if u&(1<<31) != 0 {
		u = ^u // negative: larger magnitude sorts lower
	} else {
		u |= 1 << 31
	}
	// u now increases with score; invert it so the highest score has the lowest key.
	return uint64(^u)<<32 | uint64(uint32(left))
}

// bpeKey orders BPE pairs by merge rank, lowest first, then by left position.
func bpeKey(rank, left int32) uint64 { return uint64(uint32(rank))<<32 | uint64(uint32(left)) }

// queue is a binary min-heap of pairs by key.
type queue struct{ items []pair }

func (q *queue) reset(capacity int) {
	if cap(q.items) < capacity {
		q.items = make([]pair, 0, capacity)
	}
	q.items = q.items[:0]
}

func (q *queue) len() int { return len(q.items) }

func (q *queue) push(v pair) {
	q.items = append(q.items, v)
	h := q.items
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= v.key {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = v
}

func (q *queue) pop() pair {
	h := q.items
	top := h[0]
	last := len(h) - 1
	v := h[last]
	h = h[:last]
	q.items = h
	if last == 0 {
		return top
	}
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && h[r].key < h[l].key {
			m = r
		}
		if v.key <= h[m].key {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = v
	return top
}
