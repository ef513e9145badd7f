package gguf

import (
	"bufio"
	"fmt"
	"io"
)

// StreamWriter writes a GGUF v3 file whose tensor data is produced one tensor
// at a time, while the file is written, by a function per tensor. Unlike
// Writer, which keeps every tensor's bytes until WriteTo, it holds only one
// tensor in memory (a buffer as large as the largest tensor), so files larger
// than memory can be generated or converted.
//
// Metadata works as in Writer (Set, SetValue, SetAlignment, same rules and
// order); tensors are laid out in the order added, each aligned. The bytes
// written are the same as Writer.WriteTo's for the same metadata and data.
type StreamWriter struct {
	meta    *Writer // metadata and alignment only; it holds no tensors
	tensors []streamTensor
	names   map[string]bool
	err     error
}

// A Fill writes one tensor's data into dst, which is exactly the tensor's
// size and holds garbage from an earlier tensor on entry.
type Fill func(dst []byte) error

type streamTensor struct {
	name string
	typ  Type
	dims []uint64
	size uint64
	fill Fill
}

// NewStreamWriter returns an empty StreamWriter with the default alignment.
func NewStreamWriter() *StreamWriter {
	return &StreamWriter{meta: NewWriter(), names: map[string]bool{}}
}

// Set stores a metadata value, as Writer.Set.
func (s *StreamWriter) Set(key string, v any) { s.meta.Set(key, v) }

// SetValue stores a parsed metadata value verbatim, as Writer.SetValue.
func (s *StreamWriter) SetValue(key string, v Value) { s.meta.SetValue(key, v) }

// SetAlignment sets the data alignment, as Writer.SetAlignment.
func (s *StreamWriter) SetAlignment(n int) { s.meta.SetAlignment(n) }

// Err returns the first misuse recorded by Set, SetValue, SetAlignment or
// AddTensor.
func (s *StreamWriter) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.meta.Err()
}

// AddTensor appends a tensor whose data fill produces when the file is
// written. dims[0] is the row length; names must be unique.
func (s *StreamWriter) AddTensor(name string, t Type, dims []uint64, fill Fill) {
	if s.err != nil {
		return
	}
	if s.names[name] {
		s.err = fmt.Errorf("gguf: AddTensor: duplicate tensor name %q", name)
		return
	}
	if fill == nil {
		s.err = fmt.Errorf("gguf: AddTensor %q: nil fill function", name)
		return
	}
	size, err := TensorSize(t, dims)
	if err != nil {
		s.err = fmt.Errorf("gguf: AddTensor %q: %w", name, err)
		return
	}
	s.names[name] = true
	s.tensors = append(s.tensors, streamTensor{name: name, typ: t, dims: append([]uint64(nil), dims...), size: size, fill: fill})
}

// WriteTo writes the file to out, calling each tensor's fill in order just
// before its data is written. A fill error stops the write and is returned
// wrapped with the tensor's name.
func (s *StreamWriter) WriteTo(out io.Writer) (int64, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	w := s.meta
	cw := &countWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<16)
	e := encoder{w: bw}
	largest := e.header(w.kv, len(s.tensors), w.alignment, func(i int) (string, []uint64, Type, uint64) {
		t := &s.tensors[i]
		return t.name, t.dims, t.typ, t.size
	})
	if e.err != nil {
		return cw.n + int64(bw.Buffered()), e.err
	}
	header := uint64(cw.n) + uint64(bw.Buffered())
	e.zeros(pad(header, w.alignment) - header)
	buf := make([]byte, largest)
	for _, t := range s.tensors {
		if e.err != nil {
			break
		}
		data := buf[:t.size]
		if err := t.fill(data); err != nil {
			return cw.n + int64(bw.Buffered()), fmt.Errorf("gguf: tensor %q: %w", t.name, err)
		}
		e.raw(data)
		e.zeros(pad(t.size, w.alignment) - t.size)
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	return cw.n, e.err
}

// WriteFile writes the file to path atomically, as Writer.WriteFile: into a
// temporary file in the same directory, synced, then renamed over path.
func (s *StreamWriter) WriteFile(path string) error {
	if err := s.Err(); err != nil {
		return err
	}
	return writeFileAtomic(path, s)
}
