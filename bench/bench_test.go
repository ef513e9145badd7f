package bench

import (
	"bytes"
	"math"
	"testing"
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
