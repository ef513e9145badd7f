//go:build !(amd64 || arm64) || purego || !gc

package kernels

// prefetchL2 does nothing without assembly: Go has no prefetch.
func prefetchL2(b []byte) {}
