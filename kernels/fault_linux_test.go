//go:build linux

package kernels

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
)

// TestMatMulFaultOnTruncatedMapping maps a weight file, truncates it under
// the mapping, and checks that the SIGBUS a worker (or the caller) takes
// reaches the caller as a recoverable runtime error with the fault address,
// the shape mmap.Guard turns into an error, and that the pool survives.
func TestMatMulFaultOnTruncatedMapping(t *testing.T) {
	const rows, cols = 512, 1024
	m := Mat{Type: Q8_0, Rows: rows, Cols: cols}
	size := rows * m.RowBytes()
	path := filepath.Join(t.TempDir(), "w.bin")
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(data)
	m.Data = data

	p := NewPool(2)
	defer p.Close()
	x := make([]float32, cols)
	dst := make([]float32, rows)
	p.MatMul(dst, m, x, 1) // fine while the file is whole

	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var got any
	func() {
		old := debug.SetPanicOnFault(true)
		defer debug.SetPanicOnFault(old)
		defer func() { got = recover() }()
		p.MatMul(dst, m, x, 1)
	}()
	re, ok := got.(runtime.Error)
	if !ok {
		t.Fatalf("recovered %T %v, want a runtime.Error fault", got, got)
	}
	if _, ok := re.(interface{ Addr() uintptr }); !ok {
		// qemu-user (how arm64 is tested here) delivers the SIGBUS without
		// an address; a native kernel always gives one.
		if runtime.GOARCH == "amd64" {
			t.Fatalf("recovered %v has no fault address", re)
		}
		t.Logf("recovered %v without a fault address (emulated?)", re)
	}

	good := Mat{Type: Q8_0, Rows: rows, Cols: cols, Data: make([]byte, size)}
	p.MatMul(dst, good, x, 1)
}
