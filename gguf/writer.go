package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Writer builds a GGUF v3 file: metadata in the order first set, then tensor
// infos and data in the order added, each tensor's data aligned.
//
// Set, SetValue, SetAlignment and AddTensor record the first misuse they see
// (an unsupported Go type, a duplicate tensor, data of the wrong length);
// Err reports it and WriteTo refuses to write. AddTensor keeps the data slice
// without copying it, so it must stay unchanged until WriteTo returns.
type Writer struct {
	kv        []KV
	keys      map[string]int
	tensors   []Tensor
	names     map[string]bool
	alignment int
	err       error
}

// NewWriter returns an empty Writer with the default alignment (32).
func NewWriter() *Writer {
	return &Writer{keys: map[string]int{}, names: map[string]bool{}, alignment: DefaultAlignment}
}

// Err returns the first error recorded by Set, SetValue, SetAlignment or
// AddTensor.
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Set stores v under key, replacing any earlier value in place (so the key
// keeps its first position). The GGUF type follows the Go type exactly:
// uint8 → uint8, int8 → int8, uint16, int16, uint32, int32, uint64, int64,
// float32, float64, bool and string to the same-named GGUF type, and a slice
// of any of these to an array of that type ([]string → array of string). A
// Value is stored as by SetValue. Other Go types (including int and uint,
// whose width is not fixed) are an error. Setting general.alignment also
// sets the alignment, as SetAlignment.
func (w *Writer) Set(key string, v any) {
	if val, ok := v.(Value); ok {
		w.SetValue(key, val)
		return
	}
	val, err := encodeGo(v)
	if err != nil {
		w.fail(fmt.Errorf("gguf: Set %q: %w", key, err))
		return
	}
	w.SetValue(key, val)
}

// SetValue stores a Value (normally one read from another file, such as a
// tokenizer's vocabulary) under key, verbatim. The Value's bytes are not
// copied: a Value from an Open'ed File must not outlive that File's Close
// before WriteTo. Malformed hand-made Values are an error.
func (w *Writer) SetValue(key string, v Value) {
	if err := checkValue(v); err != nil {
		w.fail(fmt.Errorf("gguf: SetValue %q: %w", key, err))
		return
	}
	if key == AlignmentKey {
		a, ok := v.Uint()
		if !ok || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			w.fail(fmt.Errorf("gguf: %s = %s: want a power of two up to %d", key, v, maxAlignment))
			return
		}
		w.alignment = int(a)
	}
	if i, ok := w.keys[key]; ok {
		w.kv[i].Value = v
		return
	}
	w.keys[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: v})
}

// SetAlignment sets the tensor data alignment, a power of two, and records
// it as general.alignment (uint32) as the format requires.
func (w *Writer) SetAlignment(n int) {
	if n <= 0 || n&(n-1) != 0 || n > maxAlignment {
		w.fail(fmt.Errorf("gguf: SetAlignment(%d): want a power of two up to %d", n, maxAlignment))
		return
	}
	w.Set(AlignmentKey, uint32(n))
}

// AddTensor appends a tensor. dims[0] is the row length; len(data) must be
// TensorSize(t, dims). Names must be unique.
func (w *Writer) AddTensor(name string, t Type, dims []uint64, data []byte) {
	if w.names[name] {
		w.fail(fmt.Errorf("gguf: AddTensor: duplicate tensor name %q", name))
		return
	}
	size, err := TensorSize(t, dims)
	if err != nil {
		w.fail(fmt.Errorf("gguf: AddTensor %q: %w", name, err))
		return
	}
	if uint64(len(data)) != size {
		w.fail(fmt.Errorf("gguf: AddTensor %q: %d bytes of data, want %d for %s %v", name, len(data), size, t, dims))
		return
	}
	w.names[name] = true
	w.tensors = append(w.tensors, Tensor{Name: name, Type: t, Dims: append([]uint64(nil), dims...), Data: data})
}

func pad(n uint64, align int) uint64 {
	a := uint64(align)
	return (n + a - 1) / a * a
}

// WriteTo writes the file to out, streaming: metadata and tensor infos are
// encoded through a small buffer and tensor data is copied straight from the
// slices given to AddTensor. It returns the bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	cw := &countWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<16)
	e := encoder{w: bw}
	e.header(w.kv, len(w.tensors), w.alignment, func(i int) (string, []uint64, Type, uint64) {
		t := &w.tensors[i]
		return t.Name, t.Dims, t.Type, uint64(len(t.Data))
	})
	if e.err != nil {
		return cw.n + int64(bw.Buffered()), e.err
	}
	header := uint64(cw.n) + uint64(bw.Buffered())
	e.zeros(pad(header, w.alignment) - header)
	for _, t := range w.tensors {
		e.raw(t.Data)
		n := uint64(len(t.Data))
		e.zeros(pad(n, w.alignment) - n)
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	return cw.n, e.err
}

// header encodes the GGUF v3 header: counts, metadata and the infos of n tensors (tensor(i) gives
// each one's name, dims, type and data size), data offsets aligned to alignment. It returns the
// largest tensor's size.
func (e *encoder) header(kvs []KV, n, alignment int, tensor func(i int) (string, []uint64, Type, uint64)) uint64 {
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(n))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		if kv.Value.Type == ValueArray {
			e.u32(uint32(kv.Value.Elem))
			e.u64(kv.Value.Count)
		} else if kv.Value.Type == ValueString {
			e.u64(uint64(len(kv.Value.raw)))
		}
		e.raw(kv.Value.raw)
	}
	offset, largest := uint64(0), uint64(0)
	for i := 0; i < n; i++ {
		name, dims, typ, size := tensor(i)
		e.str(name)
		e.u32(uint32(len(dims)))
		for _, d := range dims {
			e.u64(d)
		}
		e.u32(uint32(typ))
		e.u64(offset)
		offset = pad(offset+size, alignment)
		largest = max(largest, size)
	}
	return largest
}

// WriteFile writes the file to path atomically: into a temporary file in the
// same directory, synced, then renamed over path.
func (w *Writer) WriteFile(path string) error {
	if w.err != nil {
		return w.err
	}
	return writeFileAtomic(path, w)
}

// writeFileAtomic writes src to a temporary file beside path, syncs it and renames it over
// path, so a reader never sees a half-written model; on error the temporary file is removed.
func writeFileAtomic(path string, src io.WriterTo) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := src.WriteTo(tmp); err != nil {
		return fmt.Errorf("gguf: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gguf: close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes little-endian values, keeping the first error.
type encoder struct {
	w       *bufio.Writer
	err     error
	scratch [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u32(x uint32) {
	binary.LittleEndian.PutUint32(e.scratch[:], x)
	e.raw(e.scratch[:4])
}

func (e *encoder) u64(x uint64) {
	binary.LittleEndian.PutUint64(e.scratch[:], x)
	e.raw(e.scratch[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

var zeroPage [4096]byte

func (e *encoder) zeros(n uint64) {
	for n > 0 && e.err == nil {
		k := min(n, uint64(len(zeroPage)))
		e.raw(zeroPage[:k])
		n -= k
	}
}

// checkValue verifies that v's encoding is well formed, so SetValue never
// writes a file the reader would reject. Values from Parse always pass.
func checkValue(v Value) error {
	switch {
	case v.Type == ValueArray:
		buf := make([]byte, 0, 12)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(v.Elem))
		buf = binary.LittleEndian.AppendUint64(buf, v.Count)
		d := decoder{buf: append(buf, v.raw...)}
		if _, err := d.value(ValueArray, 0); err != nil {
			return err
		}
		if d.left() != 0 {
			return fmt.Errorf("%d stray bytes after array elements", d.left())
		}
		return nil
	case v.Type == ValueString:
		if v.str != string(v.raw) {
			return errors.New("inconsistent string value")
		}
		return nil
	case v.Type.size() > 0:
		if len(v.raw) != v.Type.size() {
			return fmt.Errorf("%s value of %d bytes", v.Type, len(v.raw))
		}
		return nil
	}
	return fmt.Errorf("unknown value type %d", uint32(v.Type))
}

// encodeGo converts a Go value to a Value following Set's type mapping.
func encodeGo(v any) (Value, error) {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return Value{Type: ValueUint8, raw: []byte{x}}, nil
	case int8:
		return Value{Type: ValueInt8, raw: []byte{byte(x)}}, nil
	case uint16:
		return Value{Type: ValueUint16, raw: le.AppendUint16(nil, x)}, nil
	case int16:
		return Value{Type: ValueInt16, raw: le.AppendUint16(nil, uint16(x))}, nil
	case uint32:
		return Value{Type: ValueUint32, raw: le.AppendUint32(nil, x)}, nil
	case int32:
		return Value{Type: ValueInt32, raw: le.AppendUint32(nil, uint32(x))}, nil
	case uint64:
		return Value{Type: ValueUint64, raw: le.AppendUint64(nil, x)}, nil
	case int64:
		return Value{Type: ValueInt64, raw: le.AppendUint64(nil, uint64(x))}, nil
	case float32:
		return Value{Type: ValueFloat32, raw: le.AppendUint32(nil, math.Float32bits(x))}, nil
	case float64:
		return Value{Type: ValueFloat64, raw: le.AppendUint64(nil, math.Float64bits(x))}, nil
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		return Value{Type: ValueBool, raw: []byte{b}}, nil
	case string:
		return Value{Type: ValueString, str: x, raw: []byte(x)}, nil
	case []uint8:
		return array(ValueUint8, x, func(b []byte, e uint8) []byte { return append(b, e) }), nil
	case []int8:
		return array(ValueInt8, x, func(b []byte, e int8) []byte { return append(b, byte(e)) }), nil
	case []uint16:
		return array(ValueUint16, x, le.AppendUint16), nil
	case []int16:
		return array(ValueInt16, x, func(b []byte, e int16) []byte { return le.AppendUint16(b, uint16(e)) }), nil
	case []uint32:
		return array(ValueUint32, x, le.AppendUint32), nil
	case []int32:
		return array(ValueInt32, x, func(b []byte, e int32) []byte { return le.AppendUint32(b, uint32(e)) }), nil
	case []uint64:
		return array(ValueUint64, x, le.AppendUint64), nil
	case []int64:
		return array(ValueInt64, x, func(b []byte, e int64) []byte { return le.AppendUint64(b, uint64(e)) }), nil
	case []float32:
		return array(ValueFloat32, x, func(b []byte, e float32) []byte { return le.AppendUint32(b, math.Float32bits(e)) }), nil
	case []float64:
		return array(ValueFloat64, x, func(b []byte, e float64) []byte { return le.AppendUint64(b, math.Float64bits(e)) }), nil
	case []bool:
		return array(ValueBool, x, func(b []byte, e bool) []byte {
			if e {
				return append(b, 1)
			}
			return append(b, 0)
		}), nil
	case []string:
		return array(ValueString, x, func(b []byte, e string) []byte { return append(le.AppendUint64(b, uint64(len(e))), e...) }), nil
	}
	return Value{}, fmt.Errorf("unsupported Go type %T", v)
}

func array[E any](elem ValueType, xs []E, appendElem func([]byte, E) []byte) Value {
	raw := make([]byte, 0, len(xs)*max(elem.size(), 8))
	for _, x := range xs {
		raw = appendElem(raw, x)
	}
	return Value{Type: ValueArray, Elem: elem, Count: uint64(len(xs)), raw: raw}
}
