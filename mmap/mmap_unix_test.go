//go:build unix

package mmap

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Truncating a mapped file makes its pages vanish; reading them raises
// SIGBUS, which Guard must turn into a *FaultError instead of a crash.
func TestGuardTruncatedFile(t *testing.T) {
	page := os.Getpagesize()
	data := make([]byte, 4*page)
	for i := range data {
		data[i] = 1
	}
	path := writeTemp(t, data)
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Bytes()
	if b[3*page] != 1 {
		t.Fatal("mapping does not show file contents")
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	before := debug.SetPanicOnFault(false)
	err = Guard(func() { sink = b[3*page+5] })
	var fe *FaultError
	if !errors.As(err, &fe) {
		t.Fatalf("Guard after truncation = %v, want *FaultError", err)
	}
	if !strings.Contains(err.Error(), "truncated or replaced") {
		t.Errorf("error message %q does not explain the cause", err)
	}
	if fe.Addr != uintptr(unsafe.Pointer(&b[3*page+5])) {
		t.Errorf("fault address %#x, want %#x", fe.Addr, uintptr(unsafe.Pointer(&b[3*page+5])))
	}
	// Guard must restore the goroutine's previous setting.
	if got := debug.SetPanicOnFault(before); got != false {
		t.Error("Guard did not restore SetPanicOnFault")
	}
}

// A fault in a worker goroutine, recovered there with IsFault and
// re-panicked on the caller inside Guard, becomes an error on the caller.
func TestGuardFaultFromWorker(t *testing.T) {
	page := os.Getpagesize()
	path := writeTemp(t, make([]byte, 2*page))
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Bytes()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	err = Guard(func() {
		faults := make(chan any, 1)
		go func() {
			debug.SetPanicOnFault(true)
			defer func() {
				r := recover()
				if r != nil && !IsFault(r) {
					panic(r)
				}
				faults <- r
			}()
			sink = b[page+1]
		}()
		if r := <-faults; r != nil {
			panic(r)
		}
	})
	if !IsFault(err) && !errors.As(err, new(*FaultError)) {
		t.Fatalf("Guard = %v, want *FaultError", err)
	}
}

// smapsRollup reads the named kB fields of /proc/self/smaps_rollup.
func smapsRollup(t *testing.T) map[string]int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[2] == "kB" {
			v, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				out[strings.TrimSuffix(fields[0], ":")] = v * 1024
			}
		}
	}
	return out
}

// vmaLines returns the lines of the /proc/self/smaps entry of the mapping starting at addr, after
// its header line.
func vmaLines(t *testing.T, addr uintptr) []string {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	prefix := fmt.Sprintf("%x-", addr)
	var out []string
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			if in {
				break
			}
			in = strings.HasPrefix(fields[0], prefix)
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	if !in {
		t.Fatalf("mapping at %#x not found in /proc/self/smaps", addr)
	}
	return out
}

// vmaFields reads the kB fields of the /proc/self/smaps entry starting at addr.
func vmaFields(t *testing.T, addr uintptr) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, line := range vmaLines(t, addr) {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[2] == "kB" {
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			out[strings.TrimSuffix(fields[0], ":")] = v * 1024
		}
	}
	return out
}

// pattern returns size bytes that differ from page to page and are never zero.
func pattern(size int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i>>12) | 1
	}
	return data
}

// Reading a whole mapped file must not grow the process's anonymous or
// private dirty memory: the pages belong to the page cache. Private_Clean is
// not checked, because the kernel counts page-cache pages mapped by only one
// process as Private_Clean. As a control, the same measurement must see a
// heap copy of the file.
func TestMappedBytesAreNotPrivateMemory(t *testing.T) {
	const size = 32 << 20
	data := pattern(size)
	path := writeTemp(t, data)
	data = nil
	// Freshly written page-cache pages are dirty until written back, and
	// smaps counts dirty file pages mapped by one process as Private_Dirty.
	if err := syncFile(path); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	debug.FreeOSMemory()

	before := smapsRollup(t)
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Bytes()
	var sum byte
	for i := 0; i < len(b); i += 4096 {
		sum += b[i]
	}
	sink = sum
	after := smapsRollup(t)
	vma := vmaFields(t, uintptr(unsafe.Pointer(&b[0])))

	if vma["Rss"] < size*9/10 {
		t.Errorf("mapping Rss %d, want about %d: pages were not read", vma["Rss"], size)
	}
	if vma["Anonymous"] != 0 || vma["Private_Dirty"] != 0 {
		t.Errorf("mapping has Anonymous %d, Private_Dirty %d; want 0", vma["Anonymous"], vma["Private_Dirty"])
	}
	growth := (after["Anonymous"] - before["Anonymous"]) + (after["Private_Dirty"] - before["Private_Dirty"])
	if growth > size/4 {
		t.Errorf("anonymous+private dirty grew by %d bytes for a %d-byte mapped file", growth, size)
	}
	t.Logf("mapped %d bytes: Rss %d, Anonymous+Private_Dirty growth %d", size, vma["Rss"], growth)

	// Control: a heap copy of the file is visible to this measurement.
	copyBefore := smapsRollup(t)
	heap, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyAfter := smapsRollup(t)
	heapGrowth := copyAfter["Anonymous"] - copyBefore["Anonymous"]
	runtime.KeepAlive(heap)
	if heapGrowth < size/2 {
		t.Errorf("control: a %d-byte heap copy grew Anonymous by only %d; the measurement is blind", size, heapGrowth)
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// A FIFO, a device or a directory given as a model path is refused at once: a plain open of a
// FIFO waits for a writer forever, which wedged start-up, reloads and `edgelm info`.
func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := dir + "/fifo.gguf"
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, "a FIFO"},
		{dir, "a directory"},
		{"/dev/null", "a character device"},
	} {
		done := make(chan error, 1)
		go func() {
			m, err := Open(tc.path)
			if err == nil {
				m.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Open(%s): %v, want an error saying it is %s", tc.path, err, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%s) still blocked after 5s", tc.path)
		}
	}
	// A regular file still opens, and its identity is kept.
	path := dir + "/m"
	if err := os.WriteFile(path, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if fi, err := os.Stat(path); err != nil || !os.SameFile(fi, m.FileInfo()) {
		t.Errorf("FileInfo does not name the mapped file (%v)", err)
	}
}
