package cpu

import (
	"runtime"
	"sync/atomic"

	"github.com/domainflow/domainflow/accel"
	"github.com/domainflow/domainflow/accel/internal/gemm"
)

func init() {
	accel.Register("cpu", func(threads int) (accel.Backend, error) { return New(threads), nil })
}

// Backend is the fast CPU accel.Backend. A call may use up to Threads
// goroutines; a Backend is for one goroutine at a time (it keeps scratch
// buffers between calls).
type Backend struct {
	threads int
	partial []float64 // SumSquares: one sum per block
	denseT  []float32 // SparseDenseT: the dense matrix transposed

	badIndex atomic.Bool // SparseDenseT: a worker met a bad column index
}

var _ accel.Backend = (*Backend)(nil)

// New returns a cpu backend that uses up to threads goroutines per call
// (threads <= 0: runtime.GOMAXPROCS(0)).
func New(threads int) *Backend {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &Backend{threads: threads}
}

// Name returns "cpu".
func (*Backend) Name() string { return "cpu" }

// Threads returns how many goroutines a call may use.
func (b *Backend) Threads() int { return b.threads }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C with the packed gemm of
// accel/internal/gemm on up to Threads goroutines.
func (b *Backend) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, 0, len(bm), ldb, 0, len(c), ldc, 0, 1)
	gemm.Sgemm(b.threads, transA, transB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

// SgemmStridedBatched runs batch Sgemm calls: parallel over the batch,
// each product on one goroutine, when there are at least as many products
// as threads or they are small (and the C matrices do not overlap);
// otherwise one after another, each on all threads.
func (b *Backend) SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, bm []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, strideA, len(bm), ldb, strideB, len(c), ldc, strideC, batch)
	g := batched{transA, transB, m, n, k, alpha, a, lda, strideA, bm, ldb, strideB, beta, c, ldc, strideC}
	// Overlapping C matrices (strideC below C's span) must run in order.
	disjoint := strideC >= gemmSpan(m, n, ldc)
	if work := m * n * k; disjoint && (batch >= b.threads || work < 1<<18) {
		grain := max(1, (1<<16)/max(work, 1))
		if b.chunks(batch, grain) == 1 {
			g.run(0, batch, 1)
			return
		}
		gp := g // only the parallel path pays for the escaping copy
		b.parallelFor(batch, grain, func(lo, hi int) { gp.run(lo, hi, 1) })
		return
	}
	g.run(0, batch, b.threads)
}

// batched is one SgemmStridedBatched call.
type batched struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda, strideA   int
	b              []float32
	ldb, strideB   int
	beta           float32
	c              []float32
	ldc, strideC   int
}

// run computes matrices [lo, hi), each gemm on threads goroutines.
func (g batched) run(lo, hi, threads int) {
	for i := lo; i < hi; i++ {
		// an empty matrix may sit past the end of its slice
		a, b, c := g.a[min(i*g.strideA, len(g.a)):], g.b[min(i*g.strideB, len(g.b)):], g.c[min(i*g.strideC, len(g.c)):]
		gemm.Sgemm(threads, g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, g.lda, b, g.ldb, g.beta, c, g.ldc)
	}
}

// MatmulForward: out[N,OC] = inp[N,C]·weight[OC,C]ᵀ + bias[OC]. The bias
// is broadcast into out first and the gemm adds onto it (beta = 1).
func (b *Backend) MatmulForward(out, inp, weight, bias []float32, N, C, OC int) {
	need(N >= 0 && C >= 0 && OC >= 0 && len(out) >= N*OC && len(inp) >= N*C && len(weight) >= OC*C && (bias == nil || len(bias) >= OC),
		"cpu: MatmulForward: slice shorter than its shape")
	if N == 0 || OC == 0 {
		return
	}
	var beta float32
	if bias != nil {
		for n := 0; n < N; n++ { // one memory pass; not worth goroutines
			copy(out[n*OC:n*OC+OC], bias[:OC])
		}
		beta = 1
	}
	gemm.Sgemm(b.threads, false, true, N, OC, C, 1, inp, max(C, 1), weight, max(C, 1), beta, out, OC)
}

// MatmulBackward accumulates dinp[N,C] += dout·weight and dweight[OC,C] +=
// doutᵀ·inp (two gemms with beta = 1) and dbias[OC] += Σ_n dout[n,:]
// (parallel over column ranges, rows summed in order).
func (b *Backend) MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	need(N >= 0 && C >= 0 && OC >= 0 && len(dinp) >= N*C && len(dweight) >= OC*C && (dbias == nil || len(dbias) >= OC) &&
		len(dout) >= N*OC && len(inp) >= N*C && len(weight) >= OC*C, "cpu: MatmulBackward: slice shorter than its shape")
	if N == 0 || OC == 0 || C == 0 {
		if dbias != nil && N > 0 {
			b.columnSums(dbias, dout, N, OC)
		}
		return
	}
	gemm.Sgemm(b.threads, false, false, N, C, OC, 1, dout, OC, weight, C, 1, dinp, C)
	gemm.Sgemm(b.threads, true, false, OC, C, N, 1, dout, OC, inp, C, 1, dweight, C)
	if dbias != nil {
		b.columnSums(dbias, dout, N, OC)
	}
}

// columnSums accumulates sum[j] += Σ_n x[n,j] for x[N,M], parallel over
// column ranges; each column adds its rows in order.
func (b *Backend) columnSums(sum, x []float32, N, M int) {
	grain := max(16, grainRow/max(N, 1))
	if b.chunks(M, grain) == 1 {
		columnSums(0, M, sum, x, N, M)
		return
	}
	b.parallelForAligned(M, grain, 8, func(lo, hi int) { columnSums(lo, hi, sum, x, N, M) })
}

func columnSums(lo, hi int, sum, x []float32, N, M int) {
	s := sum[lo:hi]
	for n := 0; n < N; n++ {
		accumulate(s, x[n*M+lo:n*M+hi])
	}
}
