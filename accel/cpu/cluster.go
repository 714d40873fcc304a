package cpu

import (
	"math"
	"sync/atomic"

	"github.com/domainflow/domainflow/accel/internal/gemm"
)

// SparseDenseT: out[rows,n] = S[rows,d]·D[n,d]ᵀ with S in CSR form.
// Parallel over rows. When the matrix has enough entries to pay for it
// (nnz >= d/4 and n >= 2), D is first transposed into a [d,n] scratch
// so that each stored entry S[r,j] adds v·D[:,j] from one contiguous row of
// n floats (8 columns at a time with AVX2, the entries summed in two
// interleaved halves); otherwise each output is a gather over the row's
// entries in stored order. The path depends only on the shapes, so the
// result does not depend on the thread count. Malformed input (indptr
// decreasing or past the entries, a column index outside [0, d)) panics
// on the calling goroutine.
func (b *Backend) SparseDenseT(out []float32, indptr []int64, indices []int32, values []float32, rows int, dense []float32, n, d int) {
	b.spmm(&msgsSparseDenseT, out, indptr, indices, values, rows, dense, nil, n, d)
}

// SparseDense: out[rows,n] = S[rows,d]·DT[d,n] with S in CSR form; the
// dense matrix comes transposed, so no transpose is needed.
func (b *Backend) SparseDense(out []float32, indptr []int64, indices []int32, values []float32, rows int, denseT []float32, d, n int) {
	b.spmm(&msgsSparseDense, out, indptr, indices, values, rows, nil, denseT, n, d)
}

// spmmMsgs are the panic messages of one sparse × dense kernel (constants,
// so that checking allocates nothing).
type spmmMsgs struct{ short, indptr, decreases, index string }

var (
	msgsSparseDenseT = spmmMsgs{"cpu: SparseDenseT: slice shorter than its shape", "cpu: SparseDenseT: indptr out of range of indices and values",
		"cpu: SparseDenseT: indptr decreases", "cpu: SparseDenseT: column index outside [0, d)"}
	msgsSparseDense = spmmMsgs{"cpu: SparseDense: slice shorter than its shape", "cpu: SparseDense: indptr out of range of indices and values",
		"cpu: SparseDense: indptr decreases", "cpu: SparseDense: column index outside [0, d)"}
)

// spmm runs a sparse × dense product with the dense matrix as [n,d] (dense)
// or as [d,n] (denseT).
func (b *Backend) spmm(msg *spmmMsgs, out []float32, indptr []int64, indices []int32, values []float32, rows int, dense, denseT []float32, n, d int) {
	need(rows >= 0 && n >= 0 && d >= 0 && len(out) >= rows*n && len(indptr) >= rows+1 && len(dense)+len(denseT) >= n*d,
		msg.short)
	if rows == 0 || n == 0 {
		return
	}
	nnz := indptr[rows]
	need(indptr[0] >= 0 && nnz >= indptr[0] && nnz <= int64(len(indices)) && nnz <= int64(len(values)),
		msg.indptr)
	for r := 0; r < rows; r++ {
		need(indptr[r] <= indptr[r+1], msg.decreases)
	}
	// The column indices are checked row by row in the workers, just
	// before use (the vector kernel reads without bounds checks); a bad one
	// sets b.badIndex and the panic comes here, after the workers.
	b.badIndex.Store(false)
	s := spmm{indptr: indptr, indices: indices, values: values, dense: dense, dt: denseT, out: out, n: n, d: d, bad: &b.badIndex}
	if denseT == nil && n >= 2 && 4*(nnz-indptr[0]) >= int64(d) {
		if cap(b.denseT) < n*d {
			b.denseT = make([]float32, n*d)
		}
		s.dt = b.denseT[:n*d]
		tgrain := max(64, grainElems/n)
		if b.chunks(d, tgrain) == 1 {
			s.transpose(0, d)
		} else {
			b.parallelFor(d, tgrain, s.transpose)
		}
	}
	work := int(nnz-indptr[0])*n + rows*n
	grain := max(1, int(int64(rows)*grainRow/int64(max(work, 1))))
	if b.chunks(rows, grain) == 1 {
		s.rows(0, rows)
	} else {
		b.parallelFor(rows, grain, s.rows)
	}
	need(!b.badIndex.Load(), msg.index)
}

// spmm is one SparseDenseT call.
type spmm struct {
	indptr     []int64
	indices    []int32
	values     []float32
	dense, out []float32
	dt         []float32 // dense transposed to [d,n], or nil
	n, d       int
	bad        *atomic.Bool // set when a column index is out of range
}

// transpose fills rows [lo, hi) of dt: dt[j,c] = dense[c,j]. The vector
// kernel takes 8×8 blocks; Go does the columns past a multiple of 8 and the
// rows past one.
func (s spmm) transpose(lo, hi int) {
	jv, cv := transposeVec(s.dt, s.dense, s.n, s.d, lo, hi)
	s.transposeGo(lo, jv, cv)
	s.transposeGo(jv, hi, 0)
}

// transposeGo fills dt[j,c] for j in [lo, hi) and c in [c0, n), in tiles
// of 256 columns of dense so that the dt rows being written stay in L1
// while each dense row is read in order.
func (s spmm) transposeGo(lo, hi, c0 int) {
	n, d := s.n, s.d
	for j0 := lo; j0 < hi; j0 += 256 {
		j1 := min(hi, j0+256)
		for c := c0; c < n; c++ {
			src := s.dense[c*d+j0 : c*d+j1]
			dst := s.dt[j0*n+c : (j1-1)*n+c+1]
			for jj, v := range src {
				dst[jj*n] = v
			}
		}
	}
}

// rows computes output rows [lo, hi). (Cutting the columns into blocks
// that keep their rows of dt in L2 was tried and measured slower here.)
func (s spmm) rows(lo, hi int) {
	n, d := s.n, s.d
	for r := lo; r < hi; r++ {
		o := s.out[r*n : r*n+n]
		idx := s.indices[s.indptr[r]:s.indptr[r+1]]
		val := s.values[s.indptr[r]:s.indptr[r+1]]
		val = val[:len(idx)]
		ok := true
		for _, j := range idx {
			ok = ok && uint(j) < uint(d)
		}
		if !ok {
			s.bad.Store(true)
			clear(o)
			continue
		}
		if s.dt != nil {
			clear(o)
			s.segment(o, idx, val)
			continue
		}
		for c := range o {
			row := s.dense[c*d : c*d+d]
			var acc float32
			for p, j := range idx {
				acc += val[p] * row[j]
			}
			o[c] = acc
		}
	}
}

// segment adds to o[c] the sum of val[p]·dt[idx[p], c] over a row's
// entries: the vector kernel for the columns below a multiple of 8, Go for
// the rest.
func (s spmm) segment(o []float32, idx []int32, val []float32) {
	n := s.n
	c0 := spmmRowVec(o, idx, val, s.dt, n)
	if c0 == n {
		return
	}
	rest := o[c0:]
	val = val[:len(idx)]
	for p, j := range idx {
		v := val[p]
		col := s.dt[int(j)*n+c0 : int(j)*n+n]
		col = col[:len(rest)]
		for c := range rest {
			rest[c] += v * col[c]
		}
	}
}

// DenseDenseT: out[m,n] = X[m,d]·Y[n,d]ᵀ, one gemm.
func (b *Backend) DenseDenseT(out, x, y []float32, m, n, d int) {
	need(m >= 0 && n >= 0 && d >= 0 && len(out) >= m*n && len(x) >= m*d && len(y) >= n*d,
		"cpu: DenseDenseT: slice shorter than its shape")
	if m == 0 || n == 0 {
		return
	}
	gemm.Sgemm(b.threads, false, true, m, n, d, 1, x, max(d, 1), y, max(d, 1), 0, out, n)
}

// SquaredDistances: out[m,n] = max(0, xnorm[i] + ynorm[j] - 2·X[i]·Y[j]):
// one gemm for -2·X·Yᵀ, then the norms added and the clamp, parallel over
// rows.
func (b *Backend) SquaredDistances(out, x, xnorm, y, ynorm []float32, m, n, d int) {
	need(m >= 0 && n >= 0 && d >= 0 && len(out) >= m*n && len(x) >= m*d && len(xnorm) >= m && len(y) >= n*d && len(ynorm) >= n,
		"cpu: SquaredDistances: slice shorter than its shape")
	if m == 0 || n == 0 {
		return
	}
	gemm.Sgemm(b.threads, false, true, m, n, d, -2, x, max(d, 1), y, max(d, 1), 0, out, n)
	if b.chunks(m, rowGrain(n)) == 1 {
		addNorms(0, m, out, xnorm, ynorm, n)
		return
	}
	b.parallelFor(m, rowGrain(n), func(lo, hi int) { addNorms(lo, hi, out, xnorm, ynorm, n) })
}

// addNorms sets out[i,j] = max(0, xnorm[i] + ynorm[j] + out[i,j]) for rows
// [lo, hi).
func addNorms(lo, hi int, out, xnorm, ynorm []float32, n int) {
	yn := ynorm[:n]
	for i := lo; i < hi; i++ {
		o := out[i*n : i*n+n]
		o = o[:len(yn)]
		xi := xnorm[i]
		for j, v := range yn {
			d := xi + v + o[j]
			if !(d >= 0) { // clamp, NaN included, without the builtin max
				d = 0
			}
			o[j] = d
		}
	}
}

// RowNorms: out[m] = Σ_j x[i,j]², four float32 accumulators per row,
// parallel over rows.
func (b *Backend) RowNorms(out, x []float32, m, d int) {
	need(m >= 0 && d >= 0 && len(out) >= m && len(x) >= m*d, "cpu: RowNorms: slice shorter than its shape")
	if b.chunks(m, rowGrain(d)) == 1 {
		rowNorms(0, m, out, x, d)
		return
	}
	b.parallelFor(m, rowGrain(d), func(lo, hi int) { rowNorms(lo, hi, out, x, d) })
}

func rowNorms(lo, hi int, out, x []float32, d int) {
	for i := lo; i < hi; i++ {
		row := x[i*d : i*d+d]
		var s0, s1, s2, s3 float32
		j := 0
		for ; j+4 <= d; j += 4 {
			q := row[j : j+4 : j+4]
			s0 += q[0] * q[0]
			s1 += q[1] * q[1]
			s2 += q[2] * q[2]
			s3 += q[3] * q[3]
		}
		for ; j < d; j++ {
			s0 += row[j] * row[j]
		}
		out[i] = (s0 + s1) + (s2 + s3)
	}
}

// ArgminRows: idx[m], val[m] = position and value of each row's minimum of
// x[m,n], ties to the lowest index (a row with n == 0 gives -1 and +Inf).
// Parallel over rows.
func (b *Backend) ArgminRows(idx []int32, val []float32, x []float32, m, n int) {
	need(m >= 0 && n >= 0 && len(idx) >= m && len(val) >= m && len(x) >= m*n, "cpu: ArgminRows: slice shorter than its shape")
	if b.chunks(m, rowGrain(n)) == 1 {
		argminRows(0, m, idx, val, x, n)
		return
	}
	b.parallelFor(m, rowGrain(n), func(lo, hi int) { argminRows(lo, hi, idx, val, x, n) })
}

func argminRows(lo, hi int, idx []int32, val []float32, x []float32, n int) {
	if n == 0 {
		for i := lo; i < hi; i++ {
			idx[i], val[i] = -1, float32(math.Inf(1))
		}
		return
	}
	for i := lo; i < hi; i++ {
		row := x[i*n : i*n+n]
		best, bestv := 0, row[0]
		for j := 1; j < len(row); j++ {
			if v := row[j]; v < bestv {
				best, bestv = j, v
			}
		}
		idx[i], val[i] = int32(best), bestv
	}
}

// TopKRows: idx[m,k], val[m,k] = the k smallest entries of each row of
// x[m,n], ascending, ties to the lowest index. Insertion into the sorted
// output row, O(n·k) per row at worst: meant for small k. Parallel over
// rows.
func (b *Backend) TopKRows(idx []int32, val []float32, x []float32, m, n, k int) {
	need(m >= 0 && k >= 0 && k <= n, "cpu: TopKRows: k must be in [0, n]")
	need(len(idx) >= m*k && len(val) >= m*k && len(x) >= m*n, "cpu: TopKRows: slice shorter than its shape")
	if k == 0 {
		return
	}
	if b.chunks(m, rowGrain(n)) == 1 {
		topKRows(0, m, idx, val, x, n, k)
		return
	}
	b.parallelFor(m, rowGrain(n), func(lo, hi int) { topKRows(lo, hi, idx, val, x, n, k) })
}

func topKRows(lo, hi int, idx []int32, val []float32, x []float32, n, k int) {
	for i := lo; i < hi; i++ {
		iv, vv := idx[i*k:i*k+k], val[i*k:i*k+k]
		vv = vv[:len(iv)]
		cnt := 0
		for j, v := range x[i*n : i*n+n] {
			if cnt == k && !(v < vv[k-1]) {
				continue
			}
			pos := cnt // a new slot, or the last one when full
			if cnt < k {
				cnt++
			} else {
				pos = k - 1
			}
			for pos > 0 && vv[pos-1] > v {
				vv[pos], iv[pos] = vv[pos-1], iv[pos-1]
				pos--
			}
			vv[pos], iv[pos] = v, int32(j)
		}
	}
}
