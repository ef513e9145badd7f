package mmap

import (
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestOpenAdvisesHugePages: a model mapping carries the kernel's "hg" flag (MADV_HUGEPAGE), so
// pages read in through it come as 2 MB folios where the kernel and file system can. Skipped on
// kernels without transparent huge pages, where the advice cannot be given.
func TestOpenAdvisesHugePages(t *testing.T) {
	probe, err := unix.Mmap(-1, 0, 4<<20, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(probe)
	if err := unix.Madvise(probe, unix.MADV_HUGEPAGE); err != nil {
		t.Skipf("kernel takes no MADV_HUGEPAGE: %v", err)
	}
	path := writeTemp(t, make([]byte, 4<<20))
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	flags := vmaFlags(t, uintptr(unsafe.Pointer(&m.Bytes()[0])))
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("mapping's VmFlags %q lack hg (MADV_HUGEPAGE)", flags)
	}
}

// vmaFlags returns the VmFlags line of the /proc/self/smaps entry starting at addr.
func vmaFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	for _, line := range vmaLines(t, addr) {
		if rest, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("mapping at %#x has no VmFlags in /proc/self/smaps", addr)
	return ""
}

// TestHugeBytes: after the whole mapping is read, HugeBytes equals the FilePmdMapped that
// vmaFields (the test's own smaps reader) finds for it, is a multiple of 2 MB and within the
// mapping. The file is dropped from the page cache first, so that on a kernel that reads files in
// through a huge-page mapping as 2 MB folios (as here) the figure is not 0.
func TestHugeBytes(t *testing.T) {
	path := writeTemp(t, pattern(6<<20))
	if err := syncFile(path); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.DropCache(); err != nil {
		t.Fatal(err)
	}
	var sum byte
	for i := 0; i < m.Len(); i += 4096 {
		sum |= m.Bytes()[i]
	}
	if sum == 0 {
		t.Fatal("read zeros from a file of non-zero bytes")
	}
	got, err := m.HugeBytes()
	if err != nil {
		t.Fatal(err)
	}
	want := vmaFields(t, uintptr(unsafe.Pointer(&m.Bytes()[0])))["FilePmdMapped"]
	if got != want || got%(2<<20) != 0 || got > int64(m.Len()) {
		t.Errorf("HugeBytes %d, smaps FilePmdMapped %d, mapping %d bytes", got, want, m.Len())
	}
	if got == 0 {
		t.Logf("no 2 MB pages on this kernel or file system: only the 0 case was checked")
	}
	empty, err := Open(writeTemp(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := empty.HugeBytes(); n != 0 || err != nil {
		t.Errorf("empty mapping: %d, %v", n, err)
	}
}

// TestDropCache: a file written and synced is in the page cache; after DropCache on a mapping that
// has touched only its first page, mincore finds none of the rest resident beyond that page's folio
// (up to 2 MB), which this process maps and so stays.
func TestDropCache(t *testing.T) {
	const size = 16 << 20
	data := pattern(size)
	path := writeTemp(t, data)
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		t.Fatal(err)
	}
	if typ := uint32(fs.Type); typ == unix.TMPFS_MAGIC || typ == unix.RAMFS_MAGIC { // int32 on 386
		t.Skip("the temporary directory is in memory: its pages are the file and are never dropped")
	}
	if err := syncFile(path); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	resident := func() (first bool, rest int) {
		vec := make([]byte, (size+4095)/4096)
		b := m.Bytes()
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		for _, v := range vec[1:] {
			rest += int(v & 1)
		}
		return vec[0]&1 == 1, rest
	}
	if m.Bytes()[0] != 1 {
		t.Fatal("unexpected first byte")
	}
	if _, before := resident(); before < len(data)/4096/2 {
		t.Skipf("only %d of %d pages cached after writing: cannot tell a drop", before, len(data)/4096)
	}
	if err := m.DropCache(); err != nil {
		t.Fatal(err)
	}
	first, after := resident()
	if after > (2<<20)/4096 || !first {
		t.Errorf("after DropCache: first page resident %v, %d other pages resident of %d", first, after, len(data)/4096-1)
	}
	if m.Bytes()[size-1] != data[size-1] {
		t.Error("the mapping reads wrong bytes after the drop")
	}
}
