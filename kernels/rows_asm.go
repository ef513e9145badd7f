//go:build (amd64 || arm64) && !purego && gc

package kernels

// rowKernel is the signature of the assembly Rows dot kernels: kvh key
// heads of a fixed number of query heads each, against n keys.
type rowKernel[K float32 | byte] func(dst *float32, dstride int, q *float32, hd int, k *K, kstride, n, kvh int)

// dotRowsBy runs a Rows dot kernel taking g query heads to a key head on
// every key head's query heads, g at a time (the group is a multiple of g),
// over the first n keys: one call for all key heads when the group is g, so
// each key row is read front to back, one per key head and g heads
// otherwise. el is the elements of k per key element (1 for floats, 2 bytes
// of a half); the kernel gets dstride·sd and kstride·sk (its units: the
// arm64 kernels take bytes).
func dotRowsBy[K float32 | byte](kern rowKernel[K], g int, dst []float32, dstride int, q []float32, heads, kvHeads int, k []K, el, kstride, n, sd, sk int) {
	hd, group := len(q)/heads, heads/kvHeads
	if group == g {
		kern(&dst[0], dstride*sd, &q[0], hd, &k[0], kstride*sk, n, kvHeads)
		return
	}
	for kh := range kvHeads {
		for h := kh * group; h < (kh+1)*group; h += g {
			kern(&dst[h*dstride], dstride*sd, &q[h*hd], hd, &k[el*kh*hd], kstride*sk, n, 1)
		}
	}
}
