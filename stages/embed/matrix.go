package embed

import (
	"fmt"
	"math"
)

// CSR is a sparse matrix in compressed sparse row form, float32 values:
// row i holds Indices[Indptr[i]:Indptr[i+1]] (strictly increasing column
// numbers) and the matching Data. It is the output of the tf-idf
// featurizers, one row per document.
type CSR struct {
	Rows, Cols int
	Indptr     []int64 // len Rows+1, Indptr[0] == 0
	Indices    []int32
	Data       []float32
}

// NewCSR returns an empty matrix with cols columns, ready for AppendRow.
func NewCSR(cols int) *CSR { return &CSR{Cols: cols, Indptr: []int64{0}} }

// AppendRow adds a row; idx must be strictly increasing and < Cols.
func (m *CSR) AppendRow(idx []int32, val []float32) {
	m.Indices = append(m.Indices, idx...)
	m.Data = append(m.Data, val...)
	m.Indptr = append(m.Indptr, int64(len(m.Indices)))
	m.Rows++
}

// Row returns the column indices and values of row i (views, not copies).
func (m *CSR) Row(i int) ([]int32, []float32) {
	lo, hi := m.Indptr[i], m.Indptr[i+1]
	return m.Indices[lo:hi], m.Data[lo:hi]
}

// NNZ is the number of stored values.
func (m *CSR) NNZ() int { return len(m.Data) }

// Validate checks the structure: lengths, bounds and increasing indices.
func (m *CSR) Validate() error {
	if len(m.Indptr) != m.Rows+1 || m.Indptr[0] != 0 {
		return fmt.Errorf("csr: indptr has %d entries for %d rows", len(m.Indptr), m.Rows)
	}
	if len(m.Indices) != len(m.Data) || int64(len(m.Data)) != m.Indptr[m.Rows] {
		return fmt.Errorf("csr: %d indices, %d values, indptr ends at %d", len(m.Indices), len(m.Data), m.Indptr[m.Rows])
	}
	for i := range m.Rows {
		if m.Indptr[i+1] < m.Indptr[i] {
			return fmt.Errorf("csr: indptr decreases at row %d", i)
		}
		idx, _ := m.Row(i)
		for j, c := range idx {
			if c < 0 || int(c) >= m.Cols || (j > 0 && c <= idx[j-1]) {
				return fmt.Errorf("csr: row %d: column %d out of order or out of range [0,%d)", i, c, m.Cols)
			}
		}
	}
	return nil
}

// Dense is a row-major dense matrix of float32: element (i, j) is
// Data[i*Cols+j]. The LSA and embedding-service featurizers return it.
type Dense struct {
	Rows, Cols int
	Data       []float32
}

// NewDense returns a zero matrix.
func NewDense(rows, cols int) *Dense {
	return &Dense{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// Row returns row i (a view).
func (m *Dense) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// Vectors is the output of a featurizer for a batch of texts: exactly one of
// Sparse and Dense is set, with one row per input text.
type Vectors struct {
	Sparse *CSR
	Dense  *Dense
}

// Len is the number of rows.
func (v Vectors) Len() int {
	if v.Sparse != nil {
		return v.Sparse.Rows
	}
	if v.Dense != nil {
		return v.Dense.Rows
	}
	return 0
}

// Dim is the number of columns.
func (v Vectors) Dim() int {
	if v.Sparse != nil {
		return v.Sparse.Cols
	}
	if v.Dense != nil {
		return v.Dense.Cols
	}
	return 0
}

// normalizeL2 scales x to unit Euclidean norm (a zero vector stays zero),
// accumulating in float64 as scikit-learn's normalize does.
func normalizeL2(x []float32) {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	if s == 0 {
		return
	}
	inv := 1 / math.Sqrt(s)
	for i, v := range x {
		x[i] = float32(float64(v) * inv)
	}
}
