//go:build unix && !linux

package mmap

// adviseHuge does nothing where there is no MADV_HUGEPAGE.
func adviseHuge([]byte) {}

// hugeBytes is 0 where the kernel does not say.
func hugeBytes([]byte) (int64, error) { return 0, nil }

// dropCache does nothing where there is no posix_fadvise to ask.
func dropCache(string) error { return nil }
