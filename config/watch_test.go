package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func startWatch(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan struct{}, 100)
	if err := Watch(ctx, path, func() { ch <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	return ch
}

// within waits up to d for one change, and fails if none comes. The daemon promises a reload
// within a second; the tests allow more because CI machines are shared and busy.
func within(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: no change seen within %v", what, d)
	}
}

// none checks that no change comes for d.
func none(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: unexpected change", what)
	case <-time.After(d):
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchInPlaceAndRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edgelm.toml")
	write(t, path, "threads = 1\n")
	ch := startWatch(t, path)

	write(t, path, "threads = 2\n") // same size: the content hash tells it apart
	within(t, ch, 3*time.Second, "edit in place")

	tmp := filepath.Join(dir, ".edgelm.toml.swp")
	write(t, tmp, "threads = 3\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	within(t, ch, 3*time.Second, "rename over")

	write(t, filepath.Join(dir, "other.toml"), "x")
	none(t, ch, 400*time.Millisecond, "another file in the directory")

	// A burst of writes is merged (one change when the machine keeps up; never one per write).
	for i := range 5 {
		write(t, path, "threads = "+string(rune('4'+i))+"\n")
	}
	within(t, ch, 3*time.Second, "burst")
	extra := 0
	for done := false; !done; {
		select {
		case <-ch:
			extra++
		case <-time.After(400 * time.Millisecond):
			done = true
		}
	}
	if extra > 0 {
		t.Logf("the burst gave %d changes", 1+extra)
	}
	if extra >= 4 {
		t.Errorf("a burst of 5 writes gave %d changes: not debounced", 1+extra)
	}

	// Removed, then back: the reappearance is the change.
	os.Remove(path)
	none(t, ch, 400*time.Millisecond, "removal")
	write(t, path, "threads = 9\n")
	within(t, ch, 3*time.Second, "recreated")
}

// A Kubernetes ConfigMap volume: edgelm.toml -> ..data/edgelm.toml, ..data -> ..v1; an update
// writes ..v2 and renames a new ..data symlink over the old one.
func TestWatchSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "edgelm.toml"), "# "+v+"\n")
	}
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink("..data/edgelm.toml", filepath.Join(dir, "edgelm.toml")))
	ch := startWatch(t, filepath.Join(dir, "edgelm.toml"))

	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	within(t, ch, 3*time.Second, "symlink swap")
	must(t, os.RemoveAll(filepath.Join(dir, "..v1")))
	none(t, ch, 400*time.Millisecond, "old version removed")

	// Editing the target in place (outside the watched directory's own entries) is seen too.
	write(t, filepath.Join(dir, "..v2", "edgelm.toml"), "# v2 edited\n")
	within(t, ch, 3*time.Second, "target edited")
}

func TestWatchStops(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	write(t, path, "a")
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{}, 10)
	if err := Watch(ctx, path, func() { ch <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(50 * time.Millisecond)
	write(t, path, "bb")
	none(t, ch, 400*time.Millisecond, "after cancel")

	if err := Watch(context.Background(), filepath.Join(dir, "no", "such", "c.toml"), func() {}); err == nil {
		t.Error("watching in a missing directory: want an error")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
