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
	v.q4r8, v.q4r8Aux = rows8AuxForm(q4b, q4Rows8VNNI), true
	v.q4t84 = tile84(q4b, q4Tile84VNNI)
	v.q4t88 = tile88(q4b, q4Tile88VNNI)
	v.q8t84 = tile84(q8b, q8Tile84VNNI)
	v.q8t88 = tile88(q8b, q8Tile88VNNI)
	v.q4t168 = tile168(q4b, q4Tile168VNNI)
	v.q8t168 = tile168(q8b, q8Tile168VNNI)
	v.q4t1616 = tile1616(q4b, q4Tile1616VNNI)
	v.q8t1616 = tile1616(q8b, q8Tile1616VNNI)
	return &v
}()

// tile84 and tile88 make the t84 and t88 forms of an 8-row tile kernel of this file or
// tile8_amd64.s, over blocks of bb weight bytes: the operands are bounds-checked here, before the
// assembly reads them, and a row shorter than a block gives zeros.
func tile84(bb int, k func(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)) func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[32]float32) {
	return func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[32]float32) {
		if nb := tileBlocks(bb, 4, w, rb, x, stride, aux, an); nb > 0 {
			k(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
		} else {
			*dst = [32]float32{}
		}
	}
}

func tile88(bb int, k func(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[64]float32)) func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[64]float32) {
	return func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[64]float32) {
		if nb := tileBlocks(bb, 8, w, rb, x, stride, aux, an); nb > 0 {
			k(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
		} else {
			*dst = [64]float32{}
		}
	}
}

func tile168(bb int, k func(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[128]float32)) func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[128]float32) {
	return func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[128]float32) {
		if nb := tileBlocks(bb, 8, w, rb, x, stride, aux, an); nb > 0 {
			_ = w[16*rb-1]
			k(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
		} else {
			*dst = [128]float32{}
		}
	}
}

func tile1616(bb int, k func(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[256]float32)) func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[256]float32) {
	return func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[256]float32) {
		if nb := tileBlocks(bb, 16, w, rb, x, stride, aux, an); nb > 0 {
			_ = w[16*rb-1]
			k(w, rb, x, stride, nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
		} else {
			*dst = [256]float32{}
		}
	}
}

// tileBlocks returns the blocks per row of eight rows of rb bytes (blocks of bb bytes) against
// tokens activations, after checking that w, x and aux hold all the tile reads; 0 for none.
func tileBlocks(bb, tokens int, w []byte, rb int, x []byte, stride int, aux []xaux, an int) int {
	nb := rb / bb
	if nb == 0 {
		return 0
	}
	_ = w[8*rb-1]
	_ = x[(tokens-1)*stride+nb*q8b-1]
	_ = aux[(nb-1)*an+tokens-1]
	return nb
}

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

// q4Rows8VNNI is q4Rows8AVX2 taking the token's block entries from aux:
// block b's at aux + b*astride bytes.
//
//go:noescape
func q4Rows8VNNI(w []byte, rb int, x []byte, nb int, aux *xaux, astride int, pf *byte, dst *[8]float32)

// rows8AuxForm is rows8Form for a kernel that takes the token's block
// entries (auxOf) besides its quants.
func rows8AuxForm(bb int, k func(w []byte, rb int, x []byte, nb int, aux *xaux, astride int, pf *byte, dst *[8]float32)) func(w []byte, rb int, x []byte, aux []xaux, an int, pf []byte, dst *[8]float32) {
	return func(w []byte, rb int, x []byte, aux []xaux, an int, pf []byte, dst *[8]float32) {
		nb := rb / bb
		if nb == 0 {
			*dst = [8]float32{}
			return
		}
		_ = w[8*rb-1]
		_ = aux[(nb-1)*an]
		k(w, rb, x[:nb*q8b], nb, &aux[0], 8*an, prefetchBase(pf, w), dst)
	}
}

// q4Tile168VNNI and q8Tile168VNNI compute dst[16*t+k] for the rows
// w[k*rb:], k < 16, against the tokens x[t*stride:], t < 8: nb blocks each,
// on 512-bit registers (tile16_amd64.s). Token t's entry of block b is at
// aux + b*astride + 8*t bytes.
//
//go:noescape
func q4Tile168VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[128]float32)

//go:noescape
func q8Tile168VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[128]float32)

// q4Tile1616VNNI and q8Tile1616VNNI are the 16×8 tiles for tokens t < 16:
// dst[16*t+k].
//
//go:noescape
func q4Tile1616VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[256]float32)

//go:noescape
func q8Tile1616VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[256]float32)

//go:noescape
func q8Tile84VNNI(w []byte, rb int, x []byte, stride, nb int, aux *xaux, astride int, pf *byte, dst *[32]float32)

//go:noescape
func q4Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)

//go:noescape
func q8Tile44VNNI(w []byte, rb int, x []byte, stride, nb int, tab *[1 << 16]float32, dst *[16]float32)
