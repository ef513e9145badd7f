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

// rowKernels are the Rows dot kernels of one key type taking four, two and
// one query heads to a key head; k4 takes a multiple of s4 keys, k2 and k1
// of s1. el, sd and sk are dotRowsBy's.
type rowKernels[K float32 | byte] struct {
	k4, k2, k1 rowKernel[K]
	s4, s1     int
	el, sd, sk int
}

// dot runs the widest of the kernels the group takes (a multiple of four
// query heads to a key head, of two, or any) over as many of the n keys as
// it takes, and returns how many that was: the rest is the caller's.
func (r *rowKernels[K]) dot(dst []float32, dstride int, q []float32, heads, kvHeads int, k []K, kstride, n int) int {
	kern, g, step := r.k1, 1, r.s1
	switch group := heads / kvHeads; {
	case group%4 == 0:
		kern, g, step = r.k4, 4, r.s4
	case group%2 == 0:
		kern, g = r.k2, 2
	}
	j := n / step * step
	if j > 0 {
		dotRowsBy(kern, g, dst, dstride, q, heads, kvHeads, k, r.el, kstride, j, r.sd, r.sk)
	}
	return j
}
