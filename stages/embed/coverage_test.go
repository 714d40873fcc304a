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

// TestHeldOutOutOfVocabulary: a fit document's held-out estimate is exactly
// its out-of-vocabulary share under a featurizer fitted without it (min_df
// 1 and 2, smooth and plain idf).
func TestHeldOutOutOfVocabulary(t *testing.T) {
	texts := []string{
		"the whale swam past the ship and the sailors watched the whale",
		"congress passed the budget and the president signed the budget bill",
		"the ship sailed into the harbour at dawn with the crew asleep",
		"func main returns an error when the file cannot be opened",
		"the sailors and the crew watched congress on the harbour television",
		"free money click here to claim your prize before midnight",
		"the president watched the whale from the ship at dawn",
	}
	for _, cfg := range []embed.TfidfConfig{{}, {MinDF: 2}, {NoSmoothIDF: true}, {MinDF: 2, NoSmoothIDF: true}} {
		full, err := embed.FitTfidf(context.Background(), texts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range texts {
			rest := append(append([]string{}, texts[:i]...), texts[i+1:]...)
			without, err := embed.FitTfidf(context.Background(), rest, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := without.OutOfVocabulary(doc)
			if got := full.HeldOutOutOfVocabulary(doc, len(texts)); math.Abs(got-want) > 1e-12 {
				t.Errorf("%+v doc %d: held-out estimate %.4f, fit without it %.4f", cfg, i, got, want)
			}
			if got := full.OutOfVocabulary(doc); cfg.MinDF == 0 && got != 0 {
				t.Errorf("%+v doc %d: a fit document has out-of-vocabulary share %.4f", cfg, i, got)
			}
		}
	}
}
