package daemon

import (
	"context"
	goruntime "runtime"
	"runtime/debug"
	"time"

	"edgelm/engine"
)

// bigText is the text size from which tokenizing takes a slot of the tokenizer limit (and the
// memory is handed back afterwards): below it a request's tokens and pieces are a few MB at most.
const bigText = 64 << 10

// tokenSlots limits how many big texts are tokenized (or big token lists detokenized) at once:
// each costs tens of bytes per byte of text while it runs, so 16 concurrent 1 MB /v1/tokenize
// requests took the daemon to 1.65 GB. More than one per CPU would not finish any sooner.
type tokenSlots chan struct{}

func newTokenSlots() tokenSlots { return make(tokenSlots, max(1, goruntime.GOMAXPROCS(0))) }

// acquire waits for a slot; it fails only when ctx ends first.
func (t tokenSlots) acquire(ctx context.Context) error {
	select {
	case t <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t tokenSlots) release() { <-t }

// tokenize encodes text, taking a slot when the text is big.
func (s *Server) tokenize(ctx context.Context, b Backend, text string, addSpecial, parseSpecial bool) ([]int32, error) {
	if len(text) >= bigText {
		if err := s.slots.acquire(ctx); err != nil {
			return nil, err
		}
		defer s.slots.release()
		defer s.returnMemory()
	}
	return b.Tokenize(text, addSpecial, parseSpecial), nil
}

// textBound is implemented by backends that can bound the bytes of text a token stands for
// (*engine.Engine: tokenizer.MaxTextBytes).
type textBound interface{ MaxTextBytes() int }

// checkPromptText refuses a prompt text that is sure to be longer than the prompt limit, before
// it is tokenized: 16 rejected 1 MB prompts cost 691 MB (and a minute of CPU) to tokenize.
func checkPromptText(rt *runtime, info engine.Info, b Backend, text string) error {
	tb, ok := b.(textBound)
	if !ok {
		return nil
	}
	per, limit := tb.MaxTextBytes(), promptLimit(rt, info)
	if per <= 0 || limit <= 0 || len(text) <= per*limit {
		return nil
	}
	return badRequest("context_length_exceeded", "the prompt has at least %d tokens (%d bytes, at most %d bytes a token); the limit is %d", (len(text)+per-1)/per, len(text), per, limit)
}

// returnMemory hands the heap freed by a big request back to the operating system soon after:
// Go's background scavenger would keep most of it for minutes. Calls within the delay share one
// collection.
func (s *Server) returnMemory() {
	if !s.freeing.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(freeDelay, func() {
		s.freeing.Store(false)
		debug.FreeOSMemory()
	})
}

// freeDelay lets the other big requests of a burst finish before memory is returned.
const freeDelay = 500 * time.Millisecond
