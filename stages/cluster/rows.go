package cluster

import "fmt"

// Rows is a batch of vectors, one per document: sparse (Indptr set; row i
// holds Indices[Indptr[i]:Indptr[i+1]], strictly increasing, and the matching
// Values) or dense (Indptr nil; row i is Values[i*Dim:(i+1)*Dim]). The
// featurization stage's tf-idf rows are sparse and L2-normalized; its LSA and
// embedding-service rows are dense and L2-normalized.
type Rows struct {
	N, Dim  int
	Indptr  []int64
	Indices []int32
	Values  []float32
}

// Sparse reports whether the rows are sparse.
func (r *Rows) Sparse() bool { return r.Indptr != nil }

// Row returns row i: its column indices (nil when dense) and values.
func (r *Rows) Row(i int) ([]int32, []float32) {
	if r.Indptr == nil {
		return nil, r.Values[i*r.Dim : (i+1)*r.Dim]
	}
	lo, hi := r.Indptr[i], r.Indptr[i+1]
	return r.Indices[lo:hi], r.Values[lo:hi]
}

// Validate checks the layout.
func (r *Rows) Validate() error {
	if r.N < 0 || r.Dim <= 0 {
		return fmt.Errorf("cluster: rows: %d rows of dimension %d", r.N, r.Dim)
	}
	if r.Indptr == nil {
		if len(r.Values) != r.N*r.Dim {
			return fmt.Errorf("cluster: dense rows: %d values for %d×%d", len(r.Values), r.N, r.Dim)
		}
		return nil
	}
	if len(r.Indptr) != r.N+1 || r.Indptr[0] != 0 || int(r.Indptr[r.N]) != len(r.Values) || len(r.Indices) != len(r.Values) {
		return fmt.Errorf("cluster: sparse rows: indptr %d entries, %d indices, %d values for %d rows", len(r.Indptr), len(r.Indices), len(r.Values), r.N)
	}
	for i := range r.N {
		if r.Indptr[i+1] < r.Indptr[i] {
			return fmt.Errorf("cluster: sparse rows: indptr decreases at row %d", i)
		}
		idx, _ := r.Row(i)
		for j, c := range idx {
			if c < 0 || int(c) >= r.Dim || (j > 0 && c <= idx[j-1]) {
				return fmt.Errorf("cluster: sparse rows: row %d column %d out of order or range", i, c)
			}
		}
	}
	return nil
}

// Model is a fitted clustering: K centroids of dimension Dim, row-major in
// Centroids (centroid j is Centroids[j*Dim:(j+1)*Dim]), with the number of
// fit points assigned to each and the objective (sum of squared distances).
type Model struct {
	K, Dim    int
	Centroids []float32
	Sizes     []int
	Inertia   float64
}

// Centroid returns centroid j (a view).
func (m *Model) Centroid(j int) []float32 { return m.Centroids[j*m.Dim : (j+1)*m.Dim] }
