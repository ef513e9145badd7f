package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"edgelm/gguf"
	"edgelm/internal/testshared"
	"edgelm/tokenizer"
)

// schemas exercise every supported keyword; each has outputs that must validate.
var schemas = map[string]string{
	"types": `{"type":"object","properties":{"n":{"type":"null"},"b":{"type":"boolean"},"x":{"type":"number"},
		"i":{"type":"integer"},"s":{"type":"string"}},"required":["n","b","x","i","s"],"additionalProperties":false}`,
	"optional": `{"type":"object","properties":{"color":{"enum":["red","green","blue"]},"v":{"const":42},
		"opt":{"type":"string"},"o2":{"type":"boolean"}},"required":["color","v"],"additionalProperties":false}`,
	"allOptional": `{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string","maxLength":3}},"additionalProperties":false}`,
	"array":       `{"type":"array","items":{"type":"integer","minimum":-5,"maximum":250},"minItems":2,"maxItems":4}`,
	"string":      `{"type":"string","minLength":3,"maxLength":8}`,
	"anyOf":       `{"anyOf":[{"type":"string","maxLength":4},{"type":"integer","minimum":0,"maximum":9},{"type":"null"}]}`,
	"ref": `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array",
		"items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"}`,
	"typeList":  `{"type":["string","null"],"maxLength":5}`,
	"map":       `{"type":"object","additionalProperties":{"type":"boolean"}}`,
	"exclusive": `{"type":"integer","exclusiveMinimum":-100,"exclusiveMaximum":1000}`,
	"bigRange":  `{"type":"integer","minimum":-123456,"maximum":98765432}`,
	"enumMixed": `{"enum":[1,"a",null,{"k":[true]},2.5]}`,
	"noType":    `{"description":"anything"}`,
	"nested": `{"type":"object","properties":{"user":{"type":"object","properties":{"name":{"type":"string","minLength":1},
		"age":{"type":"integer","minimum":0,"maximum":150},"tags":{"type":"array","items":{"type":"string"}}},
		"required":["name","age","tags"],"additionalProperties":false}},"required":["user"],"additionalProperties":false}`,
}

// validate is an independent checker of the keywords the grammar supports (not built from it).
func validate(v any, s any, root any, path string) error {
	switch s := s.(type) {
	case bool:
		if !s {
			return fmt.Errorf("%s: false schema", path)
		}
		return nil
	case map[string]any:
		if ref, ok := s["$ref"].(string); ok {
			target := root
			for _, p := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
				target = target.(map[string]any)[p]
			}
			return validate(v, target, root, path)
		}
		if alts, ok := s["anyOf"].([]any); ok {
			for _, a := range alts {
				if validate(v, a, root, path) == nil {
					return nil
				}
			}
			return fmt.Errorf("%s: %v matches no anyOf alternative", path, v)
		}
		if c, ok := s["const"]; ok && !reflect.DeepEqual(norm(c), norm(v)) {
			return fmt.Errorf("%s: %v is not the const %v", path, v, c)
		}
		if e, ok := s["enum"].([]any); ok {
			found := false
			for _, x := range e {
				found = found || reflect.DeepEqual(norm(x), norm(v))
			}
			if !found {
				return fmt.Errorf("%s: %v not in enum", path, v)
			}
		}
		if t, ok := s["type"]; ok {
			types := []any{t}
			if l, ok := t.([]any); ok {
				types = l
			}
			match := false
			for _, t := range types {
				match = match || typeIs(v, t.(string))
			}
			if !match {
				return fmt.Errorf("%s: %v is not of type %v", path, v, t)
			}
		}
		num := func(k string) (float64, bool) {
			x, ok := s[k].(json.Number)
			if !ok {
				return 0, false
			}
			f, _ := x.Float64()
			return f, true
		}
		switch v := v.(type) {
		case json.Number:
			f, _ := v.Float64()
			if m, ok := num("minimum"); ok && f < m {
				return fmt.Errorf("%s: %v < minimum %v", path, f, m)
			}
			if m, ok := num("maximum"); ok && f > m {
				return fmt.Errorf("%s: %v > maximum %v", path, f, m)
			}
			if m, ok := num("exclusiveMinimum"); ok && f <= m {
				return fmt.Errorf("%s: %v <= exclusiveMinimum %v", path, f, m)
			}
			if m, ok := num("exclusiveMaximum"); ok && f >= m {
				return fmt.Errorf("%s: %v >= exclusiveMaximum %v", path, f, m)
			}
		case string:
			n := float64(utf8.RuneCountInString(v))
			if m, ok := num("minLength"); ok && n < m {
				return fmt.Errorf("%s: %q shorter than %v", path, v, m)
			}
			if m, ok := num("maxLength"); ok && n > m {
				return fmt.Errorf("%s: %q longer than %v", path, v, m)
			}
		case []any:
			n := float64(len(v))
			if m, ok := num("minItems"); ok && n < m {
				return fmt.Errorf("%s: %d items < %v", path, len(v), m)
			}
			if m, ok := num("maxItems"); ok && n > m {
				return fmt.Errorf("%s: %d items > %v", path, len(v), m)
			}
			if it, ok := s["items"]; ok {
				for i, x := range v {
					if err := validate(x, it, root, fmt.Sprintf("%s/%d", path, i)); err != nil {
						return err
					}
				}
			}
		case map[string]any:
			props, _ := s["properties"].(map[string]any)
			for _, r := range anySlice(s["required"]) {
				if _, ok := v[r.(string)]; !ok {
					return fmt.Errorf("%s: required %q missing", path, r)
				}
			}
			for k, x := range v {
				if ps, ok := props[k]; ok {
					if err := validate(x, ps, root, path+"/"+k); err != nil {
						return err
					}
				} else if ap, ok := s["additionalProperties"]; ok {
					if err := validate(x, ap, root, path+"/"+k); err != nil {
						return fmt.Errorf("%s: additional property %q: %v", path, k, err)
					}
				}
			}
		}
		return nil
	}
	return fmt.Errorf("%s: bad schema %T", path, s)
}

func anySlice(v any) []any { l, _ := v.([]any); return l }

// norm makes numbers comparable whatever their spelling.
func norm(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = norm(v[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = norm(x)
		}
		return out
	}
	return v
}

func typeIs(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := strconv.ParseInt(string(n), 10, 64)
		return err == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func decode(t testing.TB, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	if d.More() {
		t.Fatalf("%q: more after the value", s)
	}
	return v
}

// syntheticVocab is every byte plus multi-byte pieces of the kind real vocabularies have.
func syntheticVocab() (*Vocab, int32) {
	var pieces [][]byte
	for c := 0; c < 256; c++ {
		pieces = append(pieces, []byte{byte(c)})
	}
	for _, s := range []string{`{"`, `":`, `",`, `"}`, `"]`, `["`, `true`, `false`, `null`, ` "`, `": "`, `":"`,
		`},`, `}]`, `]}`, `, "`, "\n  ", "\n", "  ", `12`, `00`, `-1`, `.5`, `e+`, `red`, `re`, `green`, `blue`,
		`name`, `age`, `tags`, `user`, `kids`, `hello`, ` world`, `é`, `日本`, `\n`, `\"`, `\u00e9`, `""`, `[]`, `{}`,
		"\xe6", "\x97\xa5", "\t", `42`, `{"v":`, `,"kids":[`, `:{`, ` `, "\u2581"} {
		pieces = append(pieces, []byte(s))
	}
	eos := int32(len(pieces))
	pieces = append(pieces, nil) // a control token
	return NewVocab(pieces, []int32{eos}), eos
}

var (
	tinyOnce  sync.Once
	tinyVocab *Vocab
	tinyTok   *tokenizer.Tokenizer
)

// tinydoc loads tinydoc's 32,000-token vocabulary (skipping without the shared data).
func tinydoc(t testing.TB) (*Vocab, *tokenizer.Tokenizer) {
	path := testshared.Path(t, "models", "tinydoc-q8_0.gguf")
	tinyOnce.Do(func() {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tk, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		tinyTok, tinyVocab = tk, VocabOf(tk)
	})
	if tinyVocab == nil {
		t.Fatal("tinydoc vocabulary did not load")
	}
	return tinyVocab, tinyTok
}

// has reports whether bit id is set.
func has(mask []uint64, id int32) bool { return mask[id>>6]&(1<<(id&63)) != 0 }

// generate samples up to n tokens uniformly among the allowed ones, leaning towards tokens that
// close things (so most runs finish): it returns the text and whether the value completed.
func generate(t testing.TB, g *Grammar, v *Vocab, rng *rand.Rand, n int) (string, bool) {
	m := g.Matcher(v)
	var out []byte
	var allowed, closing []int32
	for range n {
		mask := m.Allowed()
		allowed, closing = allowed[:0], closing[:0]
		for w, x := range mask {
			for x != 0 {
				id := int32(w*64 + bits.TrailingZeros64(x))
				x &= x - 1
				allowed = append(allowed, id)
				if v.IsEOG(id) {
					closing = append(closing, id, id, id, id)
				} else if bytes.ContainsAny(v.pieces[id], `"]},`) {
					closing = append(closing, id)
				}
			}
		}
		if len(allowed) == 0 {
			t.Fatalf("no token allowed after %q", out)
		}
		pick := allowed
		if len(closing) > 0 && rng.IntN(3) > 0 {
			pick = closing
		}
		id := pick[rng.IntN(len(pick))]
		if v.IsEOG(id) {
			if !m.Complete() {
				t.Fatalf("EOG allowed after incomplete %q", out)
			}
			return string(out), true
		}
		if err := m.Accept(id); err != nil {
			t.Fatalf("allowed token %d (%q) rejected after %q: %v", id, v.pieces[id], out, err)
		}
		out = append(out, v.pieces[id]...)
		if m.Finished() {
			return string(out), true
		}
	}
	return string(out), false
}

func checkOutput(t *testing.T, name, schema, out string) {
	t.Helper()
	if strings.Contains(out, strings.Repeat(" ", maxWS+2)) {
		t.Errorf("%s: unbounded whitespace in %q", name, out)
	}
	var s any
	d := json.NewDecoder(strings.NewReader(schema))
	d.UseNumber()
	if err := d.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if err := validate(decode(t, out), s, s, "#"); err != nil {
		t.Errorf("%s: output %q invalid: %v", name, out, err)
	}
}

func TestGeneratedOutputsValidate(t *testing.T) {
	v, _ := syntheticVocab()
	for name, schema := range schemas {
		g, err := FromJSONSchema([]byte(schema))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		done := 0
		for seed := range uint64(40) {
			out, ok := generate(t, g, v, rand.New(rand.NewPCG(seed, 1)), 300)
			if ok {
				done++
				checkOutput(t, name, schema, out)
			}
		}
		if done < 10 {
			t.Errorf("%s: only %d of 40 generations completed", name, done)
		}
	}
}

func TestGeneratedOutputsValidateTinydoc(t *testing.T) {
	v, _ := tinydoc(t)
	for name, schema := range schemas {
		g, err := FromJSONSchema([]byte(schema))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for seed := range uint64(3) {
			if out, ok := generate(t, g, v, rand.New(rand.NewPCG(seed, 2)), 150); ok {
				checkOutput(t, name, schema, out)
			}
		}
	}
	for seed := range uint64(6) {
		if out, ok := generate(t, JSONObject(), v, rand.New(rand.NewPCG(seed, 3)), 200); ok {
			if _, isObj := decode(t, out).(map[string]any); !isObj {
				t.Errorf("json_object output %q is not an object", out)
			}
		}
	}
}

// valid documents for the schemas, written by hand, each must be accepted all the way.
var validDocs = map[string][]string{
	"types":       {`{"n":null,"b":true,"x":-1.5e+3,"i":0,"s":"a\"b\\c\u00e9 日本"}`, "{\n  \"n\": null,\n  \"b\": false,\n  \"x\": 3,\n  \"i\": -42,\n  \"s\": \"\"\n}"},
	"optional":    {`{"color":"red","v":42}`, `{"color": "blue", "v": 42, "opt": "x", "o2": false}`, `{"color":"green","v":42,"o2":true}`},
	"allOptional": {`{}`, `{ }`, `{"b":"abc"}`, `{"a":7}`, `{"a":7,"b":""}`},
	"array":       {`[1,2]`, `[-5, 250, 0, 17]`, "[\n  3,\n  4\n]"},
	"string":      {`"abc"`, `"abcdefgh"`, `"日本語"`},
	"anyOf":       {`"abcd"`, `9`, `null`, `""`},
	"ref":         {`{"v":1}`, `{"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]}`},
	"typeList":    {`null`, `"hello"`},
	"map":         {`{}`, `{"a":true,"b":false}`},
	"exclusive":   {`-99`, `0`, `999`},
	"bigRange":    {`-123456`, `-9`, `0`, `98765432`, `98765431`, `1000000`},
	"enumMixed":   {`1`, `"a"`, `null`, `{"k":[true]}`, `2.5`},
	"noType":      {`[1,{"a":"b"},null]`, `"x"`, `-0.5`},
	"nested":      {`{"user":{"name":"Ann","age":150,"tags":["a","b"]}}`},
}

var invalidDocs = map[string][]string{
	"types":       {`{"n":null,"b":true,"x":1,"i":1.5,"s":""}`, `{"b":true}`, `{"n":null,"b":true,"x":1,"i":1,"s":"","z":1}`},
	"optional":    {`{"color":"pink","v":42}`, `{"color":"red","v":41}`, `{"v":42,"color":"red"}`},
	"allOptional": {`{"b":"abcd"}`, `{"a":01}`},
	"array":       {`[1]`, `[1,2,3,4,5]`, `[251,1]`, `[-6,1]`},
	"string":      {`"ab"`, `"abcdefghi"`, "\"a\tb\""},
	"anyOf":       {`"abcde"`, `10`, `true`},
	"ref":         {`{"v":1,"kids":[{"v":2},{"v":3},{"v":4}]}`, `{"kids":[]}`},
	"map":         {`{"a":1}`},
	"exclusive":   {`-100`, `1000`, `-0`},
	"bigRange":    {`-123457`, `98765433`, `100000000`},
	"enumMixed":   {`2`, `{"k":[false]}`},
	"nested":      {`{"user":{"name":"","age":1,"tags":[]}}`, `{"user":{"name":"a","age":151,"tags":[]}}`},
}

func TestHandWrittenDocuments(t *testing.T) {
	for name, docs := range validDocs {
		g, err := FromJSONSchema([]byte(schemas[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, d := range docs {
			checkOutput(t, name, schemas[name], d) // the test's own documents must be right
			m := g.Matcher(nil)
			if err := m.AcceptBytes([]byte(d)); err != nil || !m.Complete() {
				t.Errorf("%s: valid %q not accepted: %v (complete %v)", name, d, err, m.Complete())
			}
		}
		for _, d := range invalidDocs[name] {
			m := g.Matcher(nil)
			if err := m.AcceptBytes([]byte(d)); err == nil && m.Complete() {
				t.Errorf("%s: invalid %q accepted", name, d)
			}
		}
	}
}

// TestMaskKeepsValidContinuations tokenizes valid documents with tinydoc's tokenizer and checks
// that every token is in the mask when it comes, and that the mask is exactly the tokens whose
// bytes the matcher accepts (checked one token at a time).
func TestMaskKeepsValidContinuations(t *testing.T) {
	v, tk := tinydoc(t)
	for name, docs := range validDocs {
		g, err := FromJSONSchema([]byte(schemas[name]))
		if err != nil {
			t.Fatal(err)
		}
		for di, d := range docs {
			ids := tk.Encode(d, false, false)
			m := g.Matcher(v)
			for i, id := range ids {
				mask := m.Allowed()
				if !has(mask, id) {
					t.Fatalf("%s %q: token %d (%q) excluded after %q", name, d, id, v.pieces[id], tk.Decode(ids[:i]))
				}
				if di == 0 && i < 2 {
					for tok := range int32(v.n) {
						c := *m
						want := len(v.pieces[tok]) > 0 && !v.IsEOG(tok) && c.AcceptBytes(v.pieces[tok]) == nil
						if v.IsEOG(tok) {
							want = m.Complete()
						}
						if has(mask, tok) != want {
							t.Fatalf("%s: token %d (%q): mask %v, one by one %v", name, tok, v.pieces[tok], has(mask, tok), want)
						}
					}
				}
				if err := m.Accept(id); err != nil {
					t.Fatal(err)
				}
			}
			mask := m.Allowed()
			if !m.Complete() || !has(mask, tk.EOS()) {
				t.Errorf("%s %q: EOS not allowed at the end", name, d)
			}
		}
	}
}

func TestUnsupportedKeywords(t *testing.T) {
	for schema, want := range map[string][]string{
		`{"type":"string","pattern":"^a"}`:                          {"pattern at #"},
		`{"type":"string","format":"date"}`:                         {"format at #"},
		`{"properties":{"a":{"oneOf":[{"type":"string"}]}}}`:        {"oneOf at #/properties/a"},
		`{"allOf":[{}],"not":{}}`:                                   {"allOf at #", "not at #"},
		`{"type":"number","minimum":1}`:                             {"minimum on a number"},
		`{"type":"array","items":[{"type":"string"}]}`:              {"items as an array"},
		`{"$ref":"http://example.com/s.json"}`:                      {`$ref "http://example.com/s.json"`},
		`{"type":"object","required":["a"]}`:                        {`required "a"`},
		`{"type":"array","uniqueItems":true,"contains":{}}`:         {"uniqueItems at #", "contains at #"},
		`{"type":"object","patternProperties":{"a":{}}}`:            {"patternProperties at #"},
		`{"anyOf":[{"type":"string"}],"type":"string"}`:             {"anyOf beside type"},
		`{"type":"integer","multipleOf":2,"minimum":0,"maximum":9}`: {"multipleOf at #"},
	} {
		_, err := FromJSONSchema([]byte(schema))
		var ue *UnsupportedError
		if !errors.As(err, &ue) {
			t.Errorf("%s: want an UnsupportedError, got %v", schema, err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", schema, err, w)
			}
		}
	}
	for _, schema := range []string{`{"type":"strung"}`, `[1]`, `{"type":"string","maxLength":-1}`,
		`{"type":"string","minLength":5,"maxLength":2}`, `{"$ref":"#/$defs/missing"}`, `{"enum":[]}`,
		`{"type":"array","maxItems":100000}`, `{"type":"integer","minimum":5,"maximum":4}`, `{`} {
		if _, err := FromJSONSchema([]byte(schema)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: want ErrSchema, got %v", schema, err)
		}
	}
	if _, err := FromJSONSchema([]byte(`{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"}`)); !errors.Is(err, ErrLeftRecursive) {
		t.Errorf("left recursion: got %v", err)
	}
}

func TestJSONObjectEnds(t *testing.T) {
	v, eos := syntheticVocab()
	m := JSONObject().Matcher(v)
	if has(m.Allowed(), eos) {
		t.Fatal("EOS allowed before any output")
	}
	if err := m.AcceptBytes([]byte("\n{\"a\": [1, {\"b\": null}], \"c\": \"d\"}")); err != nil {
		t.Fatal(err)
	}
	mask := m.Allowed()
	if !m.Finished() || !has(mask, eos) {
		t.Fatal("a complete object does not end")
	}
	for id := range int32(v.n) {
		if id != eos && has(mask, id) {
			t.Errorf("token %q allowed after the object", v.pieces[id])
		}
	}
	if m.AcceptBytes([]byte("[1]")) == nil || JSONObject().Matcher(v).AcceptBytes([]byte("[")) == nil {
		t.Error("a non-object accepted")
	}
}

func TestToolCall(t *testing.T) {
	g, err := ToolCall([]Function{
		{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city"],"additionalProperties":false}`)},
		{Name: "tree", Parameters: []byte(`{"$defs":{"n":{"type":"object","properties":{"k":{"type":"array","items":{"$ref":"#/$defs/n"}}},"additionalProperties":false}},"$ref":"#/$defs/n"}`)},
		{Name: "noargs"},
	}, "arguments")
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{`{"name": "get_weather", "arguments": {"city": "Paris"}}`, `{"name":"tree","arguments":{"k":[{"k":[]}]}}`,
		`{"name": "noargs", "arguments": {"x": [1]}}`} {
		if m := g.Matcher(nil); m.AcceptBytes([]byte(ok)) != nil || !m.Finished() {
			t.Errorf("%s rejected", ok)
		}
	}
	for _, bad := range []string{`{"name": "get_weather", "arguments": {"unit": "c"}}`, `{"name": "other", "arguments": {}}`,
		`{"arguments": {}, "name": "noargs"}`, `{"name":"tree","arguments":{"k":[{"j":1}]}}`} {
		if m := g.Matcher(nil); m.AcceptBytes([]byte(bad)) == nil && m.Complete() {
			t.Errorf("%s accepted", bad)
		}
	}
	_, err = ToolCall([]Function{{Name: "f", Parameters: []byte(`{"type":"object","properties":{"d":{"type":"string","format":"date"}}}`)}}, "arguments")
	if err == nil || !strings.Contains(err.Error(), "format at f#/properties/d") {
		t.Errorf("unsupported keyword in a tool: %v", err)
	}
}

func TestToolCallIn(t *testing.T) {
	g, err := ToolCallIn([]Function{{Name: "f"}}, "arguments", "<tool_call>", "</tool_call>")
	if err != nil {
		t.Fatal(err)
	}
	m := g.Matcher(nil)
	if err := m.AcceptBytes([]byte("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>")); err != nil || !m.Finished() {
		t.Errorf("wrapped call: %v %v", err, m.Finished())
	}
	if g.Matcher(nil).AcceptBytes([]byte(`{"name"`)) == nil {
		t.Error("a call without its opening tag accepted")
	}
}

// TestAmbiguousBlowUp: nested anyOf of identical alternatives would make the parser's stacks
// exponential; the matcher gives up (no token allowed) in bounded time instead.
func TestAmbiguousBlowUp(t *testing.T) {
	// Each level: three different array rules around the level below, so no two stacks merge.
	defs := `"l0":{"type":"string"}`
	for i := 1; i <= 12; i++ {
		ref := fmt.Sprintf(`{"$ref":"#/$defs/l%d"}`, i-1)
		defs += fmt.Sprintf(`,"l%d":{"anyOf":[{"type":"array","items":%s},{"type":"array","items":%s,"maxItems":50},{"type":"array","items":%s,"minItems":1}]}`, i, ref, ref, ref)
	}
	g, err := FromJSONSchema([]byte(`{"$defs":{` + defs + `},"$ref":"#/$defs/l12"}`))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := syntheticVocab()
	m := g.Matcher(v)
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	}()
	err = m.AcceptBytes([]byte("[[[[[[[[[[[[\"a"))
	if err == nil {
		for _, w := range m.Allowed() {
			if w != 0 {
				return // followed it after all: fine, as long as it was quick
			}
		}
	}
}
