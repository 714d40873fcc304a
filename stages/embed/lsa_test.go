package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// lsaPlanted returns a rows×cols sparse matrix of rank-`rank` topic mixtures
// plus sparse noise: topic t lives on a random quarter of the columns with
// weight 0.8^t, each row mixes two topics and gets 8 noise entries of
// standard deviation noise. The topics' singular values are well separated
// from each other and from the noise.
func lsaPlanted(rows, cols, rank int, noise float64, seed uint64) *CSR {
	r := rand.New(rand.NewPCG(seed, 11))
	topics := make([][]float64, rank)
	for t := range topics {
		topics[t] = make([]float64, cols)
		scale := math.Pow(0.8, float64(t))
		for range cols / 4 {
			topics[t][r.IntN(cols)] = scale * (0.5 + r.Float64())
		}
	}
	x := NewCSR(cols)
	row := make([]float64, cols)
	for range rows {
		clear(row)
		for range 2 {
			w := 0.5 + r.Float64()
			for j, v := range topics[r.IntN(rank)] {
				row[j] += w * v
			}
		}
		for range 8 {
			row[r.IntN(cols)] += noise * r.NormFloat64()
		}
		var idx []int32
		var val []float32
		for j, v := range row {
			if v != 0 {
				idx = append(idx, int32(j))
				val = append(val, float32(v))
			}
		}
		x.AppendRow(idx, val)
	}
	return x
}

// lsaRandomSparse returns a rows×cols matrix with about nnzRow uniformly
// placed nonzeros per row, values in [0, 1).
func lsaRandomSparse(rows, cols, nnzRow int, seed uint64) *CSR {
	r := rand.New(rand.NewPCG(seed, 12))
	x := NewCSR(cols)
	for range rows {
		var idx []int32
		var val []float32
		for j := range cols {
			if r.IntN(cols) < nnzRow {
				idx = append(idx, int32(j))
				val = append(val, r.Float32())
			}
		}
		x.AppendRow(idx, val)
	}
	return x
}

func lsaDense(x *CSR) *mat.Dense {
	d := mat.NewDense(x.Rows, x.Cols, nil)
	for i := range x.Rows {
		idx, val := x.Row(i)
		for p, j := range idx {
			d.Set(i, int(j), float64(val[p]))
		}
	}
	return d
}

// lsaExact is the exact SVD of x: singular values descending, right
// singular vectors as the columns of v.
func lsaExact(t *testing.T, x *CSR) (sv []float64, v *mat.Dense, u *mat.Dense) {
	t.Helper()
	var svd mat.SVD
	if !svd.Factorize(lsaDense(x), mat.SVDThin) {
		t.Fatal("exact SVD did not converge")
	}
	v, u = new(mat.Dense), new(mat.Dense)
	svd.VTo(v)
	svd.UTo(u)
	return svd.Values(nil), v, u
}

// lsaMinCos is the cosine of the largest principal angle between the row
// spaces of a (d×n) and bᵀ's first d columns (b is n×≥d): the smallest
// singular value of a·b[:, :d].
func lsaMinCos(a *Dense, b *mat.Dense, d int) float64 {
	am := mat.NewDense(d, a.Cols, nil)
	for i := range d {
		for j := range a.Cols {
			am.Set(i, j, float64(a.Data[i*a.Cols+j]))
		}
	}
	var m mat.Dense
	m.Mul(am, b.Slice(0, b.RawMatrix().Rows, 0, d))
	var svd mat.SVD
	svd.Factorize(&m, mat.SVDNone)
	s := svd.Values(nil)
	return s[len(s)-1]
}

const lsaFused, lsaTwoPass = math.MaxInt32, 0 // shard budgets forcing either product

func TestLSAMatchesExactSVD(t *testing.T) {
	ctx := context.Background()
	wide := lsaPlanted(300, 500, 10, 0.05, 1)
	tall := lsaTransposeCSR(wide)
	for _, tc := range []struct {
		name   string
		x      *CSR
		dims   int
		budget int
	}{
		{"wide/fused", wide, 10, lsaFused},
		{"wide/two-pass", wide, 10, lsaTwoPass},
		{"tall/fused", tall, 10, lsaFused},
		{"tall/two-pass", tall, 10, lsaTwoPass},
		{"wide/dims-past-rank", wide, 16, lsaFused},
		{"tall/dims-past-rank", tall, 16, lsaTwoPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sv, v, _ := lsaExact(t, tc.x)
			const r = 10 // planted rank: the spectral gap is after it
			if gap := sv[r-1] / sv[r]; gap < 5 {
				t.Fatalf("fixture: σ%d/σ%d = %.2f, want a clear gap", r, r+1, gap)
			}
			l, _, err := fitLSA(ctx, tc.x, LSAConfig{Dims: tc.dims, Seed: 7}, tc.budget, false)
			if err != nil {
				t.Fatal(err)
			}
			if l.Dim() != tc.dims || l.Components.Rows != tc.dims || l.Components.Cols != tc.x.Cols || len(l.Singular) != tc.dims {
				t.Fatalf("shapes: Dim %d, Components %d×%d, %d singular values; want %d×%d", l.Dim(), l.Components.Rows, l.Components.Cols, len(l.Singular), tc.dims, tc.x.Cols)
			}
			c := lsaMinCos(l.Components, v, r)
			if c < 0.9999 {
				t.Errorf("cos of the largest principal angle to the exact top-%d subspace = %.6f, want ≥ 0.9999", r, c)
			}
			var worst float64
			for i := range r {
				worst = max(worst, math.Abs(float64(l.Singular[i])-sv[i])/sv[i])
			}
			t.Logf("top-%d subspace: 1 - cos(largest principal angle) = %.2g; singular values: worst relative error %.2g", r, 1-c, worst)
			if worst > 1e-4 {
				t.Errorf("top-%d singular values: worst relative error %.2g, want ≤ 1e-4\n got %v\nwant %v", r, worst, l.Singular[:r], sv[:r])
			}
			for i := 1; i < tc.dims; i++ {
				if l.Singular[i] > l.Singular[i-1] {
					t.Errorf("singular values not descending at %d: %v", i, l.Singular)
				}
			}
			// Past the gap the spectrum is noise; the values must still be
			// close to the exact ones from below (Ritz values never exceed them).
			for i := r; i < tc.dims; i++ {
				if s := float64(l.Singular[i]); s > sv[i]*(1+1e-5) || s < 0.8*sv[i] {
					t.Errorf("σ%d = %g, exact %g", i+1, s, sv[i])
				}
			}
			lsaCheckOrthonormal(t, l.Components, 1e-5)
			lsaCheckSigns(t, l.Components)
		})
	}
}

func lsaCheckOrthonormal(t *testing.T, c *Dense, tol float64) {
	t.Helper()
	for a := range c.Rows {
		for b := a; b < c.Rows; b++ {
			var s float64
			ra, rb := c.Row(a), c.Row(b)
			for j := range ra {
				s += float64(ra[j]) * float64(rb[j])
			}
			want := 0.0
			if a == b {
				want = 1
			}
			if math.Abs(s-want) > tol {
				t.Errorf("component %d · component %d = %.3g, want %g", a, b, s, want)
			}
		}
	}
}

func lsaCheckSigns(t *testing.T, c *Dense) {
	t.Helper()
	for k := range c.Rows {
		var best float32
		for _, v := range c.Row(k) {
			if abs32(v) > abs32(best) {
				best = v
			}
		}
		if best < 0 {
			t.Errorf("component %d: entry of largest magnitude is %g, want it positive", k, best)
		}
	}
}

// On a flat spectrum (no gap to lean on) the accuracy comes from the power
// iterations: each one must help, and the Ritz values never exceed the
// exact singular values.
func TestLSAPowerIterations(t *testing.T) {
	x := lsaRandomSparse(300, 500, 30, 5)
	sv, _, _ := lsaExact(t, x)
	const d = 20
	prev := math.Inf(1)
	for _, tc := range []struct {
		iters int
		worst float64 // largest allowed relative shortfall of σ1…σ20
	}{
		{-1, 0.35}, {1, 0.15}, {2, 0.09}, {5, 0.04}, {10, 0.015},
	} {
		l, err := FitLSA(context.Background(), x, LSAConfig{Dims: d, PowerIters: tc.iters})
		if err != nil {
			t.Fatal(err)
		}
		var worst, sum float64
		for i := range d {
			short := 1 - float64(l.Singular[i])/sv[i]
			if short < -1e-6 {
				t.Errorf("PowerIters=%d: σ%d = %g exceeds the exact %g", tc.iters, i+1, l.Singular[i], sv[i])
			}
			worst, sum = max(worst, short), sum+short
		}
		t.Logf("PowerIters=%d: σ1…σ%d fall short of the exact values by up to %.2f%% (mean %.2f%%)", tc.iters, d, 100*worst, 100*sum/d)
		if worst > tc.worst {
			t.Errorf("PowerIters=%d: worst relative shortfall %.3f, want ≤ %.3f", tc.iters, worst, tc.worst)
		}
		if sum >= prev {
			t.Errorf("PowerIters=%d: no better than fewer iterations (total shortfall %.3f, before %.3f)", tc.iters, sum, prev)
		}
		prev = sum
	}
}

// With Dims = min(rows, cols) the sample space is all of it: the fit is an
// exact SVD.
func TestLSAFullRankIsExact(t *testing.T) {
	x := lsaRandomSparse(20, 35, 10, 3)
	sv, v, _ := lsaExact(t, x)
	l, err := FitLSA(context.Background(), x, LSAConfig{Dims: 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if d := math.Abs(float64(l.Singular[i]) - sv[i]); d > 1e-5*sv[0] {
			t.Errorf("σ%d = %g, exact %g", i+1, l.Singular[i], sv[i])
		}
	}
	if c := lsaMinCos(l.Components, v, 20); c < 0.9999 {
		t.Errorf("cos of the largest principal angle = %.6f, want ≥ 0.9999", c)
	}
}

// A matrix of rank 3 fitted with Dims 5: the last two components are zero
// with singular value 0, and projections stay finite.
func TestLSARankDeficient(t *testing.T) {
	x := lsaPlanted(40, 60, 3, 0, 5)
	sv, _, _ := lsaExact(t, x)
	if sv[3] > 1e-5*sv[0] {
		t.Fatalf("fixture: rank > 3 (σ4 = %g)", sv[3])
	}
	l, err := FitLSA(context.Background(), x, LSAConfig{Dims: 5})
	if err != nil {
		t.Fatal(err)
	}
	for k := range 5 {
		var n float64
		for _, v := range l.Components.Row(k) {
			n += float64(v) * float64(v)
		}
		switch {
		case k < 3 && math.Abs(n-1) > 1e-5:
			t.Errorf("component %d has squared norm %g, want 1", k, n)
		case k >= 3 && (n != 0 || l.Singular[k] != 0):
			t.Errorf("component %d: squared norm %g, σ %g; want 0 past the rank", k, n, l.Singular[k])
		}
	}
	y, err := l.Project(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range y.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("projection has %g", v)
		}
	}
}

func TestLSADeterministic(t *testing.T) {
	ctx := context.Background()
	x := lsaRandomSparse(120, 2000, 60, 9)
	for _, budget := range []int{lsaFused, lsaTwoPass} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			fit := func(workers int, seed uint64) *LSA {
				l, _, err := fitLSA(ctx, x, LSAConfig{Dims: 12, Seed: seed, Workers: workers}, budget, false)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			ref := fit(1, 42)
			for _, w := range []int{1, 2, 3, 8} {
				got := fit(w, 42)
				if !lsaSameBits(got.Components.Data, ref.Components.Data) || !lsaSameBits(got.Singular, ref.Singular) {
					t.Errorf("Workers=%d: result differs from Workers=1", w)
				}
			}
			other := fit(2, 43)
			if lsaSameBits(other.Components.Data, ref.Components.Data) {
				t.Error("seeds 42 and 43 gave bit-identical components; the seed is not used")
			}
		})
	}
	// The two products sum in different orders; they agree to rounding.
	a, _, _ := fitLSA(ctx, x, LSAConfig{Dims: 12, Seed: 42}, lsaFused, false)
	b, _, _ := fitLSA(ctx, x, LSAConfig{Dims: 12, Seed: 42}, lsaTwoPass, false)
	for i := range a.Singular {
		if d := math.Abs(float64(a.Singular[i] - b.Singular[i])); d > 1e-5*float64(a.Singular[0]) {
			t.Errorf("σ%d: fused %g, two-pass %g", i+1, a.Singular[i], b.Singular[i])
		}
	}
}

func lsaSameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestLSAProject(t *testing.T) {
	ctx := context.Background()
	x := lsaPlanted(300, 500, 10, 0.05, 2)
	sv, v, u := lsaExact(t, x)
	const d = 10
	l, err := FitLSA(ctx, x, LSAConfig{Dims: d, Seed: 1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Sign of each fitted component relative to the exact one.
	sign := make([]float64, d)
	for k := range d {
		var dot float64
		for j, c := range l.Components.Row(k) {
			dot += float64(c) * v.At(j, k)
		}
		if math.Abs(dot) < 0.999 {
			t.Fatalf("component %d: |cos| to the exact singular vector = %.4f", k, math.Abs(dot))
		}
		sign[k] = math.Copysign(1, dot)
	}

	// Rows of the fitted matrix, plus an empty one.
	y := &CSR{Rows: x.Rows, Cols: x.Cols, Indptr: append([]int64(nil), x.Indptr...), Indices: x.Indices, Data: x.Data}
	y.AppendRow(nil, nil)

	for _, noNorm := range []bool{false, true} {
		l.Config.NoNorm = noNorm
		got, err := l.Project(ctx, y)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != y.Rows || got.Cols != d {
			t.Fatalf("Project: %d×%d, want %d×%d", got.Rows, got.Cols, y.Rows, d)
		}
		var worst float64
		for i := range x.Rows {
			want := make([]float64, d) // U·Σ, the fit_transform of scikit-learn
			var n float64
			for k := range d {
				want[k] = sign[k] * u.At(i, k) * sv[k]
				n += want[k] * want[k]
			}
			if !noNorm {
				for k := range want {
					want[k] /= math.Sqrt(n)
				}
			}
			var gn float64
			for k, g := range got.Row(i) {
				worst = max(worst, math.Abs(float64(g)-want[k]))
				gn += float64(g) * float64(g)
			}
			if !noNorm && math.Abs(gn-1) > 1e-5 {
				t.Errorf("row %d: squared norm %g, want 1", i, gn)
			}
		}
		scale := 1.0
		if noNorm {
			scale = sv[0]
		}
		if worst > 1e-3*scale {
			t.Errorf("NoNorm=%v: largest difference from U·Σ = %.3g", noNorm, worst)
		}
		for k, g := range got.Row(x.Rows) {
			if g != 0 {
				t.Errorf("NoNorm=%v: empty row, column %d = %g, want 0", noNorm, k, g)
			}
		}
	}
}

// FitProjectLSA gives what FitLSA + Project give, for both orientations.
func TestFitProjectLSA(t *testing.T) {
	ctx := context.Background()
	wide := lsaPlanted(120, 300, 10, 0.05, 3)
	wide.AppendRow(nil, nil)
	tall := lsaTransposeCSR(lsaPlanted(120, 300, 10, 0.05, 3))
	for _, tc := range []struct {
		name   string
		x      *CSR
		noNorm bool
	}{
		{"wide", wide, false},
		{"wide/no-norm", wide, true},
		{"tall", tall, false},
		{"tall/no-norm", tall, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := LSAConfig{Dims: 12, NoNorm: tc.noNorm, Seed: 5}
			l, got, err := FitProjectLSA(ctx, tc.x, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := FitLSA(ctx, tc.x, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !lsaSameBits(l.Components.Data, ref.Components.Data) {
				t.Error("FitProjectLSA fitted other components than FitLSA")
			}
			want, err := ref.Project(ctx, tc.x)
			if err != nil {
				t.Fatal(err)
			}
			if got.Rows != want.Rows || got.Cols != want.Cols {
				t.Fatalf("shape %d×%d, want %d×%d", got.Rows, got.Cols, want.Rows, want.Cols)
			}
			tol := 1e-5
			if tc.noNorm {
				tol *= float64(l.Singular[0])
			}
			for i := range want.Data {
				if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > tol || math.IsNaN(float64(got.Data[i])) {
					t.Fatalf("row %d col %d: %g, Project gives %g", i/want.Cols, i%want.Cols, got.Data[i], want.Data[i])
				}
			}
		})
	}
}

// Project against the naive reference x·Componentsᵀ, with and without
// normalization, over several worker counts.
func TestLSAProjectMatchesReference(t *testing.T) {
	ctx := context.Background()
	x := lsaRandomSparse(70, 400, 30, 4)
	l, err := FitLSA(ctx, x, LSAConfig{Dims: 16})
	if err != nil {
		t.Fatal(err)
	}
	q := lsaRandomSparse(33, 400, 50, 8)
	for _, w := range []int{1, 2, 5} {
		for _, noNorm := range []bool{false, true} {
			l.Config.Workers, l.Config.NoNorm = w, noNorm
			got, err := l.Project(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for i := range q.Rows {
				want := make([]float32, l.Dim())
				idx, val := q.Row(i)
				for k := range want {
					var s float64
					for p, j := range idx {
						s += float64(val[p]) * float64(l.Components.Data[k*l.Components.Cols+int(j)])
					}
					want[k] = float32(s)
				}
				if !noNorm {
					normalizeL2(want)
				}
				for k := range want {
					if math.Abs(float64(got.Row(i)[k]-want[k])) > 1e-6 {
						t.Fatalf("Workers=%d NoNorm=%v: row %d col %d = %g, want %g", w, noNorm, i, k, got.Row(i)[k], want[k])
					}
				}
			}
		}
	}
}

func TestNewLSARoundTrip(t *testing.T) {
	ctx := context.Background()
	x := lsaRandomSparse(50, 300, 20, 6)
	l, err := FitLSA(ctx, x, LSAConfig{Dims: 8})
	if err != nil {
		t.Fatal(err)
	}
	comps := &Dense{Rows: l.Components.Rows, Cols: l.Components.Cols, Data: append([]float32(nil), l.Components.Data...)}
	r, err := NewLSA(LSAConfig{}, comps, append([]float32(nil), l.Singular...))
	if err != nil {
		t.Fatal(err)
	}
	if r.Dim() != 8 || r.Config.Dims != 8 {
		t.Errorf("Dim %d, Config.Dims %d, want 8", r.Dim(), r.Config.Dims)
	}
	a, _ := l.Project(ctx, x)
	b, err := r.Project(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if !lsaSameBits(a.Data, b.Data) {
		t.Error("the rebuilt LSA projects differently")
	}
}

// TestLSAClampDims: with ClampDims a sample smaller than Dims gets
// min(rows, cols) dimensions, and projects to unit vectors of that size.
func TestLSAClampDims(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		x    *CSR
		want int
	}{
		{lsaRandomSparse(30, 50, 10, 1), 30},
		{lsaTransposeCSR(lsaRandomSparse(50, 20, 10, 2)), 20},
		{lsaRandomSparse(300, 400, 10, 3), 100},
	} {
		l, err := FitLSA(ctx, tc.x, LSAConfig{ClampDims: true})
		if err != nil {
			t.Fatal(err)
		}
		if l.Dim() != tc.want || l.Config.Dims != tc.want {
			t.Fatalf("%d×%d: Dim %d (config %d), want %d", tc.x.Rows, tc.x.Cols, l.Dim(), l.Config.Dims, tc.want)
		}
		v, err := l.Project(ctx, tc.x)
		if err != nil {
			t.Fatal(err)
		}
		if v.Cols != tc.want {
			t.Fatalf("projection has %d columns, want %d", v.Cols, tc.want)
		}
	}
}

func TestLSAErrors(t *testing.T) {
	ctx := context.Background()
	x := lsaRandomSparse(30, 50, 10, 1)
	fitted, err := FitLSA(ctx, x, LSAConfig{Dims: 4})
	if err != nil {
		t.Fatal(err)
	}
	bad := &CSR{Rows: 1, Cols: 3, Indptr: []int64{0, 2}, Indices: []int32{2, 1}, Data: []float32{1, 1}}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"dims > rows", func() error { _, err := FitLSA(ctx, x, LSAConfig{Dims: 31}); return err }, "exceeds min(rows, cols)"},
		{"dims > cols", func() error {
			_, err := FitLSA(ctx, lsaTransposeCSR(lsaRandomSparse(50, 30, 10, 1)), LSAConfig{Dims: 31})
			return err
		}, "exceeds min(rows, cols)"},
		{"default dims on a small matrix", func() error { _, err := FitLSA(ctx, x, LSAConfig{}); return err }, "Dims 100 exceeds"},
		{"negative dims", func() error { _, err := FitLSA(ctx, x, LSAConfig{Dims: -1}); return err }, "at least 1"},
		{"no rows", func() error { _, err := FitLSA(ctx, NewCSR(10), LSAConfig{Dims: 1}); return err }, "empty matrix"},
		{"no columns", func() error {
			m := NewCSR(0)
			m.AppendRow(nil, nil)
			_, err := FitLSA(ctx, m, LSAConfig{Dims: 1})
			return err
		}, "empty matrix"},
		{"no nonzeros", func() error {
			m := NewCSR(5)
			m.AppendRow(nil, nil)
			m.AppendRow(nil, nil)
			_, err := FitLSA(ctx, m, LSAConfig{Dims: 1})
			return err
		}, "empty matrix"},
		{"nil matrix", func() error { _, err := FitLSA(ctx, nil, LSAConfig{}); return err }, "nil matrix"},
		{"invalid matrix", func() error { _, err := FitLSA(ctx, bad, LSAConfig{Dims: 1}); return err }, "out of order"},
		{"project: column mismatch", func() error { _, err := fitted.Project(ctx, lsaRandomSparse(3, 51, 5, 1)); return err }, "has 51 columns, the model was fitted on 50"},
		{"project: nil", func() error { _, err := fitted.Project(ctx, nil); return err }, "nil matrix"},
		{"project: invalid", func() error {
			l, _ := NewLSA(LSAConfig{}, NewDense(1, 3), []float32{1})
			_, err := l.Project(ctx, bad)
			return err
		}, "out of order"},
		{"new: nil components", func() error { _, err := NewLSA(LSAConfig{}, nil, nil); return err }, "nil components"},
		{"new: short data", func() error {
			_, err := NewLSA(LSAConfig{}, &Dense{Rows: 2, Cols: 3, Data: make([]float32, 5)}, []float32{1, 1})
			return err
		}, "with 5 values"},
		{"new: singular count", func() error { _, err := NewLSA(LSAConfig{}, NewDense(2, 3), []float32{1}); return err }, "1 singular values for 2"},
		{"new: dims mismatch", func() error { _, err := NewLSA(LSAConfig{Dims: 3}, NewDense(2, 3), []float32{2, 1}); return err }, "asks for 3 dims"},
		{"new: ascending singular", func() error { _, err := NewLSA(LSAConfig{}, NewDense(2, 3), []float32{1, 2}); return err }, "descending"},
		{"new: NaN singular", func() error {
			_, err := NewLSA(LSAConfig{}, NewDense(2, 3), []float32{float32(math.NaN()), 1})
			return err
		}, "finite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLSACancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := lsaRandomSparse(30, 50, 10, 1)
	if _, err := FitLSA(ctx, x, LSAConfig{Dims: 4}); !errors.Is(err, context.Canceled) {
		t.Errorf("FitLSA with a cancelled context: %v, want context.Canceled", err)
	}
	l, err := FitLSA(context.Background(), x, LSAConfig{Dims: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Project(ctx, x); !errors.Is(err, context.Canceled) {
		t.Errorf("Project with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestLSATransposeCSR(t *testing.T) {
	x := lsaRandomSparse(37, 53, 9, 2)
	x.AppendRow(nil, nil)
	tr := lsaTransposeCSR(x)
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	if tr.Rows != x.Cols || tr.Cols != x.Rows || tr.NNZ() != x.NNZ() {
		t.Fatalf("transpose is %d×%d with %d nonzeros", tr.Rows, tr.Cols, tr.NNZ())
	}
	if !mat.Equal(lsaDense(tr), lsaDense(x).T()) {
		t.Error("transpose differs from the dense transpose")
	}
	back := lsaTransposeCSR(tr)
	if !mat.Equal(lsaDense(back), lsaDense(x)) {
		t.Error("transposing twice does not give the matrix back")
	}
}

// The P·L factor times U gives the input back, so span(P·L) ⊇ span(W).
func TestLSAPermutedL(t *testing.T) {
	const p, k = 40, 7
	r := rand.New(rand.NewPCG(1, 2))
	w := make([]float64, p*k)
	for i := range w {
		w[i] = r.NormFloat64()
	}
	f := newLSALU(p, k)
	pl := make([]float64, p*k)
	f.permutedL(pl, w)
	u := mat.NewDense(k, k, nil)
	for i := range k {
		for j := i; j < k; j++ {
			u.Set(i, j, f.a.Data[i*k+j])
		}
	}
	var got mat.Dense
	got.Mul(mat.NewDense(p, k, pl), u)
	if !mat.EqualApprox(&got, mat.NewDense(p, k, w), 1e-12) {
		t.Error("P·L·U != W")
	}
	qr := newLSAQR(p, k)
	q := make([]float64, p*k)
	qr.q(q, w)
	var qtq mat.Dense
	qm := mat.NewDense(p, k, q)
	qtq.Mul(qm.T(), qm)
	id := mat.NewDiagDense(k, nil)
	for i := range k {
		id.SetDiag(i, 1)
	}
	if !mat.EqualApprox(&qtq, id, 1e-12) {
		t.Error("QᵀQ != I")
	}
	// Q spans the columns of W: (I - Q·Qᵀ)·W = 0.
	var proj, res mat.Dense
	proj.Mul(qm.T(), mat.NewDense(p, k, w))
	res.Mul(qm, &proj)
	if !mat.EqualApprox(&res, mat.NewDense(p, k, w), 1e-10) {
		t.Error("Q does not span W")
	}
}

func TestLSAAccumRow(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const k, n = 13, 40
	x := make([]float32, n*k)
	for i := range x {
		x[i] = r.Float32()
	}
	for nnz := range 11 { // every remainder of the 4-way unrolling
		idx := make([]int32, nnz)
		val := make([]float32, nnz)
		for p := range idx {
			idx[p] = int32(r.IntN(n))
			val[p] = r.Float32() - 0.5
		}
		acc := make([]float64, k+1) // a guard value past k must survive
		acc[k] = 42
		lsaAccumRow(acc, idx, val, x, k)
		for tt := range k {
			var want float64
			for p := range idx {
				want += float64(val[p]) * float64(x[int(idx[p])*k+tt])
			}
			if math.Abs(acc[tt]-want) > 1e-12 {
				t.Errorf("nnz=%d: acc[%d] = %g, want %g", nnz, tt, acc[tt], want)
			}
		}
		if acc[k] != 42 {
			t.Errorf("nnz=%d: wrote past k", nnz)
		}
	}
}

func ExampleFitLSA() {
	ctx := context.Background()
	// Six tf-idf rows over six terms: documents 0–2 use terms 0–2, 3–5 use
	// terms 3–5.
	x := NewCSR(6)
	x.AppendRow([]int32{0, 1}, []float32{0.8, 0.6})
	x.AppendRow([]int32{0, 1, 2}, []float32{0.6, 0.6, 0.53})
	x.AppendRow([]int32{1, 2}, []float32{0.6, 0.8})
	x.AppendRow([]int32{3, 4}, []float32{0.8, 0.6})
	x.AppendRow([]int32{3, 5}, []float32{0.6, 0.8})
	x.AppendRow([]int32{4, 5}, []float32{0.71, 0.71})

	lsa, err := FitLSA(ctx, x, LSAConfig{Dims: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	emb, err := lsa.Project(ctx, x)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d documents × %d dims\n", emb.Rows, emb.Cols)
	for i := range emb.Rows {
		var n float64
		for _, v := range emb.Row(i) {
			n += float64(v) * float64(v)
		}
		fmt.Printf("doc %d: norm %.3f, |cos| to doc 0: %.2f\n", i, math.Sqrt(n), math.Abs(float64(emb.Row(i)[0]*emb.Row(0)[0]+emb.Row(i)[1]*emb.Row(0)[1])))
	}
	// Output:
	// 6 documents × 2 dims
	// doc 0: norm 1.000, |cos| to doc 0: 1.00
	// doc 1: norm 1.000, |cos| to doc 0: 1.00
	// doc 2: norm 1.000, |cos| to doc 0: 1.00
	// doc 3: norm 1.000, |cos| to doc 0: 0.00
	// doc 4: norm 1.000, |cos| to doc 0: 0.00
	// doc 5: norm 1.000, |cos| to doc 0: 0.00
}
