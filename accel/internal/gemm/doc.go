// Package gemm is the cpu backend's single-precision matrix multiply,
// C = alpha·op(A)·op(B) + beta·C on row-major float32 matrices.
//
// It follows the GotoBLAS/BLIS structure. The K dimension is cut into slabs
// of kc; for each slab a block of op(B) (kc×nc, about 1 MiB, meant to stay
// in the core's L2) is packed into micro-panels of nr columns. A
// register-blocked micro-kernel multiplies one mr×kc panel of op(A) by one
// kc×nr panel of B into an mr×nr tile of C held in vector registers, and
// applies alpha and beta as it stores the tile. A transposed A is packed
// mc×kc at a time into micro-panels of mr rows; a row-major A is read in
// place, mr rows at a time, which saves a pass over A when n is small (a
// last panel of fewer than mr rows is packed with zero rows below).
//
// Micro-kernels, chosen at run time (see ISAs and SetISA):
//
//	avx512  12×32, Go assembly, AVX-512F (amd64)
//	avx2    6×16, Go assembly, AVX2 + FMA (amd64)
//	go      4×8, pure Go; the only one under -tags noasm or off amd64
//
// The environment variable DOMAINFLOW_GEMM_ISA (EnvISA), read once at
// start-up, forces one of them, e.g. DOMAINFLOW_GEMM_ISA=avx2 to time or
// test the AVX2 path on an AVX-512 machine.
//
// Sgemm splits C into contiguous row or column ranges, one per goroutine,
// each packed into its own buffers, so the goroutines never wait on one
// another. They are the caller and long-lived helper goroutines, which poll
// for work for 200 µs after each call before they sleep (as OpenBLAS's
// threads do), because waking a sleeping one costs 70 µs or more on this
// VM. Products too small to pay for packing take a direct loop.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. This
// package is part of accel and imports nothing above it.
package gemm
