package grammar

import (
	"errors"
	"testing"
)

// FuzzFromJSONSchema: any schema compiles or is refused with ErrSchema, an UnsupportedError or
// ErrLeftRecursive, never a panic; a compiled grammar takes arbitrary bytes without panicking.
func FuzzFromJSONSchema(f *testing.F) {
	for _, s := range schemas {
		f.Add([]byte(s), []byte(`{"a": [1, "x"]}`))
	}
	f.Add([]byte(`{"anyOf":[{"$ref":"#"},{"type":"null"}]}`), []byte(`null`))
	f.Add([]byte(`{"type":"integer","minimum":-1e300,"maximum":1e300}`), []byte(`-5`))
	f.Fuzz(func(t *testing.T, schema, text []byte) {
		g, err := FromJSONSchema(schema)
		if err != nil {
			var ue *UnsupportedError
			if !errors.Is(err, ErrSchema) && !errors.As(err, &ue) && !errors.Is(err, ErrLeftRecursive) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		v, _ := syntheticVocab()
		m := g.Matcher(v)
		m.AcceptBytes(text)
		m.Allowed()
	})
}
