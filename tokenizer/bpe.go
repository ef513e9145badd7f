package tokenizer

import "unicode/utf8"

// byteRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
// the other 68 bytes for U+0100 onwards in byte order, so that every byte is a visible
// character ("Ġ" is the space). runeByte is its inverse, -1 where undefined.
var (
	byteRune [256]rune
	runeByte [0x100 + 68]int16
)

func init() {
	for i := range runeByte {
		runeByte[i] = -1
	}
	next := rune(0x100)
	for b := range 256 {
		r := rune(b)
		if !(b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE) {
			r = next
			next++
		}
		byteRune[b] = r
		runeByte[r] = int16(b)
	}
}

// bpeState is the scratch space of one Encode call.
type bpeState struct {
	words []span
	segs  []span
	runes []rune
	offs  []int
	enc   []byte
	syms  []symbol
	q     queue
}

// encodeBPE is llama.cpp's byte-level BPE (llm_tokenizer_bpe_session): the
// pre-tokenizer cuts the text into words; each word is spelled in the GPT-2 byte
// alphabet, one symbol per byte, and the adjacent pair with the lowest-ranked merge is
// merged, leftmost first on ties, until no merge applies. With ignoreMerges a word that
// is itself a token is taken whole. A symbol that is no token (only possible with an
// incomplete vocabulary) becomes the unknown token, or nothing if there is none.
func (t *Tokenizer) encodeBPE(s *bpeState, out []int32, frag string) []int32 {
	s.words = t.split.split(frag, s.words[:0], &s.segs, &s.runes, &s.offs)
	for _, w := range s.words {
		out = t.bpeWord(s, out, frag[w.start:w.end])
	}
	return out
}

func (t *Tokenizer) bpeWord(s *bpeState, out []int32, word string) []int32 {
	if t.ignoreMerges {
		enc := s.enc[:0]
		for i := 0; i < len(word); i++ {
			enc = utf8.AppendRune(enc, byteRune[word[i]])
		}
		s.enc = enc
		if id, ok := t.ids[string(enc)]; ok {
			return append(out, id)
		}
	}
	syms := s.syms[:0]
	if cap(syms) < len(word) {
		syms = make([]symbol, 0, len(word))
	}
	for i := 0; i < len(word); i++ {
		syms = append(syms, symbol{start: int32(i), n: 1, prev: int32(i - 1), next: int32(i + 1), id: t.byteSymbol[word[i]]})
	}
	syms[len(syms)-1].next = -1
	s.syms = syms

	q := &s.q
	q.reset(2 * len(syms))
	try := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		lid, rid := syms[left].id, syms[right].id
		if lid < 0 || rid < 0 {
			return
		}
		m, ok := t.merges[uint64(uint32(lid))<<32|uint64(uint32(rid))]
		if !ok {
			return
		}
		q.push(pair{key: bpeKey(m.rank, left), left: left, right: right, a: lid, b: rid})
	}
	for i := 1; i < len(syms); i++ {
		try(int32(i-1), int32(i))
	}
	for q.len() > 0 {
		b := q.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.id != b.a || r.id != b.b {
			continue // one side has changed since the pair was queued
		}
		l.n += r.n
		l.id = t.merges[uint64(uint32(b.a))<<32|uint64(uint32(b.b))].id
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	for i := int32(0); i != -1; i = syms[i].next {
		if id := syms[i].id; id >= 0 {
			out = append(out, id)
		} else if t.unk >= 0 {
			out = append(out, t.unk)
		}
	}
	return out
}
