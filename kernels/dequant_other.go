//go:build !amd64 || purego || !gc

package kernels

func dequantQ8(dst []float32, src []byte) { dequantQ8Go(dst, src) }

func dequantQ4(dst []float32, src []byte) { dequantQ4Go(dst, src) }
