package grammar

import (
	"errors"
	"fmt"
)

// Matcher follows one generation through a grammar. It is not safe for concurrent use; the
// grammar it came from is.
type Matcher struct {
	g *Grammar
	v *Vocab
	s *state
}

// Matcher starts a generation over vocabulary v.
func (g *Grammar) Matcher(v *Vocab) *Matcher {
	a := g.auto
	a.mu.Lock()
	defer a.mu.Unlock()
	return &Matcher{g: g, v: v, s: a.initial()}
}

// ErrRejected is returned for bytes or a token the grammar does not allow at that point.
var ErrRejected = errors.New("grammar: rejected")

// Allowed returns the tokens that may come next: bit i%64 of word i/64 for token i. The
// end-of-generation tokens are in it exactly when the output so far is a complete value. The slice
// is shared: read it, do not keep or change it.
func (m *Matcher) Allowed() []uint64 {
	a := m.g.auto
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maskFor(m.s, m.v)
}

// Accept advances over token id. An end-of-generation token is accepted only when the output is
// complete and leaves the matcher as it was.
func (m *Matcher) Accept(id int32) error {
	if m.v.IsEOG(id) {
		if !m.s.accept {
			return fmt.Errorf("%w: end of generation before the value is complete", ErrRejected)
		}
		return nil
	}
	if id < 0 || int(id) >= m.v.n || len(m.v.pieces[id]) == 0 {
		return fmt.Errorf("%w: token %d has no text", ErrRejected, id)
	}
	return m.AcceptBytes(m.v.pieces[id])
}

// AcceptBytes advances over text; on error the matcher is unchanged.
func (m *Matcher) AcceptBytes(text []byte) error {
	a := m.g.auto
	a.mu.Lock()
	defer a.mu.Unlock()
	s := m.s
	for i, c := range text {
		s = a.step(s, c)
		if s == dead {
			return fmt.Errorf("%w: byte %d (%q) of %q", ErrRejected, i, c, text)
		}
	}
	m.s = s
	return nil
}

// IsEOG reports whether id is one of the vocabulary's end-of-generation tokens.
func (m *Matcher) IsEOG(id int32) bool { return m.v.IsEOG(id) }

// Complete reports whether the output so far is a whole value (generation may end here).
func (m *Matcher) Complete() bool { return m.s.accept }

// Finished reports whether the output is complete and no byte may follow it.
func (m *Matcher) Finished() bool { return m.s.accept && len(m.s.stacks) == 0 }
