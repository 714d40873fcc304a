package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShape is one product timed by BenchmarkSgemm.
type benchShape struct {
	name           string
	transA, transB bool
	m, n, k        int
}

// benchShapes: squares, then the expert model's matmuls (B·T = 2048 rows)
// for the small (C = 128) and base (C = 256) configs: the forward
// [BT,C]·[4C,C]ᵀ and [BT,4C]·[C,4C]ᵀ, the input gradient [BT,4C]·[4C,C],
// and the weight gradient doutᵀ·inp (transposed A, k = BT).
var benchShapes = []benchShape{
	{name: "sq64", m: 64, n: 64, k: 64},
	{name: "attn128x128x32", transB: true, m: 128, n: 128, k: 32},
	{name: "sq128", m: 128, n: 128, k: 128},
	{name: "sq256", m: 256, n: 256, k: 256},
	{name: "sq512", m: 512, n: 512, k: 512},
	{name: "sq1024", m: 1024, n: 1024, k: 1024},
	{name: "small_fwd_2048x512x128", transB: true, m: 2048, n: 512, k: 128},
	{name: "small_fwd_2048x128x512", transB: true, m: 2048, n: 128, k: 512},
	{name: "small_dinp_2048x128x512", m: 2048, n: 128, k: 512},
	{name: "small_dw_512x128x2048", transA: true, m: 512, n: 128, k: 2048},
	{name: "base_fwd_2048x1024x256", transB: true, m: 2048, n: 1024, k: 256},
	{name: "base_fwd_2048x256x1024", transB: true, m: 2048, n: 256, k: 1024},
	{name: "base_dinp_2048x256x1024", m: 2048, n: 256, k: 1024},
	{name: "base_dw_1024x256x2048", transA: true, m: 1024, n: 256, k: 2048},
}

// BenchmarkSgemm times Sgemm with each micro-kernel at 1 and 2 threads
// and reports GFLOP/s (2·m·n·k per call).
func BenchmarkSgemm(b *testing.B) {
	defer SetISA("")
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		ar, ac := s.m, s.k
		if s.transA {
			ar, ac = s.k, s.m
		}
		br, bc := s.k, s.n
		if s.transB {
			br, bc = s.n, s.k
		}
		a, bm, c := randMat(r, ar*ac), randMat(r, br*bc), make([]float32, s.m*s.n)
		for _, isa := range ISAs() {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/t%d", s.name, isa, threads), func(b *testing.B) {
					if err := SetISA(isa); err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						Sgemm(threads, s.transA, s.transB, s.m, s.n, s.k, 1, a, ac, bm, bc, 0, c, s.n)
					}
					b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkNaive is the simple triple loop the small products are compared
// against.
func BenchmarkNaive(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes[:3] {
		lda, ldb := s.k, s.n
		if s.transA {
			lda = s.m
		}
		if s.transB {
			ldb = s.k
		}
		a, bm, c := randMat(r, s.m*s.k), randMat(r, s.k*s.n), make([]float32, s.m*s.n)
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				direct(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGonum times gonum's pure-Go Sgemm on the same shapes, the
// baseline bench/gemm.sh prints next to ours and OpenBLAS. gonum splits a
// product over GOMAXPROCS goroutines: set the thread count with -cpu.
func BenchmarkGonum(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var impl gonum.Implementation
	for _, s := range benchShapes {
		ar, ac := s.m, s.k
		tA, tB := blas.NoTrans, blas.NoTrans
		if s.transA {
			ar, ac, tA = s.k, s.m, blas.Trans
		}
		br, bc := s.k, s.n
		if s.transB {
			br, bc, tB = s.n, s.k, blas.Trans
		}
		a, bm, c := randMat(r, ar*ac), randMat(r, br*bc), make([]float32, s.m*s.n)
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				impl.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, ac, bm, bc, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
