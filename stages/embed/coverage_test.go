package embed_test

import (
	"context"
	"math"
	"testing"

	"github.com/domainflow/domainflow/stages/embed"
)

func TestOutOfVocabulary(t *testing.T) {
	ctx := context.Background()
	fit := []string{"the cat sat on the mat", "a cat and a kitten", "the kitten sat"}
	f, err := embed.FitTfidf(ctx, fit, embed.TfidfConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lsa, _, err := embed.Fit(ctx, embed.KindLSA, fit, embed.FitOptions{LSA: embed.LSAConfig{Dims: 2, ClampDims: true}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want float64
	}{
		{"cat kitten mat", 0},             // all in the vocabulary
		{"cat dog", 0.5},                  // dog is not
		{"the a and on", 0},               // stop words only: no tokens
		{"", 0},                           // no tokens
		{"func main() { return nil }", 1}, // none of it
		{"The CAT sat on 42 mats", 0.5},   // cat and sat in; #NUMBER and mats out
	}
	for _, tt := range tests {
		for name, c := range map[string]embed.VocabularyCoverage{"tfidf": f, "lsa": lsa.(embed.VocabularyCoverage)} {
			if got := c.OutOfVocabulary(tt.text); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("%s.OutOfVocabulary(%q) = %v, want %v", name, tt.text, got, tt.want)
			}
		}
	}
	if _, ok := embed.Featurizer(&embed.Hashing{}).(embed.VocabularyCoverage); ok {
		t.Error("hashing has no vocabulary but claims a coverage")
	}
}
