//go:build unix && !linux

package mmap

// adviseHuge does nothing where there is no MADV_HUGEPAGE.
func adviseHuge([]byte) {}
