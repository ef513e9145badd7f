package kvcache

import "unsafe"

// f32view reads little-endian float32 storage in place (rows are 4-byte aligned: they start at
// multiples of the row size in a Go allocation).
func f32view(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}
