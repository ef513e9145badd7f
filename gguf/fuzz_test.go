package gguf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are one line,
// and that whatever it accepts is consistent: tensor data lies inside the
// input with the size its type and shape imply, every accessor works, and
// writing the file back out and parsing it again gives the same metadata
// and tensor bytes.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "gguf: ") || strings.Contains(msg, "\n") {
				t.Fatalf("bad error message %q", msg)
			}
			return
		}
		for _, kv := range g.KV {
			v := kv.Value
			_ = v.String()
			v.Uint()
			v.Int()
			v.Float()
			v.Bool()
			v.Text()
			v.Strings()
			v.Float32s()
			v.Int32s()
			if v.IsArray() {
				if _, err := v.Array(); err != nil {
					t.Fatalf("key %q: parsed array does not decode: %v", kv.Key, err)
				}
			}
		}
		w := NewWriter()
		for _, kv := range g.KV {
			w.SetValue(kv.Key, kv.Value)
		}
		for _, tn := range g.Tensors {
			size, err := TensorSize(tn.Type, tn.Dims)
			if err != nil || uint64(len(tn.Data)) != size {
				t.Fatalf("tensor %q: %d bytes, TensorSize %d, %v", tn.Name, len(tn.Data), size, err)
			}
			if size > 0 && &tn.Data[0] != &data[g.DataOffset+int64(tn.Offset)] {
				t.Fatalf("tensor %q: Data is not a view of the input", tn.Name)
			}
			w.AddTensor(tn.Name, tn.Type, tn.Dims, tn.Data)
		}
		var out bytes.Buffer
		if _, err := w.WriteTo(&out); err != nil {
			t.Fatalf("rewriting a parsed file: %v", err)
		}
		h, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if len(h.KV) != len(g.KV) || len(h.Tensors) != len(g.Tensors) || h.Alignment != g.Alignment {
			t.Fatalf("rewritten file differs: %d/%d KV, %d/%d tensors", len(h.KV), len(g.KV), len(h.Tensors), len(g.Tensors))
		}
		for i := range g.KV {
			a, b := g.KV[i], h.KV[i]
			if a.Key != b.Key || a.Value.Type != b.Value.Type || a.Value.Elem != b.Value.Elem ||
				a.Value.Count != b.Value.Count || !bytes.Equal(a.Value.Raw(), b.Value.Raw()) {
				t.Fatalf("key %q changed on rewrite", a.Key)
			}
		}
		for i := range g.Tensors {
			a, b := g.Tensors[i], h.Tensors[i]
			if a.Name != b.Name || a.Type != b.Type || fmt.Sprint(a.Dims) != fmt.Sprint(b.Dims) || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("tensor %q changed on rewrite", a.Name)
			}
		}
	})
}

// fuzzSeeds are small valid files from the Writer and the spec builder, and
// truncated or mutated headers.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	w := NewWriter()
	w.Set("general.architecture", "llama")
	w.Set("llama.block_count", uint32(2))
	w.Set("f", float32(1e-5))
	w.Set("tokens", []string{"<unk>", "<s>", "a"})
	w.Set("scores", []float32{0, -1, -2})
	w.Set("types", []int32{2, 3, 1})
	w.Set("flags", []bool{true})
	w.AddTensor("w", Q8_0, []uint64{32, 2}, bytes.Repeat([]byte{1}, 68))
	w.AddTensor("n", F32, []uint64{2}, make([]byte, 8))
	var b bytes.Buffer
	w.WriteTo(&b)
	full := b.Bytes()
	seeds = append(seeds, full)

	w2 := NewWriter()
	w2.SetAlignment(16)
	w2.Set("k", int64(-1))
	w2.AddTensor("t", Q4_K, []uint64{256}, make([]byte, 144))
	b.Reset()
	w2.WriteTo(&b)
	seeds = append(seeds, bytes.Clone(b.Bytes()))

	var nested raw
	nested.header(2, 0, 1).str("n").u32(uint32(ValueArray)).u32(uint32(ValueArray)).u64(1)
	nested.u32(uint32(ValueString)).u64(1).str("x")
	seeds = append(seeds, nested.b, good().b)

	seeds = append(seeds, full[:24], full[:60])
	mutated := bytes.Clone(full)
	mutated[16] = 0xff // KV count
	seeds = append(seeds, mutated)
	mutated = bytes.Clone(full)
	mutated[4] = 1 // version
	seeds = append(seeds, mutated)
	return seeds
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzParse from fuzzSeeds when
// EDGELM_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("EDGELM_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set EDGELM_WRITE_FUZZ_SEEDS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
