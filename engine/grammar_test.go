package engine

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/grammar"
	"edgelm/internal/testshared"
)

// TestGrammarConstrainsSampling runs tinydoc at temperature 1 under a schema with several seeds:
// every finished output must parse and hold what the schema says (checked here by hand), and the
// events' texts must add up to the result.
func TestGrammarConstrainsSampling(t *testing.T) {
	e, err := Load(filepath.Join(testshared.Dir(t), "models", "tinydoc-q8_0.gguf"), Options{MaxSequences: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	g, err := grammar.FromJSONSchema([]byte(`{"type":"object","properties":{"name":{"type":"string","maxLength":12},
		"age":{"type":"integer","minimum":0,"maximum":120},"pets":{"type":"array","items":{"enum":["cat","dog"]},"maxItems":3}},
		"required":["name","age","pets"],"additionalProperties":false}`))
	if err != nil {
		t.Fatal(err)
	}
	prompt := e.Tokenize("A person as JSON:", true, false)
	finished := 0
	for seed := uint64(1); seed <= 6; seed++ {
		res, text := gen(t, e, Request{Prompt: prompt, MaxTokens: 120, Grammar: g,
			Sampling: Sampling{Temperature: 1, Seed: seed}})
		if text != res.Text {
			t.Errorf("seed %d: events %q, result %q", seed, text, res.Text)
		}
		if res.FinishReason == "length" {
			continue
		}
		finished++
		var v struct {
			Name *string
			Age  *float64
			Pets *[]string
		}
		dec := json.NewDecoder(strings.NewReader(res.Text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Errorf("seed %d: %q: %v", seed, res.Text, err)
			continue
		}
		switch {
		case v.Name == nil || v.Age == nil || v.Pets == nil:
			t.Errorf("seed %d: %q misses a required property", seed, res.Text)
		case len([]rune(*v.Name)) > 12, *v.Age < 0, *v.Age > 120, *v.Age != float64(int(*v.Age)), len(*v.Pets) > 3:
			t.Errorf("seed %d: %q out of bounds", seed, res.Text)
		}
		for _, p := range *v.Pets {
			if p != "cat" && p != "dog" {
				t.Errorf("seed %d: pet %q", seed, p)
			}
		}
	}
	if finished < 3 {
		t.Errorf("only %d of 6 outputs finished within 120 tokens", finished)
	}

	// Stop strings and max_tokens still cut a constrained answer, which is then incomplete.
	res, _ := gen(t, e, Request{Prompt: prompt, MaxTokens: 60, Grammar: g, Stop: []string{`"`}, Sampling: Sampling{Temperature: 1, Seed: 1}})
	if res.FinishReason != "stop" || strings.Contains(res.Text, `"`) || strings.TrimSpace(res.Text) != "{" {
		t.Errorf("stop string: %q (%s)", res.Text, res.FinishReason)
	}
	res, _ = gen(t, e, Request{Prompt: prompt, MaxTokens: 3, Grammar: g, Sampling: Sampling{Temperature: 1, Seed: 1}})
	if res.FinishReason != "length" || len(res.Tokens) != 3 || json.Valid([]byte(res.Text)) {
		t.Errorf("max_tokens: %q (%s)", res.Text, res.FinishReason)
	}

	// A json_object answer with top_k and top_p among the allowed tokens; greedy too.
	for _, s := range []Sampling{{Temperature: 0.8, TopK: 5, TopP: 0.9, Seed: 3}, {}} {
		res, _ := gen(t, e, Request{Prompt: prompt, MaxTokens: 60, Grammar: grammar.JSONObject(), Sampling: s})
		if !strings.HasPrefix(strings.TrimSpace(res.Text), "{") {
			t.Errorf("%+v: json_object output %q does not start an object", s, res.Text)
		}
		if res.FinishReason == "stop" && !json.Valid([]byte(res.Text)) {
			t.Errorf("%+v: finished json_object output %q is not JSON", s, res.Text)
		}
	}
}

// TestGrammarTrigger: output is free until the trigger, then follows the grammar from the
// trigger on; a token that goes past the trigger into text the grammar rejects gives it up.
func TestGrammarTrigger(t *testing.T) {
	e, err := Load(filepath.Join(testshared.Dir(t), "models", "tinydoc-q8_0.gguf"), Options{MaxSequences: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	g, err := grammar.ToolCallIn([]grammar.Function{{Name: "f", Parameters: []byte(`{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}`)}},
		"arguments", "e", "")
	if err != nil {
		t.Fatal(err)
	}
	prompt := e.Tokenize("The weather is", true, false)
	triggered := 0
	for seed := uint64(1); seed <= 6; seed++ {
		res, _ := gen(t, e, Request{Prompt: prompt, MaxTokens: 80, Grammar: g, Trigger: "e", Sampling: Sampling{Temperature: 1, Seed: seed}})
		k := strings.Index(res.Text, "e")
		if k < 0 || k+1 == len(res.Text) {
			continue
		}
		rest := res.Text[k+1:]
		if !strings.ContainsAny(rest[:1], " \n\t{") {
			continue // the trigger's token went on with other text: the grammar was given up
		}
		triggered++
		var call struct {
			Name      string
			Arguments struct{ A *int }
		}
		if res.FinishReason == "stop" {
			if err := json.Unmarshal([]byte(rest), &call); err != nil || call.Name != "f" || call.Arguments.A == nil {
				t.Errorf("seed %d: after the trigger %q (%v)", seed, rest, err)
			}
		}
	}
	if triggered == 0 {
		t.Error("no run reached the grammar")
	}
	// At the start only: a first non-space character other than the trigger frees the output.
	res, _ := gen(t, e, Request{Prompt: prompt, MaxTokens: 20, Grammar: g, Trigger: "{", TriggerAtStart: true, Sampling: Sampling{Temperature: 1, Seed: 9}})
	if strings.HasPrefix(strings.TrimSpace(res.Text), "{") || res.FinishReason != "length" {
		t.Logf("(the model started with the trigger: %q)", res.Text)
	}
}
