package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"unicode/utf8"

	"edgelm/engine"
)

// eventQueue hands events from the engine to the handler. push never blocks on the network: the
// engine may call onToken from its scheduler, and one slow client must not stall the others'
// steps. The queue is bounded by the request's max_tokens.
type eventQueue struct {
	mu     sync.Mutex
	evs    []engine.Event
	failed error
	notify chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{notify: make(chan struct{}, 1)} }

func (q *eventQueue) push(ev engine.Event) error {
	q.mu.Lock()
	if q.failed != nil {
		err := q.failed
		q.mu.Unlock()
		return err
	}
	q.evs = append(q.evs, ev)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

func (q *eventQueue) take() []engine.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.evs
	q.evs = nil
	return evs
}

func (q *eventQueue) fail(err error) {
	q.mu.Lock()
	q.failed = err
	q.mu.Unlock()
}

// sse writes Server-Sent Events as OpenAI does: "data: {json}\n\n" per chunk, flushed at once,
// and "data: [DONE]\n\n" at the end.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (e *sse) start() {
	if e.started {
		return
	}
	e.started = true
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	e.w.WriteHeader(http.StatusOK)
}

func (e *sse) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.raw(append(append([]byte("data: "), b...), '\n', '\n'))
}

func (e *sse) raw(b []byte) error {
	e.start()
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *sse) done() error { return e.raw([]byte("data: [DONE]\n\n")) }

var errClientGone = errors.New("daemon: client connection lost")

// stream runs a job with a streamed answer. Nothing is written until the first token (or the end)
// so that errors before it (queue full, ...) still get their proper HTTP status. A client that
// goes away cancels ctx, and the engine drops the request at its next step.
func (s *Server) stream(ctx context.Context, r *http.Request, w http.ResponseWriter, j *job) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &sse{w: w, rc: http.NewResponseController(w)}
	q := newEventQueue()
	type outcome struct {
		res *engine.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := j.ref.b.Generate(ctx, j.req, q.push)
		done <- outcome{res, err}
	}()

	st := &streamState{j: j}
	if !j.chat {
		st.offset = utf8.RuneCountInString(j.promptText)
	}
	// With echo and logprobs the prompt's logprobs, which come first, are known only from the
	// result: the tokens are held back until then so the chunks stay in order.
	buffered := j.req.Echo && j.req.Logprobs > 0
	writeFailed := false
	flush := func() {
		if buffered {
			return
		}
		for _, ev := range q.take() {
			if writeFailed {
				return
			}
			if err := s.sendEvent(out, st, ev); err != nil {
				writeFailed = true
				q.fail(errClientGone)
				cancel()
				s.log.Debug("stream: client gone", "id", j.id, "err", err)
			}
		}
	}
	var o outcome
loop:
	for {
		select {
		case <-q.notify:
			flush()
		case o = <-done:
			flush()
			break loop
		}
	}
	if writeFailed {
		return
	}
	if o.err == nil && o.res == nil {
		o.err = errors.New("engine returned no result")
	}
	o.err = shutdownCause(r, o.err)
	s.generationDone(o.err)
	if o.err != nil {
		if errors.Is(o.err, context.Canceled) && ctx.Err() != nil && !out.started {
			return // the client left before anything was sent
		}
		s.log.Debug("stream: generation failed", "id", j.id, "err", o.err)
		if !out.started {
			writeAPIError(w, o.err)
			return
		}
		e := classify(o.err)
		if sw := noteOf(w); sw != nil {
			sw.reason = e.msg
		}
		out.send(newErrorBody(e.typ, e.code, e.msg))
		out.done()
		return
	}
	s.count(w, o.res)
	if buffered {
		buffered = false
		lp := &completionLogprobs{}
		st.offset = s.addPromptLogprobs(lp, j, o.res)
		st.echoedText = true
		if err := out.send(s.completionChunk(j, completionChoice{Text: j.echoText, Logprobs: lp})); err != nil {
			return
		}
		if flush(); writeFailed {
			return
		}
	}
	if err := s.finishStream(out, st, o.res); err != nil {
		s.log.Debug("stream: client gone at the end", "id", j.id, "err", err)
	}
}

// streamState follows a stream: whether the role chunk went out, the text offset for logprobs.
type streamState struct {
	j          *job
	roleSent   bool
	offset     int
	echoedText bool
	calls      *toolStream // chat with tools
}

// sendDelta sends a chat delta of content or tool-call fragments (and the event's logprobs, which
// go with the delta even when its text is held back).
func (s *Server) sendDelta(out *sse, st *streamState, d delta, ev engine.Event, withLogprobs bool) error {
	if d.content == "" && len(d.calls) == 0 && !withLogprobs {
		return nil
	}
	// Content first, then one chunk per call fragment, as OpenAI streams them.
	var chunks []chatChoice
	if d.content != "" || len(d.calls) == 0 {
		chunks = append(chunks, chatChoice{Delta: &chatDelta{Content: &d.content}})
	}
	for _, c := range d.calls {
		chunks = append(chunks, chatChoice{Delta: &chatDelta{ToolCalls: []callBody{c}}})
	}
	if withLogprobs {
		chunks[0].Logprobs = &chatLogprobs{Content: []chatTokenLogprob{s.chatLogprob(st.j, ev)}}
	}
	for _, c := range chunks {
		if err := out.send(s.chatChunk(st.j, c)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) chatChunk(j *job, c chatChoice) chatBody {
	return chatBody{ID: j.id, Object: "chat.completion.chunk", Created: j.created, Model: j.info.Model,
		SystemFingerprint: fingerprint(j.info), Choices: []chatChoice{c}}
}

func (s *Server) completionChunk(j *job, c completionChoice) completionBody {
	return completionBody{ID: j.id, Object: "text_completion", Created: j.created, Model: j.info.Model, Choices: []completionChoice{c}}
}

// sendEvent writes one token's chunk. Chat streams start with a chunk carrying the role, as
// OpenAI's do; completions with echo start with the prompt text.
func (s *Server) sendEvent(out *sse, st *streamState, ev engine.Event) error {
	j := st.j
	// An event without a token carries text the engine held back; one with a token but no text
	// (part of a character, a possible stop string) is worth a chunk only for its logprobs.
	withLogprobs := j.req.Logprobs > 0 && ev.Token >= 0
	if ev.Text == "" && !withLogprobs {
		return nil
	}
	if j.chat && j.tools != nil {
		if err := s.sendRole(out, st); err != nil {
			return err
		}
		if st.calls == nil {
			st.calls = &toolStream{t: j.tools}
		}
		return s.sendDelta(out, st, st.calls.push(ev.Text), ev, withLogprobs)
	}
	if j.chat {
		if err := s.sendRole(out, st); err != nil {
			return err
		}
		text := ev.Text
		c := chatChoice{Delta: &chatDelta{Content: &text}}
		if withLogprobs {
			c.Logprobs = &chatLogprobs{Content: []chatTokenLogprob{s.chatLogprob(j, ev)}}
		}
		return out.send(s.chatChunk(j, c))
	}
	if err := s.sendEcho(out, st); err != nil {
		return err
	}
	c := completionChoice{Text: ev.Text}
	if withLogprobs {
		lp := &completionLogprobs{}
		st.offset = s.addEventLogprob(lp, j, ev, st.offset)
		c.Logprobs = lp
	}
	return out.send(s.completionChunk(j, c))
}

func (s *Server) sendRole(out *sse, st *streamState) error {
	if st.roleSent {
		return nil
	}
	st.roleSent = true
	empty := ""
	return out.send(s.chatChunk(st.j, chatChoice{Delta: &chatDelta{Role: "assistant", Content: &empty}}))
}

// sendEcho sends the echoed prompt as the first chunk (once).
func (s *Server) sendEcho(out *sse, st *streamState) error {
	if st.echoedText || st.j.echoText == "" {
		st.echoedText = true
		return nil
	}
	st.echoedText = true
	return out.send(s.completionChunk(st.j, completionChoice{Text: st.j.echoText}))
}

// finishStream sends the chunk with finish_reason (and the trace when asked), the usage chunk when
// asked, and [DONE].
func (s *Server) finishStream(out *sse, st *streamState, res *engine.Result) error {
	j := st.j
	finish := res.FinishReason
	var err error
	if j.chat {
		if err = s.sendRole(out, st); err != nil {
			return err
		}
		if j.tools != nil {
			if st.calls == nil {
				st.calls = &toolStream{t: j.tools}
			}
			d, called := st.calls.finish()
			if called && finish == "stop" {
				finish = "tool_calls"
			}
			if err = s.sendDelta(out, st, d, engine.Event{}, false); err != nil {
				return err
			}
		}
		b := s.chatChunk(j, chatChoice{Delta: &chatDelta{}, FinishReason: &finish})
		b.Trace = traceOf(j, res)
		err = out.send(b)
	} else {
		c := completionChoice{FinishReason: &finish}
		if err = s.sendEcho(out, st); err != nil {
			return err
		}
		b := s.completionChunk(j, c)
		b.Trace = traceOf(j, res)
		err = out.send(b)
	}
	if err != nil {
		return err
	}
	if j.usage {
		u := usageOf(res)
		if j.chat {
			b := s.chatChunk(j, chatChoice{})
			b.Choices, b.Usage = []chatChoice{}, &u
			err = out.send(b)
		} else {
			b := s.completionChunk(j, completionChoice{})
			b.Choices, b.Usage = []completionChoice{}, &u
			err = out.send(b)
		}
		if err != nil {
			return err
		}
	}
	return out.done()
}
