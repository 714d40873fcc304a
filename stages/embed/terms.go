package embed

import (
	"cmp"
	"slices"
	"strings"
)

// TermNamer is implemented by featurizers whose columns stand for terms
// (tfidf, and lsa through its SVD basis), found by a type assertion: it
// names a vector of the featurizer's space, such as a k-means centroid, by
// the terms it weighs most.
type TermNamer interface {
	// TopTerms returns the n terms w weighs most, heaviest first (see the
	// function TopTerms); w is a vector of Dim() values.
	TopTerms(w []float32, n int) []string
}

var (
	_ TermNamer = (*Tfidf)(nil)
	_ TermNamer = (*LSAFeaturizer)(nil)
)

// CentroidTerms names each of the k vectors of f's space held row-major in
// c (such as k-means centroids, len(c)/k values each) by its n top terms.
// It returns nil when f is not a TermNamer (hashing buckets and embedding
// services have no terms).
func CentroidTerms(f Featurizer, c []float32, k, n int) [][]string {
	tn, ok := f.(TermNamer)
	if !ok || k <= 0 {
		return nil
	}
	dim := len(c) / k
	out := make([][]string, k)
	for j := range k {
		out[j] = tn.TopTerms(c[j*dim:(j+1)*dim], n)
	}
	return out
}

// TopTerms returns the n terms with the largest weights in w (e.g. a tf-idf
// centroid), highest first; ties by term order (then by index). Only
// positive weights count, so fewer than n terms come back when w has fewer
// positive entries; w and vocabulary are read up to the shorter of the two.
func TopTerms(w []float32, vocabulary []string, n int) []string {
	if n <= 0 {
		return nil
	}
	l := min(len(w), len(vocabulary))
	// better orders the terms: higher weight, then term, then index.
	better := func(a, b int) int {
		if c := cmp.Compare(w[b], w[a]); c != 0 {
			return c
		}
		if c := strings.Compare(vocabulary[a], vocabulary[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	var idx []int
	if n >= 64 {
		idx = make([]int, 0, min(l, 1024))
		for i := range l {
			if w[i] > 0 { // false for NaN
				idx = append(idx, i)
			}
		}
		slices.SortFunc(idx, better)
	} else {
		// Few terms wanted: keep the best n seen so far, in order, in
		// one pass over the weights.
		idx = make([]int, 0, n+1)
		for i := range l {
			if !(w[i] > 0) || (len(idx) == n && better(i, idx[n-1]) > 0) {
				continue
			}
			at, _ := slices.BinarySearchFunc(idx, i, better)
			idx = slices.Insert(idx, at, i)
			if len(idx) > n {
				idx = idx[:n]
			}
		}
	}
	idx = idx[:min(n, len(idx))]
	out := make([]string, len(idx))
	for i, k := range idx {
		out[i] = vocabulary[k]
	}
	return out
}
