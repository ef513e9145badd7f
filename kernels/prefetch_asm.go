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
