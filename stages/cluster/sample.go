package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/domainflow/domainflow/schemas"
)

// Reservoir keeps a uniform random sample of up to N feature rows of a
// stream (Vitter's algorithm R), to fit a router on when no fitted one
// exists. Only rows of the newest featurizer version seen are sampled: a
// newer version empties the sample and starts it again. Deterministic for a
// seed and an input order.
type Reservoir struct {
	n       int
	rng     *rand.Rand
	seen    int64 // rows of version offered so far
	version int64
	dim     int
	sparse  bool
	rows    []sampleRow
}

type sampleRow struct {
	id  string
	idx []int32 // nil when dense
	val []float32
}

// NewReservoir returns an empty reservoir of up to n rows.
func NewReservoir(n int, seed uint64) *Reservoir {
	return &Reservoir{n: max(n, 1), rng: rand.New(rand.NewPCG(seed, 0x5eed)), version: -1}
}

// Add offers the valid rows of a Features record; rows with another
// dimension than the version's first row, or malformed vectors, are
// skipped and counted in skipped.
func (r *Reservoir) Add(rec arrow.Record) (skipped int, err error) {
	if err := schemas.CheckSchema(rec.Schema(), schemas.KindFeatures); err != nil {
		return 0, fmt.Errorf("cluster: reservoir: %w", err)
	}
	s := rec.Schema()
	vers, ok := rec.Column(s.FieldIndices(schemas.ColFeaturizerVersion)[0]).(*array.Int64)
	dims, ok2 := rec.Column(s.FieldIndices(schemas.ColDim)[0]).(*array.Int32)
	if !ok || !ok2 {
		return 0, fmt.Errorf("cluster: reservoir: features columns have unexpected types")
	}
	// The newest version of this record restarts the sample when newer; its
	// dimension is the most common one among its rows.
	newest := r.version
	for i := range int(rec.NumRows()) {
		if vers.IsValid(i) && dims.IsValid(i) {
			newest = max(newest, vers.Value(i))
		}
	}
	if newest > r.version {
		count := map[int32]int{}
		var dim int32
		for i := range int(rec.NumRows()) {
			if vers.IsValid(i) && dims.IsValid(i) && vers.Value(i) == newest {
				d := dims.Value(i)
				count[d]++
				if count[d] > count[dim] || (count[d] == count[dim] && d < dim) {
					dim = d
				}
			}
		}
		r.version, r.dim, r.seen, r.rows, r.sparse = newest, int(dim), 0, nil, false
	}
	if r.version < 0 {
		return int(rec.NumRows()), nil
	}
	rows, keep, dead, err := decodeFeatures(rec, r.version, r.dim, nil)
	if err != nil {
		return 0, fmt.Errorf("cluster: reservoir: %w", err)
	}
	docs, err := schemas.Documents(rec)
	if err != nil {
		return 0, fmt.Errorf("cluster: reservoir: %w", err)
	}
	for t, i := range keep {
		r.seen++
		slot := len(r.rows)
		if slot >= r.n {
			slot = int(r.rng.Int64N(r.seen))
			if slot >= r.n {
				continue
			}
		}
		idx, val := rows.Row(t)
		sr := sampleRow{id: docs.ID(i), idx: slices.Clone(idx), val: slices.Clone(val)}
		if sr.idx != nil {
			r.sparse = true
		}
		if slot == len(r.rows) {
			r.rows = append(r.rows, sr)
		} else {
			r.rows[slot] = sr
		}
	}
	return len(dead), nil
}

// Len is the number of rows held.
func (r *Reservoir) Len() int { return len(r.rows) }

// Seen is how many rows of the sampled version were offered.
func (r *Reservoir) Seen() int64 { return r.seen }

// Version is the featurizer version sampled (-1 before any row).
func (r *Reservoir) Version() int64 { return r.version }

// Rows returns the sample as Rows (sparse when any row is) with the
// documents' ids.
func (r *Reservoir) Rows() (*Rows, []string) {
	out := &Rows{N: len(r.rows), Dim: r.dim}
	ids := make([]string, len(r.rows))
	if r.sparse {
		out.Indptr = []int64{0}
	}
	for i, sr := range r.rows {
		ids[i] = sr.id
		if !r.sparse {
			out.Values = append(out.Values, sr.val...)
			continue
		}
		if sr.idx == nil {
			for c := range r.dim {
				out.Indices = append(out.Indices, int32(c))
			}
		} else {
			out.Indices = append(out.Indices, sr.idx...)
		}
		out.Values = append(out.Values, sr.val...)
		out.Indptr = append(out.Indptr, int64(len(out.Values)))
	}
	return out, ids
}
