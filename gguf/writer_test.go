package gguf

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"edgelm/internal/testshared"
)

// The Writer's output for a tiny file must equal bytes assembled by hand
// from the spec.
func TestWriterMatchesSpecBytes(t *testing.T) {
	w := NewWriter()
	w.Set("a", uint32(7))
	w.Set("s", "hi")
	w.Set("arr", []int16{-1, 2})
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	w.AddTensor("t", F32, []uint64{2}, data)
	w.AddTensor("u", I8, []uint64{3}, []byte{9, 9, 9})
	var got bytes.Buffer
	n, err := w.WriteTo(&got)
	if err != nil {
		t.Fatal(err)
	}
	var want raw
	want.header(3, 2, 3).kvU32("a", 7)
	want.str("s").u32(uint32(ValueString)).str("hi")
	want.str("arr").u32(uint32(ValueArray)).u32(uint32(ValueInt16)).u64(2)
	want.b = append(want.b, 0xff, 0xff, 2, 0)
	want.tensor("t", F32, []uint64{2}, 0).tensor("u", I8, []uint64{3}, 32).pad(32)
	want.b = append(want.b, data...)
	want.pad(32)
	want.b = append(want.b, 9, 9, 9)
	want.pad(32)
	if !bytes.Equal(got.Bytes(), want.b) {
		t.Fatalf("writer bytes differ from spec bytes:\n got %x\nwant %x", got.Bytes(), want.b)
	}
	if n != int64(len(want.b)) {
		t.Errorf("WriteTo returned %d, wrote %d", n, len(want.b))
	}
}

func TestRoundTrip(t *testing.T) {
	// Nested array (array of 2 arrays of uint8), built from the spec.
	var nested raw
	nested.u32(uint32(ValueArray)).u64(2)
	nested.u32(uint32(ValueUint8)).u64(2).u8(1).u8(2)
	nested.u32(uint32(ValueUint8)).u64(0)
	nestedVal := Value{Type: ValueArray, Elem: ValueArray, Count: 2, raw: nested.b[12:]}

	values := []struct {
		key  string
		v    any
		typ  ValueType
		elem ValueType
	}{
		{"u8", uint8(200), ValueUint8, 0},
		{"i8", int8(-100), ValueInt8, 0},
		{"u16", uint16(60000), ValueUint16, 0},
		{"i16", int16(-30000), ValueInt16, 0},
		{"u32", uint32(4000000000), ValueUint32, 0},
		{"i32", int32(-2000000000), ValueInt32, 0},
		{"u64", uint64(1 << 63), ValueUint64, 0},
		{"i64", int64(-1 << 62), ValueInt64, 0},
		{"f32", float32(1.5e-5), ValueFloat32, 0},
		{"f64", math.Pi, ValueFloat64, 0},
		{"bool", true, ValueBool, 0},
		{"str", "héllo\x00world", ValueString, 0},
		{"empty", "", ValueString, 0},
		{"au8", []uint8{1, 2, 255}, ValueArray, ValueUint8},
		{"ai8", []int8{-1, 127}, ValueArray, ValueInt8},
		{"au16", []uint16{1, 65535}, ValueArray, ValueUint16},
		{"ai16", []int16{-5}, ValueArray, ValueInt16},
		{"au32", []uint32{7, 8}, ValueArray, ValueUint32},
		{"ai32", []int32{-7, 8, math.MaxInt32}, ValueArray, ValueInt32},
		{"au64", []uint64{1 << 40}, ValueArray, ValueUint64},
		{"ai64", []int64{-1 << 40}, ValueArray, ValueInt64},
		{"af32", []float32{0.25, -3}, ValueArray, ValueFloat32},
		{"af64", []float64{1e300}, ValueArray, ValueFloat64},
		{"abool", []bool{true, false}, ValueArray, ValueBool},
		{"astr", []string{"a", "", "ccc"}, ValueArray, ValueString},
		{"aempty", []string{}, ValueArray, ValueString},
		{"nested", nestedVal, ValueArray, ValueArray},
	}
	w := NewWriter()
	for _, c := range values {
		w.Set(c.key, c.v)
	}
	w.Set("u8", uint8(201)) // replaces in place, keeps position
	w.SetAlignment(64)
	f32 := make([]byte, 4*3*5)
	for i := range f32 {
		f32[i] = byte(i)
	}
	q8 := bytes.Repeat([]byte{3}, 34*2)
	w.AddTensor("a.weight", F32, []uint64{3, 5}, f32)
	w.AddTensor("b.weight", Q8_0, []uint64{32, 1, 2}, q8)
	w.AddTensor("c", Q4_K, []uint64{256}, make([]byte, 144))
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rt.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	keys := f.Keys()
	if len(keys) != len(values)+1 || keys[0] != "u8" || keys[len(keys)-1] != AlignmentKey {
		t.Fatalf("keys %v", keys)
	}
	for i, c := range values {
		v, ok := f.Value(c.key)
		if !ok || keys[i] != c.key || v.Type != c.typ || v.Elem != c.elem {
			t.Errorf("%s: got %v %s/%s at %d", c.key, ok, v.Type, v.Elem, i)
			continue
		}
		var got any
		switch c.v.(type) {
		case uint8, uint16, uint32, uint64:
			got, _ = v.Uint()
			got = reflect.ValueOf(got).Convert(reflect.TypeOf(c.v)).Interface()
		case int8, int16, int32, int64:
			got, _ = v.Int()
			got = reflect.ValueOf(got).Convert(reflect.TypeOf(c.v)).Interface()
		case float32:
			x, _ := v.Float()
			got = float32(x)
		case float64:
			got, _ = v.Float()
		case bool:
			got, _ = v.Bool()
		case string:
			got, _ = v.Text()
		default:
			// Arrays: compare encodings, then decode a few kinds.
			want, _ := encodeGo(c.v)
			if c.key == "nested" {
				want = nestedVal
			}
			if !bytes.Equal(v.Raw(), want.Raw()) || v.Count != want.Count {
				t.Errorf("%s: array bytes differ", c.key)
			}
			continue
		}
		if c.key == "u8" {
			c.v = uint8(201)
		}
		if got != c.v {
			t.Errorf("%s = %v, want %v", c.key, got, c.v)
		}
	}
	if s, err := f.Strings("astr"); err != nil || !reflect.DeepEqual(s, []string{"a", "", "ccc"}) {
		t.Errorf("astr = %q, %v", s, err)
	}
	if s, err := f.Float32s("af32"); err != nil || !reflect.DeepEqual(s, []float32{0.25, -3}) {
		t.Errorf("af32 = %v, %v", s, err)
	}
	if s, err := f.Int32s("au16"); err != nil || !reflect.DeepEqual(s, []int32{1, 65535}) {
		t.Errorf("au16 as int32s = %v, %v", s, err)
	}
	if _, err := f.Int32s("au64"); err == nil {
		t.Error("uint64 1<<40 narrowed into int32 without error")
	}
	nv, _ := f.Value("nested")
	inner, err := nv.Array()
	if err != nil || len(inner) != 2 || inner[0].Count != 2 || inner[1].Count != 0 || !bytes.Equal(inner[0].Raw(), []byte{1, 2}) {
		t.Errorf("nested = %+v, %v", inner, err)
	}
	for _, want := range []struct {
		name string
		typ  Type
		dims []uint64
		data []byte
	}{{"a.weight", F32, []uint64{3, 5}, f32}, {"b.weight", Q8_0, []uint64{32, 1, 2}, q8}, {"c", Q4_K, []uint64{256}, make([]byte, 144)}} {
		tn, ok := f.Tensor(want.name)
		if !ok || tn.Type != want.typ || !reflect.DeepEqual(tn.Dims, want.dims) || !bytes.Equal(tn.Data, want.data) || tn.Offset%64 != 0 {
			t.Errorf("tensor %s: %+v", want.name, tn)
		}
	}
}

// Copying every key (SetValue) and tensor of a real model into a new file
// must reproduce the original bytes exactly: the files were written by
// llama.cpp with the same layout rules.
func TestCopyRealModelIsByteIdentical(t *testing.T) {
	path := testshared.Path(t, "models", "aidreams260K-q4_0.gguf")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter()
	for _, kv := range f.KV {
		w.SetValue(kv.Key, kv.Value)
	}
	for _, tn := range f.Tensors {
		w.AddTensor(tn.Name, tn.Type, tn.Dims, tn.Data)
	}
	var out bytes.Buffer
	if _, err := w.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), orig) {
		t.Fatalf("copy differs: %d bytes vs %d", out.Len(), len(orig))
	}
}

func TestWriterErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		do   func(w *Writer)
		want string
	}{
		{"int", func(w *Writer) { w.Set("k", 5) }, "unsupported Go type int"},
		{"map", func(w *Writer) { w.Set("k", map[string]int{}) }, "unsupported Go type"},
		{"zero value", func(w *Writer) { w.SetValue("k", Value{}) }, "uint8 value of 0 bytes"},
		{"bad alignment", func(w *Writer) { w.SetAlignment(48) }, "power of two"},
		{"bad alignment key", func(w *Writer) { w.Set(AlignmentKey, "x") }, "power of two"},
		{"dup tensor", func(w *Writer) {
			w.AddTensor("x", I8, []uint64{1}, []byte{1})
			w.AddTensor("x", I8, []uint64{1}, []byte{1})
		}, `duplicate tensor name "x"`},
		{"short data", func(w *Writer) { w.AddTensor("x", Q4_0, []uint64{64}, make([]byte, 35)) }, "35 bytes of data, want 36"},
		{"row", func(w *Writer) { w.AddTensor("x", Q4_0, []uint64{48}, make([]byte, 36)) }, "not a multiple"},
		{"type", func(w *Writer) { w.AddTensor("x", Type(99), []uint64{1}, nil) }, "unknown tensor type id 99"},
		{"dims", func(w *Writer) { w.AddTensor("x", I8, []uint64{1, 1, 1, 1, 1}, []byte{1}) }, "5 dimensions"},
	} {
		w := NewWriter()
		c.do(w)
		if err := w.Err(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Err() = %v, want %q", c.name, err, c.want)
		}
		if _, err := w.WriteTo(new(bytes.Buffer)); err == nil {
			t.Errorf("%s: WriteTo succeeded after an error", c.name)
		}
	}
}

func TestWriteFileLeavesNoTempOnError(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter()
	w.Set("k", "v")
	if err := w.WriteFile(filepath.Join(dir, "missing", "x.gguf")); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	if err := w.WriteFile(filepath.Join(dir, "x.gguf")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "x.gguf" {
		t.Errorf("directory holds %v", ents)
	}
}
