//go:build amd64 && !noasm

package gemm

import "golang.org/x/sys/cpu"

// kern12x32 is the AVX-512F micro-kernel, mr = 12, nr = 32 (see kernel):
//
//	C[r][j] = alpha·Σ_p a[r*rs+p*ps]·b[p*32+j] + beta·C[r][j]   (r < 12, j < 32, p < kc)
//
// with C not read when beta == 0. The tile lives in Z0–Z23.
//
//go:noescape
func kern12x32(kc int, a *float32, rs, ps int, b, c *float32, ldc int, alpha, beta float32)

// kern6x16 is the AVX2+FMA micro-kernel, mr = 6, nr = 16 (see kernel):
//
//	C[r][j] = alpha·Σ_p a[r*rs+p*ps]·b[p*16+j] + beta·C[r][j]   (r < 6, j < 16, p < kc)
//
// with C not read when beta == 0. The tile lives in Y0–Y11.
//
//go:noescape
func kern6x16(kc int, a *float32, rs, ps int, b, c *float32, ldc int, alpha, beta float32)

// copy12 moves n chunks of 12 floats from src[q*12:] to dst[q*stride:]
// (AVX):
//
//	for q := range n { copy(dst[q*stride:q*stride+12], src[q*12:q*12+12]) }
//
//go:noescape
func copy12(dst, src *float32, n, stride int)

// copy32 moves n rows of 32 floats from src[p*stride:] to dst[p*32:]
// (AVX):
//
//	for p := range n { copy(dst[p*32:p*32+32], src[p*stride:p*stride+32]) }
//
//go:noescape
func copy32(dst, src *float32, n, stride int)

// asmKernels lists the assembly micro-kernels this CPU and OS support,
// fastest first.
func asmKernels() []*kernel {
	var ks []*kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, &kernel{name: "avx512", mr: 12, nr: 32, kc: 256, mc: 480, nc: 1024, fn: kern12x32,
			copyA: copy12, copyB: copy32})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, &kernel{name: "avx2", mr: 6, nr: 16, kc: 256, mc: 480, nc: 1024, fn: kern6x16})
	}
	return ks
}
