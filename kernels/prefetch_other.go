//go:build !(amd64 || arm64) || purego || !gc

package kernels

// prefetchL2 does nothing without assembly: Go has no prefetch.
func prefetchL2(b []byte) {}

// PrefetchRows asks for the lines of n spans of size bytes in L2, the first at data[0:] and
// each next one stride bytes further, as far as data reaches; what lies beyond is skipped. A hint
// only: it changes no result, and does nothing without assembly.
func PrefetchRows(data []byte, size, stride, n int) {}
