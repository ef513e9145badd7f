package client

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// LoadResult summarizes a Load run.
type LoadResult struct {
	Clients          int
	Requests         int
	PromptTokens     int
	CompletionTokens int
	Wall             time.Duration // first request sent to last answer complete
	// AggregateTPS is completion tokens per second of wall time, prefill included: what the
	// daemon delivered to all clients together.
	AggregateTPS float64
	// DecodeTPS is the mean over requests of (completion tokens - 1) / (last token time - first
	// token time): one stream's decode speed while the others run.
	DecodeTPS float64
	// TTFT is the median time to first token.
	TTFT time.Duration
}

func (r *LoadResult) String() string {
	return fmt.Sprintf("%d clients, %d requests, %d prompt + %d completion tokens in %s: aggregate %.1f tok/s, per stream %.1f tok/s, median TTFT %s",
		r.Clients, r.Requests, r.PromptTokens, r.CompletionTokens, r.Wall.Round(time.Millisecond), r.AggregateTPS, r.DecodeTPS, r.TTFT.Round(time.Millisecond))
}

// Load runs clients concurrent streams, each sending perClient copies of req one after another,
// and measures throughput as the clients see it. The first error ends the run.
func (c *Client) Load(ctx context.Context, clients, perClient int, req CompletionRequest) (*LoadResult, error) {
	if clients < 1 || perClient < 1 {
		return nil, fmt.Errorf("client: load: %d clients x %d requests: want at least 1 each", clients, perClient)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type one struct {
		prompt, completion int
		ttft               time.Duration
		decodeTPS          float64
	}
	var (
		mu      sync.Mutex
		results []one
		first   error
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				t0 := time.Now()
				var firstTok, lastTok time.Time
				res, err := c.Completions(ctx, req, func(string) error {
					now := time.Now()
					if firstTok.IsZero() {
						firstTok = now
					}
					lastTok = now
					return nil
				})
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
				o := one{prompt: res.Usage.PromptTokens, completion: res.Usage.CompletionTokens}
				if !firstTok.IsZero() {
					o.ttft = firstTok.Sub(t0)
					if d := lastTok.Sub(firstTok).Seconds(); d > 0 && o.completion > 1 {
						o.decodeTPS = float64(o.completion-1) / d
					}
				}
				results = append(results, o)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, fmt.Errorf("client: load: %w", first)
	}
	r := &LoadResult{Clients: clients, Requests: len(results), Wall: time.Since(start)}
	ttfts := make([]time.Duration, 0, len(results))
	n := 0
	for _, o := range results {
		r.PromptTokens += o.prompt
		r.CompletionTokens += o.completion
		ttfts = append(ttfts, o.ttft)
		if o.decodeTPS > 0 {
			r.DecodeTPS += o.decodeTPS
			n++
		}
	}
	if n > 0 {
		r.DecodeTPS /= float64(n)
	}
	r.AggregateTPS = float64(r.CompletionTokens) / r.Wall.Seconds()
	sort.Slice(ttfts, func(i, j int) bool { return ttfts[i] < ttfts[j] })
	r.TTFT = ttfts[len(ttfts)/2]
	return r, nil
}
