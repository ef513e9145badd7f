package bench

import (
	"bytes"
	"math"
	"testing"

	"edgelm/kernels"
)

func TestMeanStddev(t *testing.T) {
	for _, c := range []struct {
		x         []float64
		mean, std float64
	}{
		{nil, 0, 0},
		{[]float64{5}, 5, 0},
		{[]float64{1, 2, 3, 4}, 2.5, math.Sqrt(5.0 / 3)}, // sample (n-1) deviation, as llama-bench
		{[]float64{40, 40, 40}, 40, 0},
	} {
		m, s := meanStddev(c.x)
		if math.Abs(m-c.mean) > 1e-12 || math.Abs(s-c.std) > 1e-12 {
			t.Errorf("%v: %v ± %v, want %v ± %v", c.x, m, s, c.mean, c.std)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	info := Info{Model: "llama 1B Q4_0", Size: 621346816, Params: 1100048384, Backend: "CPU avx2", Threads: 2}
	if err := WriteTable(&b, info, []Result{{Test: "pp512", TPS: 205.123, Stddev: 3.456}, {Test: "tg128", TPS: 40, Stddev: 1.8}}); err != nil {
		t.Fatal(err)
	}
	want := "| model | size | params | backend | threads | test | t/s |\n" +
		"| --- | ---: | ---: | --- | ---: | ---: | ---: |\n" +
		"| llama 1B Q4_0 | 592.56 MiB | 1.10 B | CPU avx2 | 2 | pp512 | 205.12 ± 3.46 |\n" +
		"| llama 1B Q4_0 | 592.56 MiB | 1.10 B | CPU avx2 | 2 | tg128 | 40.00 ± 1.80 |\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestReadLines checks the read loop reads what it should: one word of every 16 bytes, and the
// tail's bytes, summed here independently byte by byte.
func TestReadLines(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 4096 + 17} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		var want uint64
		full := n &^ 63
		for i := 0; i < full; i += 16 {
			for k := 0; k < 8; k++ {
				want += uint64(b[i+k]) << (8 * k)
			}
		}
		for i := full; i < n; i++ {
			want += uint64(b[i])
		}
		if got := readLines(b); got != want {
			t.Errorf("n=%d: %d, want %d", n, got, want)
		}
	}
}

func TestReadRate(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	bufs := [][]byte{make([]byte, 3<<20+5), nil, make([]byte, 100)}
	if r := ReadRate(pool, bufs); !(r > 0) || math.IsInf(r, 0) {
		t.Errorf("rate %v GB/s", r)
	}
	if r := ReadRate(nil, bufs); !(r > 0) {
		t.Errorf("without a pool: rate %v GB/s", r)
	}
}
