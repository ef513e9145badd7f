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
// Anything but a regular file (a FIFO, a device, a directory) is refused
// without waiting for it.
func Open(path string) (*Mapping, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	// The mapping stays valid after the descriptor is closed.
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return &Mapping{path: path, data: []byte{}, info: fi}, nil
	}
	if size < 0 || uint64(size) > uint64(math.MaxInt) {
		return nil, fmt.Errorf("mmap: %s: size %d does not fit in memory", path, size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: map %s (%d bytes): %w", path, size, err)
	}
	adviseHuge(data)
	return &Mapping{path: path, data: data, mapped: true, info: fi}, nil
}

// OpenRegular opens path for reading when it is a regular file and refuses
// anything else with an error naming what it is. A plain open of a FIFO
// blocks until a writer appears (forever, for a model path pointing at one),
// so the file is opened non-blocking and checked with fstat before any read.
func OpenRegular(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mmap: open %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap: stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap: %s is %s, not a regular file", path, fileKind(st.Mode))
	}
	// Regular files ignore O_NONBLOCK, but clear it so later reads behave as usual.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap: %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("of type %#o", mode&unix.S_IFMT)
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
