//go:build arm64 && !purego && gc

package kernels

import "github.com/klauspost/cpuid/v2"

func archFeatures() []string {
	var fs []string
	if cpuid.CPU.Supports(cpuid.ASIMD) {
		fs = append(fs, "neon")
	}
	if cpuid.CPU.Supports(cpuid.ASIMD, cpuid.ASIMDDP) {
		fs = append(fs, "dotprod")
	}
	return fs
}

func archVariants() []*variant { return nil }
