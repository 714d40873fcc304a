package cluster

// Novelty scoring.
//
// A router fitted by this package keeps, per domain, the distribution of
// the distances of its fit rows to their nearest centroid (DistanceStats,
// in RouterModel.Distances). Every distance here is the one the router
// reports: the squared Euclidean distance ‖x − c‖². A row routed later is
// novel when its distance to its nearest centroid lies beyond what that
// centroid's own fit rows showed (NoveltyRule): a document unlike anything
// in the fit sample sits farther from every centroid than nearly all of the
// sample did. Novelty is judged on the nearest centroid (argmin), whatever
// balanced routing then assigns, so it does not depend on the balance state.
//
// Judging changes no routing: a novel row still goes to the domain its
// router assigns. The routing stage counts novel rows, keeps the novel
// fraction over sliding windows and each domain's distance drift (Stage.Novelty,
// Stage.Collector); `pipeline cluster assign` marks each row.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// DistanceLevels are the quantile levels DistanceStats keeps, increasing.
// With the minimum (level 0) and the maximum (level 1) they are the knots of
// DistanceStats.Quantile.
var DistanceLevels = []float64{0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999}

// DistanceStats summarizes the fit-time squared distances of one domain's
// rows to its centroid: the rows of the fit sample whose nearest centroid it
// is (plain argmin, as Model.Assign). Quantiles[i] is the Levels[i]
// quantile, interpolated linearly between order statistics (numpy's default,
// "type 7"). A zero Count means nothing is known of the domain's distances:
// no row is novel there.
type DistanceStats struct {
	Count     int64     `json:"count"`     // fit rows nearest this centroid
	Mean      float64   `json:"mean"`      // their mean squared distance
	Min       float64   `json:"min"`       // the smallest
	Max       float64   `json:"max"`       // the largest
	Levels    []float64 `json:"levels"`    // quantile levels in (0, 1), increasing (DistanceLevels when fitted here)
	Quantiles []float64 `json:"quantiles"` // Quantiles[i]: the Levels[i] quantile
}

// NewDistanceStats returns the stats of the squared distances d (left
// unchanged) at DistanceLevels. Non-finite values are ignored.
func NewDistanceStats(d []float64) DistanceStats {
	s := make([]float64, 0, len(d))
	for _, v := range d {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			s = append(s, max(v, 0))
		}
	}
	st := DistanceStats{Levels: slices.Clone(DistanceLevels), Quantiles: make([]float64, len(DistanceLevels))}
	if len(s) == 0 {
		return st
	}
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	st.Count, st.Mean, st.Min, st.Max = int64(len(s)), sum/float64(len(s)), s[0], s[len(s)-1]
	for i, q := range st.Levels {
		h := q * float64(len(s)-1)
		lo := int(math.Floor(h))
		hi := min(lo+1, len(s)-1)
		st.Quantiles[i] = s[lo] + (h-float64(lo))*(s[hi]-s[lo])
	}
	return st
}

// Quantile returns the q quantile of the distances, q in [0, 1]: exact at
// 0 (Min), 1 (Max) and the stored Levels, linear between them. It returns
// NaN when Count is 0 or q lies outside [0, 1].
func (s DistanceStats) Quantile(q float64) float64 {
	if s.Count == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	xs := append(append([]float64{0}, s.Levels...), 1)
	ys := append(append([]float64{s.Min}, s.Quantiles...), s.Max)
	for i := 1; i < len(xs); i++ {
		if q <= xs[i] {
			if xs[i] == xs[i-1] {
				return ys[i]
			}
			t := (q - xs[i-1]) / (xs[i] - xs[i-1])
			return ys[i-1] + t*(ys[i]-ys[i-1])
		}
	}
	return s.Max
}

// validate checks that s is consistent.
func (s DistanceStats) validate() error {
	if s.Count < 0 {
		return fmt.Errorf("negative count %d", s.Count)
	}
	if len(s.Levels) != len(s.Quantiles) {
		return fmt.Errorf("%d quantiles for %d levels", len(s.Quantiles), len(s.Levels))
	}
	for i, q := range s.Levels {
		if !(q > 0 && q < 1) || (i > 0 && q <= s.Levels[i-1]) {
			return errors.New("levels not increasing within (0, 1)")
		}
	}
	if s.Count == 0 {
		return nil
	}
	prev := s.Min
	for _, v := range append(append([]float64{s.Min, s.Mean}, s.Quantiles...), s.Max) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return errors.New("a non-finite or negative distance")
		}
	}
	for _, v := range append(slices.Clone(s.Quantiles), s.Max) {
		if v < prev {
			return errors.New("quantiles not non-decreasing from min to max")
		}
		prev = v
	}
	return nil
}

// FitDistances returns, per centroid j of m, the stats of the squared
// distances of the rows of x whose nearest centroid is j: what a router
// keeps in RouterModel.Distances. When m knows its fit sizes (Sizes), each
// distance is the leave-one-out one, as if the row had not pulled the
// centroid towards itself: the centroid without it, (n·c − x)/(n − 1), is
// at (n/(n−1))² times the distance (n: the centroid's fit size). The
// distribution is then that of rows the fit did not see, which is what
// novelty is judged on (a domain of 150 fit rows: 1.3% farther). It panics
// if x.Dim != m.Dim.
func FitDistances(m *Model, x *Rows) []DistanceStats {
	nearest, dist := m.Assign(x)
	by := make([][]float64, m.K)
	for i, j := range nearest {
		d := float64(dist[i])
		if m.Sizes != nil && m.Sizes[j] > 1 {
			n := float64(m.Sizes[j])
			d *= (n / (n - 1)) * (n / (n - 1))
		}
		by[j] = append(by[j], d)
	}
	out := make([]DistanceStats, m.K)
	for j := range out {
		out[j] = NewDistanceStats(by[j])
	}
	return out
}

// NoveltyRule says when a routed row is novel: when its squared distance to
// its nearest centroid j (argmin, whatever balanced routing then assigns)
// exceeds
//
//	Distances[j].Quantile(Quantile) × (1 + Margin)
//
// the Quantile quantile of domain j's fit-time distances, with a
// multiplicative slack. With the defaults (0.99, no slack), about 1% of
// rows drawn like the fit sample are novel. A domain without fit-time
// distances (Count 0) never has novel rows, and a router saved before
// routers kept them (no Distances) has novelty off. The zero value is the
// default rule.
type NoveltyRule struct {
	// Quantile is the fit-time quantile a row must exceed, in (0, 1]: 1
	// means the largest fit distance. Exact at the levels DistanceStats
	// keeps (DistanceLevels: 0.5 … 0.999), linear between them. Zero means
	// the default, 0.99.
	Quantile float64
	// Margin is the multiplicative slack on the quantile, ≥ 0 (0.1: 10%
	// farther). Default 0.
	Margin float64
	// OOVQuantile is the quantile of the router's out-of-vocabulary shares
	// (RouterModel.OOV) a row's share must exceed, times 1 + Margin, to be
	// novel whatever its distance: a document of a new corpus whose words
	// the vocabulary lacks looks like ordinary prose on the vectors (they
	// drop unknown words), but not by this share. In (0, 1]; zero means
	// the default, 0.99. It applies where the router has OOV and the judge
	// knows the featurizer's vocabulary (the routing stage, cluster assign).
	OOVQuantile float64
}

// DefaultNoveltyQuantile is NoveltyRule's default Quantile.
const DefaultNoveltyQuantile = 0.99

func (r NoveltyRule) quantile() float64 {
	if r.Quantile == 0 {
		return DefaultNoveltyQuantile
	}
	return r.Quantile
}

// Validate reports whether r is a usable rule.
func (r NoveltyRule) Validate() error {
	switch {
	case !(r.Quantile >= 0 && r.Quantile <= 1):
		return fmt.Errorf("cluster: novelty quantile %v outside (0, 1]", r.Quantile)
	case !(r.Margin >= 0) || math.IsInf(r.Margin, 0):
		return fmt.Errorf("cluster: novelty margin %v is not a finite non-negative number", r.Margin)
	case !(r.OOVQuantile >= 0 && r.OOVQuantile <= 1):
		return fmt.Errorf("cluster: novelty out-of-vocabulary quantile %v outside (0, 1]", r.OOVQuantile)
	}
	return nil
}

// OOVThreshold returns the out-of-vocabulary share above which a row is
// novel under r for router m; +Inf when m has no OOV stats (that rule off).
func (r NoveltyRule) OOVThreshold(m *RouterModel) float64 {
	if m == nil || m.OOV == nil || m.OOV.Count == 0 {
		return math.Inf(1)
	}
	q := r.OOVQuantile
	if q == 0 {
		q = DefaultNoveltyQuantile
	}
	return m.OOV.Quantile(q) * (1 + r.Margin)
}

// String describes r, e.g. "distance > 1.1 × p99".
func (r NoveltyRule) String() string {
	q := r.OOVQuantile
	if q == 0 {
		q = DefaultNoveltyQuantile
	}
	return fmt.Sprintf("distance > %g × q%g of the nearest domain's fit distances, or out-of-vocabulary share > %g × q%g of the fit documents' (held out)",
		1+r.Margin, r.quantile(), 1+r.Margin, q)
}

// Thresholds returns, per centroid row j of m, the squared distance above
// which a row nearest to j is novel under r: +Inf for a domain without
// fit-time distances, and nil when m has none (novelty off). It panics on
// an invalid rule.
func (r NoveltyRule) Thresholds(m *RouterModel) []float64 {
	if err := r.Validate(); err != nil {
		panic(err.Error())
	}
	if m == nil || m.Distances == nil {
		return nil
	}
	th := make([]float64, len(m.Distances))
	for j, s := range m.Distances {
		th[j] = math.Inf(1)
		if s.Count > 0 {
			th[j] = s.Quantile(r.quantile()) * (1 + r.Margin)
		}
	}
	return th
}

// FineCentroids are a router's novelty reference: many more centroids than
// domains (DefaultFineK), fitted with plain k-means on the fit sample, and
// the distribution of the fit rows' squared distances to their nearest one,
// each as if the row had been left out of its centroid (FitFine). A row far
// from every fine centroid is unlike every part of the fit sample, even
// when its domain's centroid, an average over a broad domain, is near:
// that is how prose of an unseen source shows up among prose domains
// (BENCHMARKS.md §10). Stored in the router table as the rows with
// negative domain ids (-1, -2, …).
type FineCentroids struct {
	Model     *Model
	Distances DistanceStats

	once sync.Once
	cn   *centroids // Model prepared for the distance kernel, once
}

// prepared returns f's centroids in the kernel's layout (built once; read
// only, safe for concurrent use).
func (f *FineCentroids) prepared() *centroids {
	f.once.Do(func() { f.cn = f.Model.prepare() })
	return f.cn
}

// DefaultFineK is the number of fine centroids FitFine fits by default.
const DefaultFineK = 32

// FitFine fits k fine centroids on x (plain k-means, seed) and the
// distribution of each row's leave-one-out squared distance to its nearest
// fine centroid: its own centroid without it is c' = (n·c − x)/(n − 1), at
// (n/(n−1))²·‖x − c‖², so the distances are those of rows the fit did not
// see. k is capped at x.N/2; nil when x has fewer than 4 rows.
func FitFine(ctx context.Context, x *Rows, k int, seed uint64) (*FineCentroids, error) {
	if k <= 0 {
		k = DefaultFineK
	}
	k = min(k, x.N/2)
	if k < 2 {
		return nil, nil
	}
	m, labels, err := Fit(ctx, x, FitConfig{K: k, Unbalanced: true, Seed: seed, Restarts: 1})
	if err != nil {
		return nil, fmt.Errorf("cluster: fine centroids: %w", err)
	}
	f := &FineCentroids{Model: m}
	f.Distances = NewDistanceStats(looDistances(m, f.prepared(), x, labels))
	return f, nil
}

// looDistances returns each row's squared distance to its nearest centroid
// of m (prepared: cn) with the row left out of its own centroid (labels:
// its cluster).
func looDistances(m *Model, cn *centroids, x *Rows, labels []int) []float64 {
	out := make([]float64, x.N)
	sq := distancesTo(cn, x)
	for i := range x.N {
		all := sq[i*m.K : (i+1)*m.K]
		for j := range all {
			all[j] = max(all[j], 0)
		}
		n := float64(m.Sizes[labels[i]])
		if n > 1 {
			all[labels[i]] *= (n / (n - 1)) * (n / (n - 1))
		} else {
			all[labels[i]] = math.Inf(1)
		}
		out[i] = slices.Min(all)
	}
	return out
}

// FineThreshold returns the squared distance to the nearest fine centroid
// above which a row is novel under r for router m (the rule's Quantile of
// the fine distances, times 1 + Margin); +Inf when m has no fine centroids.
func (r NoveltyRule) FineThreshold(m *RouterModel) float64 {
	if m == nil || m.Fine == nil || m.Fine.Distances.Count == 0 {
		return math.Inf(1)
	}
	return m.Fine.Distances.Quantile(r.quantile()) * (1 + r.Margin)
}

// fineDistances returns each row's squared distance to m's nearest fine
// centroid, or nil when m has none.
func (m *RouterModel) fineDistances(x *Rows) []float32 {
	if m.Fine == nil {
		return nil
	}
	_, d := m.Fine.Model.assignWith(m.Fine.prepared(), x)
	return d
}
