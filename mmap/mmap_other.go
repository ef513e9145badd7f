//go:build !unix

package mmap

import (
	"fmt"
	"os"
)

// Open reads the whole file at path into memory: this platform has no mmap
// support here, so the bytes are a private heap copy with the same API.
func Open(path string) (*Mapping, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("mmap: %s: not a regular file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if data == nil {
		data = []byte{}
	}
	return &Mapping{path: path, data: data, info: fi}, nil
}

func unmap([]byte) error { return nil }

func advise([]byte, Advice) error { return nil }

func hugeBytes([]byte) (int64, error) { return 0, nil }

func dropCache(string) error { return nil }

// OpenRegular opens path for reading when it is a regular file and refuses
// anything else.
func OpenRegular(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("mmap: %s: not a regular file", path)
	}
	return os.Open(path)
}
