package cluster

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func assignCost(cost []float64, k int, a []int) float64 {
	s := 0.0
	for i, j := range a {
		s += cost[i*k+j]
	}
	return s
}

// bruteBalanced enumerates every assignment with the given sizes (n ≤ 8).
func bruteBalanced(cost []float64, n, k int, caps []int) float64 {
	best := math.Inf(1)
	a := make([]int, n)
	left := slices.Clone(caps)
	var rec func(i int, s float64)
	rec = func(i int, s float64) {
		if i == n {
			best = min(best, s)
			return
		}
		for j := range k {
			if left[j] > 0 {
				left[j]--
				a[i] = j
				rec(i+1, s+cost[i*k+j])
				left[j]++
			}
		}
	}
	rec(0, 0)
	return best
}

// hungarianBalanced expands cluster j into caps[j] slots and solves the n×n
// assignment problem with the O(n³) Hungarian method: the reference for
// larger instances.
func hungarianBalanced(cost []float64, n, k int, caps []int) float64 {
	slot := make([]int, 0, n)
	for j, c := range caps {
		for range c {
			slot = append(slot, j)
		}
	}
	a := func(i, j int) float64 { return cost[(i-1)*k+slot[j-1]] }
	inf := math.Inf(1)
	u, v := make([]float64, n+1), make([]float64, n+1)
	p, way := make([]int, n+1), make([]int, n+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		minv := make([]float64, n+1)
		used := make([]bool, n+1)
		for j := range minv {
			minv[j] = inf
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], inf, 0
			for j := 1; j <= n; j++ {
				if !used[j] {
					cur := a(i0, j) - u[i0] - v[j]
					if cur < minv[j] {
						minv[j], way[j] = cur, j0
					}
					if minv[j] < delta {
						delta, j1 = minv[j], j
					}
				}
			}
			for j := 0; j <= n; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	s := 0.0
	for j := 1; j <= n; j++ {
		s += a(p[j], j)
	}
	return s
}

func checkSizes(t *testing.T, a []int, k int, caps []int) {
	t.Helper()
	got := make([]int, k)
	for _, j := range a {
		if j < 0 || j >= k {
			t.Fatalf("assignment %d out of range [0,%d)", j, k)
		}
		got[j]++
	}
	if !slices.Equal(got, caps) {
		t.Fatalf("sizes %v, want %v", got, caps)
	}
}

func randomCaps(rng *rand.Rand, n, k int) []int {
	caps := make([]int, k)
	for range n {
		caps[rng.IntN(k)]++
	}
	return caps
}

func TestBalancedAssignExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 3000 {
		n := 1 + rng.IntN(8)
		k := 1 + rng.IntN(4)
		cost := make([]float64, n*k)
		for i := range cost {
			switch trial % 3 {
			case 0:
				cost[i] = rng.Float64()
			case 1:
				cost[i] = float64(rng.IntN(4)) // many ties
			default:
				cost[i] = rng.NormFloat64() * 10 // negative costs
			}
		}
		caps := BalancedCaps(n, k)
		if trial%2 == 1 {
			caps = randomCaps(rng, n, k) // uneven, zero capacities
		}
		a := BalancedAssign(cost, n, k, caps)
		checkSizes(t, a, k, caps)
		if got, want := assignCost(cost, k, a), bruteBalanced(cost, n, k, caps); math.Abs(got-want) > 1e-9*(1+math.Abs(want)) {
			t.Fatalf("trial %d: n=%d k=%d caps=%v: cost %v, brute force %v", trial, n, k, caps, got, want)
		}
	}
}

func TestBalancedAssignVsHungarian(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		n := 10 + rng.IntN(90)
		k := 2 + rng.IntN(12)
		if k > n {
			k = n
		}
		cost := make([]float64, n*k)
		// Clustered costs (points with a few close centers) to force long
		// augmenting paths, and uniform ones.
		for i := range n {
			pref := rng.IntN(min(k, 3))
			for j := range k {
				c := rng.Float64()
				if trial%2 == 0 && j == pref {
					c -= 2
				}
				cost[i*k+j] = c
			}
		}
		caps := BalancedCaps(n, k)
		if trial%3 == 0 {
			caps = randomCaps(rng, n, k)
		}
		a := BalancedAssign(cost, n, k, caps)
		checkSizes(t, a, k, caps)
		if got, want := assignCost(cost, k, a), hungarianBalanced(cost, n, k, caps); math.Abs(got-want) > 1e-9*(1+math.Abs(want)) {
			t.Fatalf("trial %d: n=%d k=%d: cost %v, Hungarian %v", trial, n, k, got, want)
		}
	}
}

func TestBalancedAssignUnconstrainedWhenFeasible(t *testing.T) {
	// When the argmin already has the right sizes, it is the answer.
	cost := []float64{
		0, 5, 5,
		5, 0, 5,
		5, 5, 0,
		0, 5, 5,
	}
	a := BalancedAssign(cost, 4, 3, []int{2, 1, 1})
	if want := []int{0, 1, 2, 0}; !slices.Equal(a, want) {
		t.Errorf("BalancedAssign = %v, want %v", a, want)
	}
}

func TestBalancedCaps(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		want []int
	}{
		{10, 3, []int{4, 3, 3}},
		{9, 3, []int{3, 3, 3}},
		{2, 4, []int{1, 1, 0, 0}},
		{0, 2, []int{0, 0}},
		{7, 1, []int{7}},
	} {
		if got := BalancedCaps(tc.n, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("BalancedCaps(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
		}
	}
}

func TestBalancedAssignPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"caps sum":  func() { BalancedAssign(make([]float64, 4), 2, 2, []int{1, 2}) },
		"cost size": func() { BalancedAssign(make([]float64, 3), 2, 2, []int{1, 1}) },
		"negative":  func() { BalancedAssign(make([]float64, 4), 2, 2, []int{3, -1}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func BenchmarkBalancedAssign(b *testing.B) {
	for _, sz := range []struct{ n, k int }{{3068, 16}, {100000, 64}} {
		rng := rand.New(rand.NewPCG(5, 6))
		cost := make([]float64, sz.n*sz.k)
		for i := range sz.n {
			pref := rng.IntN(3) // skewed: most points prefer 3 clusters
			for j := range sz.k {
				cost[i*sz.k+j] = rng.Float64()
				if j == pref {
					cost[i*sz.k+j] -= 1
				}
			}
		}
		caps := BalancedCaps(sz.n, sz.k)
		b.Run(fmt.Sprintf("n=%d/k=%d", sz.n, sz.k), func(b *testing.B) {
			for b.Loop() {
				BalancedAssign(cost, sz.n, sz.k, caps)
			}
		})
	}
}
