package cluster

// Streaming balanced routing.
//
// Every document goes to the centroid j minimizing d(x, c_j) + p_j, where d
// is the squared Euclidean distance and p_j = η·(count_j − total/k) is a
// price proportional to how far domain j is ahead of its fair share (online
// dual ascent on the balanced-assignment LP: each routed document raises its
// domain's price by η and lowers every price by η/k). A sustained price gap Δ
// therefore costs only Δ/η documents of imbalance, a constant, so the relative
// imbalance from prices alone falls like 1/total.
//
// Two hard rules on top of the prices make the whole-stream bound hold by
// construction, for every prefix of the stream:
//
//	U(n) = ⌊n/k + max(τ·n/k, s)⌋   a domain at U(n) is closed for document n
//	L(n) = ⌈n/k − max(τ·n/k, s)⌉   every domain holds at least L(n) documents
//
// (τ = Tolerance, s = Slack). The lower bound is a set of unit-job deadlines
// (domain j must receive its next document by the first n with L(n) > count_j)
// whose total rate is at most one job per document; the router keeps the set
// schedulable with a lazy earliest-deadline-first rule: it routes by price
// unless that would leave the pending deadlines unschedulable, and then it
// serves the earliest deadline. Counts after n documents therefore lie in
// [L(n), U(n)], that is within ±Tolerance of the mean once n ≥ s·k/Tolerance
// (200 documents for k = 5 with the defaults). The schedulability test looks
// at each domain's next deadline only; the tests check the bounds after
// every document of adversarial streams (one blob only, long single-blob
// phases) and that the router never finds the deadlines unschedulable.
//
// Windows: the whole-stream rules allow Tolerance·n/k of drift, which grows
// with n, so they say nothing about recent windows. Prices do: on the skewed
// stream of route_test.go every window of 1000 documents stays within ±10% of
// its mean (measured 6.5%). RouteConfig.Window adds a hard cap on the upper
// side of every window; the lower side is then at least
// Window − (k−1)·cap and in practice set by prices.
//
// Cost per document: k distances (k·Dim multiply-adds dense, k·nnz sparse)
// plus O(k log k) for the deadlines.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// RouteConfig configures a Router. The zero value routes balanced with the
// defaults below.
type RouteConfig struct {
	// Unbalanced routes every document to its nearest centroid (plain
	// argmin, ties to the lower id), as c-BTM does; the fields below are then
	// ignored. Default false.
	Unbalanced bool `json:"unbalanced"`

	// Tolerance is the allowed relative deviation of any domain's routed
	// count from the mean over the whole stream: after n documents every count
	// lies within n/k ± max(Tolerance·n/k, Slack). Must lie in [0, 1); zero
	// means the default, 0.05.
	Tolerance float64 `json:"tolerance"`

	// Slack is the absolute allowance, in documents, that replaces
	// Tolerance·n/k while that is smaller (tiny totals, where ±5% is less than
	// one document). Must be ≥ 0; zero means the default, 2.
	Slack int `json:"slack"`

	// PriceStep is η, in units of squared distance per document: domain j's
	// price is η·(count_j − total/k). Larger steps keep counts closer to equal
	// by prices alone, before the hard bounds bind, at the cost of routing
	// more documents away from their nearest centroid on balanced streams.
	// Must be ≥ 0; zero means the default, 0.01 (for unit-norm rows, whose
	// squared distances lie in [0, 4]: a price gap of 1 then takes 100
	// documents of imbalance).
	PriceStep float64 `json:"price_step"`

	// Window, when positive, also caps each domain's count among the last
	// Window documents at ⌊Window/k + max(WindowTolerance·Window/k, 1)⌋. The
	// cap yields to the whole-stream bounds when they conflict (rare). Default
	// 0: no window cap; prices alone then keep windows near balanced (see the
	// measured bound in route_test.go).
	Window int `json:"window"`

	// WindowTolerance is the relative allowance of the window cap. Must lie
	// in [0, 1) and matters only with Window > 0; zero means the default, 0.25.
	WindowTolerance float64 `json:"window_tolerance"`
}

func (c RouteConfig) tolerance() float64 {
	if c.Tolerance == 0 {
		return 0.05
	}
	return c.Tolerance
}

func (c RouteConfig) slack() int {
	if c.Slack == 0 {
		return 2
	}
	return c.Slack
}

func (c RouteConfig) priceStep() float64 {
	if c.PriceStep == 0 {
		return 0.01
	}
	return c.PriceStep
}

func (c RouteConfig) windowTolerance() float64 {
	if c.WindowTolerance == 0 {
		return 0.25
	}
	return c.WindowTolerance
}

func (c RouteConfig) validate() error {
	switch {
	case !(c.Tolerance >= 0 && c.Tolerance < 1):
		return fmt.Errorf("cluster: route: tolerance %v outside [0, 1)", c.Tolerance)
	case c.Slack < 0:
		return fmt.Errorf("cluster: route: negative slack %d", c.Slack)
	case !(c.PriceStep >= 0) || math.IsInf(c.PriceStep, 0):
		return fmt.Errorf("cluster: route: price step %v is not a finite non-negative number", c.PriceStep)
	case c.Window < 0:
		return fmt.Errorf("cluster: route: negative window %d", c.Window)
	case !(c.WindowTolerance >= 0 && c.WindowTolerance < 1):
		return fmt.Errorf("cluster: route: window tolerance %v outside [0, 1)", c.WindowTolerance)
	}
	return nil
}

// RouterState is everything a Router carries from one batch to the next:
// with the same Model and RouteConfig, SetState(State()) restores a router
// exactly. Prices are a function of the counts and are not stored.
type RouterState struct {
	Total  int64   // documents routed so far
	Counts []int64 // per domain, summing to Total
	// Recent holds the domains of the last min(Total, Window) documents,
	// oldest first; empty unless RouteConfig.Window > 0.
	Recent []int32
}

// Router assigns documents to domains, one at a time and in order, either to
// the nearest centroid (RouteConfig.Unbalanced) or to the nearest centroid
// under the capacity rules described in RouteConfig, which keep routed domain
// sizes within a tolerance of equal.
//
// Each document's route depends only on the documents before it, so the
// result is deterministic and does not depend on how the stream is cut into
// batches. A Router is safe for use by one goroutine at a time: the stage
// calls Route per micro-batch, in order, and checkpoints with State.
type Router struct {
	m   *Model
	cfg RouteConfig // validated
	k   int
	tol float64
	s   int64
	eta float64

	cnorm  []float64 // ‖c_j‖²
	counts []int64
	total  int64

	// Window cap: ring of the last len(ring) domains; ringN of them valid,
	// the oldest at ringHead.
	ring     []int32
	ringHead int
	ringN    int
	wcounts  []int64 // per domain, over the ring
	wcap     int64   // ⌊Window/k + max(WindowTolerance·Window/k, 1)⌋

	dist     []float64 // scratch: squared distances of the current document
	score    []float64 // scratch: distance + price
	order    []int     // scratch: domains by deadline
	deadline []int64   // scratch
	pos      []int     // scratch: position of each domain in order
	sufOK    []bool    // scratch

	fallbacks int64 // documents routed with the deadlines unschedulable; 0 unless the rules are wrong
}

// NewRouter returns a router over the centroids of m, starting from an empty
// stream. The router keeps m and reads its centroids on every Route; do not
// modify them while it is in use.
func NewRouter(m *Model, cfg RouteConfig) (*Router, error) {
	if m == nil {
		return nil, fmt.Errorf("cluster: route: nil model")
	}
	if m.K < 1 || m.Dim < 1 || len(m.Centroids) != m.K*m.Dim {
		return nil, fmt.Errorf("cluster: route: model with %d centroids of dimension %d holds %d values", m.K, m.Dim, len(m.Centroids))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k := m.K
	r := &Router{
		m: m, cfg: cfg, k: k,
		tol: cfg.tolerance(), s: int64(cfg.slack()), eta: cfg.priceStep(),
		cnorm:    make([]float64, k),
		counts:   make([]int64, k),
		dist:     make([]float64, k),
		score:    make([]float64, k),
		order:    make([]int, k),
		deadline: make([]int64, k),
		pos:      make([]int, k),
		sufOK:    make([]bool, k+1),
	}
	for j := range k {
		var s float64
		for _, v := range m.Centroid(j) {
			s += float64(v) * float64(v)
		}
		r.cnorm[j] = s
	}
	if cfg.Window > 0 && !cfg.Unbalanced {
		w := float64(cfg.Window) / float64(k)
		r.ring = make([]int32, cfg.Window)
		r.wcounts = make([]int64, k)
		r.wcap = int64(math.Floor(w + max(cfg.windowTolerance()*w, 1) + 1e-9))
	}
	return r, nil
}

// Route assigns each row of x, in order, and returns its domain and its
// squared Euclidean distance to that domain's centroid. A batch that fails
// validation routes nothing and leaves the router unchanged.
func (r *Router) Route(x *Rows) (domains []int, dist []float32, err error) {
	a, err := r.route(x, false, nil)
	return a.Domains, a.Distances, err
}

// Assignment is where RouteAll put each row i of a batch: Domains[i] (a
// centroid row) at squared distance Distances[i], as Route returns them, and
// the row's nearest centroid Nearest[i] (plain argmin, the lowest on ties) at
// squared distance NearestDistances[i], what novelty is judged by
// (NoveltyRule). Without balance Nearest equals Domains.
type Assignment struct {
	Domains          []int
	Distances        []float32
	Nearest          []int
	NearestDistances []float32
}

// RouteAll is Route that also reports each row's nearest centroid. It routes
// exactly as Route does.
func (r *Router) RouteAll(x *Rows) (Assignment, error) { return r.route(x, true, nil) }

// routeSkip routes the rows of x not marked in skip, as Route routes them
// alone; a skipped row is not routed (domain -1, distance 0) and changes
// no state.
func (r *Router) routeSkip(x *Rows, skip []bool) (Assignment, error) { return r.route(x, false, skip) }

func (r *Router) route(x *Rows, nearest bool, skip []bool) (a Assignment, err error) {
	if x == nil {
		return a, fmt.Errorf("cluster: route: nil rows")
	}
	if err := x.Validate(); err != nil {
		return a, fmt.Errorf("cluster: route: %w", err)
	}
	if x.Dim != r.m.Dim {
		return a, fmt.Errorf("cluster: route: rows of dimension %d, centroids of dimension %d", x.Dim, r.m.Dim)
	}
	a.Domains = make([]int, x.N)
	a.Distances = make([]float32, x.N)
	if nearest {
		a.Nearest = make([]int, x.N)
		a.NearestDistances = make([]float32, x.N)
	}
	for i := range x.N {
		if skip != nil && skip[i] {
			a.Domains[i] = -1
			continue
		}
		r.routeDistances(x, i)
		var j int
		if r.cfg.Unbalanced {
			j = routeArgmin(r.dist)
		} else {
			j = r.routeBalanced()
		}
		r.routeCommit(j)
		a.Domains[i] = j
		a.Distances[i] = float32(max(r.dist[j], 0))
		if nearest {
			n := routeArgmin(r.dist)
			a.Nearest[i] = n
			a.NearestDistances[i] = float32(max(r.dist[n], 0))
		}
	}
	return a, nil
}

// routeDistances fills r.dist with the squared distances of row i of x to
// every centroid, accumulated in float64.
func (r *Router) routeDistances(x *Rows, i int) {
	idx, val := x.Row(i)
	if idx == nil {
		for j := range r.k {
			c := r.m.Centroid(j)
			c = c[:len(val)]
			var s float64
			for t, v := range val {
				d := float64(v) - float64(c[t])
				s += d * d
			}
			r.dist[j] = s
		}
		return
	}
	var xn float64
	for _, v := range val {
		xn += float64(v) * float64(v)
	}
	for j := range r.k {
		c := r.m.Centroid(j)
		var dot float64
		for t, col := range idx {
			dot += float64(val[t]) * float64(c[col])
		}
		r.dist[j] = xn - 2*dot + r.cnorm[j]
	}
}

// routeArgmin returns the index of the smallest value, the lowest on ties.
func routeArgmin(v []float64) int {
	best := 0
	for j := 1; j < len(v); j++ {
		if v[j] < v[best] {
			best = j
		}
	}
	return best
}

// routeBalanced picks the domain of the next document from r.dist and the
// counts; see the file comment for the rules.
func (r *Router) routeBalanced() int {
	k := r.k
	n1 := r.total + 1 // the document being routed
	mean := float64(r.total) / float64(k)
	upper := r.routeUpper(n1)

	// Deadlines, and the lazy-EDF feasibility of routing freely to each
	// domain: with the chosen domain's deadline pushed back, the others,
	// in deadline order, need D_(p) ≥ n1 + 1 + p (0-based p).
	for j := range k {
		r.score[j] = r.dist[j] + r.eta*(float64(r.counts[j])-mean)
		r.deadline[j] = r.routeDeadline(r.counts[j])
		r.order[j] = j
	}
	slices.SortFunc(r.order, func(a, b int) int {
		return cmp.Or(cmp.Compare(r.deadline[a], r.deadline[b]), cmp.Compare(a, b))
	})
	for p, j := range r.order {
		r.pos[j] = p
	}
	// sufOK[p]: every domain at position q ≥ p keeps its deadline when the
	// chosen domain sits before it: D_(q) ≥ n1 + q.
	r.sufOK[k] = true
	for p := k - 1; p >= 0; p-- {
		r.sufOK[p] = r.sufOK[p+1] && r.deadline[r.order[p]] >= n1+int64(p)
	}
	// preOK for position p: every domain before p has D_(q) ≥ n1 + 1 + q.
	// It holds for a prefix of positions; find its end.
	preEnd := 0 // preOK(p) holds for p ≤ preEnd
	for preEnd < k && r.deadline[r.order[preEnd]] >= n1+1+int64(preEnd) {
		preEnd++
	}
	feasible := func(j int) bool {
		p := r.pos[j]
		return p <= preEnd && r.sufOK[p+1]
	}

	for _, useWindow := range [2]bool{true, false} {
		if useWindow && r.ring == nil {
			continue
		}
		best := -1
		for j := range k {
			if r.counts[j]+1 > upper || !feasible(j) {
				continue
			}
			if useWindow && r.routeWindowCount(j)+1 > r.wcap {
				continue
			}
			if best < 0 || r.score[j] < r.score[best] {
				best = j
			}
		}
		if best >= 0 {
			return best
		}
	}
	// Only reached if the deadlines are already unschedulable, which the
	// rules above prevent; serve the earliest deadline.
	r.fallbacks++
	return r.order[0]
}

// routeUpper returns U(n) = ⌊n/k + max(τ·n/k, s)⌋.
func (r *Router) routeUpper(n int64) int64 {
	m := float64(n) / float64(r.k)
	return int64(math.Floor(m + max(r.tol*m, float64(r.s)) + 1e-9))
}

// routeLower returns L(n) = ⌈n/k − max(τ·n/k, s)⌉, at least 0.
func (r *Router) routeLower(n int64) int64 {
	m := float64(n) / float64(r.k)
	return max(int64(math.Ceil(m-max(r.tol*m, float64(r.s))-1e-9)), 0)
}

// routeDeadline returns the first n with L(n) > c: a domain holding c
// documents must receive another by then. L(n) > c ⟺ n(1−τ)/k > c and
// n/k − s > c.
func (r *Router) routeDeadline(c int64) int64 {
	k := float64(r.k)
	d := max(int64(math.Floor(float64(c)*k/(1-r.tol)+1e-9)), (c+r.s)*int64(r.k))
	// Step past rounding so that the result is exact for L.
	for d > 0 && r.routeLower(d) > c {
		d--
	}
	for r.routeLower(d+1) <= c {
		d++
	}
	return d + 1
}

// routeWindowCount returns domain j's count among the last Window−1
// documents: the window the next document completes.
func (r *Router) routeWindowCount(j int) int64 {
	c := r.wcounts[j]
	if r.ringN == len(r.ring) && int(r.ring[r.ringHead]) == j {
		c-- // the oldest document leaves the window
	}
	return c
}

func (r *Router) routeCommit(j int) {
	r.counts[j]++
	r.total++
	if r.ring == nil {
		return
	}
	w := len(r.ring)
	if r.ringN == w {
		r.wcounts[r.ring[r.ringHead]]--
		r.ring[r.ringHead] = int32(j)
		r.ringHead = (r.ringHead + 1) % w
	} else {
		r.ring[(r.ringHead+r.ringN)%w] = int32(j)
		r.ringN++
	}
	r.wcounts[j]++
}

// Counts returns the routed count per domain so far (a copy).
func (r *Router) Counts() []int64 { return slices.Clone(r.counts) }

// Prices returns the current price of each domain, η·(count_j − total/k),
// in units of squared distance; all zero for an unbalanced router.
func (r *Router) Prices() []float64 {
	p := make([]float64, r.k)
	if r.cfg.Unbalanced {
		return p
	}
	mean := float64(r.total) / float64(r.k)
	for j := range p {
		p[j] = r.eta * (float64(r.counts[j]) - mean)
	}
	return p
}

// State returns a copy of the router's state, for checkpoints.
func (r *Router) State() RouterState {
	st := RouterState{Total: r.total, Counts: slices.Clone(r.counts)}
	if r.ring != nil {
		st.Recent = make([]int32, r.ringN)
		for i := range r.ringN {
			st.Recent[i] = r.ring[(r.ringHead+i)%len(r.ring)]
		}
	}
	return st
}

// SetState restores a state returned by State of a router with the same
// model and configuration; the router then routes exactly as that one would.
// An inconsistent state is rejected and leaves the router unchanged.
func (r *Router) SetState(st RouterState) error {
	if len(st.Counts) != r.k {
		return fmt.Errorf("cluster: route: state has %d counts for %d domains", len(st.Counts), r.k)
	}
	var sum int64
	for j, c := range st.Counts {
		if c < 0 {
			return fmt.Errorf("cluster: route: state count %d of domain %d is negative", c, j)
		}
		sum += c
	}
	if sum != st.Total {
		return fmt.Errorf("cluster: route: state counts sum to %d, total is %d", sum, st.Total)
	}
	want := 0
	if r.ring != nil {
		want = int(min(st.Total, int64(len(r.ring))))
	}
	if len(st.Recent) != want {
		return fmt.Errorf("cluster: route: state has %d recent domains, want %d", len(st.Recent), want)
	}
	for _, j := range st.Recent {
		if j < 0 || int(j) >= r.k {
			return fmt.Errorf("cluster: route: state recent domain %d out of range", j)
		}
	}
	copy(r.counts, st.Counts)
	r.total = st.Total
	if r.ring != nil {
		clear(r.wcounts)
		copy(r.ring, st.Recent)
		r.ringHead, r.ringN = 0, len(st.Recent)
		for _, j := range st.Recent {
			r.wcounts[j]++
		}
	}
	return nil
}
