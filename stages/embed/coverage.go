package embed

import "math"

// VocabularyCoverage is what a featurizer with a fitted vocabulary can say
// about a text (tfidf, and lsa through its tf-idf), found by a type
// assertion: the share of the text's tokens that its vocabulary does not
// have. The tokens a vocabulary has never seen vanish from the vectors, so
// a document of a new corpus (source code, e-mail headers) can look like
// ordinary prose to every distance on the vectors; its out-of-vocabulary
// share shows it (BENCHMARKS §10: AUROC 0.998 between held-out documents
// of the fit corpus and documents of unseen sources, where the distance to
// the nearest centroid gives 0.633).
type VocabularyCoverage interface {
	// OutOfVocabulary returns the share of text's tokens (as the
	// featurizer's tokenizer yields them: stop words excluded) that are not
	// in the vocabulary, 0 for a text without tokens.
	OutOfVocabulary(text string) float64
}

var (
	_ VocabularyCoverage = (*Tfidf)(nil)
	_ VocabularyCoverage = (*LSAFeaturizer)(nil)
)

// OutOfVocabulary returns the share of text's tokens not in t's vocabulary
// (terms pruned at fit by MinDF, MaxDF or MaxFeatures count as outside).
func (t *Tfidf) OutOfVocabulary(text string) float64 {
	index := t.index()
	n, out := 0, 0
	t.Config.Tokenizer.Tokens(text, func(tok []byte) {
		id, ok := index.lookup(tok)
		if ok && id < 0 {
			return // a stop word: not a token of the vectors
		}
		n++
		if !ok {
			out++
		}
	})
	if n == 0 {
		return 0
	}
	return float64(out) / float64(n)
}

// OutOfVocabulary is that of f's tf-idf.
func (f *LSAFeaturizer) OutOfVocabulary(text string) float64 { return f.Tfidf.OutOfVocabulary(text) }

// HeldOutCoverage is a VocabularyCoverage that can also estimate, for a
// document of its own fit set, the out-of-vocabulary share the document
// would have had if it had been held out of the fit: what calibrates a
// novelty rule on the out-of-vocabulary share without a second fit.
type HeldOutCoverage interface {
	VocabularyCoverage
	// HeldOutOutOfVocabulary is OutOfVocabulary for text, one of the fitDocs
	// documents the featurizer was fitted on, as if it had not been: a term
	// counts as outside the vocabulary also when the fit would have pruned
	// it without this document (its document frequency less one below the
	// minimum).
	HeldOutOutOfVocabulary(text string, fitDocs int) float64
}

var (
	_ HeldOutCoverage = (*Tfidf)(nil)
	_ HeldOutCoverage = (*LSAFeaturizer)(nil)
)

// HeldOutOutOfVocabulary estimates text's out-of-vocabulary share had it
// been held out of t's fit on fitDocs documents (see HeldOutCoverage). The
// document frequency of a term is recovered from its idf (the fit's n and
// smoothing); a term of the text that the fit would have kept with one
// document fewer stays inside. Terms the fit pruned by MaxDF or MaxFeatures
// are outside either way.
func (t *Tfidf) HeldOutOutOfVocabulary(text string, fitDocs int) float64 {
	index := t.index()
	lo, _, err := t.Config.docCountLimits(max(fitDocs-1, 1))
	if err != nil {
		return t.OutOfVocabulary(text)
	}
	n := float64(fitDocs)
	df := func(idf float32) float64 { // the inverse of the fit's idf
		e := math.Exp(float64(idf) - 1)
		if t.Config.NoSmoothIDF {
			return math.Round(n / e)
		}
		return math.Round((1+n)/e - 1)
	}
	var toks []int // the text's in-vocabulary terms, by column, per token
	total, out := 0, 0
	t.Config.Tokenizer.Tokens(text, func(tok []byte) {
		id, ok := index.lookup(tok)
		if ok && id < 0 {
			return
		}
		total++
		if !ok {
			out++
			return
		}
		toks = append(toks, int(id))
	})
	if total == 0 {
		return 0
	}
	for _, id := range toks {
		if df(t.IDF[id])-1 < lo {
			out++
		}
	}
	return float64(out) / float64(total)
}

// HeldOutOutOfVocabulary is that of f's tf-idf.
func (f *LSAFeaturizer) HeldOutOutOfVocabulary(text string, fitDocs int) float64 {
	return f.Tfidf.HeldOutOutOfVocabulary(text, fitDocs)
}
