//go:build !(amd64 || arm64) || purego || !gc

package kernels

// Without assembly the conversions are the Go loops.

func halfToFloat(dst []float32, src []byte) { halfToFloatGo(dst, src) }

func floatToHalf(dst []byte, src []float32) { floatToHalfGo(dst, src) }
