package cpu

// need panics with msg unless ok. Every method checks its slices on the
// calling goroutine before any work starts, so a too-short slice (a bug in
// the caller) panics there and not inside a worker goroutine, where it would
// take the process down.
func need(ok bool, msg string) {
	if !ok {
		panic(msg)
	}
}

// gemmSpan is the minimal length of a [rows,cols] matrix with row stride ld
// (the last row need not be padded).
func gemmSpan(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// checkGemm panics unless the strides cover the rows (ld >= max(1, cols))
// and the slices hold batch matrices stride apart.
func checkGemm(transA, transB bool, m, n, k int, lenA, lda, strideA, lenB, ldb, strideB, lenC, ldc, strideC, batch int) {
	need(m >= 0 && n >= 0 && k >= 0 && batch >= 0, "cpu: Sgemm: negative dimension")
	need(strideA >= 0 && strideB >= 0 && strideC >= 0, "cpu: SgemmStridedBatched: negative stride")
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need(lda >= max(1, ac) && ldb >= max(1, bc) && ldc >= max(1, n), "cpu: Sgemm: leading dimension smaller than the row width")
	if batch == 0 {
		return
	}
	last := batch - 1
	need(gemmSpan(ar, ac, lda) == 0 || lenA >= last*strideA+gemmSpan(ar, ac, lda), "cpu: Sgemm: A shorter than its shape")
	need(gemmSpan(br, bc, ldb) == 0 || lenB >= last*strideB+gemmSpan(br, bc, ldb), "cpu: Sgemm: B shorter than its shape")
	need(gemmSpan(m, n, ldc) == 0 || lenC >= last*strideC+gemmSpan(m, n, ldc), "cpu: Sgemm: C shorter than its shape")
}
