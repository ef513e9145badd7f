package quantize

import (
	"bytes"
	"fmt"
	"math"
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

// TestMixMatchesLlamaQuantize: the K recipes give every tensor of tinydoc the type llama-quantize
// gave it in the shared Q4_K_M, Q5_K_M and Q6_K files (attn_v and ffn_down of layers 2 and 3 in Q6_K,
// output in Q6_K), and the size of our file is llama-quantize's to the byte.
func TestMixMatchesLlamaQuantize(t *testing.T) {
	in, err := gguf.Open(testshared.Path(t, "models", "tinydoc-q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, c := range []struct {
		typ gguf.Type
		ref string
	}{{gguf.Q4_K, "tinydoc-q4_k_m.gguf"}, {gguf.Q5_K, "tinydoc-q5_k_m.gguf"}, {gguf.Q6_K, "tinydoc-q6_k.gguf"}} {
		want, err := gguf.Open(testshared.Path(t, "models", c.ref))
		if err != nil {
			t.Fatal(err)
		}
		plan := Plan(in, c.typ)
		var size, wantSize uint64
		for i, x := range in.Tensors {
			w, ok := want.Tensor(x.Name)
			if !ok {
				t.Fatalf("%s: no tensor %q", c.ref, x.Name)
			}
			if plan[i] != w.Type {
				t.Errorf("%s: %s planned %s, llama-quantize wrote %s", c.ref, x.Name, plan[i], w.Type)
			}
			n, err := gguf.TensorSize(plan[i], x.Dims)
			if err != nil {
				t.Fatal(err)
			}
			size += n
			wantSize += uint64(len(w.Data))
		}
		if size != wantSize {
			t.Errorf("%s: tensors take %d bytes, llama-quantize's %d", c.ref, size, wantSize)
		}
		want.Close()
	}
}

// TestMixRules checks the recipe on shapes the shared files do not have: eight layers (use_more_bits
// picks 0, 3, 6, 7), rows that are not a multiple of 256 (the fallbacks) or of 32 (kept), tied
// embeddings (token_embd gets output's Q6_K) and a fused attn_qkv.
func TestMixRules(t *testing.T) {
	var names []string
	var dims [][]uint64
	add := func(n string, d ...uint64) { names = append(names, n); dims = append(dims, d) }
	add("token_embd.weight", 512, 1000)
	for l := range 8 {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", 512)
		add(p+"attn_v.weight", 512, 128)
		add(p+"attn_qkv.weight", 512, 768)
		add(p+"ffn_down.weight", 1376, 512) // rows of 1376: not a multiple of 256
	}
	add("odd.weight", 100, 4)
	keep := make([]gguf.Type, len(names))
	for i := range keep {
		keep[i] = gguf.F16
	}
	got := Mix(gguf.Q4_K, names, dims, keep)
	want := map[string]gguf.Type{"token_embd.weight": gguf.Q6_K, "odd.weight": gguf.F16}
	for l := range 8 {
		p := fmt.Sprintf("blk.%d.", l)
		more := l == 0 || l == 3 || l == 6 || l == 7
		want[p+"attn_norm.weight"] = gguf.F16
		want[p+"attn_v.weight"] = map[bool]gguf.Type{true: gguf.Q6_K, false: gguf.Q4_K}[more]
		want[p+"attn_qkv.weight"] = gguf.Q5_K
		want[p+"ffn_down.weight"] = map[bool]gguf.Type{true: gguf.Q8_0, false: gguf.Q5_0}[more]
	}
	for i, n := range names {
		if got[i] != want[n] {
			t.Errorf("Q4_K_M: %s %v got %s, want %s", n, dims[i], got[i], want[n])
		}
	}
	got = Mix(gguf.Q5_K, names, dims, keep)
	for i, n := range names {
		if strings.Contains(n, "ffn_down") && !strings.HasPrefix(n, "blk.0.") && !strings.HasPrefix(n, "blk.3.") &&
			!strings.HasPrefix(n, "blk.6.") && !strings.HasPrefix(n, "blk.7.") && got[i] != gguf.Q5_1 {
			t.Errorf("Q5_K_M: %s got %s, want the Q5_1 fallback", n, got[i])
		}
	}
}

// TestKQuantizeRuns: a K mix of the shared F32 model (rows of 64: every K tensor falls back) is
// written, verified (model.Load accepts it) and stays close to the original's weights.
func TestKQuantizeRuns(t *testing.T) {
	in, err := gguf.Open(testshared.Path(t, "models", "aidreams260K-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, typ := range []gguf.Type{gguf.Q4_K, gguf.Q5_K, gguf.Q6_K} {
		out := filepath.Join(t.TempDir(), "out.gguf")
		if err := File(in, out, typ, nil); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		f, err := gguf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		q, _ := f.Tensor("blk.0.attn_q.weight")
		src, _ := in.Tensor("blk.0.attn_q.weight")
		if q.Type == gguf.F32 {
			t.Errorf("%s: attn_q stayed F32", typ)
		}
		n := int(src.Elements())
		got, orig := make([]float32, n), make([]float32, n)
		decode(got, q.Type, q.Data)
		decode(orig, gguf.F32, src.Data)
		var se, ss float64
		for i := range got {
			d := float64(got[i] - orig[i])
			se += d * d
			ss += float64(orig[i]) * float64(orig[i])
		}
		if rel := math.Sqrt(se / ss); rel > 0.12 {
			t.Errorf("%s: attn_q (%s) relative RMS error %.3f", typ, q.Type, rel)
		}
		f.Close()
	}
	if _, err := Build(in, gguf.Q4_K, nil); err != nil {
		t.Fatal(err)
	}
	q8, err := gguf.Open(testshared.Path(t, "models", "aidreams260K-q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer q8.Close()
	if _, err := Build(q8, gguf.Q4_K, nil); err == nil || !strings.Contains(err.Error(), "allow-requantize") {
		t.Errorf("requantizing without the option: %v, want a refusal naming --allow-requantize", err)
	}
	if _, err := BuildOpts(q8, gguf.Q4_K, Options{AllowRequantize: true}); err != nil {
		t.Errorf("requantizing with the option: %v", err)
	}
}

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
