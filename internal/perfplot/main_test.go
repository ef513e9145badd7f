package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedData: the README's chart can be drawn from the committed data file.
func TestCommittedData(t *testing.T) {
	rows, err := read(filepath.Join("..", "..", "docs", "performance-summary.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.file+" "+r.test[:2]] = true
		if r.measured && (r.llama <= 0 || r.edgelm <= 0 || r.when == "" || r.commit == "-") {
			t.Errorf("%s %s: a figure without its run: %+v", r.file, r.test, r)
		}
	}
	for _, want := range []string{"Q4_0 pp", "Q4_0 tg", "Q8_0 pp", "Q8_0 tg", "Q4_K_M pp", "Q4_K_M tg"} {
		if !seen[want] {
			t.Errorf("no row for %s", want)
		}
	}
	out := filepath.Join(t.TempDir(), "p.png")
	if err := draw2(rows, out); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Size() < 1000 {
		t.Errorf("chart: %v", err)
	}
}
