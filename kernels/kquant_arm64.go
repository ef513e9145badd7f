//go:build arm64 && !purego && gc

package kernels

// kdotsNEON and kdotsSDOT are the arm64 variants' K-quant row dots
// (kquant_arm64.s), bit for bit dotQ4KGo and dotQ6KGo; the other types
// stay generic.
var (
	kdotsNEON = [numWTypes]func(w, x []byte) float32{
		Q4_K: kdotOf(q4KDotNEON, q4kb),
		Q6_K: kdotOf(q6KDotNEON, q6kb),
	}
	kdotsSDOT = [numWTypes]func(w, x []byte) float32{
		Q4_K: kdotOf(q4KDotSDOT, q4kb),
		Q6_K: kdotOf(q6KDotSDOT, q6kb),
	}
)

// kdotOf adapts a super-block kernel over blocks of bb weight bytes: x is
// cut to the blocks' activations here, so a short x panics in Go, not in
// the assembly.
func kdotOf(k func(w, x []byte, nb int, tab *[1 << 16]float32) float32, bb int) func(w, x []byte) float32 {
	return func(w, x []byte) float32 {
		nb := len(w) / bb
		return k(w, x[:nb*q8kb], nb, f16tab)
	}
}

//go:noescape
func q4KDotNEON(w, x []byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func q4KDotSDOT(w, x []byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func q6KDotNEON(w, x []byte, nb int, tab *[1 << 16]float32) float32

//go:noescape
func q6KDotSDOT(w, x []byte, nb int, tab *[1 << 16]float32) float32
