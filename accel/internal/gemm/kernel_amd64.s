//go:build amd64 && !noasm

#include "textflag.h"

// Micro-kernels for Sgemm; kernel_amd64.go has their reference loops. Both
// take (kc int, a *float32, rs, ps int, b, c *float32, ldc int, alpha,
// beta float32). Element (r, p) of the mr×kc panel of op(A) is at
// a[r*rs + p*ps]: a packed panel has rs = 1, ps = mr; rows of a row-major A
// used in place have rs = lda, ps = 1. b is a packed kc×nr panel of op(B)
// (nr floats per p) and c the top-left of the mr×nr tile of C, rows ldc
// floats apart. The tile stays in vector registers for the whole K loop;
// then C = alpha·tile (beta == ±0, C not read) or alpha·tile + beta·C.

// ---------------------------------------------------------------------------
// AVX-512F: mr = 12, nr = 32. Z0–Z23 tile (row r in Z(2r), Z(2r+1)), Z24–Z25
// one row of B, Z26–Z29 broadcasts of A, Z30 alpha, Z31 beta. Rows 0–3 of A
// are addressed from AX, 4–7 from SI, 8–11 from R9, with R11 = rs and
// R12 = 3·rs in bytes.

// STEPavx512(bo): one p; bo is the byte offset of B[p] from BX. Advances the
// A row pointers by ps.
#define STEPavx512(bo) \
	VMOVUPS bo+0(BX), Z24                /* B[p][0:16] */ \
	VMOVUPS bo+64(BX), Z25               /* B[p][16:32] */ \
	VBROADCASTSS (AX), Z26               /* A[r=0][p] in all lanes */ \
	VFMADD231PS Z24, Z26, Z0             /* C[0][0:16] += A[0][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z26, Z1             /* C[0][16:32] += A[0][p]·B[p][16:32] */ \
	VBROADCASTSS (AX)(R11*1), Z27        /* A[r=1][p] in all lanes */ \
	VFMADD231PS Z24, Z27, Z2             /* C[1][0:16] += A[1][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z27, Z3             /* C[1][16:32] += A[1][p]·B[p][16:32] */ \
	VBROADCASTSS (AX)(R11*2), Z28        /* A[r=2][p] in all lanes */ \
	VFMADD231PS Z24, Z28, Z4             /* C[2][0:16] += A[2][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z28, Z5             /* C[2][16:32] += A[2][p]·B[p][16:32] */ \
	VBROADCASTSS (AX)(R12*1), Z29        /* A[r=3][p] in all lanes */ \
	VFMADD231PS Z24, Z29, Z6             /* C[3][0:16] += A[3][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z29, Z7             /* C[3][16:32] += A[3][p]·B[p][16:32] */ \
	VBROADCASTSS (SI), Z26               /* A[r=4][p] in all lanes */ \
	VFMADD231PS Z24, Z26, Z8             /* C[4][0:16] += A[4][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z26, Z9             /* C[4][16:32] += A[4][p]·B[p][16:32] */ \
	VBROADCASTSS (SI)(R11*1), Z27        /* A[r=5][p] in all lanes */ \
	VFMADD231PS Z24, Z27, Z10            /* C[5][0:16] += A[5][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z27, Z11            /* C[5][16:32] += A[5][p]·B[p][16:32] */ \
	VBROADCASTSS (SI)(R11*2), Z28        /* A[r=6][p] in all lanes */ \
	VFMADD231PS Z24, Z28, Z12            /* C[6][0:16] += A[6][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z28, Z13            /* C[6][16:32] += A[6][p]·B[p][16:32] */ \
	VBROADCASTSS (SI)(R12*1), Z29        /* A[r=7][p] in all lanes */ \
	VFMADD231PS Z24, Z29, Z14            /* C[7][0:16] += A[7][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z29, Z15            /* C[7][16:32] += A[7][p]·B[p][16:32] */ \
	VBROADCASTSS (R9), Z26               /* A[r=8][p] in all lanes */ \
	VFMADD231PS Z24, Z26, Z16            /* C[8][0:16] += A[8][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z26, Z17            /* C[8][16:32] += A[8][p]·B[p][16:32] */ \
	VBROADCASTSS (R9)(R11*1), Z27        /* A[r=9][p] in all lanes */ \
	VFMADD231PS Z24, Z27, Z18            /* C[9][0:16] += A[9][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z27, Z19            /* C[9][16:32] += A[9][p]·B[p][16:32] */ \
	VBROADCASTSS (R9)(R11*2), Z28        /* A[r=10][p] in all lanes */ \
	VFMADD231PS Z24, Z28, Z20            /* C[10][0:16] += A[10][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z28, Z21            /* C[10][16:32] += A[10][p]·B[p][16:32] */ \
	VBROADCASTSS (R9)(R12*1), Z29        /* A[r=11][p] in all lanes */ \
	VFMADD231PS Z24, Z29, Z22            /* C[11][0:16] += A[11][p]·B[p][0:16] */ \
	VFMADD231PS Z25, Z29, Z23            /* C[11][16:32] += A[11][p]·B[p][16:32] */ \
	ADDQ R13, AX                         /* rows 0–3 of A: next p */ \
	ADDQ R13, SI                         /* rows 4–7 of A: next p */ \
	ADDQ R13, R9                         /* rows 8–11 of A: next p */

// func kern12x32(kc int, a *float32, rs, ps int, b, c *float32, ldc int, alpha, beta float32)
TEXT ·kern12x32(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX                    // CX = kc
	MOVQ a+8(FP), AX                     // AX = &A[0][0]
	MOVQ rs+16(FP), R11                  // R11 = rs
	SHLQ $2, R11                         // in bytes
	MOVQ ps+24(FP), R13                  // R13 = ps
	SHLQ $2, R13                         // in bytes
	LEAQ (R11)(R11*2), R12               // R12 = 3·rs
	LEAQ (AX)(R11*4), SI                 // SI = &A[4][0]
	LEAQ (SI)(R11*4), R9                 // R9 = &A[8][0]
	MOVQ b+32(FP), BX                    // BX = packed B
	MOVQ c+40(FP), DI                    // DI = &C[0][0]
	MOVQ ldc+48(FP), DX                  // DX = ldc
	SHLQ $2, DX                          // in bytes
	MOVQ DI, R10                         // R10 walks the rows of C for the prefetches
	PREFETCHT0 (R10)                     // C row 0, first line
	PREFETCHT0 124(R10)                  // C row 0, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 1, first line
	PREFETCHT0 124(R10)                  // C row 1, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 2, first line
	PREFETCHT0 124(R10)                  // C row 2, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 3, first line
	PREFETCHT0 124(R10)                  // C row 3, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 4, first line
	PREFETCHT0 124(R10)                  // C row 4, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 5, first line
	PREFETCHT0 124(R10)                  // C row 5, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 6, first line
	PREFETCHT0 124(R10)                  // C row 6, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 7, first line
	PREFETCHT0 124(R10)                  // C row 7, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 8, first line
	PREFETCHT0 124(R10)                  // C row 8, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 9, first line
	PREFETCHT0 124(R10)                  // C row 9, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 10, first line
	PREFETCHT0 124(R10)                  // C row 10, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 11, first line
	PREFETCHT0 124(R10)                  // C row 11, last line
	VPXORD Z0, Z0, Z0                    // tile = 0
	VPXORD Z1, Z1, Z1                    // tile = 0
	VPXORD Z2, Z2, Z2                    // tile = 0
	VPXORD Z3, Z3, Z3                    // tile = 0
	VPXORD Z4, Z4, Z4                    // tile = 0
	VPXORD Z5, Z5, Z5                    // tile = 0
	VPXORD Z6, Z6, Z6                    // tile = 0
	VPXORD Z7, Z7, Z7                    // tile = 0
	VPXORD Z8, Z8, Z8                    // tile = 0
	VPXORD Z9, Z9, Z9                    // tile = 0
	VPXORD Z10, Z10, Z10                 // tile = 0
	VPXORD Z11, Z11, Z11                 // tile = 0
	VPXORD Z12, Z12, Z12                 // tile = 0
	VPXORD Z13, Z13, Z13                 // tile = 0
	VPXORD Z14, Z14, Z14                 // tile = 0
	VPXORD Z15, Z15, Z15                 // tile = 0
	VPXORD Z16, Z16, Z16                 // tile = 0
	VPXORD Z17, Z17, Z17                 // tile = 0
	VPXORD Z18, Z18, Z18                 // tile = 0
	VPXORD Z19, Z19, Z19                 // tile = 0
	VPXORD Z20, Z20, Z20                 // tile = 0
	VPXORD Z21, Z21, Z21                 // tile = 0
	VPXORD Z22, Z22, Z22                 // tile = 0
	VPXORD Z23, Z23, Z23                 // tile = 0
	MOVQ CX, R8                          // R8 = kc / 4, the unrolled iterations
	SHRQ $2, R8                          // (kc >> 2)
	ANDQ $3, CX                          // CX = kc % 4, the single steps
	TESTQ R8, R8                         // any unrolled iterations?
	JZ   avx512_tail4                    // no

avx512_loop4:
	STEPavx512(0)
	STEPavx512(128)
	STEPavx512(256)
	STEPavx512(384)
	ADDQ $512, BX                        // B += 4 p
	DECQ R8                              // one unrolled iteration done
	JNZ  avx512_loop4                    // more

avx512_tail4:
	TESTQ CX, CX                         // single steps left?
	JZ   avx512_scale                    // no

avx512_loop1:
	STEPavx512(0)
	ADDQ $128, BX                        // B += 1 p
	DECQ CX                              // one step done
	JNZ  avx512_loop1                    // more

avx512_scale:
	MOVL alpha+56(FP), R8                // R8 = bits of alpha
	CMPL R8, $0x3f800000                 // alpha == 1?
	JEQ  avx512_store                    // yes: no scaling
	VBROADCASTSS alpha+56(FP), Z30       // Z30 = alpha in all lanes
	VMULPS Z30, Z0, Z0                   // tile *= alpha
	VMULPS Z30, Z1, Z1                   // tile *= alpha
	VMULPS Z30, Z2, Z2                   // tile *= alpha
	VMULPS Z30, Z3, Z3                   // tile *= alpha
	VMULPS Z30, Z4, Z4                   // tile *= alpha
	VMULPS Z30, Z5, Z5                   // tile *= alpha
	VMULPS Z30, Z6, Z6                   // tile *= alpha
	VMULPS Z30, Z7, Z7                   // tile *= alpha
	VMULPS Z30, Z8, Z8                   // tile *= alpha
	VMULPS Z30, Z9, Z9                   // tile *= alpha
	VMULPS Z30, Z10, Z10                 // tile *= alpha
	VMULPS Z30, Z11, Z11                 // tile *= alpha
	VMULPS Z30, Z12, Z12                 // tile *= alpha
	VMULPS Z30, Z13, Z13                 // tile *= alpha
	VMULPS Z30, Z14, Z14                 // tile *= alpha
	VMULPS Z30, Z15, Z15                 // tile *= alpha
	VMULPS Z30, Z16, Z16                 // tile *= alpha
	VMULPS Z30, Z17, Z17                 // tile *= alpha
	VMULPS Z30, Z18, Z18                 // tile *= alpha
	VMULPS Z30, Z19, Z19                 // tile *= alpha
	VMULPS Z30, Z20, Z20                 // tile *= alpha
	VMULPS Z30, Z21, Z21                 // tile *= alpha
	VMULPS Z30, Z22, Z22                 // tile *= alpha
	VMULPS Z30, Z23, Z23                 // tile *= alpha

avx512_store:
	MOVL beta+60(FP), R8                 // R8 = bits of beta
	ANDL $0x7fffffff, R8                 // drop the sign
	JZ   avx512_nobeta                   // beta == ±0: C is not read
	VBROADCASTSS beta+60(FP), Z31        // Z31 = beta in all lanes
	VFMADD231PS 0(DI), Z31, Z0           // tile[0][0:16] += beta·C[0][0:16]
	VFMADD231PS 64(DI), Z31, Z1          // tile[0][16:32] += beta·C[0][16:32]
	VMOVUPS Z0, 0(DI)                    // C[0][0:16] = tile
	VMOVUPS Z1, 64(DI)                   // C[0][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z2           // tile[1][0:16] += beta·C[1][0:16]
	VFMADD231PS 64(DI), Z31, Z3          // tile[1][16:32] += beta·C[1][16:32]
	VMOVUPS Z2, 0(DI)                    // C[1][0:16] = tile
	VMOVUPS Z3, 64(DI)                   // C[1][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z4           // tile[2][0:16] += beta·C[2][0:16]
	VFMADD231PS 64(DI), Z31, Z5          // tile[2][16:32] += beta·C[2][16:32]
	VMOVUPS Z4, 0(DI)                    // C[2][0:16] = tile
	VMOVUPS Z5, 64(DI)                   // C[2][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z6           // tile[3][0:16] += beta·C[3][0:16]
	VFMADD231PS 64(DI), Z31, Z7          // tile[3][16:32] += beta·C[3][16:32]
	VMOVUPS Z6, 0(DI)                    // C[3][0:16] = tile
	VMOVUPS Z7, 64(DI)                   // C[3][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z8           // tile[4][0:16] += beta·C[4][0:16]
	VFMADD231PS 64(DI), Z31, Z9          // tile[4][16:32] += beta·C[4][16:32]
	VMOVUPS Z8, 0(DI)                    // C[4][0:16] = tile
	VMOVUPS Z9, 64(DI)                   // C[4][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z10          // tile[5][0:16] += beta·C[5][0:16]
	VFMADD231PS 64(DI), Z31, Z11         // tile[5][16:32] += beta·C[5][16:32]
	VMOVUPS Z10, 0(DI)                   // C[5][0:16] = tile
	VMOVUPS Z11, 64(DI)                  // C[5][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z12          // tile[6][0:16] += beta·C[6][0:16]
	VFMADD231PS 64(DI), Z31, Z13         // tile[6][16:32] += beta·C[6][16:32]
	VMOVUPS Z12, 0(DI)                   // C[6][0:16] = tile
	VMOVUPS Z13, 64(DI)                  // C[6][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z14          // tile[7][0:16] += beta·C[7][0:16]
	VFMADD231PS 64(DI), Z31, Z15         // tile[7][16:32] += beta·C[7][16:32]
	VMOVUPS Z14, 0(DI)                   // C[7][0:16] = tile
	VMOVUPS Z15, 64(DI)                  // C[7][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z16          // tile[8][0:16] += beta·C[8][0:16]
	VFMADD231PS 64(DI), Z31, Z17         // tile[8][16:32] += beta·C[8][16:32]
	VMOVUPS Z16, 0(DI)                   // C[8][0:16] = tile
	VMOVUPS Z17, 64(DI)                  // C[8][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z18          // tile[9][0:16] += beta·C[9][0:16]
	VFMADD231PS 64(DI), Z31, Z19         // tile[9][16:32] += beta·C[9][16:32]
	VMOVUPS Z18, 0(DI)                   // C[9][0:16] = tile
	VMOVUPS Z19, 64(DI)                  // C[9][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z20          // tile[10][0:16] += beta·C[10][0:16]
	VFMADD231PS 64(DI), Z31, Z21         // tile[10][16:32] += beta·C[10][16:32]
	VMOVUPS Z20, 0(DI)                   // C[10][0:16] = tile
	VMOVUPS Z21, 64(DI)                  // C[10][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Z31, Z22          // tile[11][0:16] += beta·C[11][0:16]
	VFMADD231PS 64(DI), Z31, Z23         // tile[11][16:32] += beta·C[11][16:32]
	VMOVUPS Z22, 0(DI)                   // C[11][0:16] = tile
	VMOVUPS Z23, 64(DI)                  // C[11][16:32] = tile
	VZEROUPPER                           // leave the upper halves clean
	RET

avx512_nobeta:
	VMOVUPS Z0, 0(DI)                    // C[0][0:16] = tile
	VMOVUPS Z1, 64(DI)                   // C[0][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z2, 0(DI)                    // C[1][0:16] = tile
	VMOVUPS Z3, 64(DI)                   // C[1][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z4, 0(DI)                    // C[2][0:16] = tile
	VMOVUPS Z5, 64(DI)                   // C[2][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z6, 0(DI)                    // C[3][0:16] = tile
	VMOVUPS Z7, 64(DI)                   // C[3][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z8, 0(DI)                    // C[4][0:16] = tile
	VMOVUPS Z9, 64(DI)                   // C[4][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z10, 0(DI)                   // C[5][0:16] = tile
	VMOVUPS Z11, 64(DI)                  // C[5][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z12, 0(DI)                   // C[6][0:16] = tile
	VMOVUPS Z13, 64(DI)                  // C[6][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z14, 0(DI)                   // C[7][0:16] = tile
	VMOVUPS Z15, 64(DI)                  // C[7][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z16, 0(DI)                   // C[8][0:16] = tile
	VMOVUPS Z17, 64(DI)                  // C[8][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z18, 0(DI)                   // C[9][0:16] = tile
	VMOVUPS Z19, 64(DI)                  // C[9][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z20, 0(DI)                   // C[10][0:16] = tile
	VMOVUPS Z21, 64(DI)                  // C[10][16:32] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Z22, 0(DI)                   // C[11][0:16] = tile
	VMOVUPS Z23, 64(DI)                  // C[11][16:32] = tile
	VZEROUPPER                           // leave the upper halves clean
	RET

// ---------------------------------------------------------------------------
// AVX2 + FMA: mr = 6, nr = 16. Y0–Y11 tile (row r in Y(2r), Y(2r+1)),
// Y12–Y13 one row of B, Y14–Y15 broadcasts of A (then alpha and beta).
// Rows 0–2 of A are addressed from AX, 3–5 from SI, with R11 = rs in bytes.

// STEPavx2(bo): one p; bo is the byte offset of B[p] from BX. Advances the
// A row pointers by ps.
#define STEPavx2(bo) \
	VMOVUPS bo+0(BX), Y12                /* B[p][0:8] */ \
	VMOVUPS bo+32(BX), Y13               /* B[p][8:16] */ \
	VBROADCASTSS (AX), Y14               /* A[r=0][p] in all lanes */ \
	VFMADD231PS Y12, Y14, Y0             /* C[0][0:8] += A[0][p]·B[p][0:8] */ \
	VFMADD231PS Y13, Y14, Y1             /* C[0][8:16] += A[0][p]·B[p][8:16] */ \
	VBROADCASTSS (AX)(R11*1), Y15        /* A[r=1][p] in all lanes */ \
	VFMADD231PS Y12, Y15, Y2             /* C[1][0:8] += A[1][p]·B[p][0:8] */ \
	VFMADD231PS Y13, Y15, Y3             /* C[1][8:16] += A[1][p]·B[p][8:16] */ \
	VBROADCASTSS (AX)(R11*2), Y14        /* A[r=2][p] in all lanes */ \
	VFMADD231PS Y12, Y14, Y4             /* C[2][0:8] += A[2][p]·B[p][0:8] */ \
	VFMADD231PS Y13, Y14, Y5             /* C[2][8:16] += A[2][p]·B[p][8:16] */ \
	VBROADCASTSS (SI), Y15               /* A[r=3][p] in all lanes */ \
	VFMADD231PS Y12, Y15, Y6             /* C[3][0:8] += A[3][p]·B[p][0:8] */ \
	VFMADD231PS Y13, Y15, Y7             /* C[3][8:16] += A[3][p]·B[p][8:16] */ \
	VBROADCASTSS (SI)(R11*1), Y14        /* A[r=4][p] in all lanes */ \
	VFMADD231PS Y12, Y14, Y8             /* C[4][0:8] += A[4][p]·B[p][0:8] */ \
	VFMADD231PS Y13, Y14, Y9             /* C[4][8:16] += A[4][p]·B[p][8:16] */ \
	VBROADCASTSS (SI)(R11*2), Y15        /* A[r=5][p] in all lanes */ \
	VFMADD231PS Y12, Y15, Y10            /* C[5][0:8] += A[5][p]·B[p][0:8] */ \
	VFMADD231PS Y13, Y15, Y11            /* C[5][8:16] += A[5][p]·B[p][8:16] */ \
	ADDQ R13, AX                         /* rows 0–2 of A: next p */ \
	ADDQ R13, SI                         /* rows 3–5 of A: next p */

// func kern6x16(kc int, a *float32, rs, ps int, b, c *float32, ldc int, alpha, beta float32)
TEXT ·kern6x16(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX                    // CX = kc
	MOVQ a+8(FP), AX                     // AX = &A[0][0]
	MOVQ rs+16(FP), R11                  // R11 = rs
	SHLQ $2, R11                         // in bytes
	MOVQ ps+24(FP), R13                  // R13 = ps
	SHLQ $2, R13                         // in bytes
	LEAQ (R11)(R11*2), R12               // R12 = 3·rs
	LEAQ (AX)(R12*1), SI                 // SI = &A[3][0]
	MOVQ b+32(FP), BX                    // BX = packed B
	MOVQ c+40(FP), DI                    // DI = &C[0][0]
	MOVQ ldc+48(FP), DX                  // DX = ldc
	SHLQ $2, DX                          // in bytes
	MOVQ DI, R10                         // R10 walks the rows of C for the prefetches
	PREFETCHT0 (R10)                     // C row 0, first line
	PREFETCHT0 60(R10)                   // C row 0, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 1, first line
	PREFETCHT0 60(R10)                   // C row 1, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 2, first line
	PREFETCHT0 60(R10)                   // C row 2, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 3, first line
	PREFETCHT0 60(R10)                   // C row 3, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 4, first line
	PREFETCHT0 60(R10)                   // C row 4, last line
	ADDQ DX, R10                         // next row
	PREFETCHT0 (R10)                     // C row 5, first line
	PREFETCHT0 60(R10)                   // C row 5, last line
	VXORPS Y0, Y0, Y0                    // tile = 0
	VXORPS Y1, Y1, Y1                    // tile = 0
	VXORPS Y2, Y2, Y2                    // tile = 0
	VXORPS Y3, Y3, Y3                    // tile = 0
	VXORPS Y4, Y4, Y4                    // tile = 0
	VXORPS Y5, Y5, Y5                    // tile = 0
	VXORPS Y6, Y6, Y6                    // tile = 0
	VXORPS Y7, Y7, Y7                    // tile = 0
	VXORPS Y8, Y8, Y8                    // tile = 0
	VXORPS Y9, Y9, Y9                    // tile = 0
	VXORPS Y10, Y10, Y10                 // tile = 0
	VXORPS Y11, Y11, Y11                 // tile = 0
	MOVQ CX, R8                          // R8 = kc / 4, the unrolled iterations
	SHRQ $2, R8                          // (kc >> 2)
	ANDQ $3, CX                          // CX = kc % 4, the single steps
	TESTQ R8, R8                         // any unrolled iterations?
	JZ   avx2_tail4                      // no

avx2_loop4:
	STEPavx2(0)
	STEPavx2(64)
	STEPavx2(128)
	STEPavx2(192)
	ADDQ $256, BX                        // B += 4 p
	DECQ R8                              // one unrolled iteration done
	JNZ  avx2_loop4                      // more

avx2_tail4:
	TESTQ CX, CX                         // single steps left?
	JZ   avx2_scale                      // no

avx2_loop1:
	STEPavx2(0)
	ADDQ $64, BX                         // B += 1 p
	DECQ CX                              // one step done
	JNZ  avx2_loop1                      // more

avx2_scale:
	MOVL alpha+56(FP), R8                // R8 = bits of alpha
	CMPL R8, $0x3f800000                 // alpha == 1?
	JEQ  avx2_store                      // yes: no scaling
	VBROADCASTSS alpha+56(FP), Y14       // Y14 = alpha in all lanes
	VMULPS Y14, Y0, Y0                   // tile *= alpha
	VMULPS Y14, Y1, Y1                   // tile *= alpha
	VMULPS Y14, Y2, Y2                   // tile *= alpha
	VMULPS Y14, Y3, Y3                   // tile *= alpha
	VMULPS Y14, Y4, Y4                   // tile *= alpha
	VMULPS Y14, Y5, Y5                   // tile *= alpha
	VMULPS Y14, Y6, Y6                   // tile *= alpha
	VMULPS Y14, Y7, Y7                   // tile *= alpha
	VMULPS Y14, Y8, Y8                   // tile *= alpha
	VMULPS Y14, Y9, Y9                   // tile *= alpha
	VMULPS Y14, Y10, Y10                 // tile *= alpha
	VMULPS Y14, Y11, Y11                 // tile *= alpha

avx2_store:
	MOVL beta+60(FP), R8                 // R8 = bits of beta
	ANDL $0x7fffffff, R8                 // drop the sign
	JZ   avx2_nobeta                     // beta == ±0: C is not read
	VBROADCASTSS beta+60(FP), Y15        // Y15 = beta in all lanes
	VFMADD231PS 0(DI), Y15, Y0           // tile[0][0:8] += beta·C[0][0:8]
	VFMADD231PS 32(DI), Y15, Y1          // tile[0][8:16] += beta·C[0][8:16]
	VMOVUPS Y0, 0(DI)                    // C[0][0:8] = tile
	VMOVUPS Y1, 32(DI)                   // C[0][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Y15, Y2           // tile[1][0:8] += beta·C[1][0:8]
	VFMADD231PS 32(DI), Y15, Y3          // tile[1][8:16] += beta·C[1][8:16]
	VMOVUPS Y2, 0(DI)                    // C[1][0:8] = tile
	VMOVUPS Y3, 32(DI)                   // C[1][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Y15, Y4           // tile[2][0:8] += beta·C[2][0:8]
	VFMADD231PS 32(DI), Y15, Y5          // tile[2][8:16] += beta·C[2][8:16]
	VMOVUPS Y4, 0(DI)                    // C[2][0:8] = tile
	VMOVUPS Y5, 32(DI)                   // C[2][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Y15, Y6           // tile[3][0:8] += beta·C[3][0:8]
	VFMADD231PS 32(DI), Y15, Y7          // tile[3][8:16] += beta·C[3][8:16]
	VMOVUPS Y6, 0(DI)                    // C[3][0:8] = tile
	VMOVUPS Y7, 32(DI)                   // C[3][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Y15, Y8           // tile[4][0:8] += beta·C[4][0:8]
	VFMADD231PS 32(DI), Y15, Y9          // tile[4][8:16] += beta·C[4][8:16]
	VMOVUPS Y8, 0(DI)                    // C[4][0:8] = tile
	VMOVUPS Y9, 32(DI)                   // C[4][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VFMADD231PS 0(DI), Y15, Y10          // tile[5][0:8] += beta·C[5][0:8]
	VFMADD231PS 32(DI), Y15, Y11         // tile[5][8:16] += beta·C[5][8:16]
	VMOVUPS Y10, 0(DI)                   // C[5][0:8] = tile
	VMOVUPS Y11, 32(DI)                  // C[5][8:16] = tile
	VZEROUPPER                           // leave the upper halves clean
	RET

avx2_nobeta:
	VMOVUPS Y0, 0(DI)                    // C[0][0:8] = tile
	VMOVUPS Y1, 32(DI)                   // C[0][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Y2, 0(DI)                    // C[1][0:8] = tile
	VMOVUPS Y3, 32(DI)                   // C[1][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Y4, 0(DI)                    // C[2][0:8] = tile
	VMOVUPS Y5, 32(DI)                   // C[2][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Y6, 0(DI)                    // C[3][0:8] = tile
	VMOVUPS Y7, 32(DI)                   // C[3][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Y8, 0(DI)                    // C[4][0:8] = tile
	VMOVUPS Y9, 32(DI)                   // C[4][8:16] = tile
	ADDQ DX, DI                          // next row of C
	VMOVUPS Y10, 0(DI)                   // C[5][0:8] = tile
	VMOVUPS Y11, 32(DI)                  // C[5][8:16] = tile
	VZEROUPPER                           // leave the upper halves clean
	RET

// ---------------------------------------------------------------------------
// Packing helpers (AVX; used with the AVX-512 kernel's mr = 12, nr = 32).

// func copy12(dst, src *float32, n, stride int)
// Chunk q of 12 floats goes from src[12q:] to dst[q*stride:].
TEXT ·copy12(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI                   // DI = dst
	MOVQ src+8(FP), SI                   // SI = src
	MOVQ n+16(FP), CX                    // CX = chunks left
	MOVQ stride+24(FP), DX               // DX = stride
	SHLQ $2, DX                          // in bytes
	TESTQ CX, CX                         // no chunks?
	JZ   copy12_done                     // then nothing to do

copy12_loop:
	VMOVUPS (SI), Y0                     // floats 0–7 of the chunk
	VMOVUPS 32(SI), X1                   // floats 8–11
	VMOVUPS Y0, (DI)                     // store 0–7
	VMOVUPS X1, 32(DI)                   // store 8–11
	ADDQ $48, SI                         // next source chunk
	ADDQ DX, DI                          // next destination chunk
	DECQ CX                              // one chunk done
	JNZ  copy12_loop                     // more

copy12_done:
	VZEROUPPER                           // leave the upper halves clean
	RET

// func copy32(dst, src *float32, n, stride int)
// Row p of 32 floats goes from src[p*stride:] to dst[32p:].
TEXT ·copy32(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI                   // DI = dst
	MOVQ src+8(FP), SI                   // SI = src
	MOVQ n+16(FP), CX                    // CX = rows left
	MOVQ stride+24(FP), DX               // DX = stride
	SHLQ $2, DX                          // in bytes
	TESTQ CX, CX                         // no rows?
	JZ   copy32_done                     // then nothing to do

copy32_loop:
	VMOVUPS (SI), Y0                     // floats 0–7 of the row
	VMOVUPS 32(SI), Y1                   // floats 8–15
	VMOVUPS 64(SI), Y2                   // floats 16–23
	VMOVUPS 96(SI), Y3                   // floats 24–31
	VMOVUPS Y0, (DI)                     // store 0–7
	VMOVUPS Y1, 32(DI)                   // store 8–15
	VMOVUPS Y2, 64(DI)                   // store 16–23
	VMOVUPS Y3, 96(DI)                   // store 24–31
	ADDQ DX, SI                          // next source row
	ADDQ $128, DI                        // next destination row
	DECQ CX                              // one row done
	JNZ  copy32_loop                     // more

copy32_done:
	VZEROUPPER                           // leave the upper halves clean
	RET
