package cluster

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMetrics(t *testing.T) {
	const eps = 1e-12
	for _, tc := range []struct {
		name         string
		labels, pred []int
		nmi, ari, pu float64
	}{
		{"identical", []int{0, 0, 1, 1}, []int{0, 0, 1, 1}, 1, 1, 1},
		{"relabeled", []int{0, 0, 1, 1}, []int{1, 1, 0, 0}, 1, 1, 1},
		{"arbitrary ids", []int{-7, -7, 42, 42, 3}, []int{9, 9, 100, 100, -1}, 1, 1, 1},
		{"independent", []int{0, 0, 1, 1}, []int{0, 1, 0, 1}, 0, -0.5, 0.5},
		// sklearn: normalized_mutual_info_score([0,0,0,1,1,1],[0,0,1,1,2,2])
		// = 0.5158037429793889, adjusted_rand_score = 0.24242424242424243.
		{"sklearn doc example", []int{0, 0, 0, 1, 1, 1}, []int{0, 0, 1, 1, 2, 2}, 0.5158037429793889, 0.24242424242424243, 5.0 / 6},
		// sklearn: adjusted_rand_score([0,0,1,2],[0,0,1,1]) = 0.5714285714285715,
		// normalized_mutual_info_score = 0.8
		{"merge", []int{0, 0, 1, 2}, []int{0, 0, 1, 1}, 0.8, 0.5714285714285715, 0.75},
		{"one cluster each", []int{1, 1, 1}, []int{5, 5, 5}, 1, 1, 1},
		// sklearn: NMI = 0 and ARI = 0 when one side is a single cluster.
		{"all in one predicted", []int{0, 0, 1, 1}, []int{3, 3, 3, 3}, 0, 0, 0.5},
		{"singletons vs one", []int{0, 1, 2, 3}, []int{0, 0, 0, 0}, 0, 0, 0.25},
		{"empty", []int{}, []int{}, 1, 1, 1},
	} {
		if got := NMI(tc.labels, tc.pred); math.Abs(got-tc.nmi) > eps {
			t.Errorf("%s: NMI(%v, %v) = %v, want %v", tc.name, tc.labels, tc.pred, got, tc.nmi)
		}
		if got := ARI(tc.labels, tc.pred); math.Abs(got-tc.ari) > eps {
			t.Errorf("%s: ARI(%v, %v) = %v, want %v", tc.name, tc.labels, tc.pred, got, tc.ari)
		}
		if got := Purity(tc.labels, tc.pred); math.Abs(got-tc.pu) > eps {
			t.Errorf("%s: Purity(%v, %v) = %v, want %v", tc.name, tc.labels, tc.pred, got, tc.pu)
		}
	}
}

func TestMetricsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for range 50 {
		n := 5 + rng.IntN(200)
		a, b := make([]int, n), make([]int, n)
		perm := rng.Perm(10)
		for i := range a {
			a[i] = rng.IntN(6)
			b[i] = rng.IntN(4)
		}
		relabeled := make([]int, n)
		for i, v := range a {
			relabeled[i] = perm[v] * 3
		}
		// A relabeling is a perfect match; NMI and ARI are symmetric.
		if got := ARI(a, relabeled); math.Abs(got-1) > 1e-12 {
			t.Fatalf("ARI of a relabeling = %v", got)
		}
		if got := NMI(a, relabeled); math.Abs(got-1) > 1e-12 {
			t.Fatalf("NMI of a relabeling = %v", got)
		}
		if x, y := NMI(a, b), NMI(b, a); math.Abs(x-y) > 1e-12 || x < 0 || x > 1 {
			t.Fatalf("NMI(a,b) = %v, NMI(b,a) = %v", x, y)
		}
		if x, y := ARI(a, b), ARI(b, a); math.Abs(x-y) > 1e-12 || x > 1 {
			t.Fatalf("ARI(a,b) = %v, ARI(b,a) = %v", x, y)
		}
		if p := Purity(a, b); p <= 0 || p > 1 {
			t.Fatalf("Purity = %v", p)
		}
	}
}

func TestMetricsLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NMI with different lengths did not panic")
		}
	}()
	NMI([]int{0}, []int{0, 1})
}

func TestBalance(t *testing.T) {
	for _, tc := range []struct {
		sizes           []int
		maxMin, maxMean float64
	}{
		{[]int{5, 5, 5}, 1, 1},
		{[]int{4, 3, 3}, 4.0 / 3, 1.2},
		{[]int{8, 2}, 4, 1.6},
		{[]int{6, 0}, math.Inf(1), 2},
		{[]int{7}, 1, 1},
	} {
		mm, mmean := Balance(tc.sizes)
		if mm != tc.maxMin || math.Abs(mmean-tc.maxMean) > 1e-12 {
			t.Errorf("Balance(%v) = %v, %v; want %v, %v", tc.sizes, mm, mmean, tc.maxMin, tc.maxMean)
		}
	}
	for _, s := range [][]int{nil, {0, 0}} {
		if mm, mmean := Balance(s); !math.IsNaN(mm) || !math.IsNaN(mmean) {
			t.Errorf("Balance(%v) = %v, %v; want NaN, NaN", s, mm, mmean)
		}
	}
}
