package cluster

import (
	"cmp"
	"runtime"
	"slices"
)

// Examples returns per centroid of m the ids of up to n rows of x labelled
// with it (labels[i] is row i's centroid, e.g. from Fit), nearest to the
// centroid first; ties by row order. ids[i] names row i. Labels outside
// [0, m.K) are skipped.
func Examples(m *Model, x *Rows, ids []string, labels []int, n int) [][]string {
	if n <= 0 || m == nil || x == nil {
		return nil
	}
	type cand struct {
		d float64
		i int
	}
	by := make([][]cand, m.K)
	norms := centroidNorms(m)
	for i := range min(x.N, len(labels), len(ids)) {
		j := labels[i]
		if j < 0 || j >= m.K {
			continue
		}
		by[j] = append(by[j], cand{rowDistNorm(x, i, m.Centroid(j), norms[j]), i})
	}
	out := make([][]string, m.K)
	for j, cs := range by {
		slices.SortFunc(cs, func(a, b cand) int {
			if c := cmp.Compare(a.d, b.d); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		out[j] = []string{}
		for _, c := range cs[:min(n, len(cs))] {
			out[j] = append(out[j], ids[c.i])
		}
	}
	return out
}

// centroidNorms returns ‖c_j‖² of every centroid.
func centroidNorms(m *Model) []float64 {
	out := make([]float64, m.K)
	for j := range m.K {
		for _, v := range m.Centroid(j) {
			out[j] += float64(v) * float64(v)
		}
	}
	return out
}

// rowDistNorm is the squared Euclidean distance between row i of x and c,
// whose squared norm is cn.
func rowDistNorm(x *Rows, i int, c []float32, cn float64) float64 {
	idx, val := x.Row(i)
	if idx == nil {
		s := 0.0
		for d, v := range val {
			t := float64(v) - float64(c[d])
			s += t * t
		}
		return s
	}
	// ‖x‖² − 2x·c + ‖c‖²
	s := cn
	for p, d := range idx {
		v := float64(val[p])
		s += v*v - 2*v*float64(c[d])
	}
	return max(s, 0)
}

// SquaredDistances returns the squared Euclidean distance of every row of x
// to every centroid of m, [x.N, m.K] row-major, clamped at 0. It panics if
// x.Dim != m.Dim.
func (m *Model) SquaredDistances(x *Rows) []float32 {
	if x.Dim != m.Dim {
		panic("cluster: Model.SquaredDistances: dimension mismatch")
	}
	out := make([]float32, x.N*m.K)
	norms := centroidNorms(m)
	parallelRows(x.N, runtime.GOMAXPROCS(0), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for j := range m.K {
				out[i*m.K+j] = float32(rowDistNorm(x, i, m.Centroid(j), norms[j]))
			}
		}
	})
	return out
}
