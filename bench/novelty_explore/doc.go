// Command novelty_explore compares per-document novelty scores on the
// source splits of bench/novelty.sh (issue 15): for tf-idf and LSA it fits
// the featurizer and k = 5 k-means on A's training documents and prints, for
// each score, the AUROC of A's held-out documents against B's and the share
// of B flagged at the thresholds that flag 2% and 5% of A's held-out
// documents. The scores: the squared distance to the nearest centroid (what
// the routing stage's rule uses), one minus the cosine to the nearest (and
// the mean of the 5 nearest) training documents, and, for tf-idf, the share
// of a document's tokens outside the fitted vocabulary. A measurement tool,
// not part of the product.
//
//	go run ./bench/novelty_explore /tmp/nov/split1 /tmp/nov/split2
//
// Layering: a tool above everything (it uses flow and the stages).
package main
