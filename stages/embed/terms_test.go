package embed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTopTerms(t *testing.T) {
	vocab := []string{"delta", "alpha", "charlie", "bravo", "echo", "foxtrot"}
	w := []float32{0.5, 0.2, 0.5, 0.9, 0, -1}
	cases := []struct {
		n    int
		want []string
	}{
		{0, nil},
		{-1, nil},
		{1, []string{"bravo"}},
		{3, []string{"bravo", "charlie", "delta"}}, // tie at 0.5 by term order
		{10, []string{"bravo", "charlie", "delta", "alpha"}},
	}
	for _, c := range cases {
		if got := TopTerms(w, vocab, c.n); !slices.Equal(got, c.want) {
			t.Errorf("n=%d: %q, want %q", c.n, got, c.want)
		}
	}
	if got := TopTerms([]float32{1, float32(math.NaN()), 2}, []string{"a", "b"}, 5); !slices.Equal(got, []string{"a"}) {
		t.Errorf("short vocabulary / NaN: %q", got)
	}
	if got := TopTerms(nil, vocab, 3); len(got) != 0 {
		t.Errorf("no weights: %q", got)
	}
}

// TopTerms selects the few best terms in one pass (n < 64) and sorts them
// all otherwise; both must give the full sort's first n, ties included.
func TestTopTermsSelectionMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const l = 3000
	vocab := make([]string, l)
	w := make([]float32, l)
	for i := range l {
		vocab[i] = fmt.Sprintf("t%04d", rng.IntN(l)) // repeated terms: ties on term too
		w[i] = float32(rng.IntN(40)-5) / 8           // many equal weights, some ≤ 0
	}
	all := TopTerms(w, vocab, l) // the sorting path
	for _, n := range []int{1, 2, 10, 63, 64, 200} {
		if got := TopTerms(w, vocab, n); !slices.Equal(got, all[:min(n, len(all))]) {
			t.Errorf("n=%d: %q, want %q", n, got, all[:min(n, len(all))])
		}
	}
}
