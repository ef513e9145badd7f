package tokenizer

import "strings"

// symbol is a run of bytes of the text being merged, linked to its neighbours.
// A symbol merged into its left neighbour has n == 0.
type symbol struct {
	start, n   int32
	prev, next int32
	id         int32 // BPE: the token the bytes spell, or -1
}

// spmState is the scratch space of one Encode call.
type spmState struct {
	buf  []byte
	syms []symbol
	q    queue
}

// encodeSPM is llama.cpp's SentencePiece BPE (llm_tokenizer_spm_session): spaces become
// "▁" (one in front too if prefix), the text is cut into UTF-8 characters, and the
// adjacent pair that spells the token of highest score is merged, leftmost first on
// ties, until no pair spells a token. Each symbol then becomes its token or, failing
// that, one byte token per byte (the unknown token if the vocabulary has no byte token).
func (t *Tokenizer) encodeSPM(s *spmState, out []int32, frag string, prefix bool) []int32 {
	buf := s.buf[:0]
	if prefix {
		buf = append(buf, spaceMark...)
	}
	for {
		k := strings.IndexByte(frag, ' ')
		if k < 0 {
			buf = append(buf, frag...)
			break
		}
		buf = append(buf, frag[:k]...)
		buf = append(buf, spaceMark...)
		frag = frag[k+1:]
	}
	s.buf = buf
	if len(buf) == 0 {
		return out
	}

	syms := s.syms[:0]
	if cap(syms) < len(buf) {
		syms = make([]symbol, 0, len(buf))
	}
	for off := 0; off < len(buf); {
		// llama.cpp's unicode_len_utf8: the length the lead byte announces, whatever follows.
		n := min(utf8Len(buf[off]), len(buf)-off)
		syms = append(syms, symbol{start: int32(off), n: int32(n), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
		off += n
	}
	syms[len(syms)-1].next = -1
	s.syms = syms

	q := &s.q
	q.reset(2 * len(syms))
	try := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l, r := &syms[left], &syms[right]
		text := buf[l.start : r.start+r.n]
		id, ok := t.ids[string(text)]
		if !ok {
			return
		}
		q.push(pair{key: spmKey(t.scores[id], left), left: left, right: right, a: int32(len(text))})
	}
	for i := 1; i < len(syms); i++ {
		try(int32(i-1), int32(i))
	}
	for q.len() > 0 {
		b := q.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.a {
			continue // one side has changed since the pair was queued
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}

	for i := int32(0); i != -1; i = syms[i].next {
		sym := &syms[i]
		text := buf[sym.start : sym.start+sym.n]
		if id, ok := t.ids[string(text)]; ok {
			out = append(out, id)
			continue
		}
		for _, c := range text {
			if id := t.byteToken[c]; id >= 0 {
				out = append(out, id)
			} else if t.unk >= 0 {
				out = append(out, t.unk)
			}
		}
	}
	return out
}

// utf8Len is the sequence length a UTF-8 lead byte announces (1 for a stray
// continuation byte).
func utf8Len(c byte) int {
	switch {
	case c < 0xC0:
		return 1
	case c < 0xE0:
		return 2
	case c < 0xF0:
		return 3
	default:
		return 4
	}
}
