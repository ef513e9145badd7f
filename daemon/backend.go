package daemon

import (
	"context"

	"edgelm/engine"
)

// Backend is what the daemon needs from a loaded model; *engine.Engine implements it. Every method
// must be safe for concurrent use, and Generate may run many requests at once (the engine batches
// them); it returns when the request is done, ctx ends, or onToken returns an error. Embed pools
// a prompt's final hidden states into one vector (not normalized), scheduled with the generations.
type Backend interface {
	Info() engine.Info
	Tokenize(text string, addSpecial, parseSpecial bool) []int32
	Detokenize(ids []int32) string
	Stats() engine.Stats
	Generate(ctx context.Context, req engine.Request, onToken func(engine.Event) error) (*engine.Result, error)
	Embed(ctx context.Context, prompt []int32) (*engine.Embedding, error)
}

var _ Backend = (*engine.Engine)(nil)
