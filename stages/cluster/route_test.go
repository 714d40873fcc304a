package cluster

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// routeData is a synthetic stream: unit vectors drawn around k unit
// centers, with the centers as the model.
type routeData struct {
	model  *Model
	rows   *Rows // dense
	labels []int
}

// routeBlobs draws n unit vectors of dimension dim around k random unit
// centers (nearly orthogonal for dim ≫ k, so centers are ≈ √2 apart),
// choosing blob j with probability weights[j], in random order. noise is
// the per-coordinate standard deviation before normalizing.
func routeBlobs(seed uint64, k, dim, n int, weights []float64, noise float64) routeData {
	rng := rand.New(rand.NewPCG(seed, 7))
	m := &Model{K: k, Dim: dim, Centroids: make([]float32, k*dim), Sizes: make([]int, k)}
	for j := range k {
		routeUnit(rng, m.Centroid(j), nil, 1)
	}
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := &Rows{N: n, Dim: dim, Values: make([]float32, n*dim)}
	labels := make([]int, n)
	for i := range n {
		u, j := rng.Float64()*sum, 0
		for j < k-1 && u >= weights[j] {
			u -= weights[j]
			j++
		}
		labels[i] = j
		routeUnit(rng, x.Values[i*dim:(i+1)*dim], m.Centroid(j), noise)
	}
	return routeData{model: m, rows: x, labels: labels}
}

// routeUnit writes into dst a unit vector: center plus Gaussian noise of
// standard deviation sd per coordinate (center nil: pure noise), normalized.
func routeUnit(rng *rand.Rand, dst, center []float32, sd float64) {
	var s float64
	for t := range dst {
		v := rng.NormFloat64() * sd
		if center != nil {
			v += float64(center[t])
		}
		dst[t] = float32(v)
		s += v * v
	}
	inv := 1 / math.Sqrt(s)
	for t := range dst {
		dst[t] = float32(float64(dst[t]) * inv)
	}
}

// routeSparse embeds dense rows and a model into dimension 3·Dim+5, with
// coordinate t at column 3t+2 and exact zeros left out of the rows.
func routeSparse(x *Rows, m *Model) (*Rows, *Model) {
	big := 3*x.Dim + 5
	sm := &Model{K: m.K, Dim: big, Centroids: make([]float32, m.K*big), Sizes: m.Sizes}
	for j := range m.K {
		for t, v := range m.Centroid(j) {
			sm.Centroids[j*big+3*t+2] = v
		}
	}
	sx := &Rows{N: x.N, Dim: big, Indptr: make([]int64, 1, x.N+1)}
	for i := range x.N {
		_, val := x.Row(i)
		for t, v := range val {
			if v != 0 {
				sx.Indices = append(sx.Indices, int32(3*t+2))
				sx.Values = append(sx.Values, v)
			}
		}
		sx.Indptr = append(sx.Indptr, int64(len(sx.Values)))
	}
	return sx, sm
}

// routeSlice returns rows [lo, hi) of x as a new Rows sharing storage.
func routeSlice(x *Rows, lo, hi int) *Rows {
	if x.Indptr == nil {
		return &Rows{N: hi - lo, Dim: x.Dim, Values: x.Values[lo*x.Dim : hi*x.Dim]}
	}
	a, b := x.Indptr[lo], x.Indptr[hi]
	ip := make([]int64, hi-lo+1)
	for i := range ip {
		ip[i] = x.Indptr[lo+i] - a
	}
	return &Rows{N: hi - lo, Dim: x.Dim, Indptr: ip, Indices: x.Indices[a:b], Values: x.Values[a:b]}
}

// routeStream routes x through r in batches of random size 1..maxBatch.
func routeStream(t testing.TB, r *Router, x *Rows, seed uint64, maxBatch int) ([]int, []float32) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	var dom []int
	var dist []float32
	for lo := 0; lo < x.N; {
		hi := min(x.N, lo+1+rng.IntN(maxBatch))
		d, ds, err := r.Route(routeSlice(x, lo, hi))
		if err != nil {
			t.Fatalf("Route(rows %d..%d): %v", lo, hi, err)
		}
		if len(d) != hi-lo || len(ds) != hi-lo {
			t.Fatalf("Route(rows %d..%d) returned %d domains, %d distances", lo, hi, len(d), len(ds))
		}
		dom, dist = append(dom, d...), append(dist, ds...)
		lo = hi
	}
	return dom, dist
}

// routeOracle returns, for dense rows, the nearest centroid (lowest id on
// ties), the squared distance to every centroid, row-major n×k.
func routeOracle(x *Rows, m *Model) (nearest []int, d2 []float64) {
	nearest = make([]int, x.N)
	d2 = make([]float64, x.N*m.K)
	for i := range x.N {
		_, val := x.Row(i)
		for j := range m.K {
			var s float64
			for t, c := range m.Centroid(j) {
				d := float64(val[t]) - float64(c)
				s += d * d
			}
			d2[i*m.K+j] = s
			if s < d2[i*m.K+nearest[i]] {
				nearest[i] = j
			}
		}
	}
	return nearest, d2
}

// routeCheckPrefix checks that after every prefix n of dom each domain count
// lies within n/k ± max(tol·n/k, slack), and strictly within n/k·(1±tol)
// once n ≥ slack·k/tol. It returns the largest relative deviation seen from
// n ≥ slack·k/tol on.
func routeCheckPrefix(t *testing.T, dom []int, k int, tol float64, slack int) float64 {
	t.Helper()
	counts := make([]int64, k)
	n0 := int(math.Ceil(float64(slack) * float64(k) / tol))
	worst := 0.0
	for i, j := range dom {
		counts[j]++
		n := i + 1
		mean := float64(n) / float64(k)
		allow := max(tol*mean, float64(slack)) + 1e-9
		for d, c := range counts {
			dev := math.Abs(float64(c) - mean)
			if dev > allow {
				t.Fatalf("after %d documents domain %d holds %d, mean %.1f: deviation %.2f > %.2f", n, d, c, mean, dev, allow)
			}
			if n >= n0 {
				worst = max(worst, dev/mean)
			}
		}
	}
	if worst > tol+1e-9 {
		t.Fatalf("relative deviation %.4f > tolerance %.4f after %d documents", worst, tol, n0)
	}
	return worst
}

// routeWindowDev returns the largest relative deviations above and below
// the mean, (c_j − W/k)/(W/k) and (W/k − c_j)/(W/k), over all windows of w
// consecutive documents.
func routeWindowDev(dom []int, k, w int) (over, under float64) {
	counts := make([]int, k)
	mean := float64(w) / float64(k)
	for i, j := range dom {
		counts[j]++
		if i >= w {
			counts[dom[i-w]]--
		}
		if i >= w-1 {
			for _, c := range counts {
				over = max(over, (float64(c)-mean)/mean)
				under = max(under, (mean-float64(c))/mean)
			}
		}
	}
	return over, under
}

// routeCost summarizes the distance cost of a routing against argmin.
type routeCost struct {
	meanRouted, meanArgmin float64
	moved                  int // documents not routed to their nearest centroid
}

func routeMeasure(dom []int, dist []float32, nearest []int, d2 []float64, k int) routeCost {
	var c routeCost
	for i, j := range dom {
		c.meanRouted += float64(dist[i])
		dn := d2[i*k+nearest[i]]
		c.meanArgmin += dn
		if j != nearest[i] {
			c.moved++
		}
	}
	n := float64(len(dom))
	c.meanRouted /= n
	c.meanArgmin /= n
	return c
}

// Measured window bounds for the defaults (prices alone, no window cap) on
// the skewed stream of TestRouteSkewed: every window of routeWindowLen
// documents holds each domain within ±routeWindowBound of its mean.
const (
	routeWindowLen   = 1000
	routeWindowBound = 0.10
	// Mean routed distance over the offline lower bound for any assignment
	// within ±Tolerance (routeLowerBound); measured 1.03–1.09 over ten seeds.
	routeCostBound = 1.12
)

func TestRouteSkewed(t *testing.T) {
	const k, dim, n = 5, 32, 20000
	skew := []float64{0.8, 0.05, 0.05, 0.05, 0.05}
	data := routeBlobs(1, k, dim, n, skew, 0.05)
	nearest, d2 := routeOracle(data.rows, data.model)
	// The fewest documents any routing within ±tol over the whole stream must
	// move: the nearest-centroid excess over (1+tol)·n/k.
	argminCounts := make([]int, k)
	for _, j := range nearest {
		argminCounts[j]++
	}
	for _, tc := range []struct {
		name      string
		cfg       RouteConfig
		window    int     // window length to check
		windowMax float64 // bound on its relative deviation, either side
		overMax   float64 // bound above the mean
		extra     float64 // moved documents beyond the fewest needed, fraction of n
		costMax   float64 // bound on mean routed distance / offline lower bound
	}{
		{"defaults", RouteConfig{}, routeWindowLen, routeWindowBound, routeWindowBound, 0.03, routeCostBound},
		{"tolerance 0.02", RouteConfig{Tolerance: 0.02}, routeWindowLen, routeWindowBound, routeWindowBound, 0.03, routeCostBound},
		// The window cap holds the upper side to WindowTolerance (+1 doc) by
		// construction; the lower side is left to prices.
		{"window cap", RouteConfig{Window: 500, WindowTolerance: 0.05}, 500, 0.15, 0.05 + 1e-9, 0.03, routeCostBound},
		{"small price step", RouteConfig{PriceStep: 0.002}, routeWindowLen, 0.2, 0.2, 0.05, 1.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(data.model, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			dom, dist := routeStream(t, r, data.rows, 2, 500)
			tol := tc.cfg.tolerance()
			worst := routeCheckPrefix(t, dom, k, tol, tc.cfg.slack())
			if r.fallbacks != 0 {
				t.Errorf("%d documents found the deadlines unschedulable", r.fallbacks)
			}
			if got := r.Counts(); !slices.Equal(got, routeCounts(dom, k)) {
				t.Errorf("Counts() = %v, want %v", got, routeCounts(dom, k))
			}
			over, under := routeWindowDev(dom, k, tc.window)
			if wdev := max(over, under); wdev > tc.windowMax || over > tc.overMax {
				t.Errorf("windows of %d: relative deviation %.3f above, %.3f below the mean; want ≤ %.3f above and ≤ %.3f both", tc.window, over, under, tc.overMax, tc.windowMax)
			}
			c := routeMeasure(dom, dist, nearest, d2, k)
			need := 0
			for _, a := range argminCounts {
				need += max(0, a-int(math.Floor((1+tol)*n/k)))
			}
			t.Logf("counts %v; worst whole-stream deviation %.4f (tol %.2f); windows of %d: %+.3f / -%.3f", r.Counts(), worst, tol, tc.window, over, under)
			lb := routeLowerBound(d2, k, int64(math.Floor((1+tol)*n/k)))
			t.Logf("mean distance %.4f routed, %.4f argmin, ≥ %.4f for any assignment within tolerance (ratio %.3f); moved %d docs (at least %d needed)",
				c.meanRouted, c.meanArgmin, lb, c.meanRouted/lb, c.moved, need)
			if c.meanRouted > tc.costMax*lb {
				t.Errorf("mean routed distance %.4f > %.2f × the offline lower bound %.4f", c.meanRouted, tc.costMax, lb)
			}
			if c.moved > need+int(tc.extra*n) {
				t.Errorf("moved %d documents, more than the %d needed + %.0f%%", c.moved, need, 100*tc.extra)
			}
		})
	}
}

func routeCounts(dom []int, k int) []int64 {
	c := make([]int64, k)
	for _, j := range dom {
		c[j]++
	}
	return c
}

// TestRouteAdversarial feeds streams that defeat prices: everything from one
// blob, and phases that switch the dominant blob. The whole-stream bounds
// must hold for every prefix anyway.
func TestRouteAdversarial(t *testing.T) {
	const k, dim, n = 7, 24, 6000
	one := routeBlobs(3, k, dim, n, []float64{1, 0, 0, 0, 0, 0, 0}, 0.05)
	phases := routeBlobs(4, k, dim, n, []float64{1, 1, 1, 1, 1, 1, 1}, 0.05)
	// Reorder phases by label: long runs of one blob at a time.
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return phases.labels[a] - phases.labels[b] })
	sorted := &Rows{N: n, Dim: dim, Values: make([]float32, 0, n*dim)}
	for _, i := range idx {
		_, v := phases.rows.Row(i)
		sorted.Values = append(sorted.Values, v...)
	}
	for _, tc := range []struct {
		name string
		m    *Model
		x    *Rows
		cfg  RouteConfig
	}{
		{"one blob", one.model, one.rows, RouteConfig{}},
		{"one blob, no prices", one.model, one.rows, RouteConfig{PriceStep: 1e-12}},
		{"one blob, tolerance 0.5, slack 1", one.model, one.rows, RouteConfig{Tolerance: 0.5, Slack: 1}},
		{"phases", phases.model, sorted, RouteConfig{}},
		{"phases, window cap", phases.model, sorted, RouteConfig{Window: 700}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(tc.m, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			dom, _ := routeStream(t, r, tc.x, 5, 300)
			worst := routeCheckPrefix(t, dom, k, tc.cfg.tolerance(), tc.cfg.slack())
			if r.fallbacks != 0 {
				t.Errorf("%d documents found the deadlines unschedulable", r.fallbacks)
			}
			over, under := routeWindowDev(dom, k, 700)
			t.Logf("counts %v; worst deviation %.4f; windows of 700: %+.3f / -%.3f", r.Counts(), worst, over, under)
		})
	}
}

// TestRouteBounds checks U, L and the deadlines against their definitions.
func TestRouteBounds(t *testing.T) {
	for _, cfg := range []RouteConfig{{}, {Tolerance: 0.3, Slack: 1}, {Tolerance: 0.01, Slack: 7}} {
		for _, k := range []int{1, 2, 5, 16} {
			m := &Model{K: k, Dim: 1, Centroids: make([]float32, k)}
			r, err := NewRouter(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tol, s := cfg.tolerance(), float64(cfg.slack())
			for n := int64(0); n < 3000; n++ {
				mean := float64(n) / float64(k)
				allow := max(tol*mean, s)
				if u := r.routeUpper(n); float64(u) > mean+allow+1e-9 || float64(u+1) <= mean+allow-1e-9 || u < (n+int64(k)-1)/int64(k) {
					t.Fatalf("%+v k=%d: routeUpper(%d) = %d, mean %.2f ± %.2f", cfg, k, n, u, mean, allow)
				}
				l := r.routeLower(n)
				if l < 0 || float64(l) < mean-allow-1e-9 || (l > 0 && float64(l-1) >= mean-allow+1e-9) || l > n/int64(k) {
					t.Fatalf("%+v k=%d: routeLower(%d) = %d, mean %.2f ± %.2f", cfg, k, n, l, mean, allow)
				}
			}
			for c := int64(0); c < 300; c++ {
				d := r.routeDeadline(c)
				if r.routeLower(d) <= c || (d > 0 && r.routeLower(d-1) > c) {
					t.Fatalf("%+v k=%d: routeDeadline(%d) = %d: L(d−1) = %d, L(d) = %d", cfg, k, c, d, r.routeLower(d-1), r.routeLower(d))
				}
			}
		}
	}
}

func TestRouteUnbalancedIsArgmin(t *testing.T) {
	data := routeBlobs(5, 6, 20, 3000, []float64{5, 1, 1, 1, 1, 1}, 0.3)
	nearest, d2 := routeOracle(data.rows, data.model)
	sx, sm := routeSparse(data.rows, data.model)
	for _, tc := range []struct {
		name string
		m    *Model
		x    *Rows
	}{
		{"dense", data.model, data.rows},
		{"sparse", sm, sx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(tc.m, RouteConfig{Unbalanced: true, Tolerance: 0.01})
			if err != nil {
				t.Fatal(err)
			}
			dom, dist := routeStream(t, r, tc.x, 6, 200)
			for i, j := range dom {
				if j != nearest[i] {
					t.Fatalf("document %d routed to %d, nearest centroid is %d", i, j, nearest[i])
				}
				if want := d2[i*tc.m.K+j]; math.Abs(float64(dist[i])-want) > 1e-5 {
					t.Fatalf("document %d: distance %v, want %v", i, dist[i], want)
				}
			}
			if p := r.Prices(); slices.ContainsFunc(p, func(v float64) bool { return v != 0 }) {
				t.Errorf("Prices() = %v for an unbalanced router, want zeros", p)
			}
		})
	}
}

func TestRouteBalancedStreamKeepsArgmin(t *testing.T) {
	const k, n = 5, 20000
	data := routeBlobs(8, k, 32, n, []float64{1, 1, 1, 1, 1}, 0.05)
	nearest, d2 := routeOracle(data.rows, data.model)
	for _, tc := range []struct {
		name string
		cfg  RouteConfig
	}{
		{"defaults", RouteConfig{}},
		{"window cap", RouteConfig{Window: 2000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(data.model, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			dom, dist := routeStream(t, r, data.rows, 9, 500)
			c := routeMeasure(dom, dist, nearest, d2, k)
			t.Logf("%d of %d documents moved off their nearest centroid; mean distance %.4f routed vs %.4f argmin; counts %v",
				c.moved, n, c.meanRouted, c.meanArgmin, r.Counts())
			if c.moved > n/100 {
				t.Errorf("moved %d of %d documents (> 1%%) on a balanced stream", c.moved, n)
			}
		})
	}
}

func TestRouteDenseSparseAgree(t *testing.T) {
	data := routeBlobs(10, 4, 16, 4000, []float64{6, 1, 1, 2}, 0.1)
	sx, sm := routeSparse(data.rows, data.model)
	cfg := RouteConfig{Window: 400}
	rd, err := NewRouter(data.model, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewRouter(sm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dd, distD := routeStream(t, rd, data.rows, 12, 300)
	ds, distS := routeStream(t, rs, sx, 13, 77)
	for i := range dd {
		if dd[i] != ds[i] || math.Abs(float64(distD[i]-distS[i])) > 1e-5 {
			t.Fatalf("document %d: dense → %d (%v), sparse → %d (%v)", i, dd[i], distD[i], ds[i], distS[i])
		}
	}
}

// TestRouteDeterministic checks that routes do not depend on how the stream
// is cut into batches, and that a router restored from State routes exactly
// as the original.
func TestRouteDeterministic(t *testing.T) {
	data := routeBlobs(14, 5, 16, 5000, []float64{8, 1, 1, 1, 1}, 0.1)
	for _, cfg := range []RouteConfig{{}, {Window: 300}, {Unbalanced: true}} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			r1, _ := NewRouter(data.model, cfg)
			r2, _ := NewRouter(data.model, cfg)
			all, _ := routeStream(t, r1, data.rows, 1, 1)
			cut, _ := routeStream(t, r2, data.rows, 2, 1000)
			if !slices.Equal(all, cut) {
				t.Fatalf("routes depend on batch boundaries")
			}
			// Checkpoint half way (at two points: before and after the window fills).
			for _, half := range []int{150, 2500} {
				a, _ := NewRouter(data.model, cfg)
				routeStream(t, a, routeSlice(data.rows, 0, half), 3, 100)
				st := a.State()
				b, _ := NewRouter(data.model, cfg)
				if err := b.SetState(st); err != nil {
					t.Fatalf("SetState(State()): %v", err)
				}
				st.Counts[0] += 1000 // State returns a copy
				if got := b.Counts(); !slices.Equal(got, a.Counts()) {
					t.Fatalf("restored Counts() = %v, want %v", got, a.Counts())
				}
				rest := routeSlice(data.rows, half, data.rows.N)
				da, _ := routeStream(t, a, rest, 4, 100)
				db, _ := routeStream(t, b, rest, 5, 333)
				if !slices.Equal(da, db) || !slices.Equal(da, all[half:]) {
					t.Fatalf("restored router at %d routes differently", half)
				}
			}
		})
	}
}

func TestRouteErrors(t *testing.T) {
	data := routeBlobs(15, 3, 8, 10, []float64{1, 1, 1}, 0.1)
	m := data.model
	for _, tc := range []struct {
		name string
		m    *Model
		cfg  RouteConfig
		want string
	}{
		{"nil model", nil, RouteConfig{}, "nil model"},
		{"short centroids", &Model{K: 3, Dim: 8, Centroids: m.Centroids[:20]}, RouteConfig{}, "holds 20 values"},
		{"tolerance 1", m, RouteConfig{Tolerance: 1}, "tolerance"},
		{"negative tolerance", m, RouteConfig{Tolerance: -0.1}, "tolerance"},
		{"NaN tolerance", m, RouteConfig{Tolerance: math.NaN()}, "tolerance"},
		{"negative slack", m, RouteConfig{Slack: -1}, "slack"},
		{"negative price step", m, RouteConfig{PriceStep: -1}, "price step"},
		{"infinite price step", m, RouteConfig{PriceStep: math.Inf(1)}, "price step"},
		{"negative window", m, RouteConfig{Window: -5}, "window"},
		{"window tolerance", m, RouteConfig{WindowTolerance: 2}, "window tolerance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRouter(tc.m, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRouter: error %v, want one containing %q", err, tc.want)
			}
		})
	}

	r, err := NewRouter(m, RouteConfig{Window: 4})
	if err != nil {
		t.Fatal(err)
	}
	sx, _ := routeSparse(data.rows, m)
	for _, tc := range []struct {
		name string
		x    *Rows
		want string
	}{
		{"nil rows", nil, "nil rows"},
		{"dense dimension", &Rows{N: 1, Dim: 9, Values: make([]float32, 9)}, "dimension 9"},
		{"sparse dimension", sx, fmt.Sprintf("dimension %d", sx.Dim)},
		{"invalid layout", &Rows{N: 2, Dim: 8, Values: make([]float32, 8)}, "dense rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := r.Route(tc.x)
			if err == nil || !strings.Contains(err.Error(), tc.want) || d != nil {
				t.Fatalf("Route: %v, error %v, want one containing %q", d, err, tc.want)
			}
		})
	}
	if got := r.Counts(); !slices.Equal(got, []int64{0, 0, 0}) {
		t.Errorf("failed Route calls changed counts to %v", got)
	}

	for _, tc := range []struct {
		name string
		st   RouterState
		want string
	}{
		{"counts length", RouterState{Counts: []int64{0, 0}}, "2 counts"},
		{"negative", RouterState{Total: 0, Counts: []int64{-1, 1, 0}}, "negative"},
		{"sum", RouterState{Total: 3, Counts: []int64{1, 1, 0}}, "sum to 2"},
		{"recent length", RouterState{Total: 2, Counts: []int64{1, 1, 0}, Recent: []int32{0}}, "recent"},
		{"recent range", RouterState{Total: 2, Counts: []int64{1, 1, 0}, Recent: []int32{0, 3}}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.SetState(tc.st); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetState: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// ExampleRouter routes a stream that all lies near one of two centroids: the
// nearest-centroid router sends everything to domain 0, the balanced one
// keeps the two domains within ±max(10% of the mean, 1 document).
func ExampleRouter() {
	m := &Model{K: 2, Dim: 2, Centroids: []float32{1, 0, 0, 1}}
	x := &Rows{N: 8, Dim: 2, Values: []float32{
		1, 0, 0.9, 0.1, 0.8, 0.2, 0.95, 0.05, 1, 0, 0.7, 0.3, 0.85, 0.15, 0.6, 0.4,
	}}
	for _, cfg := range []RouteConfig{{Unbalanced: true}, {Tolerance: 0.1, Slack: 1}} {
		r, err := NewRouter(m, cfg)
		if err != nil {
			fmt.Println(err)
			return
		}
		dom, _, err := r.Route(x)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(dom, r.Counts())
	}
	// Output:
	// [0 0 0 0 0 0 0 0] [8 0]
	// [0 0 1 0 1 0 1 0] [5 3]
}

// BenchmarkRoute routes 100k dense 100-dimensional rows to K = 16 domains.
func BenchmarkRoute(b *testing.B) {
	const k, dim, n = 16, 100, 100000
	w := make([]float64, k)
	for j := range w {
		w[j] = float64(j + 1)
	}
	data := routeBlobs(16, k, dim, n, w, 0.1)
	for _, tc := range []struct {
		name string
		cfg  RouteConfig
	}{
		{"argmin", RouteConfig{Unbalanced: true}},
		{"balanced", RouteConfig{}},
		{"balanced+window", RouteConfig{Window: 4000}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var docs int
			for b.Loop() {
				r, _ := NewRouter(data.model, tc.cfg)
				for lo := 0; lo < n; lo += 500 {
					if _, _, err := r.Route(routeSlice(data.rows, lo, min(n, lo+500))); err != nil {
						b.Fatal(err)
					}
				}
				docs += n
			}
			b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// routeLowerBound returns a lower bound on the mean squared distance of any
// assignment of the n documents (d2 row-major n×k) that puts at most
// capacity in each domain: the Lagrangian dual
// max_{p≥0} (1/n)·(Σ_i min_j (d_ij + p_j) − capacity·Σ_j p_j), maximized
// by projected subgradient ascent. Any prices give a valid bound.
func routeLowerBound(d2 []float64, k int, capacity int64) float64 {
	n := len(d2) / k
	p := make([]float64, k)
	counts := make([]int64, k)
	best := math.Inf(-1)
	for it := range 400 {
		clear(counts)
		var sum float64
		for i := range n {
			row := d2[i*k : (i+1)*k]
			bj := 0
			for j := range k {
				if row[j]+p[j] < row[bj]+p[bj] {
					bj = j
				}
			}
			sum += row[bj] + p[bj]
			counts[bj]++
		}
		for _, v := range p {
			sum -= v * float64(capacity)
		}
		best = max(best, sum/float64(n))
		step := 0.5 / float64(n) / math.Sqrt(float64(it+1))
		for j := range k {
			p[j] = max(0, p[j]+step*float64(counts[j]-capacity))
		}
	}
	return best
}
