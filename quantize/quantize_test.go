package quantize

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
)

// TestMatchesLlamaQuantize quantizes the shared F32 model and compares every tensor with the file
// llama-quantize made from it: types, shapes and bytes must be identical.
func TestMatchesLlamaQuantize(t *testing.T) {
	src := testshared.Path(t, "models", "aidreams260K-f32.gguf")
	for _, c := range []struct {
		typ  gguf.Type
		ref  string
		code uint64
	}{
		{gguf.Q8_0, "aidreams260K-q8_0.gguf", 7},
		{gguf.Q4_0, "aidreams260K-q4_0.gguf", 2},
	} {
		t.Run(c.typ.String(), func(t *testing.T) {
			ref := testshared.Path(t, "models", c.ref)
			in, err := gguf.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out := filepath.Join(t.TempDir(), "out.gguf")
			var calls int
			var last, total int64
			if err := File(in, out, c.typ, func(d, tot int64) { calls++; last, total = d, tot }); err != nil {
				t.Fatal(err)
			}
			if calls != len(in.Tensors) || last != total {
				t.Errorf("progress: %d calls ending at %d/%d, want %d ending at the total", calls, last, total, len(in.Tensors))
			}
			got, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			want, err := gguf.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			if len(got.Tensors) != len(want.Tensors) {
				t.Fatalf("%d tensors, llama-quantize wrote %d", len(got.Tensors), len(want.Tensors))
			}
			converted := 0
			for _, w := range want.Tensors {
				g, ok := got.Tensor(w.Name)
				if !ok {
					t.Errorf("tensor %q missing", w.Name)
					continue
				}
				if g.Type != w.Type || len(g.Dims) != len(w.Dims) || g.Dims[0] != w.Dims[0] {
					t.Errorf("tensor %q: %s %v, llama-quantize %s %v", w.Name, g.Type, g.Dims, w.Type, w.Dims)
					continue
				}
				if !bytes.Equal(g.Data, w.Data) {
					t.Errorf("tensor %q (%s): bytes differ from llama-quantize's", w.Name, w.Type)
				}
				if w.Type == c.typ {
					converted++
				}
			}
			if converted == 0 {
				t.Errorf("no tensor of type %s in the reference", c.typ)
			}
			if v, ok := got.Uint("general.file_type"); !ok || v != c.code {
				t.Errorf("general.file_type = %d, %v; want %d", v, ok, c.code)
			}
			// Every metadata key of the input is in the output with the same value.
			for _, kv := range in.KV {
				v, ok := got.Value(kv.Key)
				if !ok || !bytes.Equal(v.Raw(), kv.Value.Raw()) {
					t.Errorf("metadata %q not copied", kv.Key)
				}
			}
		})
	}
}

// TestPlan checks the type rule on shapes: vectors and rows that are not whole blocks keep their type.
func TestPlan(t *testing.T) {
	f := &gguf.File{Tensors: []gguf.Tensor{
		{Name: "norm", Type: gguf.F32, Dims: []uint64{64}},
		{Name: "mat", Type: gguf.F32, Dims: []uint64{64, 3}},
		{Name: "odd", Type: gguf.F16, Dims: []uint64{172, 64}},
		{Name: "q", Type: gguf.F16, Dims: []uint64{32, 2}},
	}}
	got := Plan(f, gguf.Q4_0)
	want := []gguf.Type{gguf.F32, gguf.Q4_0, gguf.F16, gguf.Q4_0}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: %s, want %s", f.Tensors[i].Name, got[i], want[i])
		}
	}
}

func TestRefusesRequantize(t *testing.T) {
	ref := testshared.Path(t, "models", "aidreams260K-q4_0.gguf")
	in, err := gguf.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := Build(in, gguf.Q8_0, nil); err == nil {
		t.Error("Q4_0 -> Q8_0 accepted")
	}
	if _, err := Build(in, gguf.F16, nil); err == nil {
		t.Error("target F16 accepted")
	}
	// Same type: everything is copied.
	w, err := Build(in, gguf.Q4_0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	out, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range in.Tensors {
		y, _ := out.Tensor(x.Name)
		if y == nil || !bytes.Equal(x.Data, y.Data) {
			t.Errorf("tensor %q not copied", x.Name)
		}
	}
}

// TestRefusesOverwritingInput: an output path naming the input file — the same path, another
// spelling of it, a symlink or a hard link to it — is refused and the input stays as it was.
// Before, `quantize in.gguf in.gguf q8_0` replaced the input and printed "verified".
func TestRefusesOverwritingInput(t *testing.T) {
	src, err := os.ReadFile(testshared.Path(t, "models", "aidreams260K-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inPath := filepath.Join(dir, "in.gguf")
	if err := os.WriteFile(inPath, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(inPath, filepath.Join(dir, "sym.gguf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(inPath, filepath.Join(dir, "hard.gguf")); err != nil {
		t.Fatal(err)
	}
	in, err := gguf.Open(inPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, out := range []string{inPath, dir + "/./in.gguf", filepath.Join(dir, "sym.gguf"), filepath.Join(dir, "hard.gguf")} {
		err := File(in, out, gguf.Q8_0, nil)
		if err == nil || !strings.Contains(err.Error(), "is the input file") {
			t.Errorf("output %s: %v, want a refusal", out, err)
		}
	}
	got, err := os.ReadFile(inPath)
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("the input changed (%v)", err)
	}
	// A new path is fine, written atomically: nothing but the result is left in the directory.
	out := filepath.Join(dir, "out.gguf")
	if err := File(in, out, gguf.Q8_0, nil); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 4 {
		t.Errorf("directory holds %d entries after quantizing, want 4 (in, sym, hard, out)", len(ents))
	}
}
