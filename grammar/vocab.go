package grammar

import (
	"math/bits"
	"slices"
	"sort"
)

// Vocab is a model's tokens as byte strings, in a trie, built once per model and shared by every
// matcher of every grammar.
type Vocab struct {
	n   int
	eog []int32 // sorted
	// The trie, nodes in depth-first order, node 0 the root. The edges of node i are
	// edges[first[i]:first[i+1]], sorted by byte; the tokens whose bytes end at node i are
	// toks[tokFirst[i]:tokFirst[i+1]].
	first    []int32
	edgeByte []byte
	edgeTo   []int32
	tokFirst []int32
	toks     []int32
	pieces   [][]byte
	// Node numbers are depth-first, so node i's subtree is nodes [i, end[i]) and its tokens
	// toks[tokFirst[i]:tokFirst[end[i]]]; below[i] is the set of bytes on the edges inside it.
	end   []int32
	below [][4]uint64
	// plain[i]: every token of node i's subtree is JSON string text so far (printable, no " or \,
	// valid UTF-8 up to a possibly unfinished last character).
	plain []bool
}

// utf8Step is the JSON-string-text automaton over bytes: 0 between characters, 1..7 inside a
// multi-byte character (how many and which continuation bytes are still due), -1 not string text.
func utf8Step(st int8, c byte) int8 {
	cont := c >= 0x80 && c <= 0xBF
	switch st {
	case 0:
		switch {
		case c >= 0x20 && c < 0x80 && c != '"' && c != '\\':
			return 0
		case c >= 0xC2 && c <= 0xDF:
			return 1
		case c == 0xE0:
			return 4
		case c == 0xED:
			return 5
		case c >= 0xE1 && c <= 0xEF:
			return 2
		case c == 0xF0:
			return 6
		case c >= 0xF1 && c <= 0xF3:
			return 3
		case c == 0xF4:
			return 7
		}
	case 1, 2, 3:
		if cont {
			return st - 1
		}
	case 4:
		if c >= 0xA0 && c <= 0xBF {
			return 1
		}
	case 5:
		if c >= 0x80 && c <= 0x9F {
			return 1
		}
	case 6:
		if c >= 0x90 && c <= 0xBF {
			return 2
		}
	case 7:
		if c >= 0x80 && c <= 0x8F {
			return 2
		}
	}
	return -1
}

// NewVocab indexes a vocabulary: pieces[i] is what token i decodes to (empty for control tokens,
// which a grammar never allows), eog the tokens that end generation, allowed exactly when the
// grammar's value is complete.
func NewVocab(pieces [][]byte, eog []int32) *Vocab {
	v := &Vocab{n: len(pieces), eog: slices.Sorted(slices.Values(eog)), pieces: pieces}
	order := make([]int32, 0, len(pieces))
	for i, p := range pieces {
		if len(p) > 0 && !v.IsEOG(int32(i)) {
			order = append(order, int32(i))
		}
	}
	sort.Slice(order, func(a, b int) bool {
		pa, pb := pieces[order[a]], pieces[order[b]]
		if c := string(pa); c != string(pb) {
			return c < string(pb)
		}
		return order[a] < order[b]
	})
	// Sorted tokens give the trie in depth-first order: walk them keeping the current path.
	v.first = []int32{0}
	v.tokFirst = []int32{0}
	path := []int32{0} // path[d] is the node at depth d of the current token
	children := [][]int32{nil}
	bytesOf := []byte{0}
	var cur []byte
	tokAt := [][]int32{nil}
	for _, id := range order {
		p := pieces[id]
		common := 0
		for common < len(cur) && common < len(p) && cur[common] == p[common] {
			common++
		}
		path = path[:common+1]
		for d := common; d < len(p); d++ {
			n := int32(len(children))
			children = append(children, nil)
			tokAt = append(tokAt, nil)
			bytesOf = append(bytesOf, p[d])
			parent := path[d]
			children[parent] = append(children[parent], n)
			path = append(path, n)
		}
		tokAt[path[len(p)]] = append(tokAt[path[len(p)]], id)
		cur = p
	}
	// Renumber depth-first (creation order already is) and lay the edges out flat.
	for i := range children {
		for _, c := range children[i] {
			v.edgeByte = append(v.edgeByte, bytesOf[c])
			v.edgeTo = append(v.edgeTo, c)
		}
		v.first = append(v.first, int32(len(v.edgeByte)))
		v.toks = append(v.toks, tokAt[i]...)
		v.tokFirst = append(v.tokFirst, int32(len(v.toks)))
	}
	n := len(children)
	v.end = make([]int32, n)
	v.below = make([][4]uint64, n)
	v.plain = make([]bool, n)
	ustate := make([]int8, n) // of the path from the root
	for i := range children {
		for _, c := range children[i] {
			ustate[c] = -1
			if ustate[i] >= 0 {
				ustate[c] = utf8Step(ustate[i], bytesOf[c])
			}
		}
	}
	for i := n - 1; i >= 0; i-- {
		v.plain[i] = ustate[i] >= 0
		for _, c := range children[i] {
			v.plain[i] = v.plain[i] && v.plain[c]
		}
		v.end[i] = int32(i + 1)
		for _, c := range children[i] {
			v.end[i] = max(v.end[i], v.end[c])
			b := bytesOf[c]
			v.below[i][b>>6] |= 1 << (b & 63)
			for k := range v.below[i] {
				v.below[i][k] |= v.below[c][k]
			}
		}
	}
	return v
}

// Size is the number of tokens.
func (v *Vocab) Size() int { return v.n }

// IsEOG reports whether id ends generation.
func (v *Vocab) IsEOG(id int32) bool {
	_, ok := slices.BinarySearch(v.eog, id)
	return ok
}

// Nodes is the number of trie nodes (for benchmarks and docs).
func (v *Vocab) Nodes() int { return len(v.first) - 1 }

// loops reports whether every byte of set steps from s back to s. The self-loops are worked out
// (once per state) only for states with many live bytes, where walking the trie costs most.
func (a *automaton) loops(s *state, set *[4]uint64) bool {
	if !s.loopDone {
		s.loopDone = true
		n := 0
		for _, w := range s.bytes {
			n += bits.OnesCount64(w)
		}
		if n >= 64 {
			for c := range 256 {
				if s.bytes[c>>6]&(1<<(c&63)) != 0 && a.step(s, byte(c)) == s {
					s.loop[c>>6] |= 1 << (c & 63)
				}
			}
		}
	}
	for i, w := range set {
		if w&^s.loop[i] != 0 {
			return false
		}
	}
	return true
}

// takesText reports (once per state) whether any JSON string text can follow s: every state that
// text leads to has a transition for every byte of text. It is what an unbounded string's
// content looks like, and lets masks take the vocabulary's text tokens in bulk.
func (a *automaton) takesText(s *state) bool {
	if s.textDone {
		return s.text
	}
	s.textDone = true
	if s.bytes[0]>>0x20 == 0 && s.bytes[1] == 0 { // no printable ASCII: not in a string
		return false
	}
	type pair struct {
		s *state
		u int8
	}
	seen := map[pair]bool{{s, 0}: true}
	queue := []pair{{s, 0}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for c := range 256 {
			u := utf8Step(p.u, byte(c))
			if u < 0 {
				continue
			}
			t := a.step(p.s, byte(c))
			if t == dead || t.gen != s.gen {
				return false
			}
			if q := (pair{t, u}); !seen[q] {
				if len(seen) >= 80 {
					return false // a string that counts its characters: walk it
				}
				seen[q] = true
				queue = append(queue, q)
			}
		}
	}
	s.text = true
	return true
}

// maskFor computes the tokens allowed in state s: those whose bytes all step to live states, and
// the end-of-generation tokens when s accepts.
func (a *automaton) maskFor(s *state, v *Vocab) []uint64 {
	if s.maskOf == v && s.mask != nil {
		return s.mask
	}
	mask := make([]uint64, (v.n+63)/64)
	if s.accept {
		for _, id := range v.eog {
			if int(id) < v.n && id >= 0 {
				mask[id>>6] |= 1 << (id & 63)
			}
		}
	}
	type frame struct {
		node int32
		s    *state
	}
	stack := []frame{{0, s}}
	plainOK := a.takesText(s)
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		bs := &f.s.bytes
		for e := v.first[f.node]; e < v.first[f.node+1]; e++ {
			c := v.edgeByte[e]
			if bs[c>>6]&(1<<(c&63)) == 0 {
				continue
			}
			if plainOK && v.plain[v.edgeTo[e]] {
				// Inside a string that takes any text: every token of text is allowed (plain[n]
				// speaks of the tokens' whole bytes, so this holds at any depth).
				to := v.edgeTo[e]
				for _, id := range v.toks[v.tokFirst[to]:v.tokFirst[v.end[to]]] {
					mask[id>>6] |= 1 << (id & 63)
				}
				continue
			}
			t := a.step(f.s, c)
			if t == dead {
				continue
			}
			to := v.edgeTo[e]
			last := to + 1
			if v.first[to] < v.first[to+1] && a.loops(t, &v.below[to]) {
				// Every byte below keeps t as it is (the characters of a string): the whole subtree
				// is allowed without walking it.
				last = v.end[to]
			} else if v.first[to] < v.first[to+1] {
				stack = append(stack, frame{to, t})
			}
			for _, id := range v.toks[v.tokFirst[to]:v.tokFirst[last]] {
				mask[id>>6] |= 1 << (id & 63)
			}
		}
	}
	if s.gen == a.gen && a.gen.masks < maxMasks {
		a.gen.masks++
		s.mask, s.maskOf = mask, v
	}
	return mask
}
