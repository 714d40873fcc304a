// LSA: latent semantic analysis, the c-BTM document embedding. tf-idf rows are
// projected onto the top right singular vectors of the fitted tf-idf matrix and
// L2 normalized (scikit-learn's TruncatedSVD(algorithm="randomized") followed
// by Normalizer).
//
// The solver is the randomized SVD of Halko, Martinsson and Tropp (2011) in
// the form scikit-learn's randomized_svd runs it: a Gaussian test matrix,
// power (subspace) iterations with an LU normalization between them, a QR at
// the end, and a Rayleigh-Ritz step on the sampled subspace. In exact
// arithmetic the result equals scikit-learn's for the same test matrix; the
// random streams differ, so numbers match to the accuracy of the method, not
// bit for bit.
//
// It is not a general sparse SVD: it is built for the c-BTM shape (a few
// thousand documents by 10⁵–10⁶ terms, d ≈ 100) where the sparse products
// dominate, and it keeps every dense factorization on the small side.
//
// Dimension legend. The solver works on an operator M of shape p×q with p ≤ q:
// M = X when X has no more rows than columns (the usual case), M = Xᵀ
// otherwise. k = Dims + Oversamples sample vectors (at most p), d = Dims.
// Y and W are p×k row-major float64; the sparse matrices stay float32.

package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// LSAConfig configures FitLSA. The zero value gives c-BTM's settings
// (TruncatedSVD(100, algorithm="randomized", n_iter=5) + Normalizer).
type LSAConfig struct {
	// Dims is the number of output dimensions. Default 100.
	Dims int
	// PowerIters is the number of power iterations, each one pass of X·Xᵀ
	// over the sample vectors. 0 selects the default; a negative value
	// means none. Default 5 (TruncatedSVD's n_iter).
	PowerIters int
	// Oversamples is the number of sample vectors beyond Dims. 0 selects
	// the default; a negative value means none. Default 10.
	Oversamples int
	// Seed seeds the Gaussian test matrix. The fit is a function of the
	// input and Seed only, whatever Workers is. Default 0.
	Seed uint64
	// Workers bounds the goroutines of the sparse kernels. Default
	// runtime.GOMAXPROCS(0).
	Workers int
	// NoNorm makes Project return X·Vᵀ as it is (TruncatedSVD.transform).
	// Default false: rows are scaled to unit L2 norm, as c-BTM does.
	NoNorm bool
	// ClampDims fits min(Dims, rows, columns) dimensions when the sample
	// has fewer documents or terms than Dims, instead of failing. The
	// fitted LSA's Dim says how many it got.
	ClampDims bool
}

func (c LSAConfig) dims() int {
	if c.Dims == 0 {
		return 100
	}
	return c.Dims
}

func (c LSAConfig) powerIters() int {
	switch {
	case c.PowerIters == 0:
		return 5
	case c.PowerIters < 0:
		return 0
	}
	return c.PowerIters
}

func (c LSAConfig) oversamples() int {
	switch {
	case c.Oversamples == 0:
		return 10
	case c.Oversamples < 0:
		return 0
	}
	return c.Oversamples
}

func (c LSAConfig) workers() int {
	if c.Workers <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return c.Workers
}

// LSA projects sparse tf-idf rows onto the top singular directions of the
// matrix it was fitted on.
//
// FitLSA fits one; NewLSA rebuilds one from saved Components and Singular.
// Project is safe for concurrent use. Components and Singular must not be
// modified after construction: Project reads a transposed copy of
// Components made then.
//
// Sign convention: each row of Components is flipped so that its entry of
// largest absolute value (the first such, in column order) is positive, as
// scikit-learn's svd_flip(u_based_decision=False) does. Saved states are
// therefore reproducible. If X has fewer than Dims numerically nonzero
// singular values, the remaining rows of Components are zero and their
// singular values 0.
type LSA struct {
	// Config is the configuration of the fit, with Dims filled in.
	Config LSAConfig
	// Components is Dims × Cols: row k is the k-th right singular vector
	// (scikit-learn's components_).
	Components *Dense
	// Singular holds the Dims singular values, descending.
	Singular []float32

	proj []float32 // Cols × Dims: Componentsᵀ, the layout Project gathers from
}

// FitLSA fits LSA on x (one row per document), using cfg's defaults for
// zero fields. It fails on an invalid or empty matrix and when Dims exceeds
// min(rows, cols). ctx cancels the fit between and inside the passes.
func FitLSA(ctx context.Context, x *CSR, cfg LSAConfig) (*LSA, error) {
	l, _, err := fitLSA(ctx, x, cfg, lsaShardBudget, false)
	return l, err
}

// FitProjectLSA is FitLSA followed by Project(x), as scikit-learn's
// fit_transform: when x has no more rows than columns the projection of
// x's own rows comes from the fit's small factors (U·Σ) instead of another
// pass over x. It equals Project(x) to float32 rounding.
func FitProjectLSA(ctx context.Context, x *CSR, cfg LSAConfig) (*LSA, *Dense, error) {
	l, xv, err := fitLSA(ctx, x, cfg, lsaShardBudget, true)
	if err != nil {
		return nil, nil, err
	}
	if xv == nil {
		xv, err = l.Project(ctx, x)
		return l, xv, err
	}
	if !l.Config.NoNorm {
		for i := range xv.Rows {
			normalizeL2(xv.Row(i))
		}
	}
	return l, xv, nil
}

// NewLSA rebuilds a fitted LSA from saved state: components is Dims × Cols
// and singular has Dims values. cfg.Dims is set to Dims; cfg.Workers and
// cfg.NoNorm govern Project.
func NewLSA(cfg LSAConfig, components *Dense, singular []float32) (*LSA, error) {
	if components == nil {
		return nil, fmt.Errorf("embed: lsa: nil components")
	}
	d, n := components.Rows, components.Cols
	if d < 1 || n < 1 || len(components.Data) != d*n {
		return nil, fmt.Errorf("embed: lsa: components are %d×%d with %d values", d, n, len(components.Data))
	}
	if len(singular) != d {
		return nil, fmt.Errorf("embed: lsa: %d singular values for %d components", len(singular), d)
	}
	if cfg.Dims != 0 && cfg.Dims != d {
		return nil, fmt.Errorf("embed: lsa: config asks for %d dims, components have %d", cfg.Dims, d)
	}
	for i, s := range singular {
		if !(s >= 0) || math.IsInf(float64(s), 0) || (i > 0 && s > singular[i-1]) {
			return nil, fmt.Errorf("embed: lsa: singular values must be finite, nonnegative and descending (value %d is %g)", i, s)
		}
	}
	cfg.Dims = d
	proj := make([]float32, n*d)
	if err := lsaTranspose32(context.Background(), cfg.workers(), proj, components.Data, d, n); err != nil {
		return nil, err
	}
	return &LSA{Config: cfg, Components: components, Singular: singular, proj: proj}, nil
}

// Dim is the number of output dimensions.
func (l *LSA) Dim() int { return l.Components.Rows }

// Project returns x·Componentsᵀ (rows × Dims), with each row scaled to unit
// L2 norm unless Config.NoNorm; a zero row stays zero. x must have the
// columns the model was fitted on.
func (l *LSA) Project(ctx context.Context, x *CSR) (*Dense, error) {
	if x == nil {
		return nil, fmt.Errorf("embed: lsa: project: nil matrix")
	}
	if x.Cols != l.Components.Cols {
		return nil, fmt.Errorf("embed: lsa: project: matrix has %d columns, the model was fitted on %d", x.Cols, l.Components.Cols)
	}
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("embed: lsa: project: %w", err)
	}
	d := l.Dim()
	out := NewDense(x.Rows, d)
	if err := lsaGatherRows(ctx, l.Config.workers(), out.Data, x, l.proj, d); err != nil {
		return nil, err
	}
	if !l.Config.NoNorm {
		for i := range out.Rows {
			normalizeL2(out.Row(i))
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Fit

// lsaShardBudget bounds the memory of the fused X·Xᵀ pass: each of its
// shards owns a p×k float64 partial result.
const (
	lsaShardBudget = 64 << 20
	lsaMaxShards   = 16
	lsaMinShards   = 4 // fewer than this and the two-pass product is used
)

// fitLSA is FitLSA with the fused pass's memory budget as a parameter, so
// that tests can force either product. With wantXV, a wide x also gets
// x·Componentsᵀ (unnormalized) from the fit's factors.
func fitLSA(ctx context.Context, x *CSR, cfg LSAConfig, shardBudget int, wantXV bool) (*LSA, *Dense, error) {
	if x == nil {
		return nil, nil, fmt.Errorf("embed: lsa: nil matrix")
	}
	if err := x.Validate(); err != nil {
		return nil, nil, fmt.Errorf("embed: lsa: %w", err)
	}
	if x.Rows == 0 || x.Cols == 0 || x.NNZ() == 0 {
		return nil, nil, fmt.Errorf("embed: lsa: empty matrix (%d×%d, %d nonzeros)", x.Rows, x.Cols, x.NNZ())
	}
	d := cfg.dims()
	if d < 1 {
		return nil, nil, fmt.Errorf("embed: lsa: Dims is %d, want at least 1", d)
	}
	if d > min(x.Rows, x.Cols) && cfg.ClampDims {
		d = min(x.Rows, x.Cols)
	}
	if d > min(x.Rows, x.Cols) {
		return nil, nil, fmt.Errorf("embed: lsa: Dims %d exceeds min(rows, cols) of a %d×%d matrix; fit on more documents or ask for fewer dims", d, x.Rows, x.Cols)
	}
	cfg.Dims = d
	s := newLSASolver(x, cfg, shardBudget)
	res, err := s.solve(ctx, wantXV)
	if err != nil {
		return nil, nil, err
	}
	comps := NewDense(d, x.Cols)
	if err := lsaTranspose32(ctx, s.workers, comps.Data, res.proj, x.Cols, d); err != nil {
		return nil, nil, err
	}
	return &LSA{Config: cfg, Components: comps, Singular: res.sing, proj: res.proj}, res.xv, nil
}

// lsaSolver holds one fit: the operator M (p×q, p ≤ q) in the layouts the
// passes read, and the scratch they reuse.
type lsaSolver struct {
	cfg     LSAConfig
	workers int
	p, q    int
	k, d    int
	wide    bool // M = X; otherwise M = Xᵀ
	byCol   *CSR // M's columns as rows, q×p: Xᵀ when wide, X itself otherwise
	byRow   *CSR // M's rows, p×q; only for the two-pass product

	// fused pass
	shards []lsaShard
	parts  [][]float64 // one p×k partial per shard
	// two-pass product
	z []float32 // Mᵀ·Y, q×k
}

// lsaShard is a range of M's columns (rows of byCol) with its own partial
// result; the shards are fixed by the matrix, not by Workers, and summed in
// order, so the result does not depend on scheduling.
type lsaShard struct{ lo, hi int }

func newLSASolver(x *CSR, cfg LSAConfig, shardBudget int) *lsaSolver {
	s := &lsaSolver{cfg: cfg, workers: cfg.workers(), d: cfg.dims()}
	s.wide = x.Rows <= x.Cols
	if s.wide {
		s.p, s.q = x.Rows, x.Cols
		s.byCol = lsaTransposeCSR(x)
	} else {
		s.p, s.q = x.Cols, x.Rows
		s.byCol = x
	}
	s.k = min(s.d+cfg.oversamples(), s.p)

	nShards := min(shardBudget/(s.p*s.k*8), lsaMaxShards, s.q)
	if nShards >= lsaMinShards {
		s.shards = lsaSplitByNNZ(s.byCol, nShards)
		s.parts = make([][]float64, len(s.shards))
		for i := range s.parts {
			s.parts[i] = make([]float64, s.p*s.k)
		}
	} else {
		if s.wide {
			s.byRow = x
		} else {
			s.byRow = lsaTransposeCSR(x)
		}
		s.z = make([]float32, s.q*s.k)
	}
	return s
}

// lsaResult is what a fit computes.
type lsaResult struct {
	proj []float32 // X's top right singular vectors, Cols × Dims, sign-fixed
	sing []float32 // their singular values
	xv   *Dense    // X·V (Rows × Dims, signs as proj) when asked for and X is wide
}

// solve runs the randomized SVD.
func (s *lsaSolver) solve(ctx context.Context, wantXV bool) (*lsaResult, error) {
	p, k := s.p, s.k

	// Gaussian test matrix Ω (p×k), sampled in M's small dimension as
	// scikit-learn does after transposing a wide matrix.
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 0x6c7361)) // "lsa"
	y := make([]float64, p*k)
	for i := range y {
		y[i] = rng.NormFloat64()
	}
	w := make([]float64, p*k)

	// Power iterations: Y ← normalize(M·Mᵀ·Y). LU between iterations (as
	// scikit-learn's "auto" normalizer), QR after the last so that the
	// Rayleigh-Ritz step starts from an orthonormal basis.
	iters := s.cfg.powerIters()
	lu := newLSALU(p, k)
	qr := newLSAQR(p, k)
	for it := range iters {
		if err := s.apply(ctx, w, y); err != nil {
			return nil, err
		}
		if it < iters-1 {
			lu.permutedL(y, w)
		} else {
			qr.q(y, w)
		}
	}

	// Rayleigh-Ritz on span(Z), Z = Mᵀ·Y (q×k, never formed), the subspace
	// scikit-learn's range finder returns: with W = M·Z = M·Mᵀ·Y, Zᵀ·Z = Yᵀ·W
	// and M·Z = W, so the SVD of M restricted to span(Z) needs only p×k
	// matrices.
	if err := s.apply(ctx, w, y); err != nil {
		return nil, err
	}
	gram := lsaSymTN(y, w, p, k) // Zᵀ·Z

	// An orthonormal basis of span(Z) is Z·T with T = E·μ^(-1/2) from the
	// eigendecomposition Zᵀ·Z = E·diag(μ)·Eᵀ, dropping directions with μ at
	// rounding level (X·Xᵀ is singular there).
	var eig mat.EigenSym
	if !eig.Factorize(gram, true) {
		return nil, fmt.Errorf("embed: lsa: eigendecomposition of the %d×%d Gram matrix did not converge", k, k)
	}
	mu := eig.Values(nil)
	var e mat.Dense
	eig.VectorsTo(&e)
	muMax := mu[len(mu)-1]
	var keep []int
	for j := len(mu) - 1; j >= 0; j-- {
		if muMax > 0 && mu[j] > muMax*1e-12 {
			keep = append(keep, j)
		}
	}
	res := &lsaResult{proj: make([]float32, s.xCols()*s.d), sing: make([]float32, s.d)}
	if wantXV && s.wide {
		res.xv = NewDense(p, s.d)
	}
	r := len(keep)
	if r == 0 {
		return res, nil // X has only explicit zeros
	}
	t := mat.NewDense(k, r, nil)
	for c, j := range keep {
		inv := 1 / math.Sqrt(mu[j])
		for i := range k {
			t.Set(i, c, e.At(i, j)*inv)
		}
	}

	// B = M·Z·T = W·T (p×r) is M on that basis: its singular values are M's
	// on span(Z), its right singular vectors F rotate Z·T onto M's right
	// singular vectors, its left ones are M's left singular vectors.
	var b mat.Dense
	b.Mul(mat.NewDense(p, k, w), t)
	var svd mat.SVD
	kind := mat.SVDThinV
	if !s.wide {
		kind |= mat.SVDThinU
	}
	if !svd.Factorize(&b, kind) {
		return nil, fmt.Errorf("embed: lsa: SVD of the %d×%d projected matrix did not converge", p, r)
	}
	sv := svd.Values(nil)
	dd := min(s.d, r) // directions past r stay zero
	for i := range dd {
		res.sing[i] = float32(sv[i])
	}
	var f mat.Dense
	svd.VTo(&f)
	fd := f.Slice(0, r, 0, dd)

	if s.wide {
		// X's right singular vectors are M's: V = Z·T·F = Mᵀ·(Y·T·F).
		var c, yc mat.Dense
		c.Mul(t, fd)
		yc.Mul(mat.NewDense(p, k, y), &c)
		v := make([]float64, p*s.d)
		for i := range p {
			for j := range dd {
				v[i*s.d+j] = yc.At(i, j)
			}
		}
		if err := lsaGatherRows(ctx, s.workers, res.proj, s.byCol, v, s.d); err != nil {
			return nil, err
		}
	} else {
		// X's right singular vectors are M's left ones, B's left ones.
		var u mat.Dense
		svd.UTo(&u)
		for i := range p {
			for j := range dd {
				res.proj[i*s.d+j] = float32(u.At(i, j))
			}
		}
	}
	sign, err := lsaFlipSigns(ctx, s.workers, res.proj, s.xCols(), s.d)
	if err != nil {
		return nil, err
	}
	if res.xv != nil {
		// X·V = M·Z·T·F = B·F = U·Σ.
		var bf mat.Dense
		bf.Mul(&b, fd)
		for i := range p {
			row := res.xv.Row(i)
			for j := range dd {
				row[j] = float32(bf.At(i, j)) * sign[j]
			}
		}
	}
	return res, nil
}

// xCols is the number of columns of X.
func (s *lsaSolver) xCols() int {
	if s.wide {
		return s.q
	}
	return s.p
}

// apply sets w = M·Mᵀ·y (p×k).
func (s *lsaSolver) apply(ctx context.Context, w, y []float64) error {
	if s.shards != nil {
		return s.applyFused(ctx, w, y)
	}
	if err := lsaGatherRows(ctx, s.workers, s.z, s.byCol, y, s.k); err != nil {
		return err
	}
	return lsaGatherRows(ctx, s.workers, w, s.byRow, s.z, s.k)
}

// applyFused computes w = Σ_j m_j·(m_jᵀ·y) over M's columns m_j in one pass
// over byCol: gather z = m_jᵀ·y (k values) from rows of y, then scatter
// m_j·zᵀ into the shard's partial result. Both touch only p×k matrices,
// which stay in cache, where the two-pass product streams a q×k one.
func (s *lsaSolver) applyFused(ctx context.Context, w, y []float64) error {
	k := s.k
	err := lsaParallel(ctx, s.workers, len(s.shards), func(sh int) {
		part := s.parts[sh]
		clear(part)
		z := make([]float64, k)
		for j := s.shards[sh].lo; j < s.shards[sh].hi; j++ {
			idx, val := s.byCol.Row(j)
			if len(idx) == 0 {
				continue
			}
			clear(z)
			lsaAccumRow(z, idx, val, y, k)
			for t, i := range idx {
				floats.AddScaled(part[int(i)*k:int(i)*k+k], float64(val[t]), z)
			}
		}
	})
	if err != nil {
		return err
	}
	// Sum the partials in shard order, in parallel over blocks of w.
	const blk = 1 << 14
	return lsaParallel(ctx, s.workers, (len(w)+blk-1)/blk, func(b int) {
		lo, hi := b*blk, min((b+1)*blk, len(w))
		copy(w[lo:hi], s.parts[0][lo:hi])
		for _, part := range s.parts[1:] {
			floats.Add(w[lo:hi], part[lo:hi])
		}
	})
}

// lsaSplitByNNZ cuts a's rows into n contiguous ranges of about equal
// nonzero counts.
func lsaSplitByNNZ(a *CSR, n int) []lsaShard {
	out := make([]lsaShard, 0, n)
	total := a.Indptr[a.Rows]
	lo := 0
	for b := 1; b <= n; b++ {
		hi := a.Rows
		if b < n {
			target := total * int64(b) / int64(n)
			hi = lo
			for hi < a.Rows && a.Indptr[hi] < target {
				hi++
			}
		}
		out = append(out, lsaShard{lo, hi})
		lo = hi
	}
	return out
}

// lsaFlipSigns applies svd_flip(u_based_decision=False) to the columns of
// v (n×d): each column's entry of largest magnitude (the first one on ties)
// becomes positive. It returns the sign applied to each column.
func lsaFlipSigns(ctx context.Context, workers int, v []float32, n, d int) ([]float32, error) {
	const blk = 1024
	nb := (n + blk - 1) / blk
	best := make([]float32, nb*d) // per block of rows, each column's first largest entry
	err := lsaParallel(ctx, workers, nb, func(b int) {
		bb := best[b*d : b*d+d]
		for i := b * blk; i < min((b+1)*blk, n); i++ {
			for j, x := range v[i*d : i*d+d] {
				if abs32(x) > abs32(bb[j]) {
					bb[j] = x
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	sign := make([]float32, d)
	for j := range sign {
		var m float32
		for b := range nb {
			if x := best[b*d+j]; abs32(x) > abs32(m) {
				m = x
			}
		}
		sign[j] = 1
		if m < 0 {
			sign[j] = -1
		}
	}
	err = lsaParallel(ctx, workers, nb, func(b int) {
		for i := b * blk; i < min((b+1)*blk, n); i++ {
			for j := range v[i*d : i*d+d] {
				v[i*d+j] *= sign[j]
			}
		}
	})
	return sign, err
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// ---------------------------------------------------------------------------
// Small dense factorizations (p×k, on the small side of M)

// lsaLU normalizes with an LU factorization: W = P·L·U, keep P·L (scikit-
// learn's lu(permute_l=True)). Cheaper than QR and enough to keep the power
// iterations from collapsing onto the top direction.
type lsaLU struct {
	a    blas64.General
	ipiv []int
}

func newLSALU(p, k int) *lsaLU {
	return &lsaLU{a: blas64.General{Rows: p, Cols: k, Stride: k, Data: make([]float64, p*k)}, ipiv: make([]int, k)}
}

// permutedL sets dst (p×k) to the P·L factor of w.
func (f *lsaLU) permutedL(dst, w []float64) {
	p, k := f.a.Rows, f.a.Cols
	copy(f.a.Data, w)
	lapack64.Getrf(f.a, f.ipiv) // a singular U still leaves a valid P·L
	for i := range p {
		row := dst[i*k : i*k+k]
		src := f.a.Data[i*k : i*k+k]
		for j := range row {
			switch {
			case j < i:
				row[j] = src[j]
			case j == i:
				row[j] = 1
			default:
				row[j] = 0
			}
		}
	}
	// Getrf applied the interchanges i ↔ ipiv[i] in order; undo them.
	for i := k - 1; i >= 0; i-- {
		if j := f.ipiv[i]; j != i {
			a, b := dst[i*k:i*k+k], dst[j*k:j*k+k]
			for t := range a {
				a[t], b[t] = b[t], a[t]
			}
		}
	}
}

// lsaQR orthonormalizes with a Householder QR.
type lsaQR struct {
	a    blas64.General
	tau  []float64
	work []float64
}

func newLSAQR(p, k int) *lsaQR {
	f := &lsaQR{a: blas64.General{Rows: p, Cols: k, Stride: k, Data: make([]float64, p*k)}, tau: make([]float64, k)}
	q := make([]float64, 1)
	lapack64.Geqrf(f.a, f.tau, q, -1)
	n := int(q[0])
	lapack64.Orgqr(f.a, f.tau, q, -1)
	f.work = make([]float64, max(n, int(q[0]), 1))
	return f
}

// q sets dst (p×k) to the Q factor of w.
func (f *lsaQR) q(dst, w []float64) {
	copy(f.a.Data, w)
	lapack64.Geqrf(f.a, f.tau, f.work, len(f.work))
	lapack64.Orgqr(f.a, f.tau, f.work, len(f.work))
	copy(dst, f.a.Data)
}

// lsaSymTN returns the symmetric part of aᵀ·b for p×k row-major a and b.
func lsaSymTN(a, b []float64, p, k int) *mat.SymDense {
	at := blas64.General{Rows: k, Cols: p, Stride: p, Data: make([]float64, k*p)}
	bt := blas64.General{Rows: k, Cols: p, Stride: p, Data: make([]float64, k*p)}
	for i := range p {
		for j := range k {
			at.Data[j*p+i] = a[i*k+j]
			bt.Data[j*p+i] = b[i*k+j]
		}
	}
	c := blas64.General{Rows: k, Cols: k, Stride: k, Data: make([]float64, k*k)}
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, at, bt, 0, c)
	s := mat.NewSymDense(k, nil)
	for i := range k {
		for j := i; j < k; j++ {
			s.SetSym(i, j, (c.Data[i*k+j]+c.Data[j*k+i])/2)
		}
	}
	return s
}

// ---------------------------------------------------------------------------
// Sparse kernels

// lsaAccumRow adds a sparse row times a dense matrix to acc, in float64:
//
//	for p := range idx { for t := range k { acc[t] += float64(val[p]) * float64(x[int(idx[p])*k+t]) } }
//
// x is row-major with k columns. Four nonzeros are folded per pass over acc.
func lsaAccumRow[X float32 | float64](acc []float64, idx []int32, val []float32, x []X, k int) {
	acc = acc[:k]
	p := 0
	for ; p+4 <= len(idx); p += 4 {
		v0, v1, v2, v3 := float64(val[p]), float64(val[p+1]), float64(val[p+2]), float64(val[p+3])
		x0 := x[int(idx[p])*k:][:len(acc)]
		x1 := x[int(idx[p+1])*k:][:len(acc)]
		x2 := x[int(idx[p+2])*k:][:len(acc)]
		x3 := x[int(idx[p+3])*k:][:len(acc)]
		for t := range acc {
			acc[t] += v0*float64(x0[t]) + v1*float64(x1[t]) + v2*float64(x2[t]) + v3*float64(x3[t])
		}
	}
	for ; p < len(idx); p++ {
		v := float64(val[p])
		xr := x[int(idx[p])*k:][:len(acc)]
		for t := range acc {
			acc[t] += v * float64(xr[t])
		}
	}
}

// lsaGatherRows sets dst = a·x (a.Rows×k, row-major), x being a.Cols×k,
// accumulating each row in float64. Rows are spread over workers; each row is summed by one
// goroutine in index order, so the result does not depend on workers.
func lsaGatherRows[X, D float32 | float64](ctx context.Context, workers int, dst []D, a *CSR, x []X, k int) error {
	rows := a.Rows
	blk := max(1, min(256, rows/(8*max(1, workers))))
	return lsaParallel(ctx, workers, (rows+blk-1)/blk, func(b int) {
		acc := make([]float64, k)
		for i := b * blk; i < min((b+1)*blk, rows); i++ {
			clear(acc)
			idx, val := a.Row(i)
			lsaAccumRow(acc, idx, val, x, k)
			out := dst[i*k : i*k+k]
			for t, v := range acc {
				out[t] = D(v)
			}
		}
	})
}

// lsaTransposeCSR returns aᵀ in CSR form (that is, a in CSC form). Column
// indices of each output row come out increasing.
func lsaTransposeCSR(a *CSR) *CSR {
	t := &CSR{
		Rows: a.Cols, Cols: a.Rows,
		Indptr:  make([]int64, a.Cols+1),
		Indices: make([]int32, a.NNZ()),
		Data:    make([]float32, a.NNZ()),
	}
	for _, c := range a.Indices {
		t.Indptr[c+1]++
	}
	for c := range a.Cols {
		t.Indptr[c+1] += t.Indptr[c]
	}
	next := make([]int64, a.Cols)
	copy(next, t.Indptr[:a.Cols])
	for i := range a.Rows {
		idx, val := a.Row(i)
		for p, c := range idx {
			q := next[c]
			next[c]++
			t.Indices[q] = int32(i)
			t.Data[q] = val[p]
		}
	}
	return t
}

// lsaTranspose32 sets dst (cols×rows) to the transpose of src (rows×cols),
// both row-major, in tiles spread over workers.
func lsaTranspose32(ctx context.Context, workers int, dst, src []float32, rows, cols int) error {
	const tile = 64
	return lsaParallel(ctx, workers, (rows+tile-1)/tile, func(b int) {
		i0 := b * tile
		for j0 := 0; j0 < cols; j0 += tile {
			for i := i0; i < min(i0+tile, rows); i++ {
				for j := j0; j < min(j0+tile, cols); j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	})
}

// lsaParallel runs fn(0) … fn(n-1) on up to workers goroutines, handing out
// indices in order; it returns once all started calls have returned. If ctx
// is cancelled, no further calls start and ctx's error is returned.
func lsaParallel(ctx context.Context, workers, n int, fn func(i int)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	workers = max(1, min(workers, n))
	var next atomic.Int64
	run := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n || ctx.Err() != nil {
				return
			}
			fn(i)
		}
	}
	if workers == 1 {
		run()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(run)
		}
		wg.Wait()
	}
	return ctx.Err()
}

// LSAFeaturizer is tf-idf followed by an LSA projection: c-BTM's embedding.
type LSAFeaturizer struct {
	Tfidf *Tfidf
	LSA   *LSA
}

// Dim is the LSA dimension.
func (f *LSAFeaturizer) Dim() int { return f.LSA.Dim() }

// Kind is KindLSA.
func (f *LSAFeaturizer) Kind() Kind { return KindLSA }

// TopTerms names the n terms w, a vector of the LSA space such as a k-means
// centroid, weighs most once taken back to the tf-idf space through the SVD
// basis (w·Components).
func (f *LSAFeaturizer) TopTerms(w []float32, n int) []string {
	c := f.LSA.Components // Dims × terms
	t := make([]float32, c.Cols)
	for k, wk := range w[:min(len(w), c.Rows)] {
		for j, v := range c.Row(k) {
			t[j] += wk * v
		}
	}
	return TopTerms(t, f.Tfidf.Vocabulary, n)
}

// Transform featurizes with tf-idf and projects the rows.
func (f *LSAFeaturizer) Transform(ctx context.Context, texts []string) (Vectors, error) {
	v, err := f.Tfidf.Transform(ctx, texts)
	if err != nil {
		return Vectors{}, err
	}
	d, err := f.LSA.Project(ctx, v.Sparse)
	if err != nil {
		return Vectors{}, err
	}
	return Vectors{Dense: d}, nil
}

// lsaFactory registers KindLSA: tf-idf fitted on a stream, then the SVD
// on its rows (computed at the end, so no rows are reported as they are
// weighed); its state is the vocabulary and idf, and per term its column of
// the SVD basis, with the singular values in the settings.
var lsaFactory = Factory{
	FitStream: func(ctx context.Context, next func() ([]string, error), opt FitOptions) (Featurizer, Vectors, error) {
		t := &Tfidf{Config: opt.Tfidf}
		x, err := t.FitTransformStream(ctx, next)
		if err != nil {
			return nil, Vectors{}, err
		}
		l, err := FitLSA(ctx, x.Sparse, opt.LSA)
		if err != nil {
			return nil, Vectors{}, err
		}
		d, err := l.Project(ctx, x.Sparse)
		if err != nil {
			return nil, Vectors{}, err
		}
		return &LSAFeaturizer{Tfidf: t, LSA: l}, Vectors{Dense: d}, nil
	},
	Settings: func(f Featurizer, set *Settings) error {
		l := f.(*LSAFeaturizer)
		set.Tokenizer = tokenizerSettings(l.Tfidf.Config.Tokenizer)
		set.Tfidf = tfidfSettings(l.Tfidf.Config)
		c := l.LSA.Config
		set.LSA = &LSASettings{Dims: l.LSA.Dim(), PowerIters: c.PowerIters, Oversamples: c.Oversamples, Seed: c.Seed, NoNorm: c.NoNorm, Singular: l.LSA.Singular}
		return nil
	},
	Table: func(f Featurizer) StateTable {
		l := f.(*LSAFeaturizer)
		t := StateTable{Terms: l.Tfidf.Vocabulary, IDF: l.Tfidf.IDF, Component: make([][]float32, len(l.Tfidf.Vocabulary))}
		c := l.LSA.Components // Dims × terms
		for j := range t.Component {
			col := make([]float32, c.Rows)
			for k := range c.Rows {
				col[k] = c.Data[k*c.Cols+j]
			}
			t.Component[j] = col
		}
		return t
	},
	Load: func(set *Settings, t StateTable) (Featurizer, error) {
		if set.Tokenizer == nil || set.Tfidf == nil || set.LSA == nil {
			return nil, errors.New("lsa state without settings")
		}
		tf, err := NewTfidf(set.Tfidf.config(set.Tokenizer.tokenizer()), t.Terms, t.IDF)
		if err != nil {
			return nil, err
		}
		l := set.LSA
		if len(t.Component) != len(t.Terms) {
			return nil, fmt.Errorf("%d components for %d terms", len(t.Component), len(t.Terms))
		}
		comps := NewDense(l.Dims, len(t.Terms))
		for j, col := range t.Component {
			if len(col) != l.Dims {
				return nil, fmt.Errorf("component of term %d has %d values, want %d", j, len(col), l.Dims)
			}
			for k, v := range col {
				comps.Data[k*comps.Cols+j] = v
			}
		}
		lsa, err := NewLSA(LSAConfig{Dims: l.Dims, PowerIters: l.PowerIters, Oversamples: l.Oversamples, Seed: l.Seed, NoNorm: l.NoNorm}, comps, l.Singular)
		if err != nil {
			return nil, err
		}
		return &LSAFeaturizer{Tfidf: tf, LSA: lsa}, nil
	},
}
