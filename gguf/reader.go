// Package gguf reads and writes GGUF files, llama.cpp's model format:
// a header, typed key/value metadata, tensor infos, and aligned tensor data.
//
// The reader is zero-copy: Parse keeps views into the bytes it is given
// (normally a read-only memory mapping of the file), and every count, length
// and offset in the file is checked against the bytes actually present
// before anything is allocated or sliced, so a corrupt or hostile file gives
// an error, never a panic or a huge allocation. The package knows nothing of
// model architectures.
//
// Parse rejects, each with a one-line error naming the problem: a bad magic;
// versions other than 2 and 3 (and big-endian files); any read past the end;
// metadata, tensor or array counts that cannot fit in the bytes left; string
// lengths past the end; unknown value types; arrays nested more than 4 deep;
// duplicate keys or tensor names; a general.alignment that is not an integer
// power of two; tensors with 0 or more than 4 dimensions, a 0 dimension, an
// element count or byte size overflowing int64, an unknown or removed type, a
// row length (Dims[0]) that is not a multiple of the type's block size, an
// offset not a multiple of the alignment, data past the end of the file, or
// data overlapping another tensor's.
package gguf

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"

	"edgelm/mmap"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// AlignmentKey is the metadata key that sets the data alignment.
const AlignmentKey = "general.alignment"

// maxAlignment bounds general.alignment: larger values are not used by any
// writer and would only waste bytes.
const maxAlignment = 1 << 30

// maxArrayDepth bounds nested arrays (an array of arrays of ...): llama.cpp
// writes none, and the bound keeps the recursion shallow.
const maxArrayDepth = 4

// File is a parsed GGUF file. Its Values and Tensor Data are views into the
// parsed bytes, valid until Close (for a File from Open) or as long as the
// caller keeps the bytes unchanged (for a File from Parse). Strings returned
// by accessors are copies and stay valid.
type File struct {
	Version    uint32   // 2 or 3
	Alignment  int      // data alignment, a power of two (general.alignment, default 32)
	KV         []KV     // metadata in file order
	Tensors    []Tensor // tensor infos in file order
	DataOffset int64    // file offset of the tensor data section (aligned; may equal or pass the file size when there are no tensors)

	kvIndex     map[string]int
	tensorIndex map[string]int
	mapping     *mmap.Mapping
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// Tensor describes one tensor and views its bytes.
type Tensor struct {
	Name   string
	Type   Type
	Dims   []uint64 // Dims[0] is the row length (ggml ne[0]); 1 to 4 entries, all > 0
	Offset uint64   // offset of the data from the start of the data section
	Data   []byte   // the tensor's bytes, exactly TensorSize(Type, Dims) long
}

// Elements is the number of elements (the product of Dims).
func (t *Tensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Open maps the file at path (mmap.Open) and parses it. Close unmaps it.
func Open(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := parse(m.Bytes())
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f.mapping = m
	return f, nil
}

// Parse parses a GGUF file held in data without copying it: the File's
// Values and Tensor Data point into data. It accepts versions 2 and 3 and
// makes the checks listed in the package documentation.
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// Close releases the mapping of a File from Open; afterwards its Values and
// Tensor Data must not be touched. It is a no-op for a File from Parse, and
// safe to call more than once.
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	return f.mapping.Close()
}

// Mapping is the memory mapping behind a File from Open (nil for Parse), for
// madvise hints and mmap.Guard.
func (f *File) Mapping() *mmap.Mapping { return f.mapping }

func parse(data []byte) (*File, error) {
	d := decoder{buf: data}
	if len(data) < 4 {
		return nil, fmt.Errorf("truncated file: %d bytes, too short for the GGUF magic", len(data))
	}
	if string(data[:4]) != Magic {
		return nil, fmt.Errorf("bad magic %q, not a GGUF file", data[:4])
	}
	d.off = 4
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 1:
		return nil, fmt.Errorf("unsupported version 1 (GGUF v1 files predate llama.cpp's 2023 format; re-convert the model)")
	case version == 2 || version == 3:
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		return nil, fmt.Errorf("big-endian GGUF file (version %d byte-swapped) is not supported", bits.ReverseBytes32(version))
	default:
		return nil, fmt.Errorf("unsupported version %d (want 2 or 3)", version)
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Every KV takes at least 8 (key length) + 4 (type) + 1 bytes and every
	// tensor info at least 8 (name length) + 4 (n_dims) + 8 (a dim) + 4
	// (type) + 8 (offset) bytes; counts that cannot fit fail here, before
	// anything is allocated.
	const minKV, minTensor = 13, 32
	if err := d.fits(nKV, minKV, "metadata entries"); err != nil {
		return nil, err
	}
	if err := d.fits(nTensors, minTensor, "tensor infos"); err != nil {
		return nil, err
	}
	if nKV*minKV+nTensors*minTensor > d.left() {
		return nil, fmt.Errorf("%d metadata entries and %d tensor infos cannot fit in the %d bytes left", nKV, nTensors, d.left())
	}

	// The in-memory structs are several times larger than their smallest
	// encodings, so preallocate only up to a modest bound and let append grow
	// with what is actually parsed.
	const prealloc = 1 << 12
	f := &File{
		Version:     version,
		Alignment:   DefaultAlignment,
		KV:          make([]KV, 0, min(nKV, prealloc)),
		Tensors:     make([]Tensor, 0, min(nTensors, prealloc)),
		kvIndex:     make(map[string]int, min(nKV, prealloc)),
		tensorIndex: make(map[string]int, min(nTensors, prealloc)),
	}
	for i := uint64(0); i < nKV; i++ {
		key, err := d.str("key")
		if err != nil {
			return nil, fmt.Errorf("metadata entry %d: %w", i, err)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("duplicate metadata key %q", key)
		}
		t, err := d.u32("value type")
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}
	if v, ok := f.Value(AlignmentKey); ok {
		a, ok := v.Uint()
		if !ok {
			return nil, fmt.Errorf("key %q: %s value, want an unsigned integer", AlignmentKey, v.Type)
		}
		if a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return nil, fmt.Errorf("key %q: alignment %d is not a power of two up to %d", AlignmentKey, a, maxAlignment)
		}
		f.Alignment = int(a)
	}

	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo()
		if err != nil {
			if t.Name == "" {
				return nil, fmt.Errorf("tensor info %d: %w", i, err)
			}
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if _, dup := f.tensorIndex[t.Name]; dup {
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		if t.Offset%uint64(f.Alignment) != 0 {
			return nil, fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		f.tensorIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	// The data section starts at the next multiple of the alignment. A file
	// without tensors (a vocabulary-only file) may end before it.
	start := uint64(d.off)
	if r := start % uint64(f.Alignment); r != 0 {
		start += uint64(f.Alignment) - r
	}
	f.DataOffset = int64(start)
	if err := f.placeTensors(data, start); err != nil {
		return nil, err
	}
	return f, nil
}

// placeTensors points each tensor's Data into data and checks that tensors
// lie within the file and do not overlap.
func (f *File) placeTensors(data []byte, start uint64) error {
	size := uint64(len(data))
	if len(f.Tensors) > 0 && start > size {
		return fmt.Errorf("truncated file: tensor data section starts at %d, past the end of the %d-byte file", start, size)
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		n, _ := TensorSize(t.Type, t.Dims) // checked by tensorInfo
		if t.Offset > size-start || n > size-start-t.Offset {
			return fmt.Errorf("tensor %q: data [%d, +%d) past end of file (data section holds %d bytes)", t.Name, t.Offset, n, size-start)
		}
		t.Data = data[start+t.Offset : start+t.Offset+n : start+t.Offset+n]
	}
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if cur.Offset < prev.Offset+uint64(len(prev.Data)) {
			return fmt.Errorf("tensor %q (offset %d) overlaps tensor %q (offset %d, %d bytes)", cur.Name, cur.Offset, prev.Name, prev.Offset, len(prev.Data))
		}
	}
	return nil
}

// decoder reads little-endian GGUF encodings from buf, checking every read
// against the bytes left.
type decoder struct {
	buf []byte
	off int
}

func (d *decoder) left() uint64 { return uint64(len(d.buf) - d.off) }

func (d *decoder) need(n uint64, what string) error {
	if n > d.left() {
		return fmt.Errorf("truncated file: %s needs %d bytes at offset %d, %d left", what, n, d.off, d.left())
	}
	return nil
}

// fits checks that count items of at least minSize bytes each can fit in
// the bytes left, without overflowing.
func (d *decoder) fits(count, minSize uint64, what string) error {
	if minSize > 0 && count > d.left()/minSize {
		return fmt.Errorf("%d %s cannot fit in the %d bytes left at offset %d", count, what, d.left(), d.off)
	}
	return nil
}

func (d *decoder) take(n uint64, what string) ([]byte, error) {
	if err := d.need(n, what); err != nil {
		return nil, err
	}
	b := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b, nil
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	b, err := d.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// strBytes reads a length-prefixed string and returns a view of its bytes.
func (d *decoder) strBytes(what string) ([]byte, error) {
	// Not d.u64(what + " length"): that concatenation would allocate for
	// every string of a vocabulary.
	if d.left() < 8 {
		return nil, fmt.Errorf("truncated file: %s length needs 8 bytes at offset %d, %d left", what, d.off, d.left())
	}
	n := binary.LittleEndian.Uint64(d.buf[d.off:])
	d.off += 8
	if n > d.left() {
		return nil, fmt.Errorf("%s length %d past end of file (%d bytes left at offset %d)", what, n, d.left(), d.off)
	}
	return d.take(n, what)
}

func (d *decoder) str(what string) (string, error) {
	b, err := d.strBytes(what)
	return string(b), err
}

// value reads one value of type t; depth counts the arrays it is nested in.
func (d *decoder) value(t ValueType, depth int) (Value, error) {
	switch size := t.size(); {
	case size > 0:
		b, err := d.take(uint64(size), t.String()+" value")
		return Value{Type: t, raw: b}, err
	case t == ValueString:
		b, err := d.strBytes("string value")
		if err != nil {
			return Value{}, err
		}
		v := Value{Type: t, raw: b}
		if depth == 0 {
			// Scalar strings are small and read often: copy once. Strings in
			// arrays stay encoded until asked for.
			v.str = string(b)
		}
		return v, nil
	case t == ValueArray:
		if depth >= maxArrayDepth {
			return Value{}, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
		}
		et, err := d.u32("array element type")
		if err != nil {
			return Value{}, err
		}
		elem := ValueType(et)
		if elem.size() < 0 {
			return Value{}, fmt.Errorf("array of unknown value type %d", et)
		}
		count, err := d.u64("array length")
		if err != nil {
			return Value{}, err
		}
		if err := d.fits(count, elem.minSize(), "array elements of type "+elem.String()); err != nil {
			return Value{}, err
		}
		start := d.off
		if size := elem.size(); size > 0 {
			// fits checked count*size <= left, so this cannot overflow.
			if _, err := d.take(count*uint64(size), "array data"); err != nil {
				return Value{}, err
			}
		} else {
			// Strings and nested arrays have variable sizes: walk them to
			// find the end. Each takes at least 8 bytes, so the walk is
			// bounded by the file's size.
			for i := uint64(0); i < count; i++ {
				if _, err := d.value(elem, depth+1); err != nil {
					return Value{}, fmt.Errorf("array element %d: %w", i, err)
				}
			}
		}
		return Value{Type: t, Elem: elem, Count: count, raw: d.buf[start:d.off:d.off]}, nil
	}
	return Value{}, fmt.Errorf("unknown value type %d", uint32(t))
}

// tensorInfo reads one tensor info and checks its shape and type. On error
// the returned Tensor carries the name if it was read.
func (d *decoder) tensorInfo() (Tensor, error) {
	var t Tensor
	name, err := d.str("tensor name")
	if err != nil {
		return t, err
	}
	t.Name = name
	nDims, err := d.u32("n_dims")
	if err != nil {
		return t, err
	}
	if nDims == 0 || nDims > MaxDims {
		return t, fmt.Errorf("n_dims %d, want 1 to %d", nDims, MaxDims)
	}
	t.Dims = make([]uint64, nDims)
	for i := range t.Dims {
		if t.Dims[i], err = d.u64("dimension"); err != nil {
			return t, err
		}
	}
	typ, err := d.u32("tensor type")
	if err != nil {
		return t, err
	}
	t.Type = Type(typ)
	if t.Offset, err = d.u64("tensor offset"); err != nil {
		return t, err
	}
	if _, err := TensorSize(t.Type, t.Dims); err != nil {
		return t, err
	}
	return t, nil
}
