// Package embed is the featurization stage (docs.raw → docs.features).
//
// Featurizers: Tfidf reproduces scikit-learn's TfidfVectorizer with c-BTM's
// tokenizer (lowercase; runs of 2+ Unicode word characters; tokens starting
// with a digit become "#NUMBER"; English stop words removed; smooth idf; L2
// norm) on a vocabulary fitted on a sample; Hashing is the same over 2^18
// buckets with scikit-learn's MurmurHash3 bucketing, for an unbounded
// vocabulary; LSAFeaturizer projects tf-idf rows on a randomized truncated
// SVD basis (Halko et al., as scikit-learn's TruncatedSVD) and normalizes
// them, c-BTM's document embedding; HTTPEmbedder calls an embedding service
// speaking the /v1/embeddings API. All return Vectors: a CSR matrix (sparse)
// or a row-major Dense matrix, one row per text.
//
// A fitted featurizer is saved as a versioned State (SaveState, LoadState):
// an Arrow IPC file and its Parquet twin, with settings and a checksum.
// Stage wraps a State as a pipeline.Stage that turns Document records into
// Features records and can swap in a newer State while it runs (Swap,
// WatchStates).
package embed
