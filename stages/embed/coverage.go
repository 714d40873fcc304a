package embed

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
