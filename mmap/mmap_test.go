package mmap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenReadsFile(t *testing.T) {
	want := make([]byte, 10000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	m, err := Open(writeTemp(t, want))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes(), want) {
		t.Fatal("mapped bytes differ from file")
	}
	for _, a := range []Advice{Normal, Sequential, Random, WillNeed} {
		if err := m.Advise(a); err != nil {
			t.Errorf("Advise(%s): %v", a, err)
		}
	}
	if err := m.Advise(Advice(99)); err == nil {
		t.Error("Advise(99) succeeded")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if m.Bytes() != nil {
		t.Error("Bytes not nil after Close")
	}
	if err := m.Advise(Normal); !errors.Is(err, ErrClosed) {
		t.Errorf("Advise after Close = %v, want ErrClosed", err)
	}
}

func TestOpenEmptyFile(t *testing.T) {
	m, err := Open(writeTemp(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := m.Bytes(); b == nil || len(b) != 0 {
		t.Fatalf("empty file: Bytes() = %v (nil=%v), want empty non-nil", b, b == nil)
	}
	if err := m.Advise(WillNeed); err != nil {
		t.Error(err)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.HasPrefix(err.Error(), "mmap: ") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
}

func TestGuardPassesOtherPanics(t *testing.T) {
	if err := Guard(func() {}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want boom", r)
		}
	}()
	_ = Guard(func() { panic("boom") })
	t.Fatal("Guard swallowed a non-fault panic")
}

func TestGuardRepanickedFault(t *testing.T) {
	fe := &FaultError{Addr: 0x1234}
	err := Guard(func() { panic(fe) })
	if err != fe {
		t.Fatalf("Guard = %v, want the re-panicked *FaultError", err)
	}
	if !IsFault(fe) || IsFault("fault") || IsFault(errors.New("fault")) || IsFault(nil) {
		t.Error("IsFault misclassifies")
	}
}

// An index out of range is a runtime.Error but not a memory fault.
func TestGuardRuntimeErrorNotFault(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || IsFault(r) {
			t.Fatalf("recovered %v, want a non-fault runtime error", r)
		}
	}()
	var s []int
	i := 3
	_ = Guard(func() { sink = byte(s[i]) })
}

var sink byte
