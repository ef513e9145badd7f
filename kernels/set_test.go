package kernels

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestChooseLeavesTheProcessAlone: Choose makes a choice for one pool without touching the
// process's, and a pool made with it computes what the process would under that cap.
func TestChooseLeavesTheProcessAlone(t *testing.T) {
	process := Features()
	if _, err := Choose("avx2,warp9"); err == nil || !strings.Contains(err.Error(), "warp9") {
		t.Fatalf("unknown feature: %v", err)
	}
	g, err := Choose("generic")
	if err != nil || g.Features() != "generic" {
		t.Fatalf("Choose(generic): %v, %q", err, g.Features())
	}
	if Features() != process {
		t.Fatalf("Choose changed the process's kernels from %q to %q", process, Features())
	}
	if (Set{}).Features() != process || (*Pool)(nil).Kernels().Features() != process {
		t.Fatalf("the zero Set or a nil pool does not follow the process's %q", process)
	}

	// A pool computes on its own set: count the activations a marked copy of the generic
	// variant quantizes.
	calls := 0
	marked := *genericVariant
	marked.quant = func(dst []byte, src []float32) { calls++; quantizeQ8(dst, src) }
	r := rand.New(rand.NewPCG(3, 4))
	const rows, cols, n = 40, 256, 5
	x := make([]float32, n*cols)
	randF32(r, x)
	m, _ := randMat(r, Q8_0, rows, cols)
	p := NewPoolWith(2, Set{&marked})
	defer p.Close()
	p.MatMul(make([]float32, n*rows), m, x, n)
	if calls != n {
		t.Fatalf("a pool made with its own kernels quantized %d of %d tokens with them", calls, n)
	}
}
