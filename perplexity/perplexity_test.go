package perplexity

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"edgelm/engine"
	"edgelm/gguf"
	"edgelm/internal/testshared"
	"edgelm/kvcache"
	"edgelm/model"
	"edgelm/tokenizer"
)

type fixture struct {
	m   *model.Model
	tok *tokenizer.Tokenizer
	ids []int32
}

func setup(t *testing.T, name string) fixture {
	t.Helper()
	path := filepath.Join(testshared.Dir(t), "models", name)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	// A text sampled from the model itself (temperature 1, seed 7): see testdata/README.
	text, err := os.ReadFile("testdata/aidreams-sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	return fixture{m, tok, tok.Encode(string(text), true, false)}
}

func (fx fixture) shape(k, v kvcache.Type) kvcache.Shape {
	return kvcache.Shape{Layers: fx.m.Layers, KVHeads: fx.m.KVHeads, HeadDim: fx.m.HeadDim, TypeK: k, TypeV: v}
}

// TestQuantizedCacheQuality holds the cache types to the targets on the small real model:
// q8_0 mean KLD <= 0.002 with the same top token >= 99% of the time; q4_0 below 0.02; sizes
// q8_0 <= 0.54x and q4_0 <= 0.29x of f16.
func TestQuantizedCacheQuality(t *testing.T) {
	fx := setup(t, "aidreams260K-f32.gguf")
	base := fx.shape(kvcache.F32, kvcache.F32)
	self, err := Chunks(fx.m, nil, fx.ids[:512], 128, fx.tok.BOS(), base, base, Exact)
	if err != nil {
		t.Fatal(err)
	}
	if self.KLDMean != 0 || self.SameTop1 != 1 {
		t.Fatalf("f32 against itself: %+v", self)
	}
	f16 := fx.shape(kvcache.F16, kvcache.F16).BytesPerToken()
	for _, c := range []struct {
		typ        kvcache.Type
		kld, top1  float64
		bytesVsF16 float64
	}{
		{kvcache.Q8_0, 0.002, 0.99, 0.54},
		{kvcache.Q4_0, 0.02, 0.90, 0.29},
	} {
		rep, err := Chunks(fx.m, nil, fx.ids[:1024], 128, fx.tok.BOS(), fx.shape(c.typ, c.typ), base, Exact)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", c.typ, rep)
		if rep.KLDMean > c.kld || rep.SameTop1 < c.top1 || float64(rep.KVBytesPerToken) > c.bytesVsF16*float64(f16) {
			t.Errorf("%s: KLD %g (max %g), same top-1 %g (min %g), %d bytes/token (f16 %d)", c.typ, rep.KLDMean, c.kld, rep.SameTop1, c.top1, rep.KVBytesPerToken, f16)
		}
		if rep.PPL < self.PPL*0.9 || rep.PPL > self.PPL*1.5 {
			t.Errorf("%s: perplexity %g far from f32's %g", c.typ, rep.PPL, self.PPL)
		}
	}
}

// TestPerplexityAgreesWithEngine: the perplexity of one chunk equals the one computed from the
// engine's teacher-forced logprobs (separate code: the engine's echo path).
func TestPerplexityAgreesWithEngine(t *testing.T) {
	fx := setup(t, "aidreams260K-f32.gguf")
	chunk := append([]int32(nil), fx.ids[:64]...)
	rep, err := Chunks(fx.m, nil, chunk, 64, fx.tok.BOS(), fx.shape(kvcache.F32, kvcache.F32), kvcache.Shape{}, NoCompare)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Load(filepath.Join(testshared.Dir(t), "models", "aidreams260K-f32.gguf"), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	chunk[0] = fx.tok.BOS()
	res, err := e.Generate(context.Background(), engine.Request{Prompt: chunk, MaxTokens: 0, Echo: true, Logprobs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nll := 0.0
	for i := 33; i < 64; i++ { // tokens predicted from positions 32..62, as Chunks scores them
		nll -= float64(res.Logprobs[i].Logprob)
	}
	want := math.Exp(nll / 31)
	if math.Abs(rep.PPL-want) > 1e-4*want || rep.Tokens != 31 {
		t.Fatalf("perplexity %g over %d tokens, engine says %g over 31", rep.PPL, rep.Tokens, want)
	}
}

// TestStreamPolicies: over a text 12x the context, sink-window stays within 5% of recomputing the
// window exactly, with the cache never above the context.
func TestStreamPolicies(t *testing.T) {
	fx := setup(t, "aidreams260K-f32.gguf")
	ids := fx.ids[:385]
	shape := fx.shape(kvcache.F32, kvcache.F32)
	const ctx = 32
	res := map[Policy]*StreamResult{}
	for _, p := range []Policy{SinkWindow, Window, Recompute} {
		r, err := Stream(fx.m, nil, ids, ctx, 4, 0, shape, p, 16)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: ppl %.4f, max %d tokens", p, r.PPL, r.MaxLen)
		if r.Tokens != len(ids)-1 || r.MaxLen > ctx || len(r.Running) != r.Tokens/16 {
			t.Fatalf("%s: %+v", p, r)
		}
		res[p] = r
	}
	if res[SinkWindow].PPL > 1.05*res[Recompute].PPL {
		t.Errorf("sink-window %g above 1.05x recompute %g", res[SinkWindow].PPL, res[Recompute].PPL)
	}
	if res[SinkWindow].EndBytes != res[SinkWindow].MaxBytes {
		t.Errorf("cache memory grew: %d at the end, %d max", res[SinkWindow].EndBytes, res[SinkWindow].MaxBytes)
	}
}

// TestStoredLogProbs: llama-perplexity's stored base keeps every log-probability within 16 of the
// largest to half a 16-bit step of (max-min)/65535, clamps the rest to the bottom, and leaves the
// clamped ones out of the KL sum; compared with the exact log-probabilities computed here.
func TestStoredLogProbs(t *testing.T) {
	l := []float32{3, 2.5, -1, -7.25, -20, -40, 3.0001, 0}
	st := storedLogProbs(l)
	mx, lse := 3.0001, 0.0
	for _, v := range l {
		lse += math.Exp(float64(v) - mx)
	}
	lse = mx + math.Log(lse)
	step := 16.0 / 65535
	for i, v := range l {
		exact := float64(v) - lse
		switch {
		case float64(v) > mx-16:
			if math.Abs(st[i]-exact) > step/2+1e-5 {
				t.Errorf("logit %g: stored %g, exact %g (step %g)", v, st[i], exact, step)
			}
		case math.Abs(st[i]-(mx-16-lse)) > 1e-5:
			t.Errorf("logit %g below the range: stored %g, want the bottom %g", v, st[i], mx-16-lse)
		}
	}
	if k := kldStored(st, st); k != 0 {
		t.Errorf("KL of a distribution with itself %g", k)
	}
	// The clamped terms are left out: a test distribution that differs only there shows nothing.
	test := append([]float64(nil), st...)
	test[4], test[5] = -3, -3
	if k := kldStored(st, test); k != 0 {
		t.Errorf("KL over clamped terms only: %g, want 0", k)
	}
}
