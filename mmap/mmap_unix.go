//go:build unix

package mmap

import (
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// Open maps the whole file at path read-only and shared, so its pages live
// in the page cache (shared with other processes and never counted as this
// process's private memory). An empty file gives a valid empty mapping.
func Open(path string) (*Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	// The mapping stays valid after the descriptor is closed.
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("mmap: %s: not a regular file", path)
	}
	size := fi.Size()
	if size == 0 {
		return &Mapping{path: path, data: []byte{}}, nil
	}
	if size < 0 || uint64(size) > uint64(math.MaxInt) {
		return nil, fmt.Errorf("mmap: %s: size %d does not fit in memory", path, size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: map %s (%d bytes): %w", path, size, err)
	}
	adviseHuge(data)
	return &Mapping{path: path, data: data, mapped: true}, nil
}

func unmap(b []byte) error { return unix.Munmap(b) }

func advise(b []byte, a Advice) error {
	var adv int
	switch a {
	case Normal:
		adv = unix.MADV_NORMAL
	case Sequential:
		adv = unix.MADV_SEQUENTIAL
	case Random:
		adv = unix.MADV_RANDOM
	case WillNeed:
		adv = unix.MADV_WILLNEED
	}
	return unix.Madvise(b, adv)
}
