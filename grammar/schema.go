package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Limits of what a schema may ask for, so a request cannot make a grammar of unbounded size.
const (
	// MaxRepeat bounds minItems, maxItems, minLength and maxLength, which expand into one rule per count.
	MaxRepeat = 4096
	// MaxIntDigits bounds integers: an integer without maximum (minimum) is at most 15 digits long,
	// the integers a float64 holds exactly.
	MaxIntDigits = 15
	maxRules     = 1 << 18
	maxDepth     = 64
	// maxWS is how many spaces or tabs may follow a newline between tokens; whitespace is otherwise
	// at most one space, so a model cannot pad forever.
	maxWS = 8
)

// UnsupportedError lists the schema keywords (with where they are) that a grammar cannot honour.
// A schema is never half-applied: these are refused.
type UnsupportedError struct {
	Keywords []string // such as "pattern at #/properties/name"
}

func (e *UnsupportedError) Error() string {
	return "grammar: unsupported JSON schema keywords: " + strings.Join(e.Keywords, ", ")
}

// ErrSchema is wrapped by errors about a schema that is malformed (not about unsupported keywords).
var ErrSchema = errors.New("grammar: invalid JSON schema")

var jsonObject = sync.OnceValue(func() *Grammar {
	c := newCompiler(nil)
	g, err := c.b.build(c.b.rule(cat(one(c.b.ref(c.ws())), one(c.b.ref(c.anyObject())))))
	if err != nil {
		panic(err)
	}
	return g
})

// JSONObject is the grammar of any JSON object (OpenAI's response_format json_object), possibly
// preceded by whitespace. One grammar is shared by all callers, so its caches are too.
func JSONObject() *Grammar { return jsonObject() }

// FromJSONSchema builds the grammar of JSON values valid against schema, possibly preceded by
// whitespace, with nothing after the value.
//
// Supported: type (a name or a list), properties (generated in the schema's order; required ones
// always, others optionally), required, additionalProperties (false; or a schema for objects
// without properties; otherwise only declared properties are generated, which is valid output),
// enum, const, items, minItems, maxItems, minLength, maxLength, minimum, maximum,
// exclusiveMinimum, exclusiveMaximum (integers only), anyOf, $ref to any local JSON pointer
// ("#/$defs/x", "#/definitions/x", "#"), and the annotations title, description, default,
// examples, $schema, $id, $comment, deprecated, readOnly, writeOnly. Anything else gives an
// *UnsupportedError naming every such keyword.
func FromJSONSchema(schema []byte) (*Grammar, error) {
	schema = bytes.TrimSpace(schema)
	if !json.Valid(schema) {
		return nil, fmt.Errorf("%w: not valid JSON", ErrSchema)
	}
	c := newCompiler(schema)
	top, err := c.compile(schema, "#", 0)
	if err != nil {
		return nil, err
	}
	if len(c.unsupported) > 0 {
		return nil, &UnsupportedError{Keywords: c.unsupported}
	}
	if len(c.b.rules) > maxRules {
		return nil, fmt.Errorf("%w: the schema needs %d grammar rules, more than %d", ErrSchema, len(c.b.rules), maxRules)
	}
	return c.b.build(c.b.rule([]sym{c.b.ref(c.ws()), c.b.ref(top)}))
}

// Function is one function a tool call may name.
type Function struct {
	Name       string
	Parameters []byte // a JSON schema of the arguments; empty means any object
}

// ToolCall is the grammar of one call of one of fns, as the JSON object
// {"name": <the function's name>, <argsKey>: <arguments valid against its parameters>}, members in
// that order, possibly preceded by whitespace. Parameters schemas are read as FromJSONSchema reads
// a schema ($refs relative to each one); unsupported keywords give an *UnsupportedError whose
// entries start with the function's name.
func ToolCall(fns []Function, argsKey string) (*Grammar, error) {
	return ToolCallIn(fns, argsKey, "", "")
}

// ToolCallIn is ToolCall with the call between the texts open and close (such as "<tool_call>"
// and "</tool_call>"), whitespace allowed inside them: open, whitespace, the call, whitespace, close.
func ToolCallIn(fns []Function, argsKey, open, close string) (*Grammar, error) {
	if len(fns) == 0 {
		return nil, fmt.Errorf("%w: no functions", ErrSchema)
	}
	c := newCompiler(nil)
	b := c.b
	ws := one(b.ref(c.ws()))
	var alts [][]sym
	for i, fn := range fns {
		params := bytes.TrimSpace(fn.Parameters)
		if len(params) == 0 {
			params = []byte(`{"type":"object"}`)
		}
		if !json.Valid(params) {
			return nil, fmt.Errorf("%w: parameters of %s: not valid JSON", ErrSchema, fn.Name)
		}
		c.root, c.refKey, c.where = params, strconv.Itoa(i)+":", fn.Name
		args, err := c.compile(params, "#", 0)
		if err != nil {
			return nil, fmt.Errorf("parameters of %s: %w", fn.Name, err)
		}
		alts = append(alts, cat(b.lit("{"), ws, b.lit(`"name"`), ws, b.lit(":"), ws, b.lit(quote(fn.Name)), ws, b.lit(","), ws,
			b.lit(quote(argsKey)), ws, b.lit(":"), ws, one(b.ref(args)), ws, b.lit("}")))
	}
	if len(c.unsupported) > 0 {
		return nil, &UnsupportedError{Keywords: c.unsupported}
	}
	if len(b.rules) > maxRules {
		return nil, fmt.Errorf("%w: the tools need %d grammar rules, more than %d", ErrSchema, len(b.rules), maxRules)
	}
	call := one(b.ref(b.rule(alts...)))
	if open == "" && close == "" {
		return b.build(b.rule(cat(ws, call)))
	}
	return b.build(b.rule(cat(b.lit(open), ws, call, ws, b.lit(close))))
}

type compiler struct {
	b           *builder
	root        []byte
	refKey      string // prefixes refs' keys: several roots may share a compiler (ToolCall)
	where       string // prefixes paths in messages
	refs        map[string]int32
	unsupported []string
}

func newCompiler(root []byte) *compiler {
	return &compiler{b: newBuilder(), root: root, refs: map[string]int32{}}
}

func (c *compiler) unsupport(kw, path string) {
	c.unsupported = append(c.unsupported, kw+" at "+c.where+path)
}

// Shared rules of JSON's lexical structure.

func (c *compiler) ws() int32 {
	b := c.b
	return b.once("ws", func(r int32) {
		indent := b.repeat(one(b.rng(' ', ' ', '\t', '\t')), nil, 0, maxWS)
		b.define(r, nil, b.lit(" "), cat(b.lit("\n"), one(b.ref(indent))))
	})
}

// char is one character of a JSON string: printable UTF-8 other than " and \, or an escape.
func (c *compiler) char() int32 {
	b := c.b
	return b.once("char", func(r int32) {
		cont := b.rng(0x80, 0xBF)
		hex := b.rng('0', '9', 'a', 'f', 'A', 'F')
		b.define(r,
			one(b.rng(0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F)),
			[]sym{b.rng(0xC2, 0xDF), cont},
			[]sym{b.rng(0xE0, 0xE0), b.rng(0xA0, 0xBF), cont},
			[]sym{b.rng(0xE1, 0xEC, 0xEE, 0xEF), cont, cont},
			[]sym{b.rng(0xED, 0xED), b.rng(0x80, 0x9F), cont},
			[]sym{b.rng(0xF0, 0xF0), b.rng(0x90, 0xBF), cont, cont},
			[]sym{b.rng(0xF1, 0xF3), cont, cont, cont},
			[]sym{b.rng(0xF4, 0xF4), b.rng(0x80, 0x8F), cont, cont},
			cat(b.lit("\\"), one(b.rng('"', '"', '\\', '\\', '/', '/', 'b', 'b', 'f', 'f', 'n', 'n', 'r', 'r', 't', 't'))),
			cat(b.lit("\\u"), []sym{hex, hex, hex, hex}),
		)
	})
}

func (c *compiler) str(minLen, maxLen int) int32 {
	b := c.b
	return b.once(fmt.Sprintf("string%d,%d", minLen, maxLen), func(r int32) {
		chars := b.repeat(one(b.ref(c.char())), nil, minLen, maxLen)
		b.define(r, cat(b.lit(`"`), one(b.ref(chars)), b.lit(`"`)))
	})
}

func (c *compiler) number() int32 {
	b := c.b
	return b.once("number", func(r int32) {
		digit := one(b.rng('0', '9'))
		frac := b.rule(nil, cat(b.lit("."), one(b.ref(b.repeat(digit, nil, 1, MaxIntDigits)))))
		exp := b.rule(nil, cat(one(b.rng('e', 'e', 'E', 'E')), one(b.ref(b.rule(nil, one(b.rng('+', '+', '-', '-'))))),
			one(b.ref(b.repeat(digit, nil, 1, 3)))))
		b.define(r, []sym{b.ref(c.integer()), b.ref(frac), b.ref(exp)})
	})
}

func (c *compiler) integer() int32 {
	b := c.b
	return b.once("integer", func(r int32) {
		sign := b.rule(nil, b.lit("-"))
		more := b.repeat(one(b.rng('0', '9')), nil, 0, MaxIntDigits-1)
		b.define(r, cat(one(b.ref(sign)), b.lit("0")), []sym{b.ref(sign), b.rng('1', '9'), b.ref(more)})
	})
}

func (c *compiler) anyValue() int32 {
	b := c.b
	return b.once("value", func(r int32) {
		b.define(r, one(b.ref(c.anyObject())), one(b.ref(c.anyArray())), one(b.ref(c.str(0, -1))),
			one(b.ref(c.number())), b.lit("true"), b.lit("false"), b.lit("null"))
	})
}

func (c *compiler) anyObject() int32 {
	return c.b.once("object", func(r int32) { c.mapObject(r, c.anyValue()) })
}

// mapObject defines r as an object with any keys and values of rule val.
func (c *compiler) mapObject(r, val int32) {
	b := c.b
	ws := one(b.ref(c.ws()))
	kv := cat(one(b.ref(c.str(0, -1))), ws, b.lit(":"), ws, one(b.ref(val)))
	members := b.repeat(kv, cat(ws, b.lit(","), ws), 1, -1)
	b.define(r, cat(b.lit("{"), ws, b.lit("}")), cat(b.lit("{"), ws, one(b.ref(members)), ws, b.lit("}")))
}

func (c *compiler) anyArray() int32 {
	return c.b.once("array", func(r int32) { c.array(r, c.anyValue(), 0, -1) })
}

func (c *compiler) array(r, item int32, lo, hi int) {
	b := c.b
	ws := one(b.ref(c.ws()))
	var alts [][]sym
	if lo == 0 {
		alts = append(alts, cat(b.lit("["), ws, b.lit("]")))
	}
	if hi != 0 {
		items := b.repeat(one(b.ref(item)), cat(ws, b.lit(","), ws), max(lo, 1), hi)
		alts = append(alts, cat(b.lit("["), ws, one(b.ref(items)), ws, b.lit("]")))
	}
	b.define(r, alts...)
}

// Keywords that describe and never constrain.
var annotations = []string{"title", "description", "default", "examples", "$schema", "$id", "$comment",
	"deprecated", "readOnly", "writeOnly", "$defs", "definitions"}

var constraints = []string{"type", "properties", "required", "additionalProperties", "enum", "const", "items",
	"minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
	"exclusiveMaximum", "anyOf", "$ref"}

// compile returns the rule of the values valid against schema (found at path).
func (c *compiler) compile(schema []byte, path string, depth int) (int32, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: nested more than %d deep at %s", ErrSchema, maxDepth, path)
	}
	if len(c.b.rules) > maxRules {
		return 0, fmt.Errorf("%w: the schema needs more than %d grammar rules", ErrSchema, maxRules)
	}
	schema = bytes.TrimSpace(schema)
	switch string(schema) {
	case "true", "{}":
		return c.anyValue(), nil
	case "false":
		c.unsupport("false (a schema no value satisfies)", path)
		return c.anyValue(), nil
	}
	var kw map[string]json.RawMessage
	if err := json.Unmarshal(schema, &kw); err != nil {
		return 0, fmt.Errorf("%w: at %s: want an object or a boolean", ErrSchema, path)
	}
	var constrained []string
	for k := range kw {
		switch {
		case slices.Contains(annotations, k):
		case slices.Contains(constraints, k):
			constrained = append(constrained, k)
		default:
			c.unsupport(k, path)
		}
	}
	sort.Strings(constrained)
	b := c.b
	if ref, ok := kw["$ref"]; ok {
		if len(constrained) > 1 {
			c.unsupport("$ref beside "+strings.Join(slices.DeleteFunc(constrained, func(s string) bool { return s == "$ref" }), ", "), path)
		}
		var p string
		if err := json.Unmarshal(ref, &p); err != nil {
			return 0, fmt.Errorf("%w: $ref at %s: want a string", ErrSchema, path)
		}
		return c.ref(p, path, depth)
	}
	if alts, ok := kw["anyOf"]; ok {
		if len(constrained) > 1 {
			c.unsupport("anyOf beside "+strings.Join(slices.DeleteFunc(constrained, func(s string) bool { return s == "anyOf" }), ", "), path)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(alts, &list); err != nil || len(list) == 0 {
			return 0, fmt.Errorf("%w: anyOf at %s: want a non-empty array of schemas", ErrSchema, path)
		}
		var syms [][]sym
		for i, s := range list {
			r, err := c.compile(s, fmt.Sprintf("%s/anyOf/%d", path, i), depth+1)
			if err != nil {
				return 0, err
			}
			syms = append(syms, one(b.ref(r)))
		}
		return b.rule(syms...), nil
	}
	types, err := typesOf(kw, path)
	if err != nil {
		return 0, err
	}
	if v, ok := kw["const"]; ok {
		kw["enum"] = json.RawMessage("[" + string(v) + "]")
	}
	if raw, ok := kw["enum"]; ok {
		var vals []json.RawMessage
		if err := json.Unmarshal(raw, &vals); err != nil || len(vals) == 0 {
			return 0, fmt.Errorf("%w: enum at %s: want a non-empty array", ErrSchema, path)
		}
		var alts [][]sym
		for _, v := range vals {
			if types != nil && !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
				continue
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return 0, fmt.Errorf("%w: enum at %s: %v", ErrSchema, path, err)
			}
			alts = append(alts, b.lit(buf.String()))
		}
		if len(alts) == 0 {
			return 0, fmt.Errorf("%w: enum at %s: no value of the type %v", ErrSchema, path, types)
		}
		return b.rule(alts...), nil
	}
	if types == nil {
		types = inferTypes(kw)
	}
	var alts [][]sym
	for _, t := range types {
		var r int32
		switch t {
		case "null":
			r = b.rule(b.lit("null"))
		case "boolean":
			r = b.rule(b.lit("true"), b.lit("false"))
		case "number":
			for _, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} {
				if _, ok := kw[k]; ok {
					c.unsupport(k+" on a number (only on integers)", path)
				}
			}
			r = c.number()
		case "integer":
			r, err = c.intSchema(kw, path)
		case "string":
			var lo, hi int
			if lo, hi, err = bounds(kw, "minLength", "maxLength", path); err == nil {
				r = c.str(lo, hi)
			}
		case "array":
			r, err = c.arraySchema(kw, path, depth)
		case "object":
			r, err = c.objectSchema(kw, path, depth)
		case "any":
			r = c.anyValue()
		default:
			return 0, fmt.Errorf("%w: type %q at %s", ErrSchema, t, path)
		}
		if err != nil {
			return 0, err
		}
		alts = append(alts, one(b.ref(r)))
	}
	return b.rule(alts...), nil
}

var jsonTypes = []string{"null", "boolean", "number", "integer", "string", "array", "object"}

func typesOf(kw map[string]json.RawMessage, path string) ([]string, error) {
	raw, ok := kw["type"]
	if !ok {
		return nil, nil
	}
	var types []string
	if err := json.Unmarshal(raw, &types); err != nil {
		var t string
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("%w: type at %s: want a string or an array of strings", ErrSchema, path)
		}
		types = []string{t}
	}
	for _, t := range types {
		if !slices.Contains(jsonTypes, t) {
			return nil, fmt.Errorf("%w: type %q at %s (want one of %s)", ErrSchema, t, path, strings.Join(jsonTypes, ", "))
		}
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("%w: empty type list at %s", ErrSchema, path)
	}
	return types, nil
}

// inferTypes gives the type a schema without "type" constrains by its keywords; none means any value.
func inferTypes(kw map[string]json.RawMessage) []string {
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := kw[k]; ok {
				return true
			}
		}
		return false
	}
	var t []string
	if has("properties", "required", "additionalProperties") {
		t = append(t, "object")
	}
	if has("items", "minItems", "maxItems") {
		t = append(t, "array")
	}
	if has("minLength", "maxLength") {
		t = append(t, "string")
	}
	if has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") {
		t = append(t, "number")
	}
	if t == nil {
		return []string{"any"}
	}
	return t
}

func jsonType(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0:
		return ""
	case v[0] == '{':
		return "object"
	case v[0] == '[':
		return "array"
	case v[0] == '"':
		return "string"
	case string(v) == "null":
		return "null"
	case string(v) == "true" || string(v) == "false":
		return "boolean"
	}
	if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return "integer"
	}
	return "number"
}

// bounds reads a pair of count keywords (minItems/maxItems...), hi -1 when absent.
func bounds(kw map[string]json.RawMessage, loKey, hiKey, path string) (lo, hi int, err error) {
	get := func(k string, def int) (int, error) {
		raw, ok := kw[k]
		if !ok {
			return def, nil
		}
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil || f < 0 || f != math.Trunc(f) {
			return 0, fmt.Errorf("%w: %s at %s: want a non-negative integer", ErrSchema, k, path)
		}
		if f > MaxRepeat {
			return 0, fmt.Errorf("%w: %s %v at %s: at most %d is supported", ErrSchema, k, f, path, MaxRepeat)
		}
		return int(f), nil
	}
	if lo, err = get(loKey, 0); err != nil {
		return
	}
	if hi, err = get(hiKey, -1); err != nil {
		return
	}
	if hi >= 0 && lo > hi {
		err = fmt.Errorf("%w: %s %d > %s %d at %s", ErrSchema, loKey, lo, hiKey, hi, path)
	}
	return
}

func (c *compiler) ref(p, path string, depth int) (int32, error) {
	if r, ok := c.refs[c.refKey+p]; ok {
		return r, nil
	}
	if !strings.HasPrefix(p, "#") {
		c.unsupport("$ref "+strconv.Quote(p)+" (only local references \"#/...\")", path)
		return c.anyValue(), nil
	}
	target, err := pointer(c.root, p)
	if err != nil {
		return 0, fmt.Errorf("%w: $ref %q at %s: %v", ErrSchema, p, path, err)
	}
	// Reserve the rule first: the target may refer back to it.
	r := c.b.newRule()
	c.refs[c.refKey+p] = r
	inner, err := c.compile(target, p, depth+1)
	if err != nil {
		return 0, err
	}
	c.b.define(r, one(c.b.ref(inner)))
	return r, nil
}

// pointer resolves a local JSON pointer ("#/a/b") in doc.
func pointer(doc []byte, p string) ([]byte, error) {
	p = strings.TrimPrefix(p, "#")
	if p == "" {
		return doc, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("want \"#\" or \"#/...\"")
	}
	cur := json.RawMessage(doc)
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		cur = bytes.TrimSpace(cur)
		if len(cur) > 0 && cur[0] == '[' {
			var arr []json.RawMessage
			i, err := strconv.Atoi(tok)
			if err := json.Unmarshal(cur, &arr); err != nil || i < 0 || i >= len(arr) {
				return nil, fmt.Errorf("no element %q", tok)
			}
			if err != nil {
				return nil, err
			}
			cur = arr[i]
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err != nil {
			return nil, fmt.Errorf("no member %q", tok)
		}
		next, ok := obj[tok]
		if !ok {
			return nil, fmt.Errorf("no member %q", tok)
		}
		cur = next
	}
	return cur, nil
}

// intSchema is an integer, bounded by minimum/maximum (and their exclusive forms) when given.
func (c *compiler) intSchema(kw map[string]json.RawMessage, path string) (int32, error) {
	const limit = 999_999_999_999_999 // MaxIntDigits nines
	lo, hi := int64(-limit), int64(limit)
	bounded := false
	for _, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} {
		raw, ok := kw[k]
		if !ok {
			continue
		}
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			if k[0] == 'e' && (string(raw) == "true" || string(raw) == "false") {
				c.unsupport(k+" as a boolean (draft 4)", path)
				continue
			}
			return 0, fmt.Errorf("%w: %s at %s: want a number", ErrSchema, k, path)
		}
		bounded = true
		switch k {
		case "minimum":
			lo = max(lo, int64(math.Max(math.Ceil(f), -limit)))
		case "exclusiveMinimum":
			lo = max(lo, int64(math.Max(math.Floor(f)+1, -limit)))
		case "maximum":
			hi = min(hi, int64(math.Min(math.Floor(f), limit)))
		case "exclusiveMaximum":
			hi = min(hi, int64(math.Min(math.Ceil(f)-1, limit)))
		}
	}
	if !bounded {
		return c.integer(), nil
	}
	if lo > hi {
		return 0, fmt.Errorf("%w: no integer between the minimum and maximum at %s", ErrSchema, path)
	}
	b := c.b
	var alts [][]sym
	if lo < 0 {
		for _, a := range c.natRange(uint64(-min(hi, -1)), uint64(-lo)) {
			alts = append(alts, cat(b.lit("-"), a))
		}
	}
	if hi >= 0 {
		alts = append(alts, c.natRange(uint64(max(lo, 0)), uint64(hi))...)
	}
	return b.rule(alts...), nil
}

// natRange is the sequences spelling the integers in [lo, hi] in decimal without leading zeros.
func (c *compiler) natRange(lo, hi uint64) [][]sym {
	var out [][]sym
	for n := len(strconv.FormatUint(lo, 10)); n <= len(strconv.FormatUint(hi, 10)); n++ {
		first := uint64(0)
		if n > 1 {
			first = pow10(n - 1)
		}
		a, z := max(lo, first), min(hi, pow10(n)-1)
		if a <= z {
			out = append(out, c.sameLength(strconv.FormatUint(a, 10), strconv.FormatUint(z, 10))...)
		}
	}
	return out
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// sameLength is the sequences spelling the digit strings from lo to hi, both of the same length.
func (c *compiler) sameLength(lo, hi string) [][]sym {
	b := c.b
	n := len(lo)
	if n == 0 {
		return [][]sym{nil}
	}
	if strings.Trim(lo[1:], "0") == "" && strings.Trim(hi[1:], "9") == "" {
		// every tail: a range for the first digit, any digits after
		s := []sym{b.rng(lo[0], hi[0])}
		for range n - 1 {
			s = append(s, b.rng('0', '9'))
		}
		return [][]sym{s}
	}
	prefix := func(d byte, tails [][]sym) [][]sym {
		for i, t := range tails {
			tails[i] = append([]sym{b.rng(d, d)}, t...)
		}
		return tails
	}
	if lo[0] == hi[0] {
		return prefix(lo[0], c.sameLength(lo[1:], hi[1:]))
	}
	out := prefix(lo[0], c.sameLength(lo[1:], strings.Repeat("9", n-1)))
	if lo[0]+1 <= hi[0]-1 {
		s := []sym{b.rng(lo[0]+1, hi[0]-1)}
		for range n - 1 {
			s = append(s, b.rng('0', '9'))
		}
		out = append(out, s)
	}
	return append(out, prefix(hi[0], c.sameLength(strings.Repeat("0", n-1), hi[1:]))...)
}

func (c *compiler) arraySchema(kw map[string]json.RawMessage, path string, depth int) (int32, error) {
	lo, hi, err := bounds(kw, "minItems", "maxItems", path)
	if err != nil {
		return 0, err
	}
	item := c.anyValue()
	if raw, ok := kw["items"]; ok {
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			c.unsupport("items as an array (tuple validation)", path)
		} else if item, err = c.compile(raw, path+"/items", depth+1); err != nil {
			return 0, err
		}
	}
	r := c.b.newRule()
	c.array(r, item, lo, hi)
	return r, nil
}

func (c *compiler) objectSchema(kw map[string]json.RawMessage, path string, depth int) (int32, error) {
	b := c.b
	names, props, err := orderedMembers(kw["properties"])
	if err != nil {
		return 0, fmt.Errorf("%w: properties at %s: %v", ErrSchema, path, err)
	}
	var required []string
	if raw, ok := kw["required"]; ok {
		if err := json.Unmarshal(raw, &required); err != nil {
			return 0, fmt.Errorf("%w: required at %s: want an array of strings", ErrSchema, path)
		}
	}
	for _, n := range required {
		if _, ok := props[n]; !ok {
			c.unsupport(fmt.Sprintf("required %q without a schema in properties", n), path)
		}
	}
	addl := bytes.TrimSpace(kw["additionalProperties"])
	if len(names) == 0 {
		r := b.newRule()
		switch string(addl) {
		case "false":
			b.define(r, cat(b.lit("{"), one(b.ref(c.ws())), b.lit("}")))
		case "", "true":
			c.mapObject(r, c.anyValue())
		default:
			val, err := c.compile(addl, path+"/additionalProperties", depth+1)
			if err != nil {
				return 0, err
			}
			c.mapObject(r, val)
		}
		return r, nil
	}
	ws := one(b.ref(c.ws()))
	sep := cat(ws, b.lit(","), ws)
	kv := make([][]sym, len(names))
	for i, n := range names {
		val, err := c.compile(props[n], path+"/properties/"+n, depth+1)
		if err != nil {
			return 0, err
		}
		kv[i] = cat(b.lit(quote(n)), ws, b.lit(":"), ws, one(b.ref(val)))
	}
	// first(i): properties i.. with none written yet; after(i): with one written (so a comma first).
	first, after := make([]int32, len(names)+1), make([]int32, len(names)+1)
	first[len(names)], after[len(names)] = b.rule(nil), b.rule(nil)
	for i := len(names) - 1; i >= 0; i-- {
		req := slices.Contains(required, names[i])
		withF := cat(kv[i], one(b.ref(after[i+1])))
		withA := cat(sep, kv[i], one(b.ref(after[i+1])))
		if req {
			first[i], after[i] = b.rule(withF), b.rule(withA)
		} else {
			first[i], after[i] = b.rule(withF, one(b.ref(first[i+1]))), b.rule(withA, one(b.ref(after[i+1])))
		}
	}
	return b.rule(cat(b.lit("{"), ws, one(b.ref(first[0])), ws, b.lit("}"))), nil
}

// orderedMembers reads a JSON object keeping its members' order.
func orderedMembers(raw json.RawMessage) ([]string, map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, m, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, errors.New("want an object")
	}
	var names []string
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, nil, err
		}
		k := t.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, nil, err
		}
		if _, dup := m[k]; !dup {
			names = append(names, k)
		}
		m[k] = v
	}
	return names, m, nil
}

// quote is s as a JSON string, without the HTML escaping encoding/json adds by default.
func quote(s string) string {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}
