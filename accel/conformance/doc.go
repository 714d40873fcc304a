// Package conformance is the test suite every accel.Backend must pass, in
// the manner of gonum's blas/testblas:
//
//	func TestConformance(t *testing.T) { conformance.Run(t, mybackend.New()) }
//
// Run checks each method against the reference kernels of accel/ref
// instantiated in float64 on the same float32 inputs, with tolerances
// suited to float32 (|got-want| <= tol·(|want| + max|want|), tol from
// 1e-7 for one rounding to 2e-5 for sums of products). The shapes are odd
// and edge ones: 0, 1, 2, 3, 7, 17, 33, 65 and non-multiples of the vector
// widths, N = 1, T = 1, NH = 1, C/NH = 1, k = n, empty CSR rows, row
// strides with padding and gaps between batched matrices. Beyond the
// values it checks that
//
//   - every output sits between guard sentinels (a NaN with a recognisable
//     payload, or -12345) that must survive, row padding and batch gaps of
//     Sgemm's C included;
//   - "accumulates" outputs start non-zero, overwritten ones start with
//     garbage (NaN for beta == 0 Sgemm and for the scratch of
//     AttentionBackward), and the entries of att above the diagonal are NaN
//     on the way into AttentionBackward, which must not read them;
//   - inputs come back unmodified;
//   - each call made twice on the same inputs gives bit-identical outputs;
//   - each slice made one element too short panics (on the calling
//     goroutine: a panic in a worker would take the test binary down).
//
// Gradients checks the reference backward kernels themselves, in float64,
// against central finite differences of the forward kernels (relative
// error below 1e-6), which anchors the whole chain to calculus: backends
// are held to ref, ref to the derivative.
//
// conformance_test.go runs the suite on every registered backend with 1, 2
// and 3 threads; go test ./accel/... takes a few seconds.
//
// Layering: cmd → flow, report → stages/* → pipeline → schemas, accel. This
// package is part of accel and imports nothing above it.
package conformance
