// Package testshared finds the project's shared test data (models, golden
// outputs, vocabularies), which lives outside the repository at ../shared.
package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the absolute path of the shared data directory: $EDGELM_SHARED
// if set, else ../shared relative to the repository root (found by walking up
// from the working directory to go.mod). If it does not exist the test is
// skipped with a message naming it, or fails when EDGELM_REQUIRE_SHARED=1 so
// CI never passes by skipping.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EDGELM_SHARED")
	if dir == "" {
		if root := repoRoot(); root != "" {
			dir = filepath.Join(root, "..", "shared")
		} else {
			dir = filepath.Join("..", "shared")
		}
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		dir = abs
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if os.Getenv("EDGELM_REQUIRE_SHARED") == "1" {
			t.Fatalf("shared test data %s not found and EDGELM_REQUIRE_SHARED=1", dir)
		}
		t.Skipf("shared test data %s not found (set EDGELM_SHARED); skipping", dir)
	}
	return dir
}

// Path returns Dir(t) joined with elem, skipping (or failing, as Dir) if that
// file does not exist.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("EDGELM_REQUIRE_SHARED") == "1" {
			t.Fatalf("shared test file %s: %v", p, err)
		}
		t.Skipf("shared test file %s not found; skipping", p)
	}
	return p
}

func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
