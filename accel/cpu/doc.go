// Package cpu is the fast CPU accel.Backend, registered as "cpu":
//
//	import _ "github.com/domainflow/domainflow/accel/cpu"
//	b, err := accel.Open("cpu", threads) // or cpu.New(threads)
//
// # Kernels
//
// Matrix products go to the packed SGEMM of accel/internal/gemm
// (AVX-512/AVX2 micro-kernels, pure Go under -tags noasm): MatmulForward is
// one gemm with transposed weights accumulating onto the broadcast bias,
// MatmulBackward two gemms (dinp plain, dweight with transposed dout),
// DenseDenseT and SquaredDistances one gemm each. Attention works per
// (batch, head) pair, the pairs spread over the threads: Q·Kᵀ, att·V and
// their gradients are gemm calls on blocks of 128 query rows that skip the
// masked upper triangle, with a fused causal softmax (and its backward)
// between them. SparseDenseT transposes the dense matrix once per call and
// adds, per stored entry, one contiguous row of it (an AVX2 kernel, 16 and
// 8 columns at a time). The row kernels (layernorm, softmax +
// cross-entropy, row norms, argmin, top-k) run parallel over rows, the
// elementwise ones (GELU, residual, AdamW, Scale, SumSquares) over chunks.
//
// On amd64 with AVX2 and FMA, Go-assembly kernels (vec_amd64.s, 8 lanes)
// do the elementwise and row work: GELU forward and backward, the exp, max,
// scale and dot product of the softmaxes, the layernorm rows and column
// sums, AdamW, the accumulating add, and the SparseDenseT rows. Their
// float32 exp is a Cody–Waite reduction with the Cephes polynomial (about
// 2 ulp; expf in mathf.go is the same in Go). Each kernel takes the longest
// multiple-of-8 prefix and Go finishes the rest; under -tags noasm, on
// other architectures or on CPUs without AVX2+FMA, pure-Go loops do all of
// it (vec_other.go).
//
// # Threads
//
// A call uses up to Threads goroutines (New(0): GOMAXPROCS). Work is cut
// into contiguous chunks with a minimum size, so small tensors run inline
// on the calling goroutine and allocate nothing; a parallel call allocates
// a few small closures. Goroutines live only for the call. Every method
// checks its slice lengths on the calling goroutine before any work, so a
// too-short slice panics there.
//
// # Determinism
//
// The same inputs and thread count give bit-identical outputs on every
// call: no result depends on goroutine scheduling. More than that, every
// kernel gives the same bits for every thread count (TestThreadInvariance):
// each output element is computed by one goroutine in an order that does
// not depend on the chunking, reductions across rows (the dweight and dbias
// sums of the backward kernels) are parallel over columns with the rows
// added in order, and SumSquares sums fixed blocks of 16384 elements whose
// partial sums are added in order. Elementwise chunks start at multiples
// of 8, so an element goes to the vector kernel or to the Go tail the same
// way for every chunking. This relies on accel/internal/gemm
// splitting work over the rows or columns of C, never over k. The asm and
// the pure-Go paths differ in the last bits (FMA, lane-wise sums), so a
// -tags noasm build or a CPU without AVX2 gives slightly different, equally
// deterministic, results.
//
// # Scratch and leftovers
//
// A Backend keeps scratch buffers between calls (the SumSquares block sums,
// the transposed dense matrix of SparseDenseT), which is why it is for one
// goroutine at a time. After AttentionBackward, dpreatt holds the gradient
// of preatt, but datt holds att with its upper triangle zeroed, not the
// gradient of att (the interface calls both scratch).
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. This
// package is part of accel and imports nothing above it.
package cpu
