package grammar

import (
	"testing"
)

// The document a benchmark generates, token by token with tinydoc's tokenizer.
const benchDoc = `{"user": {"name": "Ann Smith, a quite long name to type", "age": 42, "tags": ["alpha", "beta gamma", "delta"]}}`

// BenchmarkMask is the grammar's cost per generated token on tinydoc's 32,000-token vocabulary:
// the mask before each token and the step over it, for a whole document.
//   - fresh: the schema compiled anew for every document (a request's first use; nothing cached),
//   - warm: the same compiled schema again (states and masks cached from earlier requests),
//   - object: response_format json_object, whose one grammar every request shares.
func BenchmarkMask(b *testing.B) {
	v, tk := tinydoc(b)
	ids := tk.Encode(benchDoc, false, false)
	schema := []byte(schemas["nested"])
	run := func(b *testing.B, g func() *Grammar) {
		b.ReportAllocs()
		for b.Loop() {
			m := g().Matcher(v)
			for _, id := range ids {
				if !has(m.Allowed(), id) {
					b.Fatal("token excluded")
				}
				if err := m.Accept(id); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/token")
	}
	b.Run("fresh", func(b *testing.B) {
		run(b, func() *Grammar {
			g, err := FromJSONSchema(schema)
			if err != nil {
				b.Fatal(err)
			}
			return g
		})
	})
	warm, _ := FromJSONSchema(schema)
	b.Run("warm", func(b *testing.B) { run(b, func() *Grammar { return warm }) })
	b.Run("object", func(b *testing.B) { run(b, JSONObject) })
}

// BenchmarkVocab is the once-per-model cost of indexing tinydoc's vocabulary.
func BenchmarkVocab(b *testing.B) {
	_, tk := tinydoc(b)
	b.ReportAllocs()
	for b.Loop() {
		VocabOf(tk)
	}
}
