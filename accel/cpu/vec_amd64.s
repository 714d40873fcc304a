//go:build amd64 && !noasm

#include "textflag.h"

// Constants, each broadcast to 8 lanes (32 bytes) so that it can be a
// memory operand of a 256-bit instruction.

// log2(e)
DATA log2e<>+0(SB)/4, $0x3fb8aa3b
DATA log2e<>+4(SB)/4, $0x3fb8aa3b
DATA log2e<>+8(SB)/4, $0x3fb8aa3b
DATA log2e<>+12(SB)/4, $0x3fb8aa3b
DATA log2e<>+16(SB)/4, $0x3fb8aa3b
DATA log2e<>+20(SB)/4, $0x3fb8aa3b
DATA log2e<>+24(SB)/4, $0x3fb8aa3b
DATA log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL log2e<>(SB), RODATA|NOPTR, $32

// ln2, high part (Cody–Waite)
DATA ln2hi<>+0(SB)/4, $0x3f318000
DATA ln2hi<>+4(SB)/4, $0x3f318000
DATA ln2hi<>+8(SB)/4, $0x3f318000
DATA ln2hi<>+12(SB)/4, $0x3f318000
DATA ln2hi<>+16(SB)/4, $0x3f318000
DATA ln2hi<>+20(SB)/4, $0x3f318000
DATA ln2hi<>+24(SB)/4, $0x3f318000
DATA ln2hi<>+28(SB)/4, $0x3f318000
GLOBL ln2hi<>(SB), RODATA|NOPTR, $32

// ln2, low part
DATA ln2lo<>+0(SB)/4, $0xb95e8083
DATA ln2lo<>+4(SB)/4, $0xb95e8083
DATA ln2lo<>+8(SB)/4, $0xb95e8083
DATA ln2lo<>+12(SB)/4, $0xb95e8083
DATA ln2lo<>+16(SB)/4, $0xb95e8083
DATA ln2lo<>+20(SB)/4, $0xb95e8083
DATA ln2lo<>+24(SB)/4, $0xb95e8083
DATA ln2lo<>+28(SB)/4, $0xb95e8083
GLOBL ln2lo<>(SB), RODATA|NOPTR, $32

// 88.3: the largest argument (2^k stays finite)
DATA clampHi<>+0(SB)/4, $0x42b0999a
DATA clampHi<>+4(SB)/4, $0x42b0999a
DATA clampHi<>+8(SB)/4, $0x42b0999a
DATA clampHi<>+12(SB)/4, $0x42b0999a
DATA clampHi<>+16(SB)/4, $0x42b0999a
DATA clampHi<>+20(SB)/4, $0x42b0999a
DATA clampHi<>+24(SB)/4, $0x42b0999a
DATA clampHi<>+28(SB)/4, $0x42b0999a
GLOBL clampHi<>(SB), RODATA|NOPTR, $32

// -87.33654: below it e^x leaves the normal range and is 0
DATA cutLo<>+0(SB)/4, $0xc2aeac4f
DATA cutLo<>+4(SB)/4, $0xc2aeac4f
DATA cutLo<>+8(SB)/4, $0xc2aeac4f
DATA cutLo<>+12(SB)/4, $0xc2aeac4f
DATA cutLo<>+16(SB)/4, $0xc2aeac4f
DATA cutLo<>+20(SB)/4, $0xc2aeac4f
DATA cutLo<>+24(SB)/4, $0xc2aeac4f
DATA cutLo<>+28(SB)/4, $0xc2aeac4f
GLOBL cutLo<>(SB), RODATA|NOPTR, $32

// Cephes expf polynomial p0
DATA p0<>+0(SB)/4, $0x39506967
DATA p0<>+4(SB)/4, $0x39506967
DATA p0<>+8(SB)/4, $0x39506967
DATA p0<>+12(SB)/4, $0x39506967
DATA p0<>+16(SB)/4, $0x39506967
DATA p0<>+20(SB)/4, $0x39506967
DATA p0<>+24(SB)/4, $0x39506967
DATA p0<>+28(SB)/4, $0x39506967
GLOBL p0<>(SB), RODATA|NOPTR, $32

// p1
DATA p1<>+0(SB)/4, $0x3ab743ce
DATA p1<>+4(SB)/4, $0x3ab743ce
DATA p1<>+8(SB)/4, $0x3ab743ce
DATA p1<>+12(SB)/4, $0x3ab743ce
DATA p1<>+16(SB)/4, $0x3ab743ce
DATA p1<>+20(SB)/4, $0x3ab743ce
DATA p1<>+24(SB)/4, $0x3ab743ce
DATA p1<>+28(SB)/4, $0x3ab743ce
GLOBL p1<>(SB), RODATA|NOPTR, $32

// p2
DATA p2<>+0(SB)/4, $0x3c088908
DATA p2<>+4(SB)/4, $0x3c088908
DATA p2<>+8(SB)/4, $0x3c088908
DATA p2<>+12(SB)/4, $0x3c088908
DATA p2<>+16(SB)/4, $0x3c088908
DATA p2<>+20(SB)/4, $0x3c088908
DATA p2<>+24(SB)/4, $0x3c088908
DATA p2<>+28(SB)/4, $0x3c088908
GLOBL p2<>(SB), RODATA|NOPTR, $32

// p3
DATA p3<>+0(SB)/4, $0x3d2aa9c1
DATA p3<>+4(SB)/4, $0x3d2aa9c1
DATA p3<>+8(SB)/4, $0x3d2aa9c1
DATA p3<>+12(SB)/4, $0x3d2aa9c1
DATA p3<>+16(SB)/4, $0x3d2aa9c1
DATA p3<>+20(SB)/4, $0x3d2aa9c1
DATA p3<>+24(SB)/4, $0x3d2aa9c1
DATA p3<>+28(SB)/4, $0x3d2aa9c1
GLOBL p3<>(SB), RODATA|NOPTR, $32

// p4
DATA p4<>+0(SB)/4, $0x3e2aaaaa
DATA p4<>+4(SB)/4, $0x3e2aaaaa
DATA p4<>+8(SB)/4, $0x3e2aaaaa
DATA p4<>+12(SB)/4, $0x3e2aaaaa
DATA p4<>+16(SB)/4, $0x3e2aaaaa
DATA p4<>+20(SB)/4, $0x3e2aaaaa
DATA p4<>+24(SB)/4, $0x3e2aaaaa
DATA p4<>+28(SB)/4, $0x3e2aaaaa
GLOBL p4<>(SB), RODATA|NOPTR, $32

// p5
DATA p5<>+0(SB)/4, $0x3f000000
DATA p5<>+4(SB)/4, $0x3f000000
DATA p5<>+8(SB)/4, $0x3f000000
DATA p5<>+12(SB)/4, $0x3f000000
DATA p5<>+16(SB)/4, $0x3f000000
DATA p5<>+20(SB)/4, $0x3f000000
DATA p5<>+24(SB)/4, $0x3f000000
DATA p5<>+28(SB)/4, $0x3f000000
GLOBL p5<>(SB), RODATA|NOPTR, $32

// 1.0
DATA one<>+0(SB)/4, $0x3f800000
DATA one<>+4(SB)/4, $0x3f800000
DATA one<>+8(SB)/4, $0x3f800000
DATA one<>+12(SB)/4, $0x3f800000
DATA one<>+16(SB)/4, $0x3f800000
DATA one<>+20(SB)/4, $0x3f800000
DATA one<>+24(SB)/4, $0x3f800000
DATA one<>+28(SB)/4, $0x3f800000
GLOBL one<>(SB), RODATA|NOPTR, $32

// -2·sqrt(2/π): t = -2u = c1·x + c2·x³
DATA c1<>+0(SB)/4, $0xbfcc422a
DATA c1<>+4(SB)/4, $0xbfcc422a
DATA c1<>+8(SB)/4, $0xbfcc422a
DATA c1<>+12(SB)/4, $0xbfcc422a
DATA c1<>+16(SB)/4, $0xbfcc422a
DATA c1<>+20(SB)/4, $0xbfcc422a
DATA c1<>+24(SB)/4, $0xbfcc422a
DATA c1<>+28(SB)/4, $0xbfcc422a
GLOBL c1<>(SB), RODATA|NOPTR, $32

// -2·sqrt(2/π)·0.044715
DATA c2<>+0(SB)/4, $0xbd922279
DATA c2<>+4(SB)/4, $0xbd922279
DATA c2<>+8(SB)/4, $0xbd922279
DATA c2<>+12(SB)/4, $0xbd922279
DATA c2<>+16(SB)/4, $0xbd922279
DATA c2<>+20(SB)/4, $0xbd922279
DATA c2<>+24(SB)/4, $0xbd922279
DATA c2<>+28(SB)/4, $0xbd922279
GLOBL c2<>(SB), RODATA|NOPTR, $32

// 2·sqrt(2/π): gelu' = s + x·s·(1-s)·(gA + gB·x²)
DATA gA<>+0(SB)/4, $0x3fcc422a
DATA gA<>+4(SB)/4, $0x3fcc422a
DATA gA<>+8(SB)/4, $0x3fcc422a
DATA gA<>+12(SB)/4, $0x3fcc422a
DATA gA<>+16(SB)/4, $0x3fcc422a
DATA gA<>+20(SB)/4, $0x3fcc422a
DATA gA<>+24(SB)/4, $0x3fcc422a
DATA gA<>+28(SB)/4, $0x3fcc422a
GLOBL gA<>(SB), RODATA|NOPTR, $32

// 2·sqrt(2/π)·3·0.044715
DATA gB<>+0(SB)/4, $0x3e5b33b6
DATA gB<>+4(SB)/4, $0x3e5b33b6
DATA gB<>+8(SB)/4, $0x3e5b33b6
DATA gB<>+12(SB)/4, $0x3e5b33b6
DATA gB<>+16(SB)/4, $0x3e5b33b6
DATA gB<>+20(SB)/4, $0x3e5b33b6
DATA gB<>+24(SB)/4, $0x3e5b33b6
DATA gB<>+28(SB)/4, $0x3e5b33b6
GLOBL gB<>(SB), RODATA|NOPTR, $32

// 127, the float32 exponent bias (int32)
DATA bias<>+0(SB)/4, $0x0000007f
DATA bias<>+4(SB)/4, $0x0000007f
DATA bias<>+8(SB)/4, $0x0000007f
DATA bias<>+12(SB)/4, $0x0000007f
DATA bias<>+16(SB)/4, $0x0000007f
DATA bias<>+20(SB)/4, $0x0000007f
DATA bias<>+24(SB)/4, $0x0000007f
DATA bias<>+28(SB)/4, $0x0000007f
GLOBL bias<>(SB), RODATA|NOPTR, $32

// LOADEXP puts the exp constants used by every lane in registers:
// Y15 log2(e), Y14 ln2 high part, Y13 88.3, Y12..Y8 p1..p5, Y7 1.0.
#define LOADEXP \
	VMOVUPS log2e<>(SB), Y15; \
	VMOVUPS ln2hi<>(SB), Y14; \
	VMOVUPS clampHi<>(SB), Y13; \
	VMOVUPS p1<>(SB), Y12; \
	VMOVUPS p2<>(SB), Y11; \
	VMOVUPS p3<>(SB), Y10; \
	VMOVUPS p4<>(SB), Y9; \
	VMOVUPS p5<>(SB), Y8; \
	VMOVUPS one<>(SB), Y7

// EXP sets Y1 = e^Y1 in each lane, as expf in mathf.go (with FMA, so
// the last bit may differ); clobbers Y2–Y5. Step by step:
//   Y1 = min(88.3, Y1)            (a NaN stays NaN: it is the second source)
//   Y5 = Y1 < -87.33654           (lanes whose result is 0)
//   Y2 = k = round(Y1·log2e)
//   Y3 = r = Y1 - k·ln2hi - k·ln2lo
//   Y4 = p = ((((p0·r + p1)·r + p2)·r + p3)·r + p4)·r + p5
//   Y4 = p·r² + r + 1
//   Y2 = 2^k from the exponent bits: (int(k) + 127) << 23
//   Y1 = Y4·2^k, zeroed in the Y5 lanes
#define EXP \
	VMINPS Y1, Y13, Y1; \
	VCMPPS $1, cutLo<>(SB), Y1, Y5; \
	VMULPS Y15, Y1, Y2; \
	VROUNDPS $0, Y2, Y2; \
	VMOVAPS Y1, Y3; \
	VFNMADD231PS Y14, Y2, Y3; \
	VFNMADD231PS ln2lo<>(SB), Y2, Y3; \
	VMOVUPS p0<>(SB), Y4; \
	VFMADD213PS Y12, Y3, Y4; \
	VFMADD213PS Y11, Y3, Y4; \
	VFMADD213PS Y10, Y3, Y4; \
	VFMADD213PS Y9, Y3, Y4; \
	VFMADD213PS Y8, Y3, Y4; \
	VMULPS Y3, Y3, Y1; \
	VFMADD213PS Y3, Y1, Y4; \
	VADDPS Y7, Y4, Y4; \
	VCVTPS2DQ Y2, Y2; \
	VPADDD bias<>(SB), Y2, Y2; \
	VPSLLD $23, Y2, Y2; \
	VMULPS Y2, Y4, Y1; \
	VANDNPS Y1, Y5, Y1

// GELUT sets Y1 = t = -2·sqrt(2/π)·(x + 0.044715·x³) for x in Y0, and
// Y6 = x².
#define GELUT \
	VMULPS Y0, Y0, Y6; \
	VMULPS Y0, Y6, Y1; \
	VMULPS c2<>(SB), Y1, Y1; \
	VFMADD231PS c1<>(SB), Y0, Y1

// func geluForwardAVX2(out, inp *float32, n int)
TEXT ·geluForwardAVX2(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ inp+8(FP), SI
	MOVQ n+16(FP), DX
	LOADEXP
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  fwdDone

fwdLoop:
	VMOVUPS (SI)(CX*4), Y0         // Y0 = x = inp[i:i+8]
	GELUT                          // Y1 = t = -2u
	EXP                            // Y1 = e^t
	VADDPS Y7, Y1, Y1              // Y1 = 1 + e^-2u
	VDIVPS Y1, Y0, Y1              // Y1 = x / (1 + e^-2u) = x·σ(2u)
	VMOVUPS Y1, (DI)(CX*4)         // out[i:i+8] = Y1
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  fwdLoop

fwdDone:
	VZEROUPPER
	RET

// func geluBackwardAVX2(dinp, inp, dout *float32, n int)
TEXT ·geluBackwardAVX2(SB), NOSPLIT, $0-32
	MOVQ dinp+0(FP), DI
	MOVQ inp+8(FP), SI
	MOVQ dout+16(FP), BX
	MOVQ n+24(FP), DX
	LOADEXP
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  bwdDone

bwdLoop:
	VMOVUPS (SI)(CX*4), Y0         // Y0 = x = inp[i:i+8]
	GELUT                          // Y1 = t, Y6 = x²
	EXP                            // Y1 = e^t
	VADDPS Y7, Y1, Y1              // Y1 = 1 + e^t
	VDIVPS Y1, Y7, Y1              // Y1 = s = 1 / (1 + e^t)
	VSUBPS Y1, Y7, Y2              // Y2 = 1 - s
	VMULPS Y1, Y2, Y2              // Y2 = s·(1-s)
	VMULPS Y0, Y2, Y2              // Y2 = x·s·(1-s)
	VMOVUPS gA<>(SB), Y3           // Y3 = gA
	VFMADD231PS gB<>(SB), Y6, Y3   // Y3 = gA + gB·x²
	VFMADD231PS Y2, Y3, Y1         // Y1 = s + x·s·(1-s)·(gA + gB·x²) = gelu'(x)
	VMOVUPS (DI)(CX*4), Y4         // Y4 = dinp[i:i+8]
	VFMADD231PS (BX)(CX*4), Y1, Y4 // Y4 += gelu'(x)·dout[i:i+8]
	VMOVUPS Y4, (DI)(CX*4)         // dinp[i:i+8] = Y4
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  bwdLoop

bwdDone:
	VZEROUPPER
	RET

// func expShiftAVX2(dst, src *float32, n int, shift float32) float32
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	VBROADCASTSS shift+24(FP), Y6  // Y6 = shift in every lane
	LOADEXP
	VXORPS Y0, Y0, Y0              // Y0 = 8 partial sums
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  expDone

expLoop:
	VMOVUPS (SI)(CX*4), Y1         // Y1 = src[i:i+8]
	VSUBPS Y6, Y1, Y1              // Y1 = src - shift
	EXP                            // Y1 = e^(src-shift)
	VMOVUPS Y1, (DI)(CX*4)         // dst[i:i+8] = Y1
	VADDPS Y1, Y0, Y0              // partial sums += Y1
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  expLoop

expDone:
	// sum the 8 lanes in a fixed order: (l0+l4)+(l2+l6) + (l1+l5)+(l3+l7)
	VEXTRACTF128 $1, Y0, X1        // X1 = lanes 4..7
	VADDPS X1, X0, X0              // X0 = l0+l4, l1+l5, l2+l6, l3+l7
	VMOVHLPS X0, X0, X1            // X1 = l2+l6, l3+l7
	VADDPS X1, X0, X0              // X0 = (l0+l4)+(l2+l6), (l1+l5)+(l3+l7)
	VMOVSHDUP X0, X1               // X1 = lane 1 of X0 in lane 0
	VADDSS X1, X0, X0              // X0 = the sum
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), DX
	VMOVUPS (SI), Y0               // Y0 = 8 running maxima = x[0:8]
	MOVQ $8, CX                    // CX = i
	CMPQ CX, DX
	JGE  maxDone

maxLoop:
	VMAXPS (SI)(CX*4), Y0, Y0      // Y0 = max(Y0, x[i:i+8])
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  maxLoop

maxDone:
	VEXTRACTF128 $1, Y0, X1        // X1 = lanes 4..7
	VMAXPS X1, X0, X0              // X0 = max of lanes i, i+4
	VMOVHLPS X0, X0, X1            // X1 = lanes 2, 3 of X0
	VMAXPS X1, X0, X0              // X0 = max of 2 lanes
	VMOVSHDUP X0, X1               // X1 = lane 1 in lane 0
	VMAXSS X1, X0, X0              // X0 = the maximum
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(x *float32, n int, s float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), DX
	VBROADCASTSS s+16(FP), Y1      // Y1 = s in every lane
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  scaleDone

scaleLoop:
	VMULPS (DI)(CX*4), Y1, Y0      // Y0 = x[i:i+8]·s
	VMOVUPS Y0, (DI)(CX*4)         // x[i:i+8] = Y0
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  scaleLoop

scaleDone:
	VZEROUPPER
	RET

// func dotAVX2(x, y *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), BX
	MOVQ n+16(FP), DX
	VXORPS Y0, Y0, Y0              // Y0 = 8 partial sums
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  dotDone

dotLoop:
	VMOVUPS (SI)(CX*4), Y1         // Y1 = x[i:i+8]
	VFMADD231PS (BX)(CX*4), Y1, Y0 // Y0 += x[i:i+8]·y[i:i+8]
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  dotLoop

dotDone:
	VEXTRACTF128 $1, Y0, X1        // X1 = lanes 4..7
	VADDPS X1, X0, X0              // X0 = l0+l4, l1+l5, l2+l6, l3+l7
	VMOVHLPS X0, X0, X1            // X1 = l2+l6, l3+l7
	VADDPS X1, X0, X0              // X0 = two sums
	VMOVSHDUP X0, X1               // X1 = lane 1 in lane 0
	VADDSS X1, X0, X0              // X0 = the sum
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func softmaxBackwardAVX2(dp, a, da *float32, n int, dot float32)
TEXT ·softmaxBackwardAVX2(SB), NOSPLIT, $0-36
	MOVQ dp+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ da+16(FP), BX
	MOVQ n+24(FP), DX
	VBROADCASTSS dot+32(FP), Y2    // Y2 = dot in every lane
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  smbDone

smbLoop:
	VMOVUPS (BX)(CX*4), Y0         // Y0 = da[i:i+8]
	VSUBPS Y2, Y0, Y0              // Y0 = da - dot
	VMULPS (SI)(CX*4), Y0, Y0      // Y0 = a·(da - dot)
	VMOVUPS Y0, (DI)(CX*4)         // dp[i:i+8] = Y0
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  smbLoop

smbDone:
	VZEROUPPER
	RET

// func spmmRow8AVX2(o *float32, idx *int32, val *float32, nnz int, dt *float32, n int)
TEXT ·spmmRow8AVX2(SB), NOSPLIT, $0-48
	MOVQ o+0(FP), DI
	MOVQ idx+8(FP), SI
	MOVQ val+16(FP), BX
	MOVQ nnz+24(FP), DX
	MOVQ dt+32(FP), R8
	MOVQ n+40(FP), R9
	SHLQ $2, R9                    // R9 = row stride of dt in bytes
	VMOVUPS (DI), Y0               // Y0 = o[0:8] plus the even entries
	VXORPS Y1, Y1, Y1              // Y1 = sum over odd entries
	XORQ CX, CX                    // CX = p
	MOVQ DX, R10
	ANDQ $-2, R10                  // R10 = nnz rounded down to even
	CMPQ CX, R10
	JGE  spmmTail

spmmLoop:
	MOVLQSX (SI)(CX*4), AX         // AX = idx[p]
	IMULQ R9, AX                   // AX = byte offset of dt row idx[p]
	VBROADCASTSS (BX)(CX*4), Y2    // Y2 = val[p]
	VFMADD231PS (R8)(AX*1), Y2, Y0 // Y0 += val[p]·dt[idx[p]*n : +8]
	MOVLQSX 4(SI)(CX*4), AX        // AX = idx[p+1]
	IMULQ R9, AX                   // AX = byte offset of dt row idx[p+1]
	VBROADCASTSS 4(BX)(CX*4), Y3   // Y3 = val[p+1]
	VFMADD231PS (R8)(AX*1), Y3, Y1 // Y1 += val[p+1]·dt[idx[p+1]*n : +8]
	ADDQ $2, CX                    // p += 2
	CMPQ CX, R10
	JLT  spmmLoop

spmmTail:
	CMPQ CX, DX                    // an odd last entry?
	JGE  spmmDone
	MOVLQSX (SI)(CX*4), AX         // AX = idx[p]
	IMULQ R9, AX                   // AX = byte offset of dt row idx[p]
	VBROADCASTSS (BX)(CX*4), Y2    // Y2 = val[p]
	VFMADD231PS (R8)(AX*1), Y2, Y0 // Y0 += val[p]·dt[idx[p]*n : +8]

spmmDone:
	VADDPS Y1, Y0, Y0              // Y0 = o + even + odd
	VMOVUPS Y0, (DI)               // o[0:8] = Y0
	VZEROUPPER
	RET

// func spmmRow16AVX2(o *float32, idx *int32, val *float32, nnz int, dt *float32, n int)
TEXT ·spmmRow16AVX2(SB), NOSPLIT, $0-48
	MOVQ o+0(FP), DI
	MOVQ idx+8(FP), SI
	MOVQ val+16(FP), BX
	MOVQ nnz+24(FP), DX
	MOVQ dt+32(FP), R8
	MOVQ n+40(FP), R9
	SHLQ $2, R9                      // R9 = row stride of dt in bytes
	VMOVUPS (DI), Y0                 // Y0, Y1 = o[0:8], o[8:16] plus the even entries
	VMOVUPS 32(DI), Y1
	VXORPS Y2, Y2, Y2                // Y2, Y3 = columns 0..7, 8..15, odd entries
	VXORPS Y3, Y3, Y3
	XORQ CX, CX                      // CX = p
	MOVQ DX, R10
	ANDQ $-2, R10                    // R10 = nnz rounded down to even
	CMPQ CX, R10
	JGE  spmm16Tail

spmm16Loop:
	MOVLQSX (SI)(CX*4), AX           // AX = idx[p]
	IMULQ R9, AX                     // AX = byte offset of dt row idx[p]
	VBROADCASTSS (BX)(CX*4), Y4      // Y4 = val[p]
	VFMADD231PS (R8)(AX*1), Y4, Y0   // Y0 += val[p]·dt[idx[p]*n : +8]
	VFMADD231PS 32(R8)(AX*1), Y4, Y1 // Y1 += val[p]·dt[idx[p]*n+8 : +8]
	MOVLQSX 4(SI)(CX*4), AX          // AX = idx[p+1]
	IMULQ R9, AX                     // AX = byte offset of dt row idx[p+1]
	VBROADCASTSS 4(BX)(CX*4), Y5     // Y5 = val[p+1]
	VFMADD231PS (R8)(AX*1), Y5, Y2   // Y2 += val[p+1]·dt[idx[p+1]*n : +8]
	VFMADD231PS 32(R8)(AX*1), Y5, Y3 // Y3 += val[p+1]·dt[idx[p+1]*n+8 : +8]
	ADDQ $2, CX                      // p += 2
	CMPQ CX, R10
	JLT  spmm16Loop

spmm16Tail:
	CMPQ CX, DX                      // an odd last entry?
	JGE  spmm16Done
	MOVLQSX (SI)(CX*4), AX           // AX = idx[p]
	IMULQ R9, AX                     // AX = byte offset of dt row idx[p]
	VBROADCASTSS (BX)(CX*4), Y4      // Y4 = val[p]
	VFMADD231PS (R8)(AX*1), Y4, Y0   // Y0 += val[p]·dt[idx[p]*n : +8]
	VFMADD231PS 32(R8)(AX*1), Y4, Y1 // Y1 += val[p]·dt[idx[p]*n+8 : +8]

spmm16Done:
	VADDPS Y2, Y0, Y0                // Y0 = o + even + odd, columns 0..7
	VADDPS Y3, Y1, Y1                // Y1 = o + even + odd, columns 8..15
	VMOVUPS Y0, (DI)                 // o[0:8] = Y0
	VMOVUPS Y1, 32(DI)               // o[8:16] = Y1
	VZEROUPPER
	RET

// func adamwAVX2(p, gr, m, v *float32, n int, lr, beta1, beta2, eps, wd, ic1, ic2 float32)
TEXT ·adamwAVX2(SB), NOSPLIT, $0-68
	MOVQ p+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), DX
	VBROADCASTSS lr+40(FP), Y15    // Y15 = lr
	VBROADCASTSS beta1+44(FP), Y14 // Y14 = β1
	VBROADCASTSS beta2+48(FP), Y13 // Y13 = β2
	VBROADCASTSS eps+52(FP), Y12   // Y12 = eps
	VBROADCASTSS wd+56(FP), Y11    // Y11 = wd
	VBROADCASTSS ic1+60(FP), Y10   // Y10 = 1/(1-β1^t)
	VBROADCASTSS ic2+64(FP), Y9    // Y9 = 1/(1-β2^t)
	VMOVUPS one<>(SB), Y8          // Y8 = 1
	VSUBPS Y14, Y8, Y7             // Y7 = 1-β1
	VSUBPS Y13, Y8, Y6             // Y6 = 1-β2
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  adamDone

adamLoop:
	VMOVUPS (SI)(CX*4), Y0         // Y0 = g
	VMULPS (R8)(CX*4), Y14, Y1     // Y1 = β1·m
	VFMADD231PS Y0, Y7, Y1         // Y1 = m' = β1·m + (1-β1)·g
	VMULPS Y0, Y0, Y2              // Y2 = g²
	VMULPS (R9)(CX*4), Y13, Y3     // Y3 = β2·v
	VFMADD231PS Y2, Y6, Y3         // Y3 = v' = β2·v + (1-β2)·g²
	VMOVUPS Y1, (R8)(CX*4)         // m = m'
	VMOVUPS Y3, (R9)(CX*4)         // v = v'
	VMULPS Y9, Y3, Y3              // Y3 = v̂ = v'/(1-β2^t)
	VSQRTPS Y3, Y3                 // Y3 = sqrt(v̂)
	VADDPS Y12, Y3, Y3             // Y3 = sqrt(v̂) + eps
	VMULPS Y10, Y1, Y1             // Y1 = m̂ = m'/(1-β1^t)
	VDIVPS Y3, Y1, Y1              // Y1 = m̂/(sqrt(v̂)+eps)
	VMOVUPS (DI)(CX*4), Y4         // Y4 = p
	VFMADD231PS Y4, Y11, Y1        // Y1 += wd·p
	VFNMADD231PS Y1, Y15, Y4       // Y4 = p - lr·Y1
	VMOVUPS Y4, (DI)(CX*4)         // p = Y4
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  adamLoop

adamDone:
	VZEROUPPER
	RET

// func addAVX2(dst, src *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	XORQ CX, CX                    // CX = i
	MOVQ DX, R10
	ANDQ $-32, R10                 // R10 = n rounded down to a multiple of 32
	CMPQ CX, R10
	JGE  addTail

addLoop32:
	VMOVUPS (DI)(CX*4), Y0         // Y0..Y3 = dst[i:i+32]
	VMOVUPS 32(DI)(CX*4), Y1
	VMOVUPS 64(DI)(CX*4), Y2
	VMOVUPS 96(DI)(CX*4), Y3
	VADDPS (SI)(CX*4), Y0, Y0      // Y0..Y3 += src[i:i+32]
	VADDPS 32(SI)(CX*4), Y1, Y1
	VADDPS 64(SI)(CX*4), Y2, Y2
	VADDPS 96(SI)(CX*4), Y3, Y3
	VMOVUPS Y0, (DI)(CX*4)         // dst[i:i+32] = Y0..Y3
	VMOVUPS Y1, 32(DI)(CX*4)
	VMOVUPS Y2, 64(DI)(CX*4)
	VMOVUPS Y3, 96(DI)(CX*4)
	ADDQ $32, CX                   // i += 32
	CMPQ CX, R10
	JLT  addLoop32

addTail:
	CMPQ CX, DX
	JGE  addDone

addLoop8:
	VMOVUPS (DI)(CX*4), Y0         // Y0 = dst[i:i+8]
	VADDPS (SI)(CX*4), Y0, Y0      // Y0 += src[i:i+8]
	VMOVUPS Y0, (DI)(CX*4)         // dst[i:i+8] = Y0
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  addLoop8

addDone:
	VZEROUPPER
	RET

// HSUM sets X0 to the sum of the 8 lanes of Y0 in a fixed order
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)); clobbers X1.
#define HSUM \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VMOVHLPS X0, X0, X1; \
	VADDPS X1, X0, X0; \
	VMOVSHDUP X0, X1; \
	VADDSS X1, X0, X0

// func lnStatsAVX2(x *float32, n int, m float32) (sum, sqdev float32)
TEXT ·lnStatsAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), DX
	VBROADCASTSS m+16(FP), Y5      // Y5 = m (0 for the first pass)
	VXORPS Y2, Y2, Y2              // Y2 = Σ x, 8 lanes
	VXORPS Y3, Y3, Y3              // Y3 = Σ (x-m)², 8 lanes
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  statsDone

statsLoop:
	VMOVUPS (SI)(CX*4), Y4         // Y4 = x[i:i+8]
	VADDPS Y4, Y2, Y2              // Y2 += x
	VSUBPS Y5, Y4, Y4              // Y4 = x - m
	VFMADD231PS Y4, Y4, Y3         // Y3 += (x-m)²
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  statsLoop

statsDone:
	VMOVAPS Y2, Y0
	HSUM                           // X0 = Σ x
	VMOVSS X0, sum+24(FP)
	VMOVAPS Y3, Y0
	HSUM                           // X0 = Σ (x-m)²
	VMOVSS X0, sqdev+28(FP)
	VZEROUPPER
	RET

// func lnForwardAVX2(out, x, w, b *float32, n int, m, s float32)
TEXT ·lnForwardAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), R8
	MOVQ b+24(FP), R9
	MOVQ n+32(FP), DX
	VBROADCASTSS m+40(FP), Y5      // Y5 = mean
	VBROADCASTSS s+44(FP), Y6      // Y6 = rstd
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  lnfDone

lnfLoop:
	VMOVUPS (SI)(CX*4), Y0         // Y0 = x
	VSUBPS Y5, Y0, Y0              // Y0 = x - m
	VMULPS Y6, Y0, Y0              // Y0 = (x-m)·s
	VMOVUPS (R9)(CX*4), Y1         // Y1 = b
	VFMADD231PS (R8)(CX*4), Y0, Y1 // Y1 = (x-m)·s·w + b
	VMOVUPS Y1, (DI)(CX*4)         // out[i:i+8] = Y1
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  lnfLoop

lnfDone:
	VZEROUPPER
	RET

// func lnBackwardSumsAVX2(x, d, w *float32, n int, m, s float32) (dn, dnNorm float32)
TEXT ·lnBackwardSumsAVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ d+8(FP), BX
	MOVQ w+16(FP), R8
	MOVQ n+24(FP), DX
	VBROADCASTSS m+32(FP), Y5      // Y5 = mean
	VBROADCASTSS s+36(FP), Y6      // Y6 = rstd
	VXORPS Y2, Y2, Y2              // Y2 = Σ w·d, 8 lanes
	VXORPS Y3, Y3, Y3              // Y3 = Σ w·d·norm, 8 lanes
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  lnsDone

lnsLoop:
	VMOVUPS (R8)(CX*4), Y0         // Y0 = w
	VMULPS (BX)(CX*4), Y0, Y0      // Y0 = dnorm = w·d
	VMOVUPS (SI)(CX*4), Y1         // Y1 = x
	VSUBPS Y5, Y1, Y1              // Y1 = x - m
	VMULPS Y6, Y1, Y1              // Y1 = norm = (x-m)·s
	VADDPS Y0, Y2, Y2              // Y2 += dnorm
	VFMADD231PS Y1, Y0, Y3         // Y3 += dnorm·norm
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  lnsLoop

lnsDone:
	VMOVAPS Y2, Y0
	HSUM                           // X0 = Σ w·d
	VMOVSS X0, dn+40(FP)
	VMOVAPS Y3, Y0
	HSUM                           // X0 = Σ w·d·norm
	VMOVSS X0, dnNorm+44(FP)
	VZEROUPPER
	RET

// func lnBackwardRowAVX2(dx, x, d, w *float32, n int, m, s, a, b float32)
TEXT ·lnBackwardRowAVX2(SB), NOSPLIT, $0-56
	MOVQ dx+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ d+16(FP), BX
	MOVQ w+24(FP), R8
	MOVQ n+32(FP), DX
	VBROADCASTSS m+40(FP), Y5      // Y5 = mean
	VBROADCASTSS s+44(FP), Y6      // Y6 = rstd
	VBROADCASTSS a+48(FP), Y7      // Y7 = mean of dnorm
	VBROADCASTSS b+52(FP), Y8      // Y8 = mean of dnorm·norm
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  lnrDone

lnrLoop:
	VMOVUPS (R8)(CX*4), Y0         // Y0 = w
	VMULPS (BX)(CX*4), Y0, Y0      // Y0 = dnorm = w·d
	VSUBPS Y7, Y0, Y0              // Y0 = dnorm - a
	VMOVUPS (SI)(CX*4), Y1         // Y1 = x
	VSUBPS Y5, Y1, Y1              // Y1 = x - m
	VMULPS Y6, Y1, Y1              // Y1 = norm
	VFNMADD231PS Y8, Y1, Y0        // Y0 = dnorm - a - norm·b
	VMOVUPS (DI)(CX*4), Y2         // Y2 = dx
	VFMADD231PS Y6, Y0, Y2         // Y2 += (dnorm - a - norm·b)·s
	VMOVUPS Y2, (DI)(CX*4)         // dx[i:i+8] = Y2
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  lnrLoop

lnrDone:
	VZEROUPPER
	RET

// func lnBackwardColsAVX2(dw, db, x, d *float32, n int, m, s float32)
TEXT ·lnBackwardColsAVX2(SB), NOSPLIT, $0-48
	MOVQ dw+0(FP), DI
	MOVQ db+8(FP), R9
	MOVQ x+16(FP), SI
	MOVQ d+24(FP), BX
	MOVQ n+32(FP), DX
	VBROADCASTSS m+40(FP), Y5      // Y5 = mean
	VBROADCASTSS s+44(FP), Y6      // Y6 = rstd
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  lncDone

lncLoop:
	VMOVUPS (BX)(CX*4), Y0         // Y0 = d
	VMOVUPS (SI)(CX*4), Y1         // Y1 = x
	VSUBPS Y5, Y1, Y1              // Y1 = x - m
	VMULPS Y6, Y1, Y1              // Y1 = norm
	VMOVUPS (DI)(CX*4), Y2         // Y2 = dw
	VFMADD231PS Y0, Y1, Y2         // Y2 += norm·d
	VMOVUPS Y2, (DI)(CX*4)         // dw[i:i+8] = Y2
	VADDPS (R9)(CX*4), Y0, Y3      // Y3 = db + d
	VMOVUPS Y3, (R9)(CX*4)         // db[i:i+8] = Y3
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  lncLoop

lncDone:
	VZEROUPPER
	RET

// func sumSquaresAVX2(x *float32, n int) float64
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), DX
	VXORPD Y0, Y0, Y0              // Y0 = Σ x², elements 0..3 mod 8
	VXORPD Y1, Y1, Y1              // Y1 = Σ x², elements 4..7 mod 8
	XORQ CX, CX                    // CX = i
	CMPQ CX, DX
	JGE  ssDone

ssLoop:
	VCVTPS2PD (SI)(CX*4), Y2       // Y2 = float64(x[i:i+4])
	VCVTPS2PD 16(SI)(CX*4), Y3     // Y3 = float64(x[i+4:i+8])
	VFMADD231PD Y2, Y2, Y0         // Y0 += Y2² (the square is exact)
	VFMADD231PD Y3, Y3, Y1         // Y1 += Y3²
	ADDQ $8, CX                    // i += 8
	CMPQ CX, DX
	JLT  ssLoop

ssDone:
	VADDPD Y1, Y0, Y0              // Y0 = 4 sums
	VEXTRACTF128 $1, Y0, X1        // X1 = sums 2, 3
	VADDPD X1, X0, X0              // X0 = sums 0+2, 1+3
	VUNPCKHPD X0, X0, X1           // X1 = sum 1+3 in lane 0
	VADDSD X1, X0, X0              // X0 = the sum
	VMOVSD X0, ret+16(FP)
	VZEROUPPER
	RET

// func transposeAVX2(dst *float32, ldd int, src *float32, lds int, nb int)
TEXT ·transposeAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R9
	MOVQ nb+32(FP), DX
	SHLQ $2, R8                    // R8 = dst row stride in bytes
	SHLQ $2, R9                    // R9 = src row stride in bytes
	TESTQ DX, DX
	JLE  trDone

trLoop:
	MOVQ SI, AX                    // AX walks the 8 src rows of this block
	VMOVUPS (AX), Y0               // Y0..Y7 = src rows 0..7, 8 floats each
	ADDQ R9, AX
	VMOVUPS (AX), Y1
	ADDQ R9, AX
	VMOVUPS (AX), Y2
	ADDQ R9, AX
	VMOVUPS (AX), Y3
	ADDQ R9, AX
	VMOVUPS (AX), Y4
	ADDQ R9, AX
	VMOVUPS (AX), Y5
	ADDQ R9, AX
	VMOVUPS (AX), Y6
	ADDQ R9, AX
	VMOVUPS (AX), Y7
	VUNPCKLPS Y1, Y0, Y8           // Y8  = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5]
	VUNPCKHPS Y1, Y0, Y9           // Y9  = r0[2] r1[2] r0[3] r1[3] | r0[6] r1[6] r0[7] r1[7]
	VUNPCKLPS Y3, Y2, Y10          // Y10 = the same for rows 2, 3
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12          // Y12, Y13 = rows 4, 5
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14          // Y14, Y15 = rows 6, 7
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0     // Y0 = rows 0..3 of columns 0 | 4
	VSHUFPS $0xEE, Y10, Y8, Y1     // Y1 = rows 0..3 of columns 1 | 5
	VSHUFPS $0x44, Y11, Y9, Y2     // Y2 = rows 0..3 of columns 2 | 6
	VSHUFPS $0xEE, Y11, Y9, Y3     // Y3 = rows 0..3 of columns 3 | 7
	VSHUFPS $0x44, Y14, Y12, Y4    // Y4..Y7 = the same for rows 4..7
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8   // Y8  = column 0, rows 0..7
	VPERM2F128 $0x20, Y5, Y1, Y9   // Y9  = column 1
	VPERM2F128 $0x20, Y6, Y2, Y10  // Y10 = column 2
	VPERM2F128 $0x20, Y7, Y3, Y11  // Y11 = column 3
	VPERM2F128 $0x31, Y4, Y0, Y12  // Y12 = column 4
	VPERM2F128 $0x31, Y5, Y1, Y13  // Y13 = column 5
	VPERM2F128 $0x31, Y6, Y2, Y14  // Y14 = column 6
	VPERM2F128 $0x31, Y7, Y3, Y15  // Y15 = column 7
	VMOVUPS Y8, (DI)               // dst rows 0..7 = columns 0..7
	ADDQ R8, DI
	VMOVUPS Y9, (DI)
	ADDQ R8, DI
	VMOVUPS Y10, (DI)
	ADDQ R8, DI
	VMOVUPS Y11, (DI)
	ADDQ R8, DI
	VMOVUPS Y12, (DI)
	ADDQ R8, DI
	VMOVUPS Y13, (DI)
	ADDQ R8, DI
	VMOVUPS Y14, (DI)
	ADDQ R8, DI
	VMOVUPS Y15, (DI)
	ADDQ R8, DI                    // DI = the next block's first dst row
	ADDQ $32, SI                   // SI = the next 8 src columns
	DECQ DX
	JNZ  trLoop

trDone:
	VZEROUPPER
	RET
