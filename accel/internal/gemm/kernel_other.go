//go:build !amd64 || noasm

package gemm

// asmKernels lists the assembly micro-kernels: none without amd64 or under
// -tags noasm, where the pure-Go kernel does all the work.
func asmKernels() []*kernel { return nil }
