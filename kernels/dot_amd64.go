//go:build amd64 && !purego && gc

package kernels

import "github.com/klauspost/cpuid/v2"

func archFeatures() []string {
	var fs []string
	if cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3) {
		fs = append(fs, "avx2", "fma")
	}
	// The VNNI kernels use EVEX-encoded 256-bit VPDPBUSD: AVX-512 VNNI and VL.
	if cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512VL, cpuid.AVX512BW, cpuid.AVX512VNNI) {
		fs = append(fs, "avx512vnni")
	}
	return fs
}

func archVariants() []*variant { return nil }
