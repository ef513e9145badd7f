package engine

import (
	"container/list"

	"edgelm/kvcache"
)

// prefixCache keeps the KV of finished sequences so that a request starting with the same tokens (a
// chat resending its history, a shared system prompt) prefills only what is new. Entries are evicted
// least recently used first when the byte budget needs room. Only the scheduler goroutine uses it.
type prefixCache struct {
	lru   *list.List // of *prefixEntry, most recently used at the front
	bytes int64
}

type prefixEntry struct {
	tokens []int32
	seq    *kvcache.Seq
}

func newPrefixCache() *prefixCache { return &prefixCache{lru: list.New()} }

// match returns the entry sharing the longest prefix with tokens, and that length.
func (c *prefixCache) match(tokens []int32) (*list.Element, int) {
	var best *list.Element
	bestN := 0
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*prefixEntry)
		n := 0
		for n < len(e.tokens) && n < len(tokens) && e.tokens[n] == tokens[n] {
			n++
		}
		if n > bestN {
			best, bestN = el, n
		}
	}
	return best, bestN
}

// touch marks an entry as just used.
func (c *prefixCache) touch(el *list.Element) { c.lru.MoveToFront(el) }

// add keeps seq, which holds the KV of tokens. An entry whose tokens are a prefix of these is
// replaced; if an entry already covers these tokens, seq is not kept. It reports whether seq was kept.
func (c *prefixCache) add(tokens []int32, seq *kvcache.Seq) bool {
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		e := el.Value.(*prefixEntry)
		n := 0
		for n < len(e.tokens) && n < len(tokens) && e.tokens[n] == tokens[n] {
			n++
		}
		switch {
		case n == len(tokens): // already covered
			c.lru.MoveToFront(el)
			return false
		case n == len(e.tokens): // the old entry is a prefix of the new one
			c.remove(el)
		}
		el = next
	}
	c.lru.PushFront(&prefixEntry{tokens: tokens, seq: seq})
	c.bytes += seq.Bytes()
	return true
}

// evictOldest drops the least recently used entry; it reports false when there is none.
func (c *prefixCache) evictOldest() bool {
	el := c.lru.Back()
	if el == nil {
		return false
	}
	c.remove(el)
	return true
}

func (c *prefixCache) remove(el *list.Element) {
	c.bytes -= el.Value.(*prefixEntry).seq.Bytes()
	c.lru.Remove(el)
}

func (c *prefixCache) len() int { return c.lru.Len() }
