package cluster

// Balanced k-means (c-BTM's domain discovery), deterministic for a seed.
//
// Dimension legend: N rows, D = Dim, K clusters, T k-means++ trials.
//
// Points are the rows as given (L2-normalized upstream) in R^D with squared
// Euclidean distance ‖x−c‖² = ‖x‖² + ‖c‖² − 2x·c. Centroids are the plain
// means of their points, held in float64 during the fit and NOT
// renormalized (this is k-means on the unit sphere's points, not spherical
// k-means); Model.Centroids are those means rounded to float32.
//
// Parallelism never changes a result: per-row work (dot products, distances)
// is independent of how rows are split among workers, sums over rows are
// taken sequentially in row order, and centroid sums are taken sequentially
// in row order.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/cpu" // the kernels of the distance step
)

// FitConfig configures Fit. The zero value of every field but K selects its
// default.
type FitConfig struct {
	// K is the number of clusters, 1 ≤ K ≤ N. Required.
	K int `json:"k"`
	// Unbalanced selects plain k-means (argmin assignment). Default false:
	// exact balance, every cluster gets ⌊N/K⌋ or ⌈N/K⌉ points (the larger
	// sizes go to the first N%K clusters, see BalancedCaps).
	Unbalanced bool `json:"unbalanced"`
	// MaxIter caps the Lloyd iterations per restart. Default 100.
	MaxIter int `json:"max_iter"`
	// Tol stops a restart when the centroids move, in total squared
	// distance Σ_j ‖c_j − c_j'‖², by at most Tol times the mean variance of
	// the features (scikit-learn's criterion). A restart also stops when no
	// assignment changes, which is the only stop when Tol is 0. On sparse
	// tf-idf the mean variance is tiny, so the default runs Lloyd to
	// convergence in practice. Default 1e-4; negative means 0.
	Tol float64 `json:"tol"`
	// Restarts is the number of independent k-means++ initializations; the
	// one with the lowest objective is kept (the earliest on ties).
	// Default 3.
	Restarts int `json:"restarts"`
	// Seed seeds all randomness. The same Seed and input give a bit-identical
	// Model and assignment whatever Workers is. Default 0.
	Seed uint64 `json:"seed"`
	// Workers is the number of goroutines. Default runtime.GOMAXPROCS(0).
	Workers int `json:"workers"`
	// Backend runs the dot products of the assignment steps (SparseDense
	// for sparse rows, DenseDenseT for dense ones), as accel.Backend runs
	// training. Fit calls it from one goroutine, so a Backend may serve
	// fits one after another but not two at once. Results depend on the
	// backend's arithmetic, not on its thread count. Not saved with a
	// router. Default: the "cpu" backend opened with Workers threads for
	// the fit.
	Backend accel.Backend `json:"-"`
	// Logger, when set, receives one debug record per restart: its
	// k-means++ seed rows, its Lloyd iterations and its objective. Not
	// saved with a router.
	Logger *slog.Logger `json:"-"`
}

func (c FitConfig) maxIter() int {
	if c.MaxIter <= 0 {
		return 100
	}
	return c.MaxIter
}

func (c FitConfig) tol() float64 {
	switch {
	case c.Tol == 0:
		return 1e-4
	case c.Tol < 0:
		return 0
	}
	return c.Tol
}

func (c FitConfig) restarts() int {
	if c.Restarts <= 0 {
		return 3
	}
	return c.Restarts
}

func (c FitConfig) workers() int {
	if c.Workers <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return c.Workers
}

// backend is c.Backend, or the cpu backend with workers threads.
func (c FitConfig) backend(workers int) (accel.Backend, error) {
	if c.Backend != nil {
		return c.Backend, nil
	}
	return accel.Open("cpu", workers)
}

// ErrBadK is returned by Fit when K is not in [1, N].
var ErrBadK = errors.New("cluster: K must be between 1 and the number of rows")

// Fit clusters the rows with k-means++ initialization and Lloyd iterations,
// balanced (exact sizes ⌊N/K⌋..⌈N/K⌉ through BalancedAssign at every
// assignment step) unless cfg.Unbalanced. It returns the model of the best
// restart and the assignment of each row; the model's centroids are the means
// of that assignment, its Sizes the cluster sizes and Inertia the sum of
// squared distances of the rows to their assigned centroids.
//
// In unbalanced mode a cluster left empty takes the point farthest from its
// centroid (among clusters with more than one point). Fit returns ctx's error
// if ctx is done before it finishes.
func Fit(ctx context.Context, x *Rows, cfg FitConfig) (*Model, []int, error) {
	if x == nil {
		return nil, nil, errors.New("cluster: fit: nil rows")
	}
	if err := x.Validate(); err != nil {
		return nil, nil, fmt.Errorf("cluster: fit: %w", err)
	}
	if x.N == 0 {
		return nil, nil, errors.New("cluster: fit: no rows")
	}
	if cfg.K < 1 || cfg.K > x.N {
		return nil, nil, fmt.Errorf("cluster: fit: K=%d with %d rows: %w", cfg.K, x.N, ErrBadK)
	}
	f, err := newFitter(x, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: fit: %w", err)
	}
	var best *Model
	var bestLabels []int
	for r := range cfg.restarts() {
		m, labels, err := f.run(ctx, r)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: fit: %w", err)
		}
		if best == nil || m.Inertia < best.Inertia {
			best, bestLabels = m, labels
		}
	}
	return best, bestLabels, nil
}

// Assign returns for each row its nearest centroid (lowest index on ties) and
// the squared distance to it (clamped at 0). It panics if x.Dim != m.Dim.
func (m *Model) Assign(x *Rows) (domains []int, dist []float32) {
	if x.Dim != m.Dim {
		panic("cluster: Model.Assign: dimension mismatch")
	}
	return m.assignWith(m.prepare(), x)
}

// prepare returns m's centroids in the layout of the distance kernel.
func (m *Model) prepare() *centroids {
	c := make([]float64, len(m.Centroids))
	for i, v := range m.Centroids {
		c[i] = float64(v)
	}
	cn := newCentroids(m.K, m.Dim)
	cn.set(c)
	return cn
}

// preparedModels keeps models prepared for the distance kernel, so that a
// model is converted once, not once per batch (a router's centroids are
// dense: K × Dim values). Safe for concurrent use.
type preparedModels struct {
	mu sync.Mutex
	m  map[*Model]*centroids
}

// get returns m prepared (read only).
func (p *preparedModels) get(m *Model) *centroids {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[*Model]*centroids{}
	}
	cn, ok := p.m[m]
	if !ok {
		cn = m.prepare()
		p.m[m] = cn
	}
	return cn
}

// distancesTo returns the squared distances of every row of x to every
// centroid of cn (row-major, x.N × K).
func distancesTo(cn *centroids, x *Rows) []float64 {
	sq := make([]float64, x.N*cn.m)
	xn := rowNorms(x, runtime.GOMAXPROCS(0))
	distancesExact(sq, x, xn, cn, runtime.GOMAXPROCS(0))
	return sq
}

// assignWith is Assign with m's centroids prepared (cn, read only).
func (m *Model) assignWith(cn *centroids, x *Rows) (domains []int, dist []float32) {
	sq := distancesTo(cn, x)
	domains = make([]int, x.N)
	dist = make([]float32, x.N)
	for i := range x.N {
		j := argmin(sq[i*m.K : (i+1)*m.K])
		domains[i] = j
		dist[i] = float32(max(sq[i*m.K+j], 0))
	}
	return domains, dist
}

// ---------------------------------------------------------------------------
// Kernels: dot products of rows with a few dense vectors, parallel over rows.

// rowChunk is the number of rows handed to a worker at a time.
const rowChunk = 64

// parallelRows calls fn on consecutive row ranges [lo, hi) covering [0, n),
// from up to workers goroutines; fn must only write per-row outputs.
func parallelRows(n, workers int, fn func(lo, hi int)) { parallelFor(n, rowChunk, workers, fn) }

// parallelFor calls fn on the ranges [c*chunk, min((c+1)*chunk, n)) from up
// to workers goroutines, which take the ranges in turn.
func parallelFor(n, chunk, workers int, fn func(lo, hi int)) {
	chunks := (n + chunk - 1) / chunk
	if workers > chunks {
		workers = chunks
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				c := next
				next++
				mu.Unlock()
				if c >= chunks {
					return
				}
				fn(c*chunk, min((c+1)*chunk, n))
			}
		})
	}
	wg.Wait()
}

// centroids holds M dense vectors of dimension D, transposed (ct[d*M+j] is
// coordinate d of vector j) so that a row's nonzeros index contiguous
// M-vectors, and their squared norms.
type centroids struct {
	m, dim int
	ct     []float64 // D×M
	norm   []float64 // M
	c32    []float32 // float32 copy for the kernels (scratch): D×M for sparse rows, M×D for dense
}

func newCentroids(m, dim int) *centroids {
	return &centroids{m: m, dim: dim, ct: make([]float64, dim*m), norm: make([]float64, m)}
}

// set loads M row-major vectors c (M×D).
func (cn *centroids) set(c []float64) {
	m, dim := cn.m, cn.dim
	for j := range m {
		s := 0.0
		for d, v := range c[j*dim : (j+1)*dim] {
			cn.ct[d*m+j] = v
			s += v * v
		}
		cn.norm[j] = s
	}
}

// setRows loads rows idx of x as the vectors (m = len(idx)).
func (cn *centroids) setRows(x *Rows, xn []float64, idx []int) {
	clear(cn.ct)
	m := cn.m
	for j, i := range idx {
		cols, vals := x.Row(i)
		if cols == nil {
			for d, v := range vals {
				cn.ct[d*m+j] = float64(v)
			}
		} else {
			for t, c := range cols {
				cn.ct[int(c)*m+j] = float64(vals[t])
			}
		}
		cn.norm[j] = xn[i]
	}
}

// rowNorms returns ‖x_i‖² for every row.
func rowNorms(x *Rows, workers int) []float64 {
	out := make([]float64, x.N)
	parallelRows(x.N, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			_, vals := x.Row(i)
			s := 0.0
			for _, v := range vals {
				s += float64(v) * float64(v)
			}
			out[i] = s
		}
	})
	return out
}

// distances sets sq[i*M+j] = ‖x_i‖² + ‖c_j‖² − 2 x_i·c_j (N×M). The dot
// products run on be in float32 (sparse × dense-transposed for sparse rows,
// a GEMM for dense ones), whose results do not depend on the thread count;
// the norms and the sum stay in float64.
func distances(be accel.Backend, sq []float64, x *Rows, xn []float64, cn *centroids, workers int) {
	m, dim := cn.m, cn.dim
	if len(cn.c32) != m*dim {
		cn.c32 = make([]float32, m*dim)
	}
	c32 := cn.c32
	dot := make([]float32, x.N*m)
	if x.Sparse() {
		// The centroids as they are stored, [dim, m], in float32.
		for i, v := range cn.ct {
			c32[i] = float32(v)
		}
		be.SparseDense(dot, x.Indptr, x.Indices, x.Values, x.N, c32, dim, m)
	} else {
		for d := range dim {
			for j, v := range cn.ct[d*m : (d+1)*m] {
				c32[j*dim+d] = float32(v)
			}
		}
		be.DenseDenseT(dot, x.Values, c32, x.N, m, dim)
	}
	parallelRows(x.N, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := range m {
				sq[i*m+j] = xn[i] + cn.norm[j] - 2*float64(dot[i*m+j])
			}
		}
	})
}

// distancesExact is distances in float64 throughout: the dot products
// accumulate four coordinates at a time, in column order. It gives the
// reported objective and the assignment of Model.Assign.
func distancesExact(sq []float64, x *Rows, xn []float64, cn *centroids, workers int) {
	m := cn.m
	ct := cn.ct
	parallelRows(x.N, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dot := sq[i*m : (i+1)*m]
			clear(dot)
			cols, vals := x.Row(i)
			t := 0
			if cols == nil {
				for ; t+4 <= len(vals); t += 4 {
					axpy4(dot, vals[t:t+4], ct[t*m:(t+4)*m])
				}
				for ; t < len(vals); t++ {
					axpy(dot, float64(vals[t]), ct[t*m:(t+1)*m])
				}
			} else {
				for ; t+4 <= len(vals); t += 4 {
					c0, c1, c2, c3 := int(cols[t])*m, int(cols[t+1])*m, int(cols[t+2])*m, int(cols[t+3])*m
					axpy4s(dot, vals[t:t+4], ct[c0:c0+m], ct[c1:c1+m], ct[c2:c2+m], ct[c3:c3+m])
				}
				for ; t < len(vals); t++ {
					c := int(cols[t]) * m
					axpy(dot, float64(vals[t]), ct[c:c+m])
				}
			}
			for j := range dot {
				dot[j] = xn[i] + cn.norm[j] - 2*dot[j]
			}
		}
	})
}

// axpy sets dst[j] += w*c[j].
func axpy(dst []float64, w float64, c []float64) {
	c = c[:len(dst)]
	for j := range dst {
		dst[j] += w * c[j]
	}
}

// axpy4 sets dst[j] += w[0]*c[j] + w[1]*c[m+j] + w[2]*c[2m+j] + w[3]*c[3m+j]
// with m = len(dst) (four consecutive rows of a transposed block).
func axpy4(dst []float64, w []float32, c []float64) {
	m := len(dst)
	axpy4s(dst, w, c[:m], c[m:2*m], c[2*m:3*m], c[3*m:4*m])
}

// axpy4s sets dst[j] += w[0]*c0[j] + w[1]*c1[j] + w[2]*c2[j] + w[3]*c3[j].
func axpy4s(dst []float64, w []float32, c0, c1, c2, c3 []float64) {
	w0, w1, w2, w3 := float64(w[0]), float64(w[1]), float64(w[2]), float64(w[3])
	n := len(dst)
	c0, c1, c2, c3 = c0[:n], c1[:n], c2[:n], c3[:n]
	for j := range dst {
		dst[j] += w0*c0[j] + w1*c1[j] + w2*c2[j] + w3*c3[j]
	}
}

func argmin(s []float64) int {
	j := 0
	for t, v := range s {
		if v < s[j] {
			j = t
		}
	}
	return j
}

// ---------------------------------------------------------------------------
// The fit.

type fitter struct {
	x       *Rows
	cfg     FitConfig
	k       int
	workers int
	be      accel.Backend // the distance step's dot products
	xn      []float64     // ‖x_i‖²
	sq      []float64     // N×K squared distances
	cn      *centroids
	// used lists, for sparse rows, the columns with a nonzero in some row
	// (increasing); centroid coordinates elsewhere stay 0. Nil when dense.
	used []int32
	// csc is the sparse rows by column (nil when dense), for the means.
	csc *cscRows
	// spare is the other D×K buffer of the centroids: means computes the
	// new ones into it and swaps, so it can measure how far they moved.
	spare []float64
	// shiftTol is the largest total squared centroid shift at which a
	// restart stops: Tol × the mean variance of the features.
	shiftTol float64
}

// cscRows is a sparse matrix by column: column d's entries are
// rows/vals[colptr[d]:colptr[d+1]], in increasing row order.
type cscRows struct {
	colptr []int64
	rows   []int32
	vals   []float32
}

// toCSC transposes the CSR rows of x.
func toCSC(x *Rows) *cscRows {
	c := &cscRows{colptr: make([]int64, x.Dim+1), rows: make([]int32, len(x.Indices)), vals: make([]float32, len(x.Indices))}
	for _, col := range x.Indices {
		c.colptr[col+1]++
	}
	for d := range x.Dim {
		c.colptr[d+1] += c.colptr[d]
	}
	next := slices.Clone(c.colptr[:x.Dim])
	for i := range x.N {
		cols, vals := x.Row(i)
		for t, col := range cols {
			p := next[col]
			c.rows[p], c.vals[p] = int32(i), vals[t]
			next[col]++
		}
	}
	return c
}

func newFitter(x *Rows, cfg FitConfig) (*fitter, error) {
	w := cfg.workers()
	be, err := cfg.backend(w)
	if err != nil {
		return nil, err
	}
	f := &fitter{
		x: x, cfg: cfg, k: cfg.K, workers: w, be: be,
		xn: rowNorms(x, w),
		sq: make([]float64, x.N*cfg.K),
		cn: newCentroids(cfg.K, x.Dim),
	}
	f.spare = make([]float64, len(f.cn.ct))
	f.shiftTol = cfg.tol() * meanVariance(x, f.xn)
	if x.Sparse() {
		seen := make([]bool, x.Dim)
		for _, c := range x.Indices {
			seen[c] = true
		}
		for c, ok := range seen {
			if ok {
				f.used = append(f.used, int32(c))
			}
		}
		f.csc = toCSC(x)
	}
	return f, nil
}

// run performs restart r: k-means++ then Lloyd iterations.
func (f *fitter) run(ctx context.Context, r int) (*Model, []int, error) {
	n, k, dim := f.x.N, f.k, f.x.Dim
	rng := rand.New(rand.NewPCG(f.cfg.Seed, uint64(r)))
	seeds, err := f.kmeansPP(ctx, rng)
	if err != nil {
		return nil, nil, err
	}
	f.cn.setRows(f.x, f.xn, seeds)

	iters := 0
	labels := make([]int, n)
	prev := make([]int, n)
	for i := range prev {
		prev[i] = -1
	}
	var caps []int
	if !f.cfg.Unbalanced {
		caps = BalancedCaps(n, k)
	}
	for it := range f.cfg.maxIter() {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		iters = it + 1
		// Assignment step.
		distances(f.be, f.sq, f.x, f.xn, f.cn, f.workers)
		if caps != nil {
			copy(labels, BalancedAssign(f.sq, n, k, caps))
		} else {
			for i := range n {
				labels[i] = argmin(f.sq[i*k : (i+1)*k])
			}
			f.fillEmpty(labels)
		}
		changed := 0
		for i, j := range labels {
			if j != prev[i] {
				changed++
			}
		}
		copy(prev, labels)
		// Update step.
		shift := f.means(labels)
		if changed == 0 || shift <= f.shiftTol {
			break
		}
	}

	// The model: the means of the final assignment and its objective.
	distancesExact(f.sq, f.x, f.xn, f.cn, f.workers)
	m := &Model{K: k, Dim: dim, Centroids: make([]float32, k*dim), Sizes: make([]int, k)}
	for d := range dim {
		for j, v := range f.cn.ct[d*k : (d+1)*k] {
			m.Centroids[j*dim+d] = float32(v)
		}
	}
	for i, j := range labels {
		m.Sizes[j]++
		m.Inertia += max(f.sq[i*k+j], 0)
	}
	if l := f.cfg.Logger; l != nil {
		l.Debug("k-means restart", "restart", r, "seed_rows", seeds, "iterations", iters, "inertia", m.Inertia)
	}
	return m, labels, nil
}

// fillEmpty gives every empty cluster the point farthest from its centroid
// among clusters of size > 1 (lowest row index on ties), using f.sq.
func (f *fitter) fillEmpty(labels []int) {
	k := f.k
	sizes := make([]int, k)
	for _, j := range labels {
		sizes[j]++
	}
	var taken []bool
	for j := range k {
		if sizes[j] > 0 {
			continue
		}
		if taken == nil {
			taken = make([]bool, len(labels))
		}
		far, fd := -1, math.Inf(-1)
		for i, a := range labels {
			if sizes[a] > 1 && !taken[i] && f.sq[i*k+a] > fd {
				far, fd = i, f.sq[i*k+a]
			}
		}
		sizes[labels[far]]--
		labels[far] = j
		sizes[j]++
		taken[far] = true
	}
}

// means sets the centroids to the mean of each cluster's rows, summing
// each coordinate in row order directly into the transposed layout, and
// returns how far they moved, Σ_j ‖new c_j − old c_j‖². It is sequential
// but for the column loop: O(nnz + K·(used columns)), small next to the
// O(nnz·K) distances.
func (f *fitter) means(labels []int) float64 {
	k := f.k
	cn := f.cn
	old := cn.ct
	cn.ct, f.spare = f.spare, old
	if f.used == nil {
		clear(cn.ct)
	} else {
		for _, d := range f.used {
			clear(cn.ct[int(d)*k : (int(d)+1)*k])
		}
	}
	sizes := make([]int, k)
	for _, j := range labels {
		sizes[j]++
	}
	if f.csc != nil {
		// Column by column (the columns split among the workers): each
		// coordinate still sums its rows in row order, so the result is
		// the same as the row-major loop below, whatever the workers.
		csc := f.csc
		parallelFor(len(f.used), 512, f.workers, func(lo, hi int) {
			for _, d := range f.used[lo:hi] {
				c := cn.ct[int(d)*k : (int(d)+1)*k]
				for p := csc.colptr[d]; p < csc.colptr[d+1]; p++ {
					c[labels[csc.rows[p]]] += float64(csc.vals[p])
				}
			}
		})
	} else {
		for i, j := range labels {
			cols, vals := f.x.Row(i)
			if cols == nil {
				for d, v := range vals {
					cn.ct[d*k+j] += float64(v)
				}
			} else {
				for t, col := range cols {
					cn.ct[int(col)*k+j] += float64(vals[t])
				}
			}
		}
	}
	inv := make([]float64, k)
	for j, s := range sizes {
		if s > 0 {
			inv[j] = 1 / float64(s)
		}
	}
	clear(cn.norm)
	shift := 0.0
	scale := func(d int) {
		c, o := cn.ct[d*k:(d+1)*k], old[d*k:(d+1)*k]
		for j := range c {
			c[j] *= inv[j]
			cn.norm[j] += c[j] * c[j]
			shift += (c[j] - o[j]) * (c[j] - o[j])
		}
	}
	if f.used == nil {
		for d := range cn.dim {
			scale(d)
		}
	} else {
		for _, d := range f.used {
			scale(int(d))
		}
	}
	return shift
}

// meanVariance returns the mean over the D columns of x of the column
// variance, (Σ_i ‖x_i‖²/N − ‖μ‖²)/D with μ the mean row, in float64.
func meanVariance(x *Rows, xn []float64) float64 {
	mu := make([]float64, x.Dim)
	for i := range x.N {
		cols, vals := x.Row(i)
		if cols == nil {
			for d, v := range vals {
				mu[d] += float64(v)
			}
		} else {
			for t, c := range cols {
				mu[c] += float64(vals[t])
			}
		}
	}
	n := float64(x.N)
	sq, mm := 0.0, 0.0
	for _, v := range xn {
		sq += v
	}
	for _, v := range mu {
		mm += (v / n) * (v / n)
	}
	return max(sq/n-mm, 0) / float64(x.Dim)
}

// kmeansPP picks K seed rows by greedy k-means++ (as scikit-learn does): the
// first uniformly, each next one the best of 2+⌊ln K⌋ candidates sampled
// proportionally to the squared distance to the nearest seed, "best" meaning
// the lowest resulting potential Σ min distance².
func (f *fitter) kmeansPP(ctx context.Context, rng *rand.Rand) ([]int, error) {
	n, k := f.x.N, f.k
	trials := 2 + int(math.Log(float64(k)))
	seeds := make([]int, 0, k)
	seeds = append(seeds, rng.IntN(n))
	closest := make([]float64, n)
	one := newCentroids(1, f.x.Dim)
	one.setRows(f.x, f.xn, seeds)
	distances(f.be, closest, f.x, f.xn, one, f.workers)
	pot := 0.0
	for i := range closest {
		closest[i] = max(closest[i], 0)
		pot += closest[i]
	}
	cand := make([]int, trials)
	cn := newCentroids(trials, f.x.Dim)
	sq := make([]float64, n*trials)
	cum := make([]float64, n)
	for len(seeds) < k {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := 0.0
		for i, d := range closest {
			s += d
			cum[i] = s
		}
		for t := range cand {
			if pot <= 0 {
				cand[t] = rng.IntN(n)
				continue
			}
			r := rng.Float64() * pot
			i := searchCum(cum, r)
			cand[t] = i
		}
		cn.setRows(f.x, f.xn, cand)
		distances(f.be, sq, f.x, f.xn, cn, f.workers)
		bestT, bestPot := 0, math.Inf(1)
		for t := range trials {
			p := 0.0
			for i := range n {
				p += min(closest[i], max(sq[i*trials+t], 0))
			}
			if p < bestPot {
				bestT, bestPot = t, p
			}
		}
		seeds = append(seeds, cand[bestT])
		for i := range n {
			closest[i] = min(closest[i], max(sq[i*trials+bestT], 0))
		}
		pot = bestPot
	}
	return seeds, nil
}

// searchCum returns the first i with cum[i] > r (the last index if none),
// skipping rows of zero weight.
func searchCum(cum []float64, r float64) int {
	lo, hi := 0, len(cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if cum[mid] > r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
