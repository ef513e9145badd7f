package gguf

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// good returns a small valid file: two KVs, an F32 tensor and a Q8_0 tensor.
func good() *raw {
	var r raw
	r.header(3, 2, 2).kvU32("a", 1)
	r.str("s").u32(uint32(ValueString)).str("text")
	r.tensor("x", F32, []uint64{4, 2}, 0).tensor("y", Q8_0, []uint64{32}, 32)
	r.pad(32).zeros(32 + 34)
	return &r
}

func parseErr(t *testing.T, name string, b []byte, want string) {
	t.Helper()
	_, err := Parse(b)
	if err == nil {
		t.Errorf("%s: parsed without error, want %q", name, want)
		return
	}
	msg := err.Error()
	if !strings.Contains(msg, want) || !strings.HasPrefix(msg, "gguf: ") || strings.Contains(msg, "\n") {
		t.Errorf("%s: error %q, want one line containing %q", name, msg, want)
	}
}

func TestGoodFileParses(t *testing.T) {
	f, err := Parse(good().b)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.String("s"); s != "text" || len(f.Tensors) != 2 || len(f.Tensors[1].Data) != 34 {
		t.Fatalf("unexpected parse: %+v", f)
	}
}

func TestMalformed(t *testing.T) {
	const huge = uint64(1) << 60
	kv := func(build func(r *raw)) []byte {
		var r raw
		r.header(3, 0, 1)
		build(&r)
		return r.b
	}
	ten := func(build func(r *raw)) []byte {
		var r raw
		r.header(3, 1, 0)
		build(&r)
		r.pad(32).zeros(256)
		return r.b
	}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"bad magic", append([]byte("GGML"), good().b[4:]...), "bad magic"},
		{"v1", new(raw).header(1, 0, 0).b, "unsupported version 1"},
		{"v4", new(raw).header(4, 0, 0).b, "unsupported version 4"},
		{"big endian", new(raw).header(3<<24, 0, 0).b, "big-endian"},
		{"truncated header", good().b[:12], "truncated"},
		{"kv count 2^60", new(raw).header(3, 0, huge).zeros(64).b, "1152921504606846976 metadata entries cannot fit"},
		{"tensor count 2^60", new(raw).header(3, huge, 0).zeros(64).b, "1152921504606846976 tensor infos cannot fit"},
		{"counts together", new(raw).header(3, 1, 2).zeros(40).b, "cannot fit"},
		{"key length past end", kv(func(r *raw) { r.u64(huge).zeros(20) }), "key length 1152921504606846976 past end"},
		{"string value past end", kv(func(r *raw) { r.str("k").u32(uint32(ValueString)).u64(100).zeros(10) }), `key "k": string value length 100 past end`},
		{"unknown value type", kv(func(r *raw) { r.str("k").u32(13).zeros(8) }), `key "k": unknown value type 13`},
		{"array 2^60", kv(func(r *raw) { r.str("k").u32(uint32(ValueArray)).u32(uint32(ValueUint8)).u64(huge).zeros(64) }), "1152921504606846976 array elements"},
		{"array of strings 2^60", kv(func(r *raw) { r.str("k").u32(uint32(ValueArray)).u32(uint32(ValueString)).u64(huge).zeros(64) }), "cannot fit"},
		{"array bad elem", kv(func(r *raw) { r.str("k").u32(uint32(ValueArray)).u32(77).u64(1).zeros(8) }), "unknown value type 77"},
		{"array string past end", kv(func(r *raw) {
			r.str("k").u32(uint32(ValueArray)).u32(uint32(ValueString)).u64(2).str("ok").u64(50).zeros(8)
		}), "array element 1: string value length 50 past end"},
		{"nested too deep", kv(func(r *raw) {
			r.str("k").u32(uint32(ValueArray))
			for i := 0; i < 6; i++ {
				r.u32(uint32(ValueArray)).u64(1)
			}
			r.u32(uint32(ValueUint8)).u64(0)
		}), "nested deeper than 4"},
		{"duplicate key", func() []byte {
			var r raw
			return r.header(3, 0, 2).kvU32("k", 1).kvU32("k", 2).b
		}(), `duplicate metadata key "k"`},
		{"alignment not power of two", func() []byte {
			var r raw
			return r.header(3, 0, 1).kvU32(AlignmentKey, 48).b
		}(), "alignment 48 is not a power of two"},
		{"alignment zero", func() []byte {
			var r raw
			return r.header(3, 0, 1).kvU32(AlignmentKey, 0).b
		}(), "alignment 0"},
		{"alignment string", func() []byte {
			var r raw
			return r.header(3, 0, 1).str(AlignmentKey).u32(uint32(ValueString)).str("32").b
		}(), "want an unsigned integer"},
		{"n_dims 5", ten(func(r *raw) { r.tensor("t", F32, []uint64{1, 1, 1, 1, 1}, 0) }), `tensor "t": n_dims 5`},
		{"n_dims 0", ten(func(r *raw) { r.tensor("t", F32, nil, 0) }), `tensor "t": n_dims 0`},
		{"dim 0", ten(func(r *raw) { r.tensor("t", F32, []uint64{4, 0}, 0) }), "dimension 1 is 0"},
		{"dims overflow", ten(func(r *raw) { r.tensor("t", F32, []uint64{1 << 32, 1 << 32}, 0) }), "element count overflows"},
		{"dims overflow 63", ten(func(r *raw) { r.tensor("t", I8, []uint64{1 << 62, 2}, 0) }), "element count overflows"},
		{"bytes overflow", ten(func(r *raw) { r.tensor("t", F64, []uint64{1 << 61}, 0) }), "byte size overflows"},
		{"unknown type", ten(func(r *raw) { r.tensor("t", Type(99), []uint64{4}, 0) }), "unknown tensor type id 99"},
		{"removed type", ten(func(r *raw) { r.tensor("t", Q4_0_4_4, []uint64{32}, 0) }), "Q4_0_4_4 (id 31) was removed"},
		{"row not multiple", ten(func(r *raw) { r.tensor("t", Q4_0, []uint64{48, 2}, 0) }), "row length 48 is not a multiple of the Q4_0 block size 32"},
		{"offset unaligned", ten(func(r *raw) { r.tensor("t", F32, []uint64{4}, 4) }), "offset 4 is not a multiple of the alignment 32"},
		{"data past end", ten(func(r *raw) { r.tensor("t", F32, []uint64{100}, 0) }), "past end of file"},
		{"offset past end", ten(func(r *raw) { r.tensor("t", F32, []uint64{1}, 1<<62) }), "past end of file"},
		{"truncated tensor info", new(raw).header(3, 1, 0).str("tensor.name").u32(2).u64(4).zeros(6).b, `tensor "tensor.name": truncated`},
		{"duplicate tensor", func() []byte {
			var r raw
			r.header(3, 2, 0).tensor("t", F32, []uint64{4}, 0).tensor("t", F32, []uint64{4}, 32)
			return r.pad(32).zeros(64).b
		}(), `duplicate tensor name "t"`},
		{"overlap", func() []byte {
			var r raw
			r.header(3, 2, 0).tensor("a", F32, []uint64{16}, 0).tensor("b", F32, []uint64{4}, 32)
			return r.pad(32).zeros(128).b
		}(), `tensor "b" (offset 32) overlaps tensor "a" (offset 0, 64 bytes)`},
		{"data section past end", new(raw).header(3, 1, 0).tensor("t", F32, []uint64{1}, 0).b, "truncated file: tensor data section"},
	}
	for _, c := range cases {
		parseErr(t, c.name, c.b, c.want)
	}
}

// Every prefix of a valid file short of its last tensor byte must fail
// cleanly.
func TestEveryTruncationFails(t *testing.T) {
	b := good().b
	end := len(b) // the Q8_0 tensor is the last bytes
	for n := 0; n < end; n++ {
		if _, err := Parse(b[:n:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed", n, end)
		}
	}
}

// Huge counts must be rejected before any allocation proportional to them.
func TestHugeCountsDoNotAllocate(t *testing.T) {
	var r raw
	r.header(3, 1<<40, 1<<40).zeros(1 << 10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Parse(r.b); err == nil {
		t.Fatal("parsed")
	}
	var a raw
	a.header(3, 0, 1).str("k").u32(uint32(ValueArray)).u32(uint32(ValueString)).u64(1 << 50).zeros(1 << 10)
	if _, err := Parse(a.b); err == nil {
		t.Fatal("parsed")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Errorf("rejecting huge counts allocated %d bytes", grew)
	}
}

func TestAccessorTypeMismatch(t *testing.T) {
	f, err := Parse(good().b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.String("a"); ok {
		t.Error("String on a uint32")
	}
	if _, ok := f.Bool("a"); ok {
		t.Error("Bool on a uint32")
	}
	if _, ok := f.Uint("s"); ok {
		t.Error("Uint on a string")
	}
	if _, err := f.Strings("a"); err == nil || !strings.Contains(err.Error(), `key "a"`) {
		t.Errorf("Strings on a uint32: %v", err)
	}
	if _, err := f.Float32s("missing"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing key: %v", err)
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("found a missing tensor")
	}
	var zero Value
	if _, ok := zero.Uint(); ok {
		t.Error("zero Value has a Uint")
	}
	if _, err := zero.Strings(); err == nil {
		t.Error("zero Value decodes as strings")
	}
	_ = zero.String()
	var neg raw
	neg.header(3, 0, 1).str("n").u32(uint32(ValueInt32)).u32(0xffffffff)
	g, err := Parse(neg.b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Uint("n"); ok {
		t.Error("Uint accepted -1")
	}
	if x, ok := g.Float("n"); !ok || x != -1 {
		t.Errorf("Float(-1) = %v %v", x, ok)
	}
}

func TestValueString(t *testing.T) {
	w := NewWriter()
	w.Set("arr", make([]string, 512))
	w.Set("f", float32(1e-5))
	w.Set("i", int8(-3))
	w.Set("b", true)
	w.Set("long", strings.Repeat("x", 100))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"arr": "[512 × string]", "f": "1e-05", "i": "-3", "b": "true",
		"long": `"` + strings.Repeat("x", 64) + `"... (100 bytes)`,
	} {
		if v, _ := f.Value(key); v.String() != want {
			t.Errorf("%s: String() = %s, want %s", key, v.String(), want)
		}
	}
}

// Published bits per weight of each ggml type (llama.cpp's quantize
// listings and the GGUF docs) check the block table.
func TestTypeTable(t *testing.T) {
	bpw := map[Type]float64{
		F32: 32, F16: 16, BF16: 16, F64: 64, I8: 8, I16: 16, I32: 32, I64: 64,
		Q4_0: 4.5, Q4_1: 5, Q5_0: 5.5, Q5_1: 6, Q8_0: 8.5, Q8_1: 9,
		Q2_K: 2.625, Q3_K: 3.4375, Q4_K: 4.5, Q5_K: 5.5, Q6_K: 6.5625, Q8_K: 9.125,
		IQ2_XXS: 2.0625, IQ2_XS: 2.3125, IQ3_XXS: 3.0625, IQ1_S: 1.5625, IQ4_NL: 4.5,
		IQ3_S: 3.4375, IQ2_S: 2.5625, IQ4_XS: 4.25, IQ1_M: 1.75, TQ1_0: 1.6875, TQ2_0: 2.0625,
		MXFP4: 4.25, NVFP4: 4.5, Q1_0: 1.125, Q2_0: 2.25,
	}
	for id := Type(0); id < 64; id++ {
		want, ok := bpw[id]
		if !ok {
			if id.Valid() {
				t.Errorf("%s (%d) is valid but has no published size here", id, id)
			}
			continue
		}
		got := float64(id.BlockBytes()*8) / float64(id.BlockSize())
		if got != want {
			t.Errorf("%s: %v bits per weight, want %v", id, got, want)
		}
	}
	if Q4_K.String() != "Q4_K" || Type(99).String() != "Type(99)" || Q4_0_4_8.Valid() {
		t.Error("names or removed types wrong")
	}
}
