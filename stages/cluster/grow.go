package cluster

// Growth: new domains from novel documents while the stream runs.
//
// With growth on (Stage.SetGrowth), the routing stage parks every novel row
// on pipeline.TopicNovel instead of forcing it into an existing domain. The
// mover (Mover), one process of the group at a time, reads the parked rows
// in order and keeps those it cannot place yet as pending. Once enough are
// pending (GrowConfig.MinCount rows, while the novel share of the routing
// window is at least GrowConfig.MinShare), it fits new centroids on them
// (RouterModel.Grow), publishes them as a new router version with new ids,
// and moves the pending rows the new centroids claim into their domain
// topics, in the order they were parked.
//
// Ordering is what makes the moves exactly once. A trainer skips a row whose
// origin is at or below the last one it applied from the same origin
// partition, so every domain topic must receive each origin partition's rows
// in origin order. A grown domain therefore receives its rows from the mover
// only: the routing stage parks the rows whose nearest centroid is a grown
// domain too, marked with that domain (a claim), and the mover forwards them
// in the order of the parked topic, after the pending rows it moved at the
// growth. Old domains never receive parked rows. Rows the mover writes again
// after a crash are duplicates by origin, which the trainers drop.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/domainflow/domainflow/schemas"
)

// GrowConfig configures growth (Stage.SetGrowth, Mover). The zero value
// means the defaults below.
type GrowConfig struct {
	// MinCount is how many novel rows must be pending before a growth.
	// Default 200.
	MinCount int
	// MinShare is the novel share, over the last Window rows a routing
	// partition judged, that the newest parked rows must show for a growth:
	// a trickle of outliers below it never grows a domain. In [0, 1];
	// default 0.05 (five times the share of a stream like the fit sample
	// under the default novelty rule).
	MinShare float64
	// Window is the number of judged rows over which a routing partition
	// measures the novel share. Default 1000.
	Window int
	// MaxNew is the largest number of domains one growth adds. Default 4.
	MaxNew int
	// MinSize is the smallest cluster of pending rows that becomes a
	// domain; the rows of a smaller one stay pending. Default 25.
	MinSize int
	// Tightness scales the target of the criterion that picks the number
	// of new domains (see RouterModel.Grow): new domains may be this many
	// times looser than the old domains' median. Default 1.25.
	Tightness float64
	// Seed seeds the k-means of a growth. Default 0.
	Seed uint64
}

// Growth defaults.
const (
	DefaultGrowMinCount = 200
	DefaultGrowMinShare = 0.05
	DefaultGrowWindow   = 1000
	DefaultGrowMaxNew   = 4
	DefaultGrowMinSize  = 25
	// DefaultGrowTightness: a new domain's rows may lie 25% farther from
	// their centroid, on average, than the median old domain's: sampling
	// noise alone puts a cluster exactly as tight as the old ones on
	// either side of their median.
	DefaultGrowTightness = 1.25
)

// WithDefaults returns c with its zero fields set to the defaults.
func (c GrowConfig) WithDefaults() GrowConfig {
	if c.MinCount == 0 {
		c.MinCount = DefaultGrowMinCount
	}
	if c.MinShare == 0 {
		c.MinShare = DefaultGrowMinShare
	}
	if c.Window == 0 {
		c.Window = DefaultGrowWindow
	}
	if c.MaxNew == 0 {
		c.MaxNew = DefaultGrowMaxNew
	}
	if c.MinSize == 0 {
		c.MinSize = DefaultGrowMinSize
	}
	if c.Tightness == 0 {
		c.Tightness = DefaultGrowTightness
	}
	return c
}

// Validate reports whether c is usable.
func (c GrowConfig) Validate() error {
	switch {
	case c.MinCount < 0:
		return fmt.Errorf("cluster: grow: negative minimum count %d", c.MinCount)
	case !(c.MinShare >= 0 && c.MinShare <= 1):
		return fmt.Errorf("cluster: grow: minimum share %v outside [0, 1]", c.MinShare)
	case c.Window < 0:
		return fmt.Errorf("cluster: grow: negative window %d", c.Window)
	case c.MaxNew < 0:
		return fmt.Errorf("cluster: grow: negative maximum of new domains %d", c.MaxNew)
	case c.MinSize < 0:
		return fmt.Errorf("cluster: grow: negative minimum domain size %d", c.MinSize)
	case !(c.Tightness >= 0) || math.IsInf(c.Tightness, 0):
		return fmt.Errorf("cluster: grow: tightness %v is not a finite non-negative number", c.Tightness)
	}
	d := c.WithDefaults()
	if d.MinSize > d.MinCount {
		return fmt.Errorf("cluster: grow: minimum domain size %d above the minimum count %d: no growth could ever add a domain", d.MinSize, d.MinCount)
	}
	return nil
}

// Growth records how a router version grew (RouterModel.Growth).
type Growth struct {
	// Seen is the number of parked rows the mover had read when it grew
	// (its row counter, duplicates excluded): a mover that replays the
	// parked topic after a crash adopts this growth at that row instead of
	// fitting again.
	Seen int64 `json:"seen"`
	// Pending is how many pending rows the growth was fitted on, Claimed
	// how many of them the new domains claimed.
	Pending int `json:"pending"`
	Claimed int `json:"claimed"`
	// IDs are the new domains.
	IDs []int `json:"ids"`
	// Through is the origin of the last row the growth was fitted on (in
	// parked order): how far into the stream it came.
	Through schemas.Origin `json:"through"`
	// Target is the criterion's target: the mean squared distance every
	// new domain's rows had to reach (see RouterModel.Grow); Tightest is
	// the largest mean of the chosen clustering's domains.
	Target   float64 `json:"target"`
	Tightest float64 `json:"tightest"`
}

// grown reports whether centroid j of m is a grown domain: one the routing
// stage parks the rows of (see the file comment), so that it receives them
// in the parked topic's order only.
func (m *RouterModel) grown(j int) bool {
	return j < len(m.Origins) && m.Origins[j].How == OriginGrow
}

// hasGrown reports whether m has any grown domain.
func (m *RouterModel) hasGrown() bool {
	for j := range m.Origins {
		if m.grown(j) {
			return true
		}
	}
	return false
}

// routeView returns the router of m's domains that are not grown: what the
// routing stage routes (and balances) over. It is m itself when m has no
// grown domain.
func (m *RouterModel) routeView() *RouterModel {
	if !m.hasGrown() {
		return m
	}
	v := &RouterModel{Version: m.Version, FeaturizerVersion: m.FeaturizerVersion, Featurizer: m.Featurizer,
		Created: m.Created, Fit: m.Fit, Route: m.Route, NextID: m.NextID, OOV: m.OOV, Fine: m.Fine,
		Model: &Model{Dim: m.Model.Dim, Inertia: m.Model.Inertia}}
	for j, id := range m.IDs {
		if m.grown(j) {
			continue
		}
		v.IDs = append(v.IDs, id)
		v.Model.Centroids = append(v.Model.Centroids, m.Model.Centroid(j)...)
		if m.Model.Sizes != nil {
			v.Model.Sizes = append(v.Model.Sizes, m.Model.Sizes[j])
		}
		if m.Distances != nil {
			v.Distances = append(v.Distances, m.Distances[j])
		}
		v.Origins = append(v.Origins, m.Origins[j])
		v.Model.K++
	}
	return v
}

// Grow returns a new router: m's domains unchanged, plus new domains fitted
// on pending, the pending novel rows, and which of them each new domain
// claims.
//
// The number of new domains is chosen by tightness: for k = 1, 2, … up to
// cfg.MaxNew (and at most len/MinSize), plain k-means (cfg.Seed, m's other
// fit settings) is fitted on pending, and the first k is taken whose
// clusters of at least cfg.MinSize rows all have a mean squared distance to
// their centroid at most the target: the median, over m's domains with
// fit-time distances, of their mean fit distance, times cfg.Tightness
// (default 1.25). The new domains are then about as tight as the old ones:
// one new corpus as tight as an old domain grows one domain, two unlike
// corpora grow two. When no k reaches the
// target the tightest k (smallest largest-mean) is taken. Clusters below
// MinSize rows are not domains: their rows stay pending.
//
// A pending row is claimed by a new domain when its nearest centroid among
// all of the new router's domains is that new domain and its distance is
// within the domain's novelty threshold under rule (computed from the
// domain's own rows, kept as its Distances). claims[i] is the new domain id
// claiming pending row i, or -1.
//
// The result is unsaved (Version 0) with Growth set; the new domains get
// ids from NextID, origin OriginGrow, their sizes and fit distances, and no
// top terms or examples (the caller names them). It returns an error when
// no cluster reaches MinSize (nothing to grow) or m has no fit-time
// distances (growth needs novelty).
func (m *RouterModel) Grow(ctx context.Context, pending *Rows, cfg GrowConfig, rule NoveltyRule) (*RouterModel, []int, error) {
	if err := m.validate(); err != nil {
		return nil, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := rule.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.WithDefaults()
	if m.Distances == nil {
		return nil, nil, errors.New("cluster: grow: the router has no fit-time distances (saved before novelty scoring); refit it")
	}
	if pending == nil || pending.N == 0 {
		return nil, nil, errors.New("cluster: grow: no pending rows")
	}
	if err := pending.Validate(); err != nil {
		return nil, nil, fmt.Errorf("cluster: grow: %w", err)
	}
	if pending.Dim != m.Model.Dim {
		return nil, nil, fmt.Errorf("cluster: grow: pending rows of dimension %d, router has %d", pending.Dim, m.Model.Dim)
	}
	var means []float64
	for _, d := range m.Distances {
		if d.Count > 0 {
			means = append(means, d.Mean)
		}
	}
	if len(means) == 0 {
		return nil, nil, errors.New("cluster: grow: no domain of the router has fit-time distances")
	}
	slices.Sort(means)
	target := means[len(means)/2]
	if len(means)%2 == 0 {
		target = (means[len(means)/2-1] + means[len(means)/2]) / 2
	}
	target *= cfg.Tightness

	kmax := min(cfg.MaxNew, pending.N/max(cfg.MinSize, 1))
	if kmax < 1 {
		return nil, nil, fmt.Errorf("cluster: grow: %d pending rows, a new domain needs at least %d", pending.N, cfg.MinSize)
	}
	var best *Model
	bestWorst := math.Inf(1)
	for k := 1; k <= kmax; k++ {
		fc := FitConfig{K: k, Unbalanced: true, MaxIter: m.Fit.MaxIter, Tol: m.Fit.Tol, Restarts: m.Fit.Restarts,
			Seed: cfg.Seed, Workers: m.Fit.Workers, Backend: m.Fit.Backend}
		md, labels, err := Fit(ctx, pending, fc)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: grow: fit %d domains: %w", k, err)
		}
		sums := make([]float64, k)
		_, dist := md.Assign(pending)
		for i, j := range labels {
			sums[j] += float64(dist[i])
		}
		worst, big := 0.0, 0
		for j := range k {
			if md.Sizes[j] >= cfg.MinSize {
				worst = max(worst, sums[j]/float64(md.Sizes[j]))
				big++
			}
		}
		if big == 0 {
			continue
		}
		if worst < bestWorst {
			best, bestWorst = md, worst
		}
		if worst <= target {
			best, bestWorst = md, worst
			break
		}
	}
	if best == nil {
		return nil, nil, fmt.Errorf("cluster: grow: no cluster of the %d pending rows reaches %d rows", pending.N, cfg.MinSize)
	}
	// Keep the clusters of at least MinSize rows.
	g := m.clone()
	if g.Origins == nil {
		g.Origins = make([]DomainOrigin, g.Model.K)
		for j := range g.Origins {
			g.Origins[j] = DomainOrigin{How: OriginFit, Version: m.Version}
		}
	}
	if g.Model.Sizes == nil {
		g.Model.Sizes = make([]int, g.Model.K)
	}
	old := g.Model.K
	var ids []int
	for j := range best.K {
		if best.Sizes[j] < cfg.MinSize {
			continue
		}
		if g.NextID > math.MaxInt32 {
			return nil, nil, errors.New("cluster: grow: domain ids exhausted")
		}
		g.Model.Centroids = append(g.Model.Centroids, best.Centroid(j)...)
		g.Model.Sizes = append(g.Model.Sizes, best.Sizes[j])
		g.Model.K++
		g.IDs = append(g.IDs, g.NextID)
		ids = append(ids, g.NextID)
		g.NextID++
		g.Origins = append(g.Origins, DomainOrigin{How: OriginGrow})
		if g.TopTerms != nil {
			g.TopTerms = append(g.TopTerms, nil)
		}
		if g.Examples != nil {
			g.Examples = append(g.Examples, nil)
		}
	}
	// The new domains' distances: of the pending rows nearest to each among
	// all of the new router's centroids.
	nearest, dist := g.Model.Assign(pending)
	by := make([][]float64, g.Model.K)
	for i, j := range nearest {
		if j >= old {
			by[j] = append(by[j], float64(dist[i]))
		}
	}
	for j := old; j < g.Model.K; j++ {
		g.Distances = append(g.Distances, NewDistanceStats(by[j]))
	}
	th := rule.Thresholds(g)
	claims := make([]int, pending.N)
	n := 0
	for i, j := range nearest {
		claims[i] = -1
		if j >= old && float64(dist[i]) <= th[j] {
			claims[i] = g.IDs[j]
			n++
		}
	}
	g.Fit.K = g.Model.K
	g.Model.Inertia = 0
	g.Version, g.Created = 0, time.Now().UTC()
	g.Growth = &Growth{Pending: pending.N, Claimed: n, IDs: ids, Target: target, Tightest: bestWorst}
	return g, claims, nil
}

// claim returns the id of the grown domain of m claiming a row whose
// nearest centroid of m is j at squared distance d (th: m's thresholds), or
// -1: the row's nearest domain must be grown, and the row within its
// threshold. newOnly, when set, limits the claim to the domains m's Growth
// added.
func (m *RouterModel) claim(th []float64, j int, d float64, newOnly bool) int {
	if !m.grown(j) || th == nil || d > th[j] {
		return -1
	}
	if newOnly && (m.Growth == nil || !slices.Contains(m.Growth.IDs, m.IDs[j])) {
		return -1
	}
	return m.IDs[j]
}
