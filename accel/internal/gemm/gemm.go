// Package gemm is the cpu backend's single-precision matrix multiply.
package gemm

// Sgemm computes C = alpha·op(A)·op(B) + beta·C, row-major, with the
// argument conventions of accel.Backend.Sgemm, using up to threads
// goroutines (threads <= 0: one).
//
// Placeholder: a plain triple loop until the packed kernel lands.
func Sgemm(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}
