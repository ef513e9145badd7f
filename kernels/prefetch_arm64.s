//go:build arm64 && !purego && gc

#include "textflag.h"

// func prefetchRange(p *byte, n int)
// PRFM PLDL2KEEP every 64-byte line of [p, p+n): a prefetch never faults.
TEXT ·prefetchRange(SB), NOSPLIT, $0-16
	MOVD p+0(FP), R0
	MOVD n+8(FP), R1
	ADD  R0, R1, R1

pfloop:
	CMP  R1, R0
	BHS  pfdone
	PRFM (R0), PLDL2KEEP
	ADD  $64, R0, R0
	B    pfloop

pfdone:
	RET
