// Package grammar constrains generation to a language: at each step it tells which tokens of a
// vocabulary can continue a valid output, so the sampler never picks one that cannot.
//
// A Grammar is a context-free grammar over bytes (rules of alternatives of sequences of byte sets
// and rule references, no left recursion), built from a JSON schema (FromJSONSchema) or for any
// JSON object (JSONObject). A Matcher follows one generation through it. Masks are computed by
// walking a trie of the vocabulary's token bytes (Vocab, built once per model) with the parser's
// state, so a step costs the trie nodes whose prefix is still valid, not vocabulary × token length;
// parser states are interned and their byte transitions and token masks cached, so a state that
// recurs (inside a string, between array items) costs a lookup.
//
// Typical use, per request:
//
//	g, err := grammar.FromJSONSchema(schema) // or grammar.JSONObject()
//	m := g.Matcher(vocab)                     // vocab := grammar.NewVocab(pieces, eog), once per model
//	for {
//		allowed := m.Allowed()            // bit i of allowed[i/64]: token i may come next
//		tok := sample(logits, allowed)
//		if m.IsEOG(tok) { break }         // only allowed once the value is complete
//		m.Accept(tok)
//		if m.Finished() { break }         // complete, and nothing may follow
//	}
package grammar

import (
	"errors"
	"fmt"
)

// A Grammar is immutable once built and safe for concurrent use; its caches are shared by all
// its matchers.
type Grammar struct {
	elems []elem
	sets  [][4]uint64 // byte sets, bit b of sets[i][b/64]
	alts  [][]int32   // rule -> start positions of its alternatives in elems
	start int32       // the root rule
	auto  *automaton
}

const (
	kindEnd  = iota // end of an alternative
	kindSet         // one byte from sets[arg]
	kindRule        // rule arg
)

type elem struct {
	kind uint8
	arg  int32
}

// sym is a grammar symbol while building: a byte set (set >= 0) or a rule reference.
type sym struct {
	set  int32
	rule int32
}

// builder assembles a grammar's rules before they are flattened into a Grammar.
type builder struct {
	sets   [][4]uint64
	setIdx map[[4]uint64]int32
	rules  [][][]sym
	shared map[string]int32 // rules built once per grammar (ws, string, number...)
}

func newBuilder() *builder {
	return &builder{setIdx: map[[4]uint64]int32{}, shared: map[string]int32{}}
}

// newRule reserves a rule, to be defined later (so rules can refer to themselves).
func (b *builder) newRule() int32 {
	b.rules = append(b.rules, nil)
	return int32(len(b.rules) - 1)
}

func (b *builder) define(r int32, alts ...[]sym) { b.rules[r] = alts }

// rule defines a new rule with the alternatives.
func (b *builder) rule(alts ...[]sym) int32 {
	r := b.newRule()
	b.define(r, alts...)
	return r
}

// once returns the shared rule called name, building it with mk the first time.
func (b *builder) once(name string, mk func(r int32)) int32 {
	if r, ok := b.shared[name]; ok {
		return r
	}
	r := b.newRule()
	b.shared[name] = r
	mk(r)
	return r
}

func (b *builder) set(s [4]uint64) sym {
	i, ok := b.setIdx[s]
	if !ok {
		i = int32(len(b.sets))
		b.sets = append(b.sets, s)
		b.setIdx[s] = i
	}
	return sym{set: i, rule: -1}
}

// rng is the byte set of the inclusive ranges given as pairs lo, hi, lo, hi...
func (b *builder) rng(pairs ...byte) sym {
	var s [4]uint64
	for i := 0; i+1 < len(pairs); i += 2 {
		for c := int(pairs[i]); c <= int(pairs[i+1]); c++ {
			s[c>>6] |= 1 << (c & 63)
		}
	}
	return b.set(s)
}

func (b *builder) ref(r int32) sym { return sym{set: -1, rule: r} }

// lit is the byte sequence of s.
func (b *builder) lit(s string) []sym {
	out := make([]sym, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = b.rng(s[i], s[i])
	}
	return out
}

func cat(parts ...[]sym) []sym {
	var out []sym
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(s sym) []sym { return []sym{s} }

// repeat is a rule matching between lo and hi (hi < 0: unbounded) repetitions of item, each
// preceded by sep except the first (first tells whether one has come before). Bounded counts
// expand into one rule per count; the unbounded tail is right-recursive, which the matcher runs
// in constant stack (a rule ending in a reference returns straight to its caller).
func (b *builder) repeat(item, sep []sym, lo, hi int) int32 {
	// tail(k): up to k more items, each with its separator; k < 0 unbounded.
	var tail int32
	if hi < 0 {
		tail = b.newRule()
		b.define(tail, nil, cat(sep, item, one(b.ref(tail))))
	} else {
		tail = b.rule(nil)
		for k := 1; k <= hi-max(lo, 1); k++ {
			tail = b.rule(nil, cat(sep, item, one(b.ref(tail))))
		}
	}
	if hi == 0 {
		return b.rule(nil)
	}
	// the first item, then lo-1 mandatory ones, then the tail
	seq := cat(item)
	for k := 1; k < lo; k++ {
		seq = cat(seq, sep, item)
	}
	seq = append(seq, b.ref(tail))
	if lo == 0 {
		return b.rule(nil, seq)
	}
	return b.rule(seq)
}

// build flattens the rules into a Grammar whose root is start, refusing left recursion (which
// would make the matcher's expansion endless).
func (b *builder) build(start int32) (*Grammar, error) {
	g := &Grammar{sets: b.sets, start: start, alts: make([][]int32, len(b.rules))}
	for r, alts := range b.rules {
		for _, a := range alts {
			g.alts[r] = append(g.alts[r], int32(len(g.elems)))
			for _, s := range a {
				if s.set >= 0 {
					g.elems = append(g.elems, elem{kindSet, s.set})
				} else {
					g.elems = append(g.elems, elem{kindRule, s.rule})
				}
			}
			g.elems = append(g.elems, elem{kindEnd, 0})
		}
	}
	if err := g.checkLeftRecursion(); err != nil {
		return nil, err
	}
	g.auto = newAutomaton(g)
	return g, nil
}

// ErrLeftRecursive is returned for a grammar (schema) in which a rule can reach itself without
// consuming a byte, such as a $ref that resolves to an anyOf containing itself.
var ErrLeftRecursive = errors.New("grammar: left-recursive rule (a $ref that refers to itself before any output)")

func (g *Grammar) checkLeftRecursion() error {
	// nullable[r]: rule r can match the empty string (fixed point).
	nullable := make([]bool, len(g.alts))
	for changed := true; changed; {
		changed = false
		for r, alts := range g.alts {
			if nullable[r] {
				continue
			}
			for _, a := range alts {
				if g.nullableFrom(a, nullable) {
					nullable[r] = true
					changed = true
					break
				}
			}
		}
	}
	// first[r]: the rules r can enter before consuming a byte.
	state := make([]uint8, len(g.alts)) // 0 unvisited, 1 on the path, 2 done
	var visit func(r int32) error
	visit = func(r int32) error {
		switch state[r] {
		case 1:
			return fmt.Errorf("%w (rule %d)", ErrLeftRecursive, r)
		case 2:
			return nil
		}
		state[r] = 1
		for _, a := range g.alts[r] {
			for p := a; g.elems[p].kind == kindRule; p++ {
				if err := visit(g.elems[p].arg); err != nil {
					return err
				}
				if !nullable[g.elems[p].arg] {
					break
				}
			}
		}
		state[r] = 2
		return nil
	}
	for r := range g.alts {
		if err := visit(int32(r)); err != nil {
			return err
		}
	}
	return nil
}

func (g *Grammar) nullableFrom(p int32, nullable []bool) bool {
	for ; ; p++ {
		switch e := g.elems[p]; e.kind {
		case kindEnd:
			return true
		case kindSet:
			return false
		case kindRule:
			if !nullable[e.arg] {
				return false
			}
		}
	}
}
