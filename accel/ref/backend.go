package ref

import (
	"github.com/domainflow/domainflow/accel"
)

func init() {
	accel.Register("ref", func(threads int) (accel.Backend, error) { return New(), nil })
}

// Backend is the reference accel.Backend: every method is the float32
// instantiation of the generic kernel of the same name, single-threaded.
type Backend struct{}

var _ accel.Backend = (*Backend)(nil)

// New returns the reference backend. It takes no thread count: the
// reference kernels run on the calling goroutine.
func New() *Backend { return &Backend{} }

// Name returns "ref".
func (*Backend) Name() string { return "ref" }

// Threads returns 1.
func (*Backend) Threads() int { return 1 }

// Sgemm runs the float32 Sgemm kernel.
func (*Backend) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmStridedBatched runs the float32 SgemmStridedBatched kernel.
func (*Backend) SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	SgemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
}

// MatmulForward runs the float32 MatmulForward kernel.
func (*Backend) MatmulForward(out, inp, weight, bias []float32, N, C, OC int) {
	MatmulForward(out, inp, weight, bias, N, C, OC)
}

// MatmulBackward runs the float32 MatmulBackward kernel.
func (*Backend) MatmulBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	MatmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
}

// LayerNormForward runs the float32 LayerNormForward kernel.
func (*Backend) LayerNormForward(out, mean, rstd, inp, weight, bias []float32, N, C int) {
	LayerNormForward(out, mean, rstd, inp, weight, bias, N, C)
}

// LayerNormBackward runs the float32 LayerNormBackward kernel.
func (*Backend) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int) {
	LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C)
}

// GELUForward runs the float32 GELUForward kernel.
func (*Backend) GELUForward(out, inp []float32) { GELUForward(out, inp) }

// GELUBackward runs the float32 GELUBackward kernel.
func (*Backend) GELUBackward(dinp, inp, dout []float32) { GELUBackward(dinp, inp, dout) }

// ResidualForward runs the float32 ResidualForward kernel.
func (*Backend) ResidualForward(out, a, b []float32) { ResidualForward(out, a, b) }

// Accumulate runs the float32 Accumulate kernel.
func (*Backend) Accumulate(dst, src []float32) { Accumulate(dst, src) }

// AttentionForward runs the float32 AttentionForward kernel.
func (*Backend) AttentionForward(out, preatt, att, inp []float32, B, T, C, NH int) {
	AttentionForward(out, preatt, att, inp, B, T, C, NH)
}

// AttentionBackward runs the float32 AttentionBackward kernel.
func (*Backend) AttentionBackward(dinp, dpreatt, datt, dout, inp, att []float32, B, T, C, NH int) {
	AttentionBackward(dinp, dpreatt, datt, dout, inp, att, B, T, C, NH)
}

// SoftmaxCrossEntropyForward runs the float32 SoftmaxCrossEntropyForward kernel.
func (*Backend) SoftmaxCrossEntropyForward(losses, probs, logits []float32, targets []int32, N, V int) {
	SoftmaxCrossEntropyForward(losses, probs, logits, targets, N, V)
}

// SoftmaxCrossEntropyBackward runs the float32 SoftmaxCrossEntropyBackward kernel.
func (*Backend) SoftmaxCrossEntropyBackward(dlogits, probs []float32, targets []int32, dlosses []float32, N, V int) {
	SoftmaxCrossEntropyBackward(dlogits, probs, targets, dlosses, N, V)
}

// AdamW runs the float32 AdamW kernel.
func (*Backend) AdamW(params, grads, m, v []float32, t int, lr, beta1, beta2, eps, weightDecay float32) {
	AdamW(params, grads, m, v, t, lr, beta1, beta2, eps, weightDecay)
}

// SumSquares runs the float32 SumSquares kernel.
func (*Backend) SumSquares(x []float32) float64 { return SumSquares(x) }

// Scale runs the float32 Scale kernel.
func (*Backend) Scale(x []float32, s float32) { Scale(x, s) }

// SparseDense runs the float32 SparseDense kernel.
func (*Backend) SparseDense(out []float32, indptr []int64, indices []int32, values []float32, rows int, denseT []float32, d, n int) {
	SparseDense(out, indptr, indices, values, rows, denseT, d, n)
}

// SparseDenseT runs the float32 SparseDenseT kernel.
func (*Backend) SparseDenseT(out []float32, indptr []int64, indices []int32, values []float32, rows int, dense []float32, n, d int) {
	SparseDenseT(out, indptr, indices, values, rows, dense, n, d)
}

// DenseDenseT runs the float32 DenseDenseT kernel.
func (*Backend) DenseDenseT(out, x, y []float32, m, n, d int) { DenseDenseT(out, x, y, m, n, d) }

// SquaredDistances runs the float32 SquaredDistances kernel.
func (*Backend) SquaredDistances(out, x, xnorm, y, ynorm []float32, m, n, d int) {
	SquaredDistances(out, x, xnorm, y, ynorm, m, n, d)
}

// RowNorms runs the float32 RowNorms kernel.
func (*Backend) RowNorms(out, x []float32, m, d int) { RowNorms(out, x, m, d) }

// ArgminRows runs the float32 ArgminRows kernel.
func (*Backend) ArgminRows(idx []int32, val []float32, x []float32, m, n int) {
	ArgminRows(idx, val, x, m, n)
}

// TopKRows runs the float32 TopKRows kernel.
func (*Backend) TopKRows(idx []int32, val []float32, x []float32, m, n, k int) {
	TopKRows(idx, val, x, m, n, k)
}
