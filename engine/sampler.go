package engine

import (
	"cmp"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// sampler picks next tokens for one request, in llama.cpp's order: repetition penalty, top-k,
// top-p, min-p (those three on the untempered distribution), temperature, then a draw.
type sampler struct {
	p    Sampling
	rng  *rand.Rand
	cand []cand // scratch, vocab sized, reused across steps
}

type cand struct {
	id    int32
	logit float32
	p     float32
}

func newSampler(p Sampling) *sampler {
	seed := p.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &sampler{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// sample returns the next token given the logits and the tokens so far (for the penalty). With
// allowed set (bit i%64 of allowed[i/64] for token i) only those tokens are candidates, and -1 is
// returned when there is none.
func (s *sampler) sample(logits []float32, history []int32, allowed []uint64) int32 {
	p := &s.p
	if cap(s.cand) < len(logits) {
		s.cand = make([]cand, len(logits))
	}
	c := s.cand[:len(logits)]
	if allowed == nil {
		for i, l := range logits {
			c[i] = cand{id: int32(i), logit: l}
		}
	} else {
		n := 0
		for w, x := range allowed {
			for x != 0 {
				i := w*64 + bits.TrailingZeros64(x)
				x &= x - 1
				if i < len(logits) {
					c[n] = cand{id: int32(i), logit: logits[i]}
					n++
				}
			}
		}
		if n == 0 {
			return -1
		}
		c = c[:n]
	}
	if p.RepeatPenalty > 0 && p.RepeatPenalty != 1 {
		n := p.RepeatLastN
		if n == 0 {
			n = 64
		}
		if n < 0 || n > len(history) {
			n = len(history)
		}
		// Each distinct token is penalized once, however often it appeared.
		for i, t := range history[len(history)-n:] {
			if t < 0 || int(t) >= len(logits) || slices.Contains(history[len(history)-n:][:i], t) {
				continue
			}
			k := int(t)
			if allowed != nil {
				// candidates are in id order: find t among them
				k, _ = slices.BinarySearchFunc(c, t, func(x cand, t int32) int { return cmp.Compare(x.id, t) })
				if k == len(c) || c[k].id != t {
					continue
				}
			}
			if c[k].logit > 0 {
				c[k].logit /= p.RepeatPenalty
			} else {
				c[k].logit *= p.RepeatPenalty
			}
		}
	}
	if p.Temperature <= 0 {
		best := 0
		for i := range c {
			if c[i].logit > c[best].logit {
				best = i
			}
		}
		return c[best].id
	}

	// Bring the k most likely candidates to the front, sorted; k grows until top-p is satisfied.
	k := len(c)
	if p.TopK > 0 && p.TopK < k {
		k = p.TopK
	}
	topP := p.TopP > 0 && p.TopP < 1
	want := k
	if topP {
		want = min(k, 64)
	}
	for {
		partialSort(c, want)
		softmaxCand(c[:k], c[0].logit, 1)
		if !topP || want == k {
			break
		}
		sum := float32(0)
		for i := 0; i < want; i++ {
			sum += c[i].p
		}
		if sum >= p.TopP {
			break
		}
		want = min(k, want*4)
	}
	n := k
	if topP {
		sum := float32(0)
		for i := 0; i < want; i++ {
			sum += c[i].p
			if sum >= p.TopP {
				n = i + 1
				break
			}
		}
	}
	if p.MinP > 0 && p.MinP < 1 {
		floor := c[0].p * p.MinP
		for i := 1; i < n; i++ {
			if c[i].p < floor {
				n = i
				break
			}
		}
	}
	c = c[:max(n, 1)]
	softmaxCand(c, c[0].logit, p.Temperature)
	r := s.rng.Float32()
	for i := range c {
		r -= c[i].p
		if r <= 0 {
			return c[i].id
		}
	}
	return c[len(c)-1].id
}

// softmaxCand sets p of each candidate to softmax(logit/temp); top is the largest logit.
func softmaxCand(c []cand, top, temp float32) {
	sum := 0.0
	for i := range c {
		e := math.Exp(float64((c[i].logit - top) / temp))
		c[i].p = float32(e)
		sum += e
	}
	for i := range c {
		c[i].p = float32(float64(c[i].p) / sum)
	}
}

// partialSort orders c so that its first k entries are the k largest logits, descending.
func partialSort(c []cand, k int) {
	desc := func(a, b cand) int { return cmp.Compare(b.logit, a.logit) }
	if k >= len(c) {
		slices.SortFunc(c, desc)
		return
	}
	lo, hi := 0, len(c)-1
	for lo < hi { // quickselect: the k-th largest lands at index k-1
		pivot := c[(lo+hi)/2].logit
		i, j := lo, hi
		for i <= j {
			for c[i].logit > pivot {
				i++
			}
			for c[j].logit < pivot {
				j--
			}
			if i <= j {
				c[i], c[j] = c[j], c[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			lo = hi
		}
	}
	slices.SortFunc(c[:k], desc)
}

// topLogprobs writes the n most likely tokens of logits with their log-probabilities into dst
// (reused), and returns it with the log-probability of token chosen.
func topLogprobs(dst []TokenProb, logits []float32, n int, chosen int32) ([]TokenProb, float32) {
	maxL := float32(math.Inf(-1))
	for _, l := range logits {
		maxL = max(maxL, l)
	}
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(float64(l - maxL))
	}
	lse := float64(maxL) + math.Log(sum)
	dst = dst[:0]
	for i, l := range logits {
		if len(dst) == n && l <= dst[n-1].Logprob {
			continue
		}
		tp := TokenProb{ID: int32(i), Logprob: l}
		j := len(dst)
		if j < n {
			dst = append(dst, tp)
		} else {
			j = n - 1
		}
		for j > 0 && dst[j-1].Logprob < l {
			dst[j] = dst[j-1]
			j--
		}
		dst[j] = tp
	}
	for i := range dst {
		dst[i].Logprob = float32(float64(dst[i].Logprob) - lse)
	}
	var lp float32
	if chosen >= 0 && int(chosen) < len(logits) {
		lp = float32(float64(logits[chosen]) - lse)
	}
	return dst, lp
}
