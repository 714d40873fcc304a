package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// sgemmRef is the oracle: Sgemm in float64, one dot product per element.
func sgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
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
				s += float64(av) * float64(bv)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
			}
			c[i*ldc+j] = float32(v)
		}
	}
}

const guard = float32(-12345.5) // fills the slack after each matrix and between C's rows

// testCase is one product, with stored strides pad floats wider than needed.
type testCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	pad            int
}

func (tc testCase) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,m=%d,n=%d,k=%d,alpha=%g,beta=%g,pad=%d", tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.pad)
}

// check runs one case through Sgemm with threads goroutines and compares
// with sgemmRef: relative to Σ|a·b| + |beta·c|, within a few ulps per
// term, no write outside C's m×n window, and C not read when beta == 0.
func check(t *testing.T, r *rand.Rand, tc testCase, threads int) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := max(ac, 1)+tc.pad, max(bc, 1)+tc.pad, max(tc.n, 1)+tc.pad
	const tail = 17
	a := randMat(r, ar*lda+tail)
	b := randMat(r, br*ldb+tail)
	c := randMat(r, tc.m*ldc+tail)
	for i := range tc.m {
		for j := tc.n; j < ldc; j++ {
			c[i*ldc+j] = guard
		}
	}
	for i := tc.m * ldc; i < len(c); i++ {
		c[i] = guard
	}
	want := append([]float32(nil), c...)
	sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
	if tc.beta == 0 {
		for i := range tc.m {
			for j := range tc.n {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	Sgemm(threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	for i := range tc.m {
		for j := range ldc {
			got, w := c[i*ldc+j], want[i*ldc+j]
			if j >= tc.n {
				if got != guard {
					t.Fatalf("%v threads=%d: C[%d][%d] (past the row) = %v, want guard untouched", tc, threads, i, j, got)
				}
				continue
			}
			// Bound: k products of magnitude <= 1 each, plus beta·c.
			tol := 1e-6 * float64(tc.k+4) * (math.Abs(float64(tc.alpha)) + math.Abs(float64(tc.beta)) + 1)
			if math.IsNaN(float64(got)) || math.Abs(float64(got-w)) > tol {
				t.Fatalf("%v threads=%d: C[%d][%d] = %v, want %v (tol %.3g)", tc, threads, i, j, got, w, tol)
			}
		}
	}
	for i := tc.m * ldc; i < len(c); i++ {
		if c[i] != guard {
			t.Fatalf("%v threads=%d: guard after C at %d = %v", tc, threads, i-tc.m*ldc, c[i])
		}
	}
}

// randMat returns n floats uniform in [-1, 1).
func randMat(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = 2*r.Float32() - 1
	}
	return x
}

// forEachISA runs f once with each micro-kernel this machine has, with
// products split over goroutines however small they are.
func forEachISA(t *testing.T, f func(t *testing.T)) {
	defer SetISA("")
	defer func(w int) { minWorkPerThread = w }(minWorkPerThread)
	minWorkPerThread = 1
	for _, name := range ISAs() {
		if err := SetISA(name); err != nil {
			t.Fatal(err)
		}
		t.Run(name, f)
	}
}

var oddSizes = []int{1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 257}

// TestSgemmSizes sweeps every odd size over one dimension at a time (the
// others moderate), all four transpose combinations, with padded strides.
func TestSgemmSizes(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, s := range oddSizes {
			for tr := range 4 {
				tA, tB := tr&1 != 0, tr&2 != 0
				for _, dims := range [][3]int{{s, 37, 29}, {35, s, 23}, {13, 41, s}} {
					check(t, r, testCase{transA: tA, transB: tB, m: dims[0], n: dims[1], k: dims[2], alpha: 1, beta: 0, pad: s % 3}, 1+(s+tr)%3)
				}
			}
		}
	})
}

// TestSgemmSquare covers square products of the odd sizes, where every
// blocking level (kc, mc, nc) and edge tile is crossed.
func TestSgemmSquare(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, s := range oddSizes {
			tr := s % 4
			check(t, r, testCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s, n: s, k: s, alpha: 0.5, beta: 1, pad: 1}, 2)
		}
		// Crossing nc (1024) and kc (256) and mc (480) at once.
		check(t, r, testCase{m: 500, n: 1040, k: 300, alpha: 1, beta: 0}, 1)
		check(t, r, testCase{transA: true, transB: true, m: 491, n: 1029, k: 513, alpha: -1, beta: 2}, 3)
	})
}

// TestSgemmAlphaBeta covers alpha and beta values, threads 1, 2 and 3, and
// the direct path for tiny products.
func TestSgemmAlphaBeta(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, ab := range [][2]float32{{1, 0}, {1, 1}, {2, 0}, {-0.5, 1}, {1, -1}, {0.25, 3}, {0, 0}, {0, 2}, {1, float32(math.Copysign(0, -1))}} {
			for _, threads := range []int{1, 2, 3} {
				for tr := range 4 {
					for _, d := range [][3]int{{4, 5, 6}, {70, 90, 50}, {130, 40, 33}, {20, 200, 0}} {
						check(t, r, testCase{transA: tr&1 != 0, transB: tr&2 != 0, m: d[0], n: d[1], k: d[2], alpha: ab[0], beta: ab[1], pad: 2}, threads)
					}
				}
			}
		}
	})
}

// TestSgemmEmpty: m or n zero touches nothing; k zero scales C.
func TestSgemmEmpty(t *testing.T) {
	c := []float32{1, 2, 3}
	Sgemm(1, false, false, 0, 3, 5, 1, nil, 5, make([]float32, 15), 3, 0, c, 3)
	Sgemm(1, false, false, 1, 0, 5, 1, make([]float32, 5), 5, nil, 1, 0, c, 1)
	if c[0] != 1 || c[1] != 2 || c[2] != 3 {
		t.Fatalf("empty product wrote C: %v", c)
	}
	Sgemm(1, false, false, 1, 3, 0, 1, nil, 1, nil, 3, 2, c, 3)
	if c[0] != 2 || c[1] != 4 || c[2] != 6 {
		t.Fatalf("k=0, beta=2: C = %v, want [2 4 6]", c)
	}
}

// TestSgemmShortPanics: a slice shorter than its shape panics.
func TestSgemmShortPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short C")
		}
	}()
	Sgemm(1, false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 15), 4)
}

// TestSgemmStridedBatched compares each product of a batch with Sgemm.
func TestSgemmStridedBatched(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const m, n, k, batch = 33, 20, 17, 5
	for _, threads := range []int{1, 2, 3, 8} {
		a, b := randMat(r, batch*m*k), randMat(r, batch*n*k)
		c := randMat(r, batch*m*n)
		want := append([]float32(nil), c...)
		for i := range batch {
			sgemmRef(false, true, m, n, k, 1.5, a[i*m*k:], k, b[i*n*k:], k, 0.5, want[i*m*n:], n)
		}
		SgemmStridedBatched(threads, false, true, m, n, k, 1.5, a, k, m*k, b, k, n*k, 0.5, c, n, m*n, batch)
		for i := range c {
			if math.Abs(float64(c[i]-want[i])) > 1e-4 {
				t.Fatalf("threads=%d: C[%d] = %v, want %v", threads, i, c[i], want[i])
			}
		}
	}
}

// TestSetISA: unknown names are refused and leave the kernel as it was.
func TestSetISA(t *testing.T) {
	defer SetISA("")
	before := ISA()
	if err := SetISA("sse9"); err == nil {
		t.Fatal("SetISA(sse9) = nil, want an error")
	}
	if ISA() != before {
		t.Fatalf("ISA() = %q after a failed SetISA, want %q", ISA(), before)
	}
	if got := ISAs(); got[len(got)-1] != "go" {
		t.Fatalf("ISAs() = %v, want the pure-Go kernel last", got)
	}
}
