package engine

import (
	"context"
	"fmt"
)

// Engine serves requests on one loaded model. Its methods are safe for concurrent use.
type Engine struct {
	info Info
}

// Load maps the model at path and prepares it for requests.
func Load(path string, opt Options) (*Engine, error) {
	return nil, fmt.Errorf("engine: load %s: not implemented yet", path)
}

// Close stops the scheduler, cancels requests still running and unmaps the model.
func (e *Engine) Close() error { return nil }

// Info describes the loaded model.
func (e *Engine) Info() Info { return e.info }

// Tokenize encodes text. addSpecial adds BOS (and EOS) as the model asks; parseSpecial turns
// the texts of special tokens into their ids.
func (e *Engine) Tokenize(text string, addSpecial, parseSpecial bool) []int32 { return nil }

// Detokenize decodes ids to text.
func (e *Engine) Detokenize(ids []int32) string { return "" }

// Stats returns the current counters.
func (e *Engine) Stats() Stats { return Stats{} }

// Generate runs req to completion, calling onToken for each generated token as it is sampled.
// An error from onToken (a client gone) or ctx ending stops the request early.
func (e *Engine) Generate(ctx context.Context, req Request, onToken func(Event) error) (*Result, error) {
	return nil, fmt.Errorf("engine: not implemented yet")
}
