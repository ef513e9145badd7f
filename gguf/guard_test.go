//go:build unix

package gguf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"edgelm/mmap"
)

// A model file truncated while open must make reads of its tensors fail
// through mmap.Guard, not crash the process.
func TestOpenTruncatedWhileMapped(t *testing.T) {
	w := NewWriter()
	w.Set("general.architecture", "llama")
	w.AddTensor("big", F32, []uint64{4096, 4}, make([]byte, 4*4096*4))
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tn, _ := f.Tensor("big")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var sum byte
	err = mmap.Guard(func() {
		for _, b := range tn.Data {
			sum += b
		}
	})
	var fe *mmap.FaultError
	if !errors.As(err, &fe) {
		t.Fatalf("reading a truncated mapped tensor: err = %v (sum %d), want *mmap.FaultError", err, sum)
	}
	if f.Close() != nil || f.Close() != nil {
		t.Error("Close failed")
	}
}
