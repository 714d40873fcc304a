package cluster

// Clustering quality against reference labels, matching scikit-learn's
// normalized_mutual_info_score (arithmetic normalization), adjusted_rand_score
// and the usual purity; and the balance of cluster sizes.

import "math"

// contingency returns the table of co-occurrence counts of labels (rows) and
// pred (columns) over dense ids, with the row and column sums.
func contingency(labels, pred []int) (table [][]int64, rowSum, colSum []int64) {
	if len(labels) != len(pred) {
		panic("cluster: metrics: labels and pred differ in length")
	}
	li, pi := map[int]int{}, map[int]int{}
	for _, l := range labels {
		if _, ok := li[l]; !ok {
			li[l] = len(li)
		}
	}
	for _, p := range pred {
		if _, ok := pi[p]; !ok {
			pi[p] = len(pi)
		}
	}
	table = make([][]int64, len(li))
	for r := range table {
		table[r] = make([]int64, len(pi))
	}
	rowSum = make([]int64, len(li))
	colSum = make([]int64, len(pi))
	for t := range labels {
		r, c := li[labels[t]], pi[pred[t]]
		table[r][c]++
		rowSum[r]++
		colSum[c]++
	}
	return table, rowSum, colSum
}

func entropy(counts []int64, n float64) float64 {
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log(p)
		}
	}
	return h
}

// NMI returns the normalized mutual information of two labelings,
// MI / ((H(labels)+H(pred))/2), as scikit-learn's
// normalized_mutual_info_score with the default arithmetic normalization:
// 1 when both labelings are a single cluster (or empty), 0 when MI is 0.
// Labels are arbitrary ints; it panics if the lengths differ.
func NMI(labels, pred []int) float64 {
	table, rs, cs := contingency(labels, pred)
	if len(rs) == len(cs) && len(rs) <= 1 {
		return 1
	}
	n := float64(len(labels))
	mi := 0.0
	for r, row := range table {
		for c, v := range row {
			if v == 0 {
				continue
			}
			nv := float64(v)
			mi += nv / n * math.Log(nv*n/(float64(rs[r])*float64(cs[c])))
		}
	}
	if mi <= 0 {
		// Also absorbs tiny negative rounding, as scikit-learn clips MI at 0.
		return 0
	}
	return mi / ((entropy(rs, n) + entropy(cs, n)) / 2)
}

// ARI returns the adjusted Rand index of two labelings, as scikit-learn's
// adjusted_rand_score (from the pair confusion matrix): 1 for identical
// partitions (up to relabeling), about 0 for independent ones, possibly
// negative. Labels are arbitrary ints; it panics if the lengths differ.
func ARI(labels, pred []int) float64 {
	table, rs, cs := contingency(labels, pred)
	n := float64(len(labels))
	var sumSq, byCol, byRow float64
	for r, row := range table {
		for c, v := range row {
			fv := float64(v)
			sumSq += fv * fv
			byCol += fv * float64(cs[c])
			byRow += fv * float64(rs[r])
		}
	}
	tp := sumSq - n
	fp := byCol - sumSq
	fn := byRow - sumSq
	tn := n*n - fp - fn - sumSq
	if fn == 0 && fp == 0 {
		return 1
	}
	return 2 * (tp*tn - fn*fp) / ((tp+fn)*(fn+tn) + (tp+fp)*(fp+tn))
}

// Purity returns the fraction of points whose predicted cluster's most common
// label is their own label: Σ_clusters max_label count / N (1 for N = 0).
// Labels are arbitrary ints; it panics if the lengths differ.
func Purity(labels, pred []int) float64 {
	table, _, cs := contingency(labels, pred)
	if len(labels) == 0 {
		return 1
	}
	total := int64(0)
	for c := range cs {
		best := int64(0)
		for r := range table {
			best = max(best, table[r][c])
		}
		total += best
	}
	return float64(total) / float64(len(labels))
}

// Balance returns max/min and max/mean of the cluster sizes (both 1 for
// equal sizes; maxMin is +Inf when a cluster is empty and the largest is
// not, and both are NaN for no clusters or all-empty ones).
func Balance(sizes []int) (maxMin, maxMean float64) {
	if len(sizes) == 0 {
		return math.NaN(), math.NaN()
	}
	lo, hi, sum := sizes[0], sizes[0], 0
	for _, s := range sizes {
		lo, hi = min(lo, s), max(hi, s)
		sum += s
	}
	if hi == 0 {
		return math.NaN(), math.NaN()
	}
	mean := float64(sum) / float64(len(sizes))
	if lo == 0 {
		return math.Inf(1), float64(hi) / mean
	}
	return float64(hi) / float64(lo), float64(hi) / mean
}
