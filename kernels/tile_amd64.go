//go:build amd64 && !purego && gc

package kernels

// vnniVariant is avx2Variant with the prefill tiles on AVX-512 VNNI.
var vnniVariant = func() *variant {
	v := *avx2Variant // already has its tiles; q4t44 is replaced below
	v.name = "avx2+fma+avx512vnni"
	v.needs = []string{"avx2", "fma", "avx512vnni"}
	v.q4t44 = func(w []byte, rb int, x []byte, stride int, dst *[16]float32) {
		nb := rb / q4b
		if nb == 0 {
			*dst = [16]float32{}
			return
		}
		_ = w[4*rb-1]
		_ = x[3*stride+nb*q8b-1]
		q4Tile44VNNI(w, rb, x, stride, nb, f16tab, dst)
	}
	v.q8t44 = func(w []byte, rb int, x []byte, stride int, dst *[16]float32) {
		nb := rb / q8b
		if nb == 0 {
			*dst = [16]float32{}
			return
		}
		_ = w[4*rb-1]
		_ = x[3*stride+nb*q8b-1]
		q8Tile44VNNI(w, rb, x, stride, nb, f16tab, dst)
	}
	v.q4r8 = func(w []byte, rb int, x, pf []byte, dst *[8]float32) {
		nb := rb / q4b
		if nb == 0 {
			*dst = [8]float32{}
			return
		}
		_ = w[8*rb-1]
		q4Rows8VNNI(w, rb, x[:nb*q8b], nb, prefetchBase(pf, w), dst)
	}
	v.q4t84 = func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[32]float32) {
		nb := rb / q4b
		if nb == 0 {
			*dst = [32]float32{}
			return
		}
		_ = w[8*rb-1]
		_ = x[3*stride+nb*q8b-1]
		_ = aux[(nb-1)*an+3]
		q4Tile84VNNI(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
	}
	v.q4t88 = func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[64]float32) {
		nb := rb / q4b
		if nb == 0 {
			*dst = [64]float32{}
			return
		}
		_ = w[8*rb-1]
		_ = x[7*stride+nb*q8b-1]
		_ = aux[(nb-1)*an+7]
		q4Tile88VNNI(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
	}
	v.q8t84 = func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[32]float32) {
		nb := rb / q8b
		if nb == 0 {
			*dst = [32]float32{}
			return
		}
		_ = w[8*rb-1]
		_ = x[3*stride+nb*q8b-1]
		_ = aux[(nb-1)*an+3]
		q8Tile84VNNI(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
	}
	v.q8t88 = func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[64]float32) {
		nb := rb / q8b
		if nb == 0 {
			*dst = [64]float32{}
			return
		}
		_ = w[8*rb-1]
		_ = x[7*stride+nb*q8b-1]
		_ = aux[(nb-1)*an+7]
		q8Tile88VNNI(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
	}
	return &v
}()

// q4Tile84VNNI, q8Tile84VNNI, q4Tile88VNNI and q8Tile88VNNI compute dst[8*t+k] for the rows
// w[k*rb:], k < 8, against the tokens x[t*stride:], t < 4 or 8: nb blocks each. Token t's entry
// of block b is at aux + b*astride + 8*t bytes.
//
//go:noescape
func q4Tile84VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)

//go:noescape
func q4Tile88VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[64]float32)

//go:noescape
func q8Tile88VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[64]float32)

//go:noescape
func q4Rows8VNNI(w []byte, rb int, x []byte, nb int, pf *byte, dst *[8]float32)

//go:noescape
func q8Tile84VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)

//go:noescape
func q4Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)

//go:noescape
func q8Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)
