package cluster

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/domainflow/domainflow/accel"
)

// benchDense returns n unit vectors in R^dim drawn around 20 random topic
// directions with heavy noise, like LSA document vectors.
func benchDense(n, dim int) *Rows {
	rng := rand.New(rand.NewPCG(1, 1))
	const topics = 20
	t := make([]float64, topics*dim)
	for i := range t {
		t[i] = rng.NormFloat64()
	}
	x := &Rows{N: n, Dim: dim, Values: make([]float32, n*dim)}
	row := make([]float64, dim)
	for i := range n {
		a, b := rng.IntN(topics), rng.IntN(topics)
		w := rng.Float64()
		norm := 0.0
		for d := range row {
			row[d] = w*t[a*dim+d] + (1-w)*t[b*dim+d] + 0.7*rng.NormFloat64()
			norm += row[d] * row[d]
		}
		for d := range row {
			x.Values[i*dim+d] = float32(row[d] / math.Sqrt(norm))
		}
	}
	return x
}

// benchSparse returns n L2-normalized tf-idf-like rows over dim columns with
// about nnz nonzeros each: half from a Zipf-distributed shared vocabulary,
// half from one of 20 topic vocabularies.
func benchSparse(n, dim, nnz int) *Rows {
	rng := rand.New(rand.NewPCG(2, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(dim-1))
	const topics = 20
	x := &Rows{N: n, Dim: dim, Indptr: make([]int64, 1, n+1)}
	seen := map[int32]bool{}
	var idx []int32
	for range n {
		clear(seen)
		idx = idx[:0]
		topic := rng.IntN(topics)
		for len(idx) < nnz {
			var c int32
			if len(idx)%2 == 0 {
				c = int32(zipf.Uint64())
			} else {
				c = int32((topic*7919 + rng.IntN(dim/topics)*topics) % dim)
			}
			if !seen[c] {
				seen[c] = true
				idx = append(idx, c)
			}
		}
		slices.Sort(idx)
		start := len(x.Values)
		norm := 0.0
		for _, c := range idx {
			v := 1 + rng.Float64()
			x.Indices = append(x.Indices, c)
			x.Values = append(x.Values, float32(v))
			norm += v * v
		}
		for t := start; t < len(x.Values); t++ {
			x.Values[t] = float32(float64(x.Values[t]) / math.Sqrt(norm))
		}
		x.Indptr = append(x.Indptr, int64(len(x.Values)))
	}
	return x
}

// BenchmarkFit fits c-BTM-sized samples: 3068 dense LSA-like 100-d rows and
// 3068 sparse tf-idf-like rows over 150000 columns with 400 nonzeros, with
// the default MaxIter, Tol and 3 restarts; it reports ms per Fit and the
// Lloyd objective.
func BenchmarkFit(b *testing.B) {
	data := []struct {
		name string
		x    *Rows
	}{
		{"dense3068x100", benchDense(3068, 100)},
		{"sparse3068x150000", benchSparse(3068, 150000, 400)},
	}
	// One backend for every fit, as a program that fits repeatedly would
	// pass it (FitConfig.Backend).
	be, err := accel.Open("cpu", runtime.GOMAXPROCS(0))
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range data {
		for _, k := range []int{5, 8, 16} {
			for _, unbalanced := range []bool{false, true} {
				mode := "balanced"
				if unbalanced {
					mode = "unbalanced"
				}
				b.Run(fmt.Sprintf("%s/k=%d/%s", d.name, k, mode), func(b *testing.B) {
					var m *Model
					for b.Loop() {
						var err error
						m, _, err = Fit(context.Background(), d.x, FitConfig{K: k, Unbalanced: unbalanced, Seed: 1, Backend: be})
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/fit")
					b.ReportMetric(m.Inertia, "inertia")
				})
			}
		}
	}
}
