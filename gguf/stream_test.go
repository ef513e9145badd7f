package gguf

import (
	"bytes"
	"errors"
	"testing"
)

// TestStreamWriterMatchesWriter writes the same metadata and tensors through
// both writers: the files must be identical, and Parse must read the data back.
func TestStreamWriterMatchesWriter(t *testing.T) {
	type tensor struct {
		name string
		typ  Type
		dims []uint64
		data []byte
	}
	tensors := []tensor{
		{"a", F32, []uint64{3}, bytes.Repeat([]byte{1}, 12)},
		{"b", Q8_0, []uint64{64, 2}, bytes.Repeat([]byte{2}, 4*34)},
		{"c", F16, []uint64{5, 3}, bytes.Repeat([]byte{3}, 30)},
	}
	w := NewWriter()
	s := NewStreamWriter()
	for _, x := range []interface{ Set(string, any) }{w, s} {
		x.Set("general.architecture", "llama")
		x.Set("llama.block_count", uint32(2))
		x.Set("tokenizer.ggml.tokens", []string{"a", "b"})
	}
	w.SetAlignment(64)
	s.SetAlignment(64)
	for _, tt := range tensors {
		w.AddTensor(tt.name, tt.typ, tt.dims, tt.data)
		data := tt.data
		s.AddTensor(tt.name, tt.typ, tt.dims, func(dst []byte) error {
			if len(dst) != len(data) {
				t.Errorf("fill got %d bytes, want %d", len(dst), len(data))
			}
			copy(dst, data)
			return nil
		})
	}
	var a, b bytes.Buffer
	if _, err := w.WriteTo(&a); err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d", n, b.Len())
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("stream file (%d bytes) differs from Writer's (%d bytes)", b.Len(), a.Len())
	}
	f, err := Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tensors {
		got, ok := f.Tensor(tt.name)
		if !ok || !bytes.Equal(got.Data, tt.data) {
			t.Errorf("tensor %q not read back", tt.name)
		}
	}
}

func TestStreamWriterErrors(t *testing.T) {
	s := NewStreamWriter()
	boom := errors.New("boom")
	s.AddTensor("x", F32, []uint64{4}, func([]byte) error { return boom })
	if _, err := s.WriteTo(&bytes.Buffer{}); !errors.Is(err, boom) {
		t.Errorf("fill error: got %v", err)
	}
	s = NewStreamWriter()
	s.AddTensor("x", Q4_0, []uint64{33}, func([]byte) error { return nil })
	if s.Err() == nil {
		t.Error("row of 33 accepted for Q4_0")
	}
	s = NewStreamWriter()
	s.AddTensor("x", F32, []uint64{4}, func([]byte) error { return nil })
	s.AddTensor("x", F32, []uint64{4}, func([]byte) error { return nil })
	if _, err := s.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("duplicate name accepted")
	}
	s = NewStreamWriter()
	s.Set("k", 3) // int has no fixed width
	if _, err := s.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("bad metadata accepted")
	}
}
