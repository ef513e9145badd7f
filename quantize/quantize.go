// Package quantize converts a GGUF model's weights to Q8_0 or Q4_0, as `llama-quantize --pure` does
// for those types: every matrix whose rows split into whole 32-element blocks is converted, the
// embedding and output matrices included (llama-quantize's default mode would put output.weight in
// Q6_K, a type edgelm does not compute); vectors (norms, biases) and matrices with other row lengths
// keep their type and bytes; metadata is copied in order with general.file_type and
// general.quantization_version set. The output is written tensor by tensor, so only one converted
// tensor is in memory at a time.
package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"edgelm/gguf"
	"edgelm/model"
	"edgelm/quant"
)

// Progress is told, after each tensor, how many bytes of input tensors are done out of total.
type Progress func(done, total int64)

// Plan is the type each tensor of in gets when the file is quantized to t: t for matrices whose row
// length is a multiple of 32, the input's type for everything else.
func Plan(in *gguf.File, t gguf.Type) []gguf.Type {
	out := make([]gguf.Type, len(in.Tensors))
	for i, x := range in.Tensors {
		out[i] = x.Type
		if len(x.Dims) >= 2 && x.Dims[0]%quant.QK == 0 {
			out[i] = t
		}
	}
	return out
}

// Build prepares the quantized copy of in: metadata now, each tensor converted when the returned
// writer writes it. in must stay open until then. t is Q8_0 or Q4_0. Input tensors that are converted
// must be F32, F16, BF16, Q8_0 or Q4_0; converting a quantized tensor to another quantized type
// compounds the rounding (llama-quantize refuses it without --allow-requantize; so does Build).
func Build(in *gguf.File, t gguf.Type, progress Progress) (*gguf.StreamWriter, error) {
	if t != gguf.Q8_0 && t != gguf.Q4_0 {
		return nil, fmt.Errorf("quantize: target type %s not supported (q8_0, q4_0)", t)
	}
	plan := Plan(in, t)
	for i, x := range in.Tensors {
		if plan[i] == x.Type {
			continue
		}
		switch x.Type {
		case gguf.F32, gguf.F16, gguf.BF16:
		case gguf.Q8_0, gguf.Q4_0:
			return nil, fmt.Errorf("quantize: tensor %q is already %s: re-quantizing to %s would compound the rounding", x.Name, x.Type, t)
		default:
			return nil, fmt.Errorf("quantize: tensor %q: cannot convert from %s", x.Name, x.Type)
		}
	}
	w := gguf.NewStreamWriter()
	if in.Alignment != gguf.DefaultAlignment {
		w.SetAlignment(in.Alignment)
	}
	for _, kv := range in.KV {
		w.SetValue(kv.Key, kv.Value)
	}
	ft, _ := FileType(t)
	w.Set("general.quantization_version", uint32(2))
	w.Set("general.file_type", ft)

	var total int64
	for _, x := range in.Tensors {
		total += int64(len(x.Data))
	}
	var done int64
	for i := range in.Tensors {
		x := &in.Tensors[i]
		to := plan[i]
		w.AddTensor(x.Name, to, x.Dims, func(dst []byte) error {
			if to == x.Type {
				copy(dst, x.Data)
			} else {
				convert(dst, to, x)
			}
			done += int64(len(x.Data))
			if progress != nil {
				progress(done, total)
			}
			return nil
		})
	}
	if err := w.Err(); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	return w, nil
}

// File quantizes in to t and writes the result to path (atomically), then Verifies it.
// An output path that names the input file (the same path, a symlink or a hard link to it) is
// refused: the rename would replace the input.
func File(in *gguf.File, path string, t gguf.Type, progress Progress) error {
	if err := CheckOutput(in, path); err != nil {
		return err
	}
	w, err := Build(in, t, progress)
	if err != nil {
		return err
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	return Verify(path, in, t)
}

// CheckOutput refuses an output path that is the file in was opened from, compared by device and
// inode rather than by name so that symlinks and hard links are caught too.
func CheckOutput(in *gguf.File, path string) error {
	m := in.Mapping()
	if m == nil || m.FileInfo() == nil {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && os.SameFile(fi, m.FileInfo()) {
		return fmt.Errorf("quantize: output %s is the input file; choose another output path", path)
	}
	return nil
}

// Verify reopens the quantized file at path and checks it against its input: the same tensors in the
// same order with the same shapes and the planned types, the input's metadata, and — for an
// architecture edgelm runs — that model.Load accepts it.
func Verify(path string, in *gguf.File, t gguf.Type) error {
	out, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("quantize: verify: %w", err)
	}
	defer out.Close()
	plan := Plan(in, t)
	if len(out.Tensors) != len(in.Tensors) {
		return fmt.Errorf("quantize: verify %s: %d tensors, input has %d", path, len(out.Tensors), len(in.Tensors))
	}
	for i, x := range out.Tensors {
		want := in.Tensors[i]
		if x.Name != want.Name || x.Type != plan[i] || !slices.Equal(x.Dims, want.Dims) {
			return fmt.Errorf("quantize: verify %s: tensor %d is %q %s %v, want %q %s %v", path, i, x.Name, x.Type, x.Dims, want.Name, plan[i], want.Dims)
		}
	}
	for _, kv := range in.KV {
		if kv.Key == "general.file_type" || kv.Key == "general.quantization_version" {
			continue
		}
		v, ok := out.Value(kv.Key)
		if !ok || v.Type != kv.Value.Type || string(v.Raw()) != string(kv.Value.Raw()) {
			return fmt.Errorf("quantize: verify %s: metadata %q not copied", path, kv.Key)
		}
	}
	arch, _ := out.String("general.architecture")
	if slices.Contains(model.Architectures, arch) {
		if _, err := model.Load(out); err != nil {
			return fmt.Errorf("quantize: verify %s: %w", path, err)
		}
	}
	return nil
}

// chunkElems bounds the float32 scratch of one worker to about 256 KiB.
const chunkElems = 1 << 16

// FileType is the general.file_type value llama.cpp writes for a file mostly of type t
// (LLAMA_FTYPE_ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q8_0 = 7, MOSTLY_BF16 = 32).
func FileType(t gguf.Type) (uint32, bool) {
	switch t {
	case gguf.F32:
		return 0, true
	case gguf.F16:
		return 1, true
	case gguf.Q4_0:
		return 2, true
	case gguf.Q8_0:
		return 7, true
	case gguf.BF16:
		return 32, true
	}
	return 0, false
}

// convert writes tensor x as type to (Q8_0 or Q4_0) into dst, splitting rows among the CPUs.
func convert(dst []byte, to gguf.Type, x *gguf.Tensor) {
	rowLen := int(x.Dims[0])
	rows := int(x.Elements()) / rowLen
	inRow := len(x.Data) / rows
	outRow := len(dst) / rows
	per := max(1, chunkElems/rowLen)
	chunks := (rows + per - 1) / per
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), chunks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, per*rowLen)
			for {
				k := int(next.Add(1) - 1)
				if k >= chunks {
					return
				}
				r0, r1 := k*per, min(rows, (k+1)*per)
				f := buf[:(r1-r0)*rowLen]
				decode(f, x.Type, x.Data[r0*inRow:r1*inRow])
				if to == gguf.Q8_0 {
					quant.QuantizeQ8_0(dst[r0*outRow:r1*outRow], f)
				} else {
					quant.QuantizeQ4_0(dst[r0*outRow:r1*outRow], f)
				}
			}
		}()
	}
	wg.Wait()
}

// decode expands src of type t (F32, F16 or BF16, as Build checked) into dst.
func decode(dst []float32, t gguf.Type, src []byte) {
	switch t {
	case gguf.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case gguf.F16:
		for i := range dst {
			dst[i] = quant.F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case gguf.BF16:
		for i := range dst {
			dst[i] = quant.BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	}
}
