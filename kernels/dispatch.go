package kernels

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// variant is one complete set of hot kernels. Every function handles any
// length (assembly does whole blocks, Go the tail). For the quantized
// kernels: q8(w, x) over len(w)/34 blocks, q4(w, x) over len(w)/18 blocks,
// and the x4 forms do one weight row against the four activations
// x[t*stride:] for t < 4.
type variant struct {
	name  string   // as Features reports it
	needs []string // CPU features it runs on
	dot   func(a, b []float32) float32
	axpy  func(a float32, x, y []float32)
	q8    func(w, x []byte) float32
	q4    func(w, x []byte) float32
	q8x4  func(w, x []byte, stride int, dst *[4]float32)
	q4x4  func(w, x []byte, stride int, dst *[4]float32)
	// The r4 forms do four weight rows against one activation (decode).
	q8r4 func(w0, w1, w2, w3, x []byte, dst *[4]float32)
	q4r4 func(w0, w1, w2, w3, x []byte, dst *[4]float32)
	// The r8 forms do the eight rows w[k*rb:] against one activation, dst[k].
	// The r8 and t84 forms may prefetch pf (the weights the caller reads next;
	// it may be w itself when nothing follows) while they compute.
	// aux[b*an] is the token's entry of block b (auxOf), for the kernels that
	// take it.
	q8r8 func(w []byte, rb int, x []byte, aux []xaux, an int, pf []byte, dst *[8]float32)
	q4r8 func(w []byte, rb int, x []byte, aux []xaux, an int, pf []byte, dst *[8]float32)
	// q4r8Aux says q4r8 reads aux (which MatMul then computes for decode too).
	q4r8Aux bool
	// The t44 forms do four rows w[k*rb:] against four activations
	// x[t*stride:], dst[4*k+t] (prefill).
	q8t44 func(w []byte, rb int, x []byte, stride int, dst *[16]float32)
	q4t44 func(w []byte, rb int, x []byte, stride int, dst *[16]float32)
	// The t84 and t88 forms do eight rows w[k*rb:] against four or eight
	// activations x[t*stride:], dst[8*t+k], with aux[b*an+t] the tokens'
	// block sums (auxOf); nil where the variant has none (t44 tiles serve).
	q8t84 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[32]float32)
	q4t84 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[32]float32)
	q8t88 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[64]float32)
	q4t88 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[64]float32)
	// kdot[t] is the dot of one weight row of type t (Q4_1 ... Q6_K) with
	// its activations in t's format (actOf), the bits of genericKDots[t];
	// withTiles fills in the generic ones a variant leaves nil.
	kdot [numWTypes]func(w, x []byte) float32
	// The t168 forms do sixteen rows against eight activations, dst[16*t+k],
	// as t88 does eight; nil where the variant has none.
	q8t168 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[128]float32)
	q4t168 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[128]float32)
	// The t1616 forms do sixteen rows against sixteen activations, dst[16*t+k].
	q8t1616 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[256]float32)
	q4t1616 func(w []byte, rb int, x []byte, stride int, aux []xaux, an int, pf []byte, dst *[256]float32)
	// quant quantizes activations to Q8_0 exactly as quant.QuantizeQ8_0.
	quant func(dst []byte, src []float32)
	// f16 and bf16 are dots of a row of halves w (2*len(x) bytes) with x,
	// bit for bit dot of the converted row; nil where the variant has none
	// (MatMul then converts the row first).
	f16  func(w []byte, x []float32) float32
	bf16 func(w []byte, x []float32) float32
	// dotHeads and axpyHeads are DotHeads and AxpyHeads (vec.go).
	dotHeads  func(dst, q, k []float32)
	axpyHeads func(w, v, out []float32)
	// dotHeadsRows and axpyHeadsRows are DotHeadsRows and AxpyHeadsRows
	// (vec.go), their arguments checked.
	dotHeadsRows  func(dst []float32, dstride int, q []float32, heads, kvHeads int, k []float32, kstride, n int)
	axpyHeadsRows func(w []float32, wstride, heads int, v []float32, vstride, n int, out []float32)
	// The F16 forms read keys or values stored as halves (DotHeadsRowsF16).
	dotHeadsRowsF16  func(dst []float32, dstride int, q []float32, heads, kvHeads int, k []byte, kstride, n int)
	axpyHeadsRowsF16 func(w []float32, wstride, heads int, v []byte, vstride, n int, out []float32)
	// Activations, as SiLU and GELU; expsum is Softmax's exponentiation.
	silu, gelu func(x []float32)
	// scale is Scale: x[i] *= s.
	scale  func(x []float32, s float32)
	expsum func(x []float32, m float32) float64
}

// tileOf makes a 4×4 tile kernel of a 4-token kernel.
func tileOf(four func(w, x []byte, stride int, dst *[4]float32)) func(w []byte, rb int, x []byte, stride int, dst *[16]float32) {
	return func(w []byte, rb int, x []byte, stride int, dst *[16]float32) {
		for k := range 4 {
			four(w[k*rb:(k+1)*rb], x, stride, (*[4]float32)(dst[4*k:]))
		}
	}
}

// dotHeadsLoop is DotHeads with one dot call per head.
func dotHeadsLoop(dot func(a, b []float32) float32, dst, q, k []float32) {
	n := len(k)
	for h := range dst {
		dst[h] = dot(q[h*n:(h+1)*n], k)
	}
}

// The per-key loops below are the Rows forms where no kernel takes the
// shape (and the keys a kernel leaves over): one dot or axpy call per key
// and head, which DotHeads and AxpyHeads equal bit for bit. They run on the
// decode path, so they do not allocate: the calls go through func values,
// which the compiler cannot see into, so a buffer passed to them would
// escape; the converted halves go to a pooled one instead.

// rowScratch holds the float buffers of the F16 loops (*[]float32).
var rowScratch = sync.Pool{New: func() any { return new([]float32) }}

// scratchFloats returns a pooled buffer of n floats and the handle to put back.
func scratchFloats(n int) ([]float32, *[]float32) {
	p := rowScratch.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	return (*p)[:n], p
}

// dotHeadsRowsLoop is DotHeadsRows from key j0 on.
func dotHeadsRowsLoop(dot func(a, b []float32) float32, dst []float32, dstride int, q []float32, heads, kvHeads int, k []float32, kstride, n, j0 int) {
	hd, group := len(q)/heads, heads/kvHeads
	for j := j0; j < n; j++ {
		for h := range heads {
			o := j*kstride + h/group*hd
			dst[h*dstride+j] = dot(q[h*hd:(h+1)*hd], k[o:o+hd])
		}
	}
}

// axpyHeadsRowsLoop is AxpyHeadsRows: per key in order, each head's output
// plus its weight times the value.
func axpyHeadsRowsLoop(axpy func(a float32, x, y []float32), w []float32, wstride, heads int, v []float32, vstride, n int, out []float32) {
	hd := len(out) / heads
	for j := range n {
		for h := range heads {
			axpy(w[h*wstride+j], v[j*vstride:j*vstride+hd], out[h*hd:(h+1)*hd])
		}
	}
}

// dotHeadsRowsF16Loop is DotHeadsRowsF16 from key j0 on, each key head
// converted once for its query heads.
func dotHeadsRowsF16Loop(dot func(a, b []float32) float32, dst []float32, dstride int, q []float32, heads, kvHeads int, k []byte, kstride, n, j0 int) {
	hd, group := len(q)/heads, heads/kvHeads
	key, p := scratchFloats(hd)
	defer rowScratch.Put(p)
	for j := j0; j < n; j++ {
		for kh := range kvHeads {
			o := j*kstride + kh*hd
			halfToFloat(key, k[2*o:2*(o+hd)])
			for h := kh * group; h < (kh+1)*group; h++ {
				dst[h*dstride+j] = dot(q[h*hd:(h+1)*hd], key)
			}
		}
	}
}

// axpyHeadsRowsF16Loop is AxpyHeadsRowsF16, each value converted once for
// all the heads.
func axpyHeadsRowsF16Loop(axpy func(a float32, x, y []float32), w []float32, wstride, heads int, v []byte, vstride, n int, out []float32) {
	hd := len(out) / heads
	val, p := scratchFloats(hd)
	defer rowScratch.Put(p)
	for j := range n {
		halfToFloat(val, v[2*j*vstride:2*(j*vstride+hd)])
		axpyHeadsRowsLoop(axpy, w[j:], wstride, heads, val, hd, 1, out)
	}
}

// axpyHeadsLoop is AxpyHeads with one axpy call per head.
func axpyHeadsLoop(axpy func(a float32, x, y []float32), w, v, out []float32) {
	n := len(v)
	for h, a := range w {
		axpy(a, v, out[h*n:(h+1)*n])
	}
}

// rows8Of makes an eight-row kernel of a four-row kernel.
func rows8Of(four func(w0, w1, w2, w3, x []byte, dst *[4]float32)) func(w []byte, rb int, x []byte, _ []xaux, _ int, _ []byte, dst *[8]float32) {
	return func(w []byte, rb int, x []byte, _ []xaux, _ int, _ []byte, dst *[8]float32) {
		four(w[:rb], w[rb:2*rb], w[2*rb:3*rb], w[3*rb:4*rb], x, (*[4]float32)(dst[:4]))
		four(w[4*rb:5*rb], w[5*rb:6*rb], w[6*rb:7*rb], w[7*rb:8*rb], x, (*[4]float32)(dst[4:]))
	}
}

// withTiles fills in the tile, eight-row and per-head kernels a variant does
// not have.
func withTiles(v *variant) *variant {
	if v.dotHeads == nil {
		dot := v.dot
		v.dotHeads = func(dst, q, k []float32) { dotHeadsLoop(dot, dst, q, k) }
	}
	if v.axpyHeads == nil {
		axpy := v.axpy
		v.axpyHeads = func(w, x, out []float32) { axpyHeadsLoop(axpy, w, x, out) }
	}
	dot, axpy := v.dot, v.axpy
	if v.dotHeadsRows == nil {
		v.dotHeadsRows = func(dst []float32, dstride int, q []float32, heads, kvHeads int, k []float32, kstride, n int) {
			dotHeadsRowsLoop(dot, dst, dstride, q, heads, kvHeads, k, kstride, n, 0)
		}
	}
	if v.axpyHeadsRows == nil {
		v.axpyHeadsRows = func(w []float32, wstride, heads int, v []float32, vstride, n int, out []float32) {
			axpyHeadsRowsLoop(axpy, w, wstride, heads, v, vstride, n, out)
		}
	}
	if v.dotHeadsRowsF16 == nil {
		v.dotHeadsRowsF16 = func(dst []float32, dstride int, q []float32, heads, kvHeads int, k []byte, kstride, n int) {
			dotHeadsRowsF16Loop(dot, dst, dstride, q, heads, kvHeads, k, kstride, n, 0)
		}
	}
	if v.axpyHeadsRowsF16 == nil {
		v.axpyHeadsRowsF16 = func(w []float32, wstride, heads int, v []byte, vstride, n int, out []float32) {
			axpyHeadsRowsF16Loop(axpy, w, wstride, heads, v, vstride, n, out)
		}
	}
	for t, f := range genericKDots {
		if v.kdot[t] == nil {
			v.kdot[t] = f
		}
	}
	if v.q8r8 == nil {
		v.q8r8 = rows8Of(v.q8r4)
	}
	if v.q4r8 == nil {
		v.q4r8 = rows8Of(v.q4r4)
	}
	if v.q8t44 == nil {
		v.q8t44 = tileOf(v.q8x4)
	}
	if v.q4t44 == nil {
		v.q4t44 = tileOf(v.q4x4)
	}
	return v
}

// rowsOf makes a four-row kernel of a one-row kernel.
func rowsOf(one func(w, x []byte) float32) func(w0, w1, w2, w3, x []byte, dst *[4]float32) {
	return func(w0, w1, w2, w3, x []byte, dst *[4]float32) {
		dst[0], dst[1], dst[2], dst[3] = one(w0, x), one(w1, x), one(w2, x), one(w3, x)
	}
}

var genericVariant = withTiles(&variant{
	name: "generic",
	dot:  dotGo, axpy: axpyGo,
	q8: dotQ8Go, q4: dotQ4Go,
	q8x4: dotQ8x4Go, q4x4: dotQ4x4Go,
	q8r4: rowsOf(dotQ8Go), q4r4: rowsOf(dotQ4Go),
	quant: quantizeQ8,
	f16:   f16DotGo, bf16: bf16DotGo,
	silu: siluGo, gelu: geluGo, expsum: expSumGo,
	scale: scaleGo,
})

// allFeatures names every feature any architecture's kernels use, so a
// configuration written for one machine is accepted on another.
var allFeatures = []string{"avx2", "fma", "avx512vnni", "neon", "dotprod"}

var (
	// cpuFeatures is what the CPU has and this build can use, in Available order.
	cpuFeatures = archFeatures()
	// envOff is what EDGELM_KERNELS turns off, for good.
	envOff = parseEnv(os.Getenv("EDGELM_KERNELS"))
	active atomic.Pointer[variant]
)

func init() {
	active.Store(choose(enabled(nil)))
}

func cur() *variant { return active.Load() }

// parseEnv reads EDGELM_KERNELS: "generic" turns every feature off, otherwise
// a comma (or +) separated list names the features to turn off. Unknown
// names are ignored: an environment variable cannot fail start-up.
func parseEnv(s string) map[string]bool {
	off := map[string]bool{}
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "generic" || s == "none" {
		for _, f := range allFeatures {
			off[f] = true
		}
		return off
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '+' || r == ' ' }) {
		off[f] = true
	}
	return off
}

// enabled is the CPU's features minus EDGELM_KERNELS, limited to allow when
// allow is not nil.
func enabled(allow map[string]bool) map[string]bool {
	on := map[string]bool{}
	for _, f := range cpuFeatures {
		if !envOff[f] && (allow == nil || allow[f]) {
			on[f] = true
		}
	}
	return on
}

// choose returns the first variant of archVariants whose needs are all on.
func choose(on map[string]bool) *variant {
	for _, v := range archVariants() {
		ok := true
		for _, f := range v.needs {
			ok = ok && on[f]
		}
		if ok {
			return v
		}
	}
	return genericVariant
}

// SetMaxFeatures limits the kernels to the CPU features named in s, a list
// separated by commas or '+' ("avx2,fma", "neon"); "generic" or "none"
// allows none, "" or "auto" all the CPU has. It can only turn features off:
// naming one the CPU lacks, or one EDGELM_KERNELS turned off, does not turn
// it on. Unknown names are an error and change nothing. It is safe to call
// while kernels run; calls already running finish with the old choice.
// Pools and Sets made with a choice of their own (Choose) keep it.
func SetMaxFeatures(s string) error {
	allow, err := parseAllow(s)
	if err != nil {
		return err
	}
	active.Store(choose(enabled(allow)))
	return nil
}

// Features returns which kernels run: "generic", "avx2+fma",
// "avx2+fma+avx512vnni", "neon" or "neon+dotprod".
func Features() string { return cur().name }

// Available returns the CPU features the kernels could use, comma
// separated ("avx2,fma,avx512vnni"), whether or not they are turned off;
// "" when there are none.
func Available() string { return strings.Join(cpuFeatures, ",") }

// variants returns every variant this CPU can run, generic first, for tests
// and benchmarks.
func variants() []*variant {
	vs := []*variant{genericVariant}
	on := enabled(nil)
	for _, f := range cpuFeatures {
		on[f] = true // tests run what the CPU has, whatever the environment says
	}
	for _, v := range archVariants() {
		ok := true
		for _, f := range v.needs {
			ok = ok && on[f]
		}
		if ok {
			vs = append(vs, v)
		}
	}
	return vs
}
