package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/domainflow/domainflow/accel"
	_ "github.com/domainflow/domainflow/accel/ref" // TestFitBackend
)

// blobs returns unit vectors drawn around k planted centers, sizes[j] points
// in blob j, and the planted labels. Dense: centers are random unit vectors
// in R^dim, points are center + N(0, noise²) per coordinate, renormalized.
// Sparse: blob j owns a disjoint block of columns; a point has nnz random
// positive values in its blob's block plus a few in a shared block, all
// L2-normalized.
func blobs(seed uint64, sizes []int, dim int, sparse bool, noise float64) (*Rows, []int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	k := len(sizes)
	n := 0
	for _, s := range sizes {
		n += s
	}
	labels := make([]int, 0, n)
	for j, s := range sizes {
		for range s {
			labels = append(labels, j)
		}
	}
	// Shuffle so clusters are not contiguous.
	rng.Shuffle(n, func(a, b int) { labels[a], labels[b] = labels[b], labels[a] })
	x := &Rows{N: n, Dim: dim}
	if !sparse {
		centers := make([][]float64, k)
		for j := range centers {
			c := make([]float64, dim)
			norm := 0.0
			for d := range c {
				c[d] = rng.NormFloat64()
				norm += c[d] * c[d]
			}
			for d := range c {
				c[d] /= math.Sqrt(norm)
			}
			centers[j] = c
		}
		x.Values = make([]float32, n*dim)
		for i, l := range labels {
			row := x.Values[i*dim : (i+1)*dim]
			norm := 0.0
			for d := range row {
				v := centers[l][d] + noise*rng.NormFloat64()
				row[d] = float32(v)
				norm += v * v
			}
			for d := range row {
				row[d] = float32(float64(row[d]) / math.Sqrt(norm))
			}
		}
		return x, labels
	}
	const shared, nnz, extra = 50, 20, 3
	block := (dim - shared) / k
	x.Indptr = []int64{0}
	for _, l := range labels {
		cols := map[int32]float32{}
		for len(cols) < nnz {
			cols[int32(shared+l*block+rng.IntN(block))] = float32(0.5 + rng.Float64())
		}
		for range extra {
			cols[int32(rng.IntN(shared))] = float32(0.5 + rng.Float64())
		}
		idx := make([]int32, 0, len(cols))
		for c := range cols {
			idx = append(idx, c)
		}
		sortInt32(idx)
		norm := 0.0
		for _, c := range idx {
			norm += float64(cols[c]) * float64(cols[c])
		}
		for _, c := range idx {
			x.Indices = append(x.Indices, c)
			x.Values = append(x.Values, float32(float64(cols[c])/math.Sqrt(norm)))
		}
		x.Indptr = append(x.Indptr, int64(len(x.Values)))
	}
	return x, labels
}

func sortInt32(s []int32) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func equalSizes(k, per int) []int {
	s := make([]int, k)
	for j := range s {
		s[j] = per
	}
	return s
}

// sqDist is ‖x_i − c‖² computed directly.
func sqDist(x *Rows, i int, c []float32) float64 {
	dense := make([]float64, x.Dim)
	cols, vals := x.Row(i)
	for t, v := range vals {
		d := t
		if cols != nil {
			d = int(cols[t])
		}
		dense[d] = float64(v)
	}
	s := 0.0
	for d, v := range dense {
		e := v - float64(c[d])
		s += e * e
	}
	return s
}

// checkModel verifies the model's invariants against the assignment:
// sizes, centroids = means, inertia.
func checkModel(t *testing.T, x *Rows, m *Model, labels []int, k int) {
	t.Helper()
	if m.K != k || m.Dim != x.Dim || len(m.Centroids) != k*x.Dim || len(labels) != x.N {
		t.Fatalf("model shape K=%d Dim=%d len=%d labels=%d", m.K, m.Dim, len(m.Centroids), len(labels))
	}
	sizes := make([]int, k)
	sum := make([]float64, k*x.Dim)
	inertia := 0.0
	for i, l := range labels {
		sizes[l]++
		cols, vals := x.Row(i)
		for t, v := range vals {
			d := t
			if cols != nil {
				d = int(cols[t])
			}
			sum[l*x.Dim+d] += float64(v)
		}
		inertia += sqDist(x, i, m.Centroid(l))
	}
	if !reflect.DeepEqual(sizes, m.Sizes) {
		t.Fatalf("Sizes %v, assignment has %v", m.Sizes, sizes)
	}
	for j := range k {
		if sizes[j] == 0 {
			t.Fatalf("cluster %d is empty", j)
		}
		for d := range x.Dim {
			if want := sum[j*x.Dim+d] / float64(sizes[j]); math.Abs(float64(m.Centroids[j*x.Dim+d])-want) > 1e-6 {
				t.Fatalf("centroid %d[%d] = %v, mean %v", j, d, m.Centroids[j*x.Dim+d], want)
			}
		}
	}
	if math.Abs(m.Inertia-inertia) > 1e-5*(1+inertia) {
		t.Fatalf("Inertia %v, recomputed %v", m.Inertia, inertia)
	}
}

func checkBalanced(t *testing.T, sizes []int, n, k int) {
	t.Helper()
	for j, s := range sizes {
		if s != n/k && s != (n+k-1)/k {
			t.Fatalf("cluster %d has %d points; want %d..%d (sizes %v)", j, s, n/k, (n+k-1)/k, sizes)
		}
	}
}

func TestFitPlanted(t *testing.T) {
	for _, sparse := range []bool{false, true} {
		for _, unbalanced := range []bool{false, true} {
			t.Run(fmt.Sprintf("sparse=%v/unbalanced=%v", sparse, unbalanced), func(t *testing.T) {
				const k = 5
				x, plant := blobs(7, equalSizes(k, 40), 300, sparse, 0.02)
				m, labels, err := Fit(context.Background(), x, FitConfig{K: k, Unbalanced: unbalanced, Seed: 1})
				if err != nil {
					t.Fatal(err)
				}
				checkModel(t, x, m, labels, k)
				if got := NMI(plant, labels); math.Abs(got-1) > 1e-12 {
					t.Errorf("NMI = %v, want 1", got)
				}
				if got := ARI(plant, labels); math.Abs(got-1) > 1e-12 {
					t.Errorf("ARI = %v, want 1", got)
				}
				// At convergence, the plain argmin reproduces the fit.
				dom, dist := m.Assign(x)
				if !reflect.DeepEqual(dom, labels) {
					t.Errorf("Assign differs from the fit's assignment")
				}
				for i := range x.N {
					if want := sqDist(x, i, m.Centroid(dom[i])); math.Abs(float64(dist[i])-want) > 1e-5 {
						t.Fatalf("Assign distance %d = %v, want %v", i, dist[i], want)
					}
				}
			})
		}
	}
}

func TestFitExactBalance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sizes  []int
		k      int
		sparse bool
	}{
		{"even blobs, N%K≠0", []int{41, 40, 40, 39, 37}, 5, false},
		{"skewed 80%", []int{160, 10, 10, 10, 10}, 5, false},
		{"skewed 80% sparse", []int{160, 10, 10, 10, 10}, 5, true},
		{"skewed K=7", []int{163, 10, 10, 10, 10}, 7, false},
		{"K=3 of 5 blobs", []int{50, 30, 30, 30, 31}, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, _ := blobs(11, tc.sizes, 200, tc.sparse, 0.05)
			m, labels, err := Fit(context.Background(), x, FitConfig{K: tc.k, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			checkModel(t, x, m, labels, tc.k)
			checkBalanced(t, m.Sizes, x.N, tc.k)
		})
	}
}

func TestFitBalancedCostsMore(t *testing.T) {
	// Skewed blobs are a hard case for k-means++ (most D² mass sits in the
	// big blob); with tight blobs and 10 restarts the plant is found.
	x, plant := blobs(5, []int{160, 10, 10, 10, 10}, 100, false, 0.02)
	cfg := FitConfig{K: 5, Seed: 2, Restarts: 10}
	bal, _, err := Fit(context.Background(), x, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Unbalanced = true
	unb, labels, err := Fit(context.Background(), x, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if NMI(plant, labels) < 1-1e-12 {
		t.Errorf("unbalanced fit misses the plant: NMI %v", NMI(plant, labels))
	}
	if bal.Inertia < unb.Inertia {
		t.Errorf("balanced inertia %v < unbalanced %v", bal.Inertia, unb.Inertia)
	}
	if maxMin, _ := Balance(bal.Sizes); maxMin != 1 {
		t.Errorf("balanced sizes %v", bal.Sizes)
	}
}

func TestFitSmallN(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{5, 5}, {6, 5}, {1, 1}, {9, 1}, {2, 2}, {17, 16}} {
		for _, unbalanced := range []bool{false, true} {
			for _, sparse := range []bool{false, true} {
				name := fmt.Sprintf("n=%d/k=%d/unbalanced=%v/sparse=%v", tc.n, tc.k, unbalanced, sparse)
				x, _ := blobs(uint64(tc.n), []int{tc.n}, 80, sparse, 0.3)
				m, labels, err := Fit(context.Background(), x, FitConfig{K: tc.k, Unbalanced: unbalanced})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				checkModel(t, x, m, labels, tc.k)
				if !unbalanced {
					checkBalanced(t, m.Sizes, tc.n, tc.k)
				}
				if tc.n == tc.k && m.Inertia > 1e-9 {
					t.Errorf("%s: n = k: inertia %v, want 0", name, m.Inertia)
				}
			}
		}
	}
}

func TestFitDuplicatePoints(t *testing.T) {
	// All rows identical: every distance is 0, yet no cluster may be empty.
	x := &Rows{N: 6, Dim: 2, Values: []float32{1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0}}
	for _, unbalanced := range []bool{false, true} {
		m, labels, err := Fit(context.Background(), x, FitConfig{K: 3, Unbalanced: unbalanced})
		if err != nil {
			t.Fatal(err)
		}
		checkModel(t, x, m, labels, 3)
	}
}

func TestFitErrors(t *testing.T) {
	ok, _ := blobs(1, []int{10}, 20, false, 0.1)
	for _, tc := range []struct {
		name string
		x    *Rows
		k    int
		is   error
	}{
		{"K=0", ok, 0, ErrBadK},
		{"K<0", ok, -1, ErrBadK},
		{"K>N", ok, 11, ErrBadK},
		{"empty", &Rows{N: 0, Dim: 3}, 1, nil},
		{"nil", nil, 1, nil},
		{"dense dimension mismatch", &Rows{N: 2, Dim: 3, Values: make([]float32, 5)}, 1, nil},
		{"sparse column out of range", &Rows{N: 1, Dim: 3, Indptr: []int64{0, 1}, Indices: []int32{3}, Values: []float32{1}}, 1, nil},
		{"zero dimension", &Rows{N: 1, Dim: 0}, 1, nil},
	} {
		m, labels, err := Fit(context.Background(), tc.x, FitConfig{K: tc.k})
		if err == nil || m != nil || labels != nil {
			t.Errorf("%s: Fit = %v, %v, %v; want an error", tc.name, m, labels, err)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.is)
		}
	}
}

func TestAssignDimensionMismatchPanics(t *testing.T) {
	m := &Model{K: 1, Dim: 2, Centroids: []float32{1, 0}, Sizes: []int{1}}
	defer func() {
		if recover() == nil {
			t.Error("Assign with a wrong dimension did not panic")
		}
	}()
	m.Assign(&Rows{N: 1, Dim: 3, Values: []float32{1, 0, 0}})
}

func TestFitDeterministic(t *testing.T) {
	for _, sparse := range []bool{false, true} {
		for _, unbalanced := range []bool{false, true} {
			x, _ := blobs(21, []int{300, 200, 100, 150}, 400, sparse, 0.4) // overlapping blobs
			fit := func(workers int, seed uint64) (*Model, []int) {
				m, l, err := Fit(context.Background(), x, FitConfig{K: 6, Unbalanced: unbalanced, Seed: seed, Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				return m, l
			}
			m1, l1 := fit(1, 42)
			for _, w := range []int{1, 2, 7} {
				m, l := fit(w, 42)
				if !reflect.DeepEqual(m, m1) || !reflect.DeepEqual(l, l1) {
					t.Errorf("sparse=%v unbalanced=%v: Workers=%d differs from Workers=1", sparse, unbalanced, w)
				}
			}
			if m, _ := fit(2, 43); reflect.DeepEqual(m.Centroids, m1.Centroids) {
				t.Logf("sparse=%v unbalanced=%v: seeds 42 and 43 gave the same centroids", sparse, unbalanced)
			}
		}
	}
}

func TestFitCanceled(t *testing.T) {
	x, _ := blobs(1, []int{50, 50}, 30, false, 0.1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Fit(ctx, x, FitConfig{K: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("Fit on a canceled context: %v, want context.Canceled", err)
	}
}

func ExampleFit() {
	// Six unit vectors in the plane: three near (1,0), three near (0,1).
	x := &Rows{N: 6, Dim: 2, Values: []float32{
		1, 0, 0.995, 0.0998, 0.995, -0.0998,
		0, 1, 0.0998, 0.995, -0.0998, 0.995,
	}}
	m, labels, err := Fit(context.Background(), x, FitConfig{K: 2, Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println("sizes:", m.Sizes)
	fmt.Println("same domain:", labels[0] == labels[1] && labels[1] == labels[2], labels[3] == labels[4] && labels[4] == labels[5])
	fmt.Println("NMI:", NMI([]int{0, 0, 0, 1, 1, 1}, labels))
	domains, _ := m.Assign(&Rows{N: 1, Dim: 2, Values: []float32{0.8, 0.6}})
	fmt.Println("(0.8, 0.6) goes with (1, 0):", domains[0] == labels[0])
	// Output:
	// sizes: [3 3]
	// same domain: true true
	// NMI: 1
	// (0.8, 0.6) goes with (1, 0): true
}

func TestFitLogsRestarts(t *testing.T) {
	x, _ := blobs(5, []int{60, 40, 30, 20}, 400, true, 0.3)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, _, err := Fit(context.Background(), x, FitConfig{K: 4, Unbalanced: true, Restarts: 3, Seed: 9, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Msg        string
		Restart    int
		SeedRows   []int `json:"seed_rows"`
		Iterations int
		Inertia    float64
	}
	var recs []rec
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var r rec
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 {
		t.Fatalf("%d log records, want one per restart (3)", len(recs))
	}
	best := math.Inf(1)
	for i, r := range recs {
		if r.Restart != i || len(r.SeedRows) != 4 || r.Iterations < 1 {
			t.Errorf("record %d: %+v", i, r)
		}
		best = min(best, r.Inertia)
	}
	if best != m.Inertia {
		t.Errorf("lowest logged inertia %v, model's %v", best, m.Inertia)
	}
}

func TestMeanVariance(t *testing.T) {
	for _, sparse := range []bool{false, true} {
		x, _ := blobs(3, []int{30, 20, 10}, 200, sparse, 0.5)
		// Direct: per column, E[x²] − E[x]², averaged over the columns.
		dense := make([]float64, x.N*x.Dim)
		for i := range x.N {
			cols, vals := x.Row(i)
			for t, v := range vals {
				d := t
				if cols != nil {
					d = int(cols[t])
				}
				dense[i*x.Dim+d] = float64(v)
			}
		}
		want := 0.0
		for d := range x.Dim {
			s, s2 := 0.0, 0.0
			for i := range x.N {
				v := dense[i*x.Dim+d]
				s, s2 = s+v, s2+v*v
			}
			mu := s / float64(x.N)
			want += s2/float64(x.N) - mu*mu
		}
		want /= float64(x.Dim)
		if got := meanVariance(x, rowNorms(x, 1)); math.Abs(got-want) > 1e-12*max(1, want) {
			t.Errorf("sparse=%v: meanVariance %v, want %v", sparse, got, want)
		}
	}
}

// With Tol < 0 a restart stops only when no assignment changes, so the
// returned assignment is a Lloyd fixed point: every row sits at its nearest
// centroid. The default Tol (a shift of 1e-4 × the mean variance) is that
// strict on these data too.
func TestFitConvergedIsFixedPoint(t *testing.T) {
	for _, c := range []struct {
		sparse bool
		tol    float64
	}{{false, -1}, {true, -1}, {false, 0}, {true, 0}} {
		sparse := c.sparse
		x, _ := blobs(8, []int{120, 80, 60, 40}, 300, sparse, 0.6)
		m, labels, err := Fit(context.Background(), x, FitConfig{K: 6, Unbalanced: true, Tol: c.tol, Restarts: 1, Seed: 4})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := m.Assign(x)
		moved := 0
		for i := range labels {
			if got[i] != labels[i] {
				moved++
			}
		}
		if moved > 0 {
			t.Errorf("sparse=%v tol=%v: %d rows are nearer another centroid after the fit", sparse, c.tol, moved)
		}
	}
}

// countingBackend counts the calls of the distance step's kernels.
type countingBackend struct {
	accel.Backend
	calls int
}

func (c *countingBackend) SparseDense(out []float32, indptr []int64, indices []int32, values []float32, rows int, denseT []float32, d, n int) {
	c.calls++
	c.Backend.SparseDense(out, indptr, indices, values, rows, denseT, d, n)
}

func (c *countingBackend) DenseDenseT(out, x, y []float32, m, n, d int) {
	c.calls++
	c.Backend.DenseDenseT(out, x, y, m, n, d)
}

// TestFitBackend: FitConfig.Backend runs the distance step; the cpu backend
// given explicitly, with any thread count, gives the default's result bit
// for bit, and another backend (ref) gives a valid fit.
func TestFitBackend(t *testing.T) {
	for _, sparse := range []bool{false, true} {
		x, _ := blobs(5, []int{120, 80, 100}, 200, sparse, 0.4)
		cfg := FitConfig{K: 4, Seed: 7, Workers: 2}
		m0, l0, err := Fit(context.Background(), x, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 3} {
			be, err := accel.Open("cpu", threads)
			if err != nil {
				t.Fatal(err)
			}
			cb := &countingBackend{Backend: be}
			cfg.Backend = cb
			m, l, err := Fit(context.Background(), x, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, m0) || !reflect.DeepEqual(l, l0) {
				t.Errorf("sparse=%v: cpu backend with %d threads differs from the default", sparse, threads)
			}
			if cb.calls == 0 {
				t.Errorf("sparse=%v: Fit did not call FitConfig.Backend", sparse)
			}
		}
		ref, err := accel.Open("ref", 0)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Backend = ref
		m, _, err := Fit(context.Background(), x, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for j, n := range m.Sizes {
			if n != 75 {
				t.Errorf("sparse=%v: ref backend: size of cluster %d is %d, want 75 (balanced)", sparse, j, n)
			}
		}
		// The backend is not part of a router's settings.
		b, err := json.Marshal(cfg)
		if err != nil || bytes.Contains(b, []byte("ackend")) {
			t.Errorf("FitConfig JSON %s (%v) mentions the backend", b, err)
		}
	}
}
