package tokenizer

import "unicode/utf8"

// Stream decodes generated tokens one at a time into text that is always valid UTF-8:
// the bytes of a character split across tokens are held back until it is complete.
// Pieces are the same as Decode's, but no leading space is stripped and no
// clean-up of spaces is done, since the text already sent cannot be revised.
type Stream struct {
	t       *Tokenizer
	pending []byte
}

// NewStream starts a stream decoder.
func (t *Tokenizer) NewStream() *Stream { return &Stream{t: t} }

// Push adds token id and returns the text that became complete: every whole character
// so far, with U+FFFD for each byte sequence that can no longer become a character.
// Bytes that may still start a character are kept for the next Push or Flush.
func (s *Stream) Push(id int32) string {
	s.pending = append(s.pending, s.t.piece(id)...)
	return s.take(false)
}

// Flush returns whatever is held back, an incomplete character becoming U+FFFD, and
// empties the stream.
func (s *Stream) Flush() string { return s.take(true) }

func (s *Stream) take(final bool) string {
	p := s.pending
	if len(p) == 0 {
		return ""
	}
	var out []byte
	i := 0
	for i < len(p) {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		if r, n := utf8.DecodeRune(p[i:]); r != utf8.RuneError || n > 1 {
			i += n
			continue
		}
		// p[i:] starts with a bad or unfinished sequence: n bytes of it are a valid start.
		n, open := validPrefix(p[i:])
		if open && !final {
			break // may still be completed by the next token
		}
		if out == nil {
			out = make([]byte, 0, len(p)+3)
		}
		out = append(out, p[:i]...)
		out = utf8.AppendRune(out, utf8.RuneError)
		p = p[i+n:]
		i = 0
	}
	var text string
	if out == nil {
		text = string(p[:i])
	} else {
		text = string(append(out, p[:i]...))
	}
	rest := copy(s.pending, p[i:])
	s.pending = s.pending[:rest]
	return text
}

// validPrefix measures the leading bytes of p that begin a UTF-8 sequence without
// finishing it (the "maximal subpart" that becomes one U+FFFD), at least 1; open
// reports that p ended before the sequence could be told bad.
func validPrefix(p []byte) (n int, open bool) {
	c := p[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range of the second byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1, false
	}
	n = 1
	for k := 0; k < need; k++ {
		if n >= len(p) {
			return n, true
		}
		b := p[n]
		if k > 0 {
			lo, hi = 0x80, 0xBF
		}
		if b < lo || b > hi {
			return n, false
		}
		n++
	}
	return n, false // unreachable for input DecodeRune rejected
}
