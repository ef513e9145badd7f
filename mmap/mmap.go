// Package mmap maps files read-only into memory, so model weights are used in
// place from the page cache instead of being copied onto the Go heap.
//
// A mapping is only as stable as the file under it: if another process
// truncates or replaces the file in place while it is mapped, touching the
// vanished pages raises SIGBUS. Guard turns that fault into an error on the
// goroutine that touched the memory.
package mmap

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Advice is a hint to the kernel about how a mapping will be read (madvise).
type Advice int

const (
	Normal     Advice = iota // no special treatment (MADV_NORMAL)
	Sequential               // read ahead aggressively, drop pages soon after (MADV_SEQUENTIAL)
	Random                   // do not read ahead (MADV_RANDOM)
	WillNeed                 // start reading the whole mapping in now (MADV_WILLNEED)
)

func (a Advice) String() string {
	switch a {
	case Normal:
		return "normal"
	case Sequential:
		return "sequential"
	case Random:
		return "random"
	case WillNeed:
		return "willneed"
	}
	return fmt.Sprintf("Advice(%d)", int(a))
}

// Mapping is a read-only view of a whole file. Its bytes are valid until
// Close; touching them afterwards is a use-after-free (it faults).
type Mapping struct {
	path   string
	data   []byte
	mapped bool // data came from mmap and must be unmapped; false for empty files and the fallback
	info   os.FileInfo

	mu     sync.Mutex
	closed bool
}

// FileInfo describes the file as it was when it was mapped; os.SameFile with
// it tells whether another path names the same file (device and inode).
func (m *Mapping) FileInfo() os.FileInfo { return m.info }

// ErrClosed is returned by Advise on a closed mapping.
var ErrClosed = errors.New("mmap: mapping is closed")

// Bytes returns the file's contents. The slice must not be written to: the
// memory is mapped read-only and a write faults. It is nil after Close.
func (m *Mapping) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data
}

// Len is the length of the mapping in bytes (0 after Close).
func (m *Mapping) Len() int { return len(m.Bytes()) }

// Path is the path the mapping was opened from.
func (m *Mapping) Path() string { return m.path }

// HugeBytes is how many bytes of the mapping are mapped in 2 MB pages, as far as this process has
// touched it (Linux; 0 elsewhere and for a mapping read into memory). Decode reads through fewer
// TLB entries the more of the weights are so.
func (m *Mapping) HugeBytes() (int64, error) {
	if !m.mapped || len(m.data) == 0 {
		return 0, nil
	}
	return hugeBytes(m.data)
}

// DropCache asks the kernel to drop the file's pages from the page cache where no process has them
// mapped (Linux; nothing elsewhere), so that the next reads through the mapping come from disk. A
// model cached in 4 KB pages (as a download leaves it) is then read again in 2 MB pages: call it
// right after Open, before the weights are touched. It costs one read of the file from disk.
func (m *Mapping) DropCache() error {
	if !m.mapped || len(m.data) == 0 {
		return nil
	}
	if err := dropCache(m.path); err != nil {
		return fmt.Errorf("mmap: drop the cached pages of %s: %w", m.path, err)
	}
	return nil
}

// Mapped reports whether the bytes are a real memory mapping (false for
// empty files and on platforms where Open reads the file into memory).
func (m *Mapping) Mapped() bool { return m.mapped }

// Close unmaps the file. It is safe to call more than once; only the first
// call does anything and later calls return nil.
func (m *Mapping) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	data := m.data
	m.data = nil
	if !m.mapped || len(data) == 0 {
		return nil
	}
	if err := unmap(data); err != nil {
		return fmt.Errorf("mmap: unmap %s: %w", m.path, err)
	}
	return nil
}

// Advise passes a to the kernel for the whole mapping. It is a no-op for
// empty mappings and where the file was read into memory.
func (m *Mapping) Advise(a Advice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if a < Normal || a > WillNeed {
		return fmt.Errorf("mmap: unknown advice %d", int(a))
	}
	if !m.mapped || len(m.data) == 0 {
		return nil
	}
	if err := advise(m.data, a); err != nil {
		return fmt.Errorf("mmap: madvise(%s) %s: %w", a, m.path, err)
	}
	return nil
}

// FaultError reports a memory fault while reading a mapped file, which in
// practice means the file was truncated or replaced in place while in use.
type FaultError struct {
	Addr  uintptr // faulting address, 0 when unknown
	Cause error   // the runtime error recovered, if any
}

func (e *FaultError) Error() string {
	msg := "mmap: fault reading mapped file (was it truncated or replaced while in use?)"
	if e.Addr != 0 {
		msg += fmt.Sprintf(" at address %#x", e.Addr)
	}
	return msg
}

func (e *FaultError) Unwrap() error { return e.Cause }

// IsFault reports whether a value obtained from recover() is a memory fault
// (a runtime error raised under debug.SetPanicOnFault) or a *FaultError.
//
// It lets a worker goroutine, which must itself enable
// debug.SetPanicOnFault(true), recover a fault and hand it to the goroutine
// that started the work, which re-panics with the recovered value inside
// Guard (or passes it to AsFault):
//
//	defer func() {
//		if r := recover(); r != nil {
//			if !mmap.IsFault(r) {
//				panic(r)
//			}
//			faults <- r
//		}
//	}()
func IsFault(recovered any) bool {
	return AsFault(recovered) != nil
}

// AsFault converts a recovered memory fault into a *FaultError, or returns
// nil if recovered is not a fault.
func AsFault(recovered any) *FaultError {
	switch r := recovered.(type) {
	case *FaultError:
		return r
	case runtime.Error:
		// Under SetPanicOnFault the runtime raises a fault at a non-nil
		// address as a runtime.Error with an Addr method ("invalid memory
		// address or nil pointer dereference" for SIGBUS/SIGSEGV); older
		// runtimes said "unexpected fault address". A plain nil dereference
		// has no Addr and is a bug, not a fault.
		if a, ok := r.(interface{ Addr() uintptr }); ok {
			return &FaultError{Addr: a.Addr(), Cause: r}
		}
		if strings.Contains(r.Error(), "fault") {
			return &FaultError{Cause: r}
		}
	}
	return nil
}

// Guard runs fn on the calling goroutine with debug.SetPanicOnFault(true),
// restoring the previous setting afterwards. If fn faults on memory (a read
// past the end of a mapped file that shrank raises SIGBUS), or panics with a
// *FaultError re-raised from a worker, Guard returns the *FaultError instead
// of crashing the process. Any other panic propagates unchanged.
//
// Only faults on the calling goroutine are caught; goroutines started by fn
// must enable SetPanicOnFault and recover faults themselves (see IsFault).
func Guard(fn func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if fe := AsFault(r); fe != nil {
				err = fe
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}
