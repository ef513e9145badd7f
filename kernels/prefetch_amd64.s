//go:build amd64 && !purego && gc

#include "textflag.h"

// func prefetchRange(p *byte, n int)
// PREFETCHT1 every 64-byte line of [p, p+n): a prefetch never faults.
TEXT ·prefetchRange(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	ADDQ SI, CX

pfloop:
	CMPQ       SI, CX
	JAE        pfdone
	PREFETCHT1 (SI)
	ADDQ       $64, SI
	JMP        pfloop

pfdone:
	RET
