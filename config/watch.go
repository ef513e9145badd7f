package config

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchDebounce is how long the directory must be quiet after an event before Watch looks at
// the file: editors and copies produce bursts (truncate, write, write, chmod, rename).
var WatchDebounce = 150 * time.Millisecond

// Watch calls onChange (from its own goroutine, never concurrently) each time the file at path
// changes, until ctx ends. It watches the directory rather than the file, so it sees a file
// edited in place, a new file renamed over it (how most editors save), and a symlink pointed
// elsewhere (how Kubernetes swaps a mounted ConfigMap); it also watches the directory of the
// symlink's target, so editing the target in place is seen. After a burst of events quiet for
// WatchDebounce it compares the file's identity (resolved path, device, inode, size, mtime, and the contents of files up to 1MiB)
// with the last one seen and calls onChange only if it differs and the file exists.
//
// Watch returns once the watch is in place, or an error if it cannot be set up; reloads on
// SIGHUP are the caller's business.
func Watch(ctx context.Context, path string, onChange func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("config: watch %s: %w", dir, err)
	}
	fw := &fileWatch{w: w, path: abs, dir: dir}
	fw.last = identify(abs)
	fw.followTarget()
	go fw.run(ctx, onChange)
	return nil
}

type fileWatch struct {
	w      *fsnotify.Watcher
	path   string
	dir    string
	target string // directory of the symlink target, watched as well when it differs from dir
	last   identity
}

func (fw *fileWatch) run(ctx context.Context, onChange func()) {
	defer fw.w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case _, ok := <-fw.w.Events:
			if !ok {
				return
			}
			timer.Reset(WatchDebounce)
		case _, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			// An overflowed event queue may have lost the event we care about: look anyway.
			timer.Reset(WatchDebounce)
		case <-timer.C:
			fw.followTarget()
			id := identify(fw.path)
			if id != fw.last {
				fw.last = id
				if id.exists {
					onChange()
				}
			}
		}
	}
}

// followTarget keeps a watch on the directory the path's symlink chain ends in.
func (fw *fileWatch) followTarget() {
	real, err := filepath.EvalSymlinks(fw.path)
	dir := ""
	if err == nil {
		dir = filepath.Dir(real)
	}
	if dir == fw.target {
		return
	}
	if fw.target != "" && fw.target != fw.dir {
		fw.w.Remove(fw.target) // may already be gone with its directory
	}
	fw.target = dir
	if dir != "" && dir != fw.dir {
		if err := fw.w.Add(dir); err != nil {
			fw.target = ""
		}
	}
}

// identity tells versions of a file apart without reading it.
type identity struct {
	exists   bool
	resolved string
	dev, ino uint64
	size     int64
	mtime    time.Time
	sum      uint64 // FNV-1a of the contents of small files; mtimes tick only every few ms
}

// hashLimit is the largest file whose contents identify hashes (configs, not models).
const hashLimit = 1 << 20

func identify(path string) identity {
	fi, err := os.Stat(path)
	if err != nil {
		return identity{}
	}
	id := identity{exists: true, size: fi.Size(), mtime: fi.ModTime()}
	id.resolved, _ = filepath.EvalSymlinks(path)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	if fi.Mode().IsRegular() && fi.Size() <= hashLimit {
		if data, err := os.ReadFile(path); err == nil {
			h := fnv.New64a()
			h.Write(data)
			id.sum = h.Sum64()
		}
	}
	return id
}

// WatchDir calls onChange (from its own goroutine, never concurrently) after each burst of
// changes to the entries of dir (created, removed, renamed, written), once the directory has
// been quiet for WatchDebounce, until ctx ends. The caller rescans the directory: the watch
// says only that something may have changed. Changes inside the targets of symlinks are not
// seen (a new symlink, or one replaced, is).
func WatchDir(ctx context.Context, dir string, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", dir, err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("config: watch %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer.Reset(WatchDebounce)
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				timer.Reset(WatchDebounce) // an overflow may have lost events: rescan anyway
			case <-timer.C:
				onChange()
			}
		}
	}()
	return nil
}
