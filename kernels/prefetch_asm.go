//go:build (amd64 || arm64) && !purego && gc

package kernels

// prefetchL2 asks for the 64-byte lines of b in the core's L2 cache, and returns
// once the requests are issued (not served).
func prefetchL2(b []byte) {
	if len(b) > 0 {
		prefetchRange(&b[0], len(b))
	}
}

// prefetchRange is prefetchL2 of the n bytes at p.
//
//go:noescape
func prefetchRange(p *byte, n int)

// PrefetchRows asks for the lines of n spans of size bytes in L2, the first at data[0:] and
// each next one stride bytes further, as far as data reaches; what lies beyond is skipped. A hint
// only: it changes no result, and does nothing without assembly.
func PrefetchRows(data []byte, size, stride, n int) {
	if size <= 0 || stride < 0 {
		return
	}
	for i := range n {
		o := i * stride
		if o+size > len(data) {
			return
		}
		prefetchRange(&data[o], size)
	}
}
