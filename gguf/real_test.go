package gguf

import (
	"encoding/binary"
	"math"
	"os"
	"testing"

	"edgelm/internal/testshared"
)

// f16 decodes an IEEE half; written out here so the test does not lean on
// the quant package.
func f16(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * float32(math.Ldexp(mant, -24))
	case 31:
		return sign * float32(math.Inf(1))
	}
	return sign * float32(math.Ldexp(1024+mant, exp-25))
}

// testBlock gives block sizes the way the GGUF spec documents them, as an
// oracle independent of the package's table.
var testBlock = map[Type][2]uint64{F32: {1, 4}, Q4_0: {32, 2 + 16}, Q8_0: {32, 2 + 32}}

func TestRealModels(t *testing.T) {
	for _, kind := range []string{"f32", "q8_0", "q4_0"} {
		t.Run(kind, func(t *testing.T) {
			path := testshared.Path(t, "models", "aidreams260K-"+kind+".gguf")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Header fields read straight from the bytes.
			if f.Version != binary.LittleEndian.Uint32(raw[4:]) ||
				uint64(len(f.Tensors)) != binary.LittleEndian.Uint64(raw[8:]) ||
				uint64(len(f.KV)) != binary.LittleEndian.Uint64(raw[16:]) {
				t.Fatalf("header mismatch: version %d, %d tensors, %d KV", f.Version, len(f.Tensors), len(f.KV))
			}
			if len(f.KV) != 19 || len(f.Tensors) != 39 || f.Version != 3 || f.Alignment != 32 {
				t.Fatalf("got v%d, %d KV, %d tensors, alignment %d; want v3, 19, 39, 32", f.Version, len(f.KV), len(f.Tensors), f.Alignment)
			}
			if arch, _ := f.String("general.architecture"); arch != "llama" {
				t.Errorf("architecture %q", arch)
			}
			if n, _ := f.Uint("llama.embedding_length"); n != 64 {
				t.Errorf("embedding_length %d", n)
			}
			if n, _ := f.Uint("llama.block_count"); n != 4 {
				t.Errorf("block_count %d", n)
			}
			if eps, _ := f.Float("llama.attention.layer_norm_rms_epsilon"); float32(eps) != 1e-5 {
				t.Errorf("rms eps %v", eps)
			}
			toks, err := f.Strings("tokenizer.ggml.tokens")
			if err != nil || len(toks) != 512 || toks[0] != "<unk>" || toks[1] != "<s>" || toks[2] != "</s>" || toks[3] != "<0x00>" {
				t.Errorf("tokens: %v, len %d, first %q", err, len(toks), toks[:min(4, len(toks))])
			}
			scores, err := f.Float32s("tokenizer.ggml.scores")
			if err != nil || len(scores) != 512 {
				t.Errorf("scores: %v, len %d", err, len(scores))
			}
			types, err := f.Int32s("tokenizer.ggml.token_type")
			// SentencePiece token types: 2 unknown, 3 control, 6 byte.
			if err != nil || len(types) != 512 || types[0] != 2 || types[1] != 3 || types[3] != 6 {
				t.Errorf("token types: %v, %v", err, types[:min(4, len(types))])
			}

			emb, ok := f.Tensor("token_embd.weight")
			wantType := map[string]Type{"f32": F32, "q8_0": Q8_0, "q4_0": Q4_0}[kind]
			if !ok || emb.Type != wantType || len(emb.Dims) != 2 || emb.Dims[0] != 64 || emb.Dims[1] != 512 {
				t.Fatalf("token_embd.weight: %+v", emb)
			}
			down, ok := f.Tensor("blk.0.ffn_down.weight")
			if !ok || down.Type != F32 || len(down.Dims) != 2 || down.Dims[0] != 172 || down.Dims[1] != 64 {
				t.Fatalf("blk.0.ffn_down.weight: %v %v", down.Type, down.Dims)
			}
			// Tensors are packed in order, each padded to 32 bytes, and the
			// last one ends the file: sizes from the spec's block table
			// must tile the data section exactly.
			next := uint64(0)
			for _, tn := range f.Tensors {
				blk, ok := testBlock[tn.Type]
				if !ok {
					t.Fatalf("%s: unexpected type %s", tn.Name, tn.Type)
				}
				n := uint64(1)
				for _, d := range tn.Dims {
					n *= d
				}
				size := n / blk[0] * blk[1]
				if tn.Offset != next || uint64(len(tn.Data)) != size {
					t.Fatalf("%s: offset %d len %d, want offset %d len %d", tn.Name, tn.Offset, len(tn.Data), next, size)
				}
				if &tn.Data[0] != &f.Mapping().Bytes()[f.DataOffset+int64(tn.Offset)] {
					t.Fatalf("%s: Data is not a view into the mapping", tn.Name)
				}
				next = (tn.Offset + size + 31) &^ 31
			}
			if int64(next)+f.DataOffset != int64(len(raw)) {
				t.Errorf("tensors end at %d, file is %d bytes", int64(next)+f.DataOffset, len(raw))
			}
		})
	}
}

// The quantized models are quantizations of the f32 one: dequantizing their
// token embeddings must land within a block's quantization step of the f32
// values. This checks that Data views the right bytes of the right tensor.
func TestRealModelsQuantizeF32(t *testing.T) {
	ff, err := Open(testshared.Path(t, "models", "aidreams260K-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	ref, _ := ff.Tensor("token_embd.weight")
	want := make([]float32, ref.Elements())
	for i := range want {
		want[i] = math.Float32frombits(binary.LittleEndian.Uint32(ref.Data[4*i:]))
	}
	for _, kind := range []string{"q8_0", "q4_0"} {
		f, err := Open(testshared.Path(t, "models", "aidreams260K-"+kind+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		tn, _ := f.Tensor("token_embd.weight")
		bb := int(tn.Type.BlockBytes())
		worst := 0.0
		for b := 0; b < len(want)/32; b++ {
			blk := tn.Data[b*bb : (b+1)*bb]
			d := f16(binary.LittleEndian.Uint16(blk))
			for j := 0; j < 32; j++ {
				var q float32
				if tn.Type == Q8_0 {
					q = float32(int8(blk[2+j]))
				} else if j < 16 {
					q = float32(int(blk[2+j]&15) - 8)
				} else {
					q = float32(int(blk[2+j-16]>>4) - 8)
				}
				// Allow one quantization step (|d|) of error.
				err := math.Abs(float64(q*d-want[b*32+j])) / (math.Abs(float64(d)) + 1e-12)
				worst = math.Max(worst, err)
			}
		}
		if worst > 1.01 {
			t.Errorf("%s: dequantized embeddings off by %.2f steps from f32", kind, worst)
		}
		f.Close()
	}
}

func TestRealVocabs(t *testing.T) {
	for _, c := range []struct {
		file   string
		tokens int
		model  string
		merges int
	}{
		{"ggml-vocab-llama-spm.gguf", 32000, "llama", 0},
		{"ggml-vocab-gpt-2.gguf", 50257, "gpt2", 50000},
	} {
		f, err := Open(testshared.Path(t, "vocab", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := f.String("tokenizer.ggml.model"); m != c.model {
			t.Errorf("%s: model %q", c.file, m)
		}
		toks, err := f.Strings("tokenizer.ggml.tokens")
		if err != nil || len(toks) != c.tokens {
			t.Errorf("%s: tokens %v %d", c.file, err, len(toks))
		}
		if c.merges > 0 {
			merges, err := f.Strings("tokenizer.ggml.merges")
			// GPT-2's first merge joins "Ġ" and "t".
			if err != nil || len(merges) != c.merges || merges[0] != "Ġ t" {
				t.Errorf("%s: merges %v %d %q", c.file, err, len(merges), merges[:1])
			}
		}
		if len(f.Tensors) != 0 {
			t.Errorf("%s: %d tensors in a vocab-only file", c.file, len(f.Tensors))
		}
		f.Close()
	}
}
