// NEON float instructions the Go assembler lacks, encoded by hand (A64
// encodings; register numbers as arguments). Shared by the arm64 kernels.

#define FADD_4S(d, n, m)  WORD $(0x4E20D400 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = Vn + Vm
#define FADDP_4S(d, n, m) WORD $(0x6E20D400 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = pairwise sums of Vn, then of Vm
#define FADDP_S(d, n)     WORD $(0x7E30D800 | (n)<<5 | (d))           // Sd = Vn.S[0] + Vn.S[1]
#define FMUL_4S(d, n, m)  WORD $(0x6E20DC00 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = Vn * Vm
#define FSUB_4S(d, n, m)  WORD $(0x4EA0D400 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = Vn - Vm
#define FDIV_4S(d, n, m)  WORD $(0x6E20FC00 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = Vn / Vm
#define FMAX_4S(d, n, m)  WORD $(0x4E20F400 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = max(Vn, Vm)
#define FMIN_4S(d, n, m)  WORD $(0x4EA0F400 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = min(Vn, Vm)
#define FCMGT_4S(d, n, m) WORD $(0x6EA0E400 | (m)<<16 | (n)<<5 | (d)) // Vd.4S = Vn > Vm ? all ones : 0
#define BIC_16B(d, n, m)  WORD $(0x4E601C00 | (m)<<16 | (n)<<5 | (d)) // Vd = Vn AND NOT Vm
#define FCVTAS_4S(d, n)   WORD $(0x4E21C800 | (n)<<5 | (d))           // Vd.4S = int32(round half away from zero(Vn))
#define SCVTF_4S(d, n)    WORD $(0x4E21D800 | (n)<<5 | (d))           // Vd.4S = float32(int32 Vn)
#define FADD_2D(d, n, m)  WORD $(0x4E60D400 | (m)<<16 | (n)<<5 | (d)) // Vd.2D = Vn + Vm
#define FADDP_D(d, n)     WORD $(0x7E70D800 | (n)<<5 | (d))           // Dd = Vn.D[0] + Vn.D[1]
#define FCVTL_2D(d, n)    WORD $(0x0E617800 | (n)<<5 | (d))           // Vd.2D = Vn.2S
#define FCVTL2_2D(d, n)   WORD $(0x4E617800 | (n)<<5 | (d))           // Vd.2D = Vn.4S[2:4]
#define FCVTL_4S(d, n)    WORD $(0x0E217800 | (n)<<5 | (d))           // Vd.4S = Vn.4H
#define FCVTL2_4S(d, n)   WORD $(0x4E217800 | (n)<<5 | (d))           // Vd.4S = Vn.8H[4:8]
#define SHLL_4S(d, n)     WORD $(0x2E613800 | (n)<<5 | (d))           // Vd.4S = Vn.4H << 16 (bfloat16 to float)
#define SHLL2_4S(d, n)    WORD $(0x6E613800 | (n)<<5 | (d))           // Vd.4S = Vn.8H[4:8] << 16
#define FCVTN_4H(d, n)    WORD $(0x0E216800 | (n)<<5 | (d))           // Vd.4H = Vn.4S, upper half zeroed
#define FCVTN2_8H(d, n)   WORD $(0x4E216800 | (n)<<5 | (d))           // Vd.8H[4:8] = Vn.4S

// SUM4S(a, b, c, d) leaves in Sa what dotNEON and sum4 make of the four
// accumulators Va..Vd: lanes (a+b)+(c+d), then (l0+l1)+(l2+l3).
#define SUM4S(a, b, c, d) \
	FADD_4S(a, a, b)  \
	FADD_4S(c, c, d)  \
	FADD_4S(a, a, c)  \
	FADDP_4S(a, a, a) \
	FADDP_S(a, a)
