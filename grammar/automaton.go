package grammar

import (
	"encoding/binary"
	"slices"
	"sync"
)

// The parser is nondeterministic: its state is the set of stacks that are still possible. A stack
// is a chain of interned nodes, the top's pos the byte-set element to match next, each parent's pos
// where to go on when the rule below it ends. Interning makes equal stacks the same node and equal
// sets the same *state, so the automaton is a lazily built DFA whose states are parser
// configurations; its transitions and token masks are cached on the states.

// node is one frame of a stack.
type node struct {
	pos    int32
	id     uint32
	parent *node
	mark   uint32 // closure epoch, to expand a node once per closure
}

// state is an interned set of stacks.
type state struct {
	stacks []*node     // sorted by id; every top is a byte-set element
	accept bool        // the root rule can end here
	bytes  [4]uint64   // union of the tops' byte sets: the bytes with a transition
	next   []*state    // 256 entries once a transition was computed; dead for no transition
	mask   []uint64    // cached token mask, for maskOf
	maskOf *Vocab      // the vocabulary mask belongs to
	gen    *generation // the interning generation the state belongs to
	// loop is the set of bytes that step from the state to itself, once loopDone (see loops).
	loop     [4]uint64
	loopDone bool
	text     bool // see takesText, once textDone
	textDone bool
}

// dead is the state after a byte no stack accepts.
var dead = &state{}

// Bounds on what one grammar caches: past them the caches start afresh (states a matcher holds stay
// valid; they are only no longer shared).
// A state's transition table is 2 KB and a mask a bit per token (4 KB for 32,000 tokens), so a
// grammar holds at most about 8 MB of states and 128 masks.
const (
	maxStates = 4096
	maxMasks  = 128
)

type generation struct {
	nodes  map[[2]uint32]*node
	states map[string]*state
	list   []*state
	masks  int
	nextID uint32
}

type automaton struct {
	mu    sync.Mutex
	g     *Grammar
	gen   *generation
	epoch uint32
	// scratch
	out      []*node
	key      []byte
	expanded int  // nodes expanded in this closure
	overflow bool // more than maxExpand: the state is given up (dead)
}

// maxExpand bounds the nodes one transition may expand.
const maxExpand = 4096

func newAutomaton(g *Grammar) *automaton {
	a := &automaton{g: g}
	a.reset()
	return a
}

func (a *automaton) reset() {
	if a.gen != nil {
		for _, s := range a.gen.list {
			s.next = nil
			s.mask, s.maskOf = nil, nil
			s.loop, s.loopDone = [4]uint64{}, false
			s.text, s.textDone = false, false
		}
	}
	a.gen = &generation{nodes: map[[2]uint32]*node{}, states: map[string]*state{}, nextID: 1}
}

// intern returns the canonical node for (pos, parent).
func (a *automaton) intern(pos int32, parent *node) *node {
	var pid uint32
	if parent != nil {
		pid = parent.id
	}
	k := [2]uint32{uint32(pos), pid}
	if n, ok := a.gen.nodes[k]; ok {
		return n
	}
	n := &node{pos: pos, id: a.gen.nextID, parent: parent}
	a.gen.nextID++
	a.gen.nodes[k] = n
	return n
}

// expand adds to a.out the stacks n leads to, with a byte-set element on top; it reports whether
// the root can end (the stack empties).
func (a *automaton) expand(n *node) bool {
	if n.mark == a.epoch || a.overflow {
		return false
	}
	n.mark = a.epoch
	if a.expanded++; a.expanded > maxExpand {
		// An ambiguous grammar (anyOf of alternatives alike, nested) can make the stacks of one
		// state grow exponentially: give up on such a state rather than on memory and time.
		a.overflow = true
		return false
	}
	e := a.g.elems[n.pos]
	switch e.kind {
	case kindSet:
		a.out = append(a.out, n)
		return false
	case kindEnd:
		if n.parent == nil {
			return true
		}
		return a.expand(n.parent)
	}
	// A reference: continue after it when the rule ends; a reference that ends its alternative
	// returns straight to the caller's caller, so right recursion does not grow the stack.
	ret := n.parent
	if a.g.elems[n.pos+1].kind != kindEnd {
		ret = a.intern(n.pos+1, n.parent)
	}
	acc := false
	for _, p := range a.g.alts[e.arg] {
		if a.expand(a.intern(p, ret)) {
			acc = true
		}
	}
	return acc
}

func (a *automaton) beginClosure() {
	a.epoch++
	if a.epoch == 0 { // wrapped: old marks could collide
		for _, n := range a.gen.nodes {
			n.mark = 0
		}
		a.epoch = 1
	}
	a.out = a.out[:0]
	a.expanded, a.overflow = 0, false
}

// initial is the state before any byte.
func (a *automaton) initial() *state {
	a.beginClosure()
	acc := false
	for _, p := range a.g.alts[a.g.start] {
		if a.expand(a.intern(p, nil)) {
			acc = true
		}
	}
	return a.finish(acc)
}

// finish interns the stacks collected in a.out.
func (a *automaton) finish(acc bool) *state {
	if a.overflow {
		return dead
	}
	out := a.out
	slices.SortFunc(out, func(x, y *node) int { return int(x.id) - int(y.id) })
	out = slices.Compact(out)
	if len(out) == 0 && !acc {
		return dead
	}
	key := a.key[:0]
	if acc {
		key = append(key, 1)
	} else {
		key = append(key, 0)
	}
	for _, n := range out {
		key = binary.LittleEndian.AppendUint32(key, n.id)
	}
	a.key = key
	if s, ok := a.gen.states[string(key)]; ok {
		return s
	}
	s := &state{stacks: slices.Clone(out), accept: acc, gen: a.gen}
	for _, n := range s.stacks {
		set := &a.g.sets[a.g.elems[n.pos].arg]
		for i := range s.bytes {
			s.bytes[i] |= set[i]
		}
	}
	a.gen.states[string(key)] = s
	a.gen.list = append(a.gen.list, s)
	return s
}

// step is the state after byte c, cached on s.
func (a *automaton) step(s *state, c byte) *state {
	if s.bytes[c>>6]&(1<<(c&63)) == 0 {
		return dead
	}
	if s.next != nil {
		if t := s.next[c]; t != nil {
			return t
		}
	}
	if s.gen != a.gen {
		// s is from before a reset: carry it into the current generation.
		s = a.rebase(s)
	}
	a.beginClosure()
	acc := false
	for _, n := range s.stacks {
		set := &a.g.sets[a.g.elems[n.pos].arg]
		if set[c>>6]&(1<<(c&63)) != 0 && a.expand(a.intern(n.pos+1, n.parent)) {
			acc = true
		}
	}
	t := a.finish(acc)
	if len(a.gen.list) > maxStates {
		a.reset()
		return t // valid, just not cached
	}
	if s.next == nil {
		s.next = make([]*state, 256)
	}
	s.next[c] = t
	if len(s.stacks) <= 64 {
		// Bytes in the same top sets as c lead to the same state: fill them in now, so a string's
		// two hundred characters cost one closure, not two hundred.
		sig := a.signature(s, c)
		for d := range 256 {
			if s.bytes[d>>6]&(1<<(d&63)) != 0 && s.next[d] == nil && a.signature(s, byte(d)) == sig {
				s.next[d] = t
			}
		}
	}
	return t
}

// signature is the set of s's stacks whose top takes c.
func (a *automaton) signature(s *state, c byte) uint64 {
	var sig uint64
	for i, n := range s.stacks {
		if a.g.sets[a.g.elems[n.pos].arg][c>>6]&(1<<(c&63)) != 0 {
			sig |= 1 << i
		}
	}
	return sig
}

// rebase interns s's stacks in the current generation.
func (a *automaton) rebase(s *state) *state {
	a.beginClosure()
	for _, n := range s.stacks {
		a.out = append(a.out, a.reintern(n))
	}
	return a.finish(s.accept)
}

func (a *automaton) reintern(n *node) *node {
	if n == nil {
		return nil
	}
	return a.intern(n.pos, a.reintern(n.parent))
}
