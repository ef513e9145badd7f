//go:build !(amd64 || arm64) || purego || !gc

package kernels

// Without assembly there is only the generic variant.

func archFeatures() []string { return nil }

func archVariants() []*variant { return nil }
