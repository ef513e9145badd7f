package testshared

import (
	"path/filepath"
	"testing"
)

func TestDirFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("EDGELM_SHARED", dir)
	if got := Dir(t); got != dir {
		t.Fatalf("Dir = %q, want %q", got, dir)
	}
}

func TestDirDefaultIsNextToRepo(t *testing.T) {
	t.Setenv("EDGELM_SHARED", "")
	got := Dir(t) // skips when ../shared is absent
	if filepath.Base(got) != "shared" || !filepath.IsAbs(got) {
		t.Fatalf("Dir = %q", got)
	}
}
