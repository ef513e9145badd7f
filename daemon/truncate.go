package daemon

import (
	"errors"
	"sort"

	"edgelm/chat"
)

// truncatedHeader carries the number of chat messages left out to fit the context.
const truncatedHeader = "Edgelm-Truncated-Messages"

// fitChat tokenizes a conversation so that it fits a prompt limit of limit tokens (0: none),
// returning the prompt and how many messages it left out. render applies the chat template to the
// messages of msgs at the given indices, in order, and tokenizes the result.
//
// A conversation that leaves room for the reply (a quarter of the limit, or max_tokens if smaller)
// is sent whole. Otherwise, with truncate, the oldest turns are dropped as Ollama does: every system
// message is kept, and the newest messages that fit, starting at a user message so the roles still
// alternate; the last message is always kept. Without truncate, or when even the system messages and
// the last turn do not fit, a conversation over the limit is a context_length_exceeded error.
// render may refuse a text sure to be over the limit without tokenizing it (checkPromptText's
// context_length_exceeded): that counts as not fitting.
func fitChat(render func(keep []int) ([]int32, error), msgs []chat.Message, limit int, asked *int, truncate bool) ([]int32, int, error) {
	all := make([]int, len(msgs))
	for i := range all {
		all[i] = i
	}
	ids, err := render(all)
	over := overLimit(err)
	if err != nil && (!over || !truncate) {
		return nil, 0, err
	}
	if limit <= 0 {
		return ids, 0, nil
	}
	room := limit / 4
	if asked != nil {
		room = min(room, *asked)
	}
	target := limit - room
	if !over && (len(ids) <= target || !truncate && len(ids) <= limit) {
		return ids, 0, nil
	}
	if !truncate {
		return nil, 0, badRequest("context_length_exceeded",
			"the conversation has %d tokens; the limit is %d (send fewer messages, or let the daemon drop the oldest with \"truncate\": true and context_overflow = \"truncate\")", len(ids), limit)
	}
	// Where each possible kept part starts: the non-system messages that are user turns, past the first.
	var turns, starts []int
	for i, m := range msgs {
		if m.Role != "system" {
			turns = append(turns, i)
		}
	}
	for d := 1; d < len(turns); d++ {
		if msgs[turns[d]].Role == "user" {
			starts = append(starts, d)
		}
	}
	keep := func(d int) []int {
		out := make([]int, 0, len(msgs))
		for i, m := range msgs {
			if m.Role == "system" || i >= turns[d] {
				out = append(out, i)
			}
		}
		return out
	}
	// Dropping more never lengthens the prompt, so the fewest drops that fit are a binary search
	// away: a few renders even for thousands of messages.
	rendered := map[int][]int32{}
	var ferr error
	k := sort.Search(len(starts), func(k int) bool {
		p, err := render(keep(starts[k]))
		if overLimit(err) {
			return false
		}
		if err != nil {
			ferr = err
			return true
		}
		rendered[k] = p
		return len(p) <= target
	})
	if ferr != nil {
		return nil, 0, ferr
	}
	if k < len(starts) {
		return rendered[k], starts[k], nil
	}
	// Not even the newest turn leaves room for the reply: send the shortest prompt if it fits at all.
	if len(starts) == 0 {
		if over {
			return nil, 0, err
		}
		if len(ids) <= limit {
			return ids, 0, nil
		}
		return nil, 0, badRequest("context_length_exceeded",
			"the conversation has %d tokens; the limit is %d, and it has no older turn to drop", len(ids), limit)
	}
	k = len(starts) - 1
	p, ok := rendered[k]
	if !ok {
		if p, err = render(keep(starts[k])); err != nil {
			return nil, 0, err
		}
	}
	if len(p) > limit {
		return nil, 0, badRequest("context_length_exceeded",
			"the system messages and the last turn have %d tokens; the limit is %d", len(p), limit)
	}
	return p, starts[k], nil
}

// overLimit reports whether err is render's refusal of a text sure to be over the prompt limit.
func overLimit(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.code == "context_length_exceeded"
}
