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
// Each kind of featurizer is registered under its name (Register) with a
// Factory: how to fit it (Fit, or FitStream over texts in chunks), how to
// describe and rebuild its state (Settings, Table, Load), and what it can do
// (Factory.Streams, Factory.RowsProgress). Fit, FitStream, NewState,
// LoadState, DecodeState, Kinds and ParseKind go through the registry, so a
// new featurizer is one file: its type, with a Kind method, and a Register
// call from init (see ExampleRegister). What only some featurizers can do is
// an optional interface found by type assertion: TermNamer names a vector of
// the featurizer's space, such as a k-means centroid, by its top terms
// (tfidf directly, lsa through its SVD basis; CentroidTerms).
//
// A fitted featurizer is saved as a versioned State (SaveState, LoadState):
// an Arrow IPC file and its Parquet twin, with settings and a checksum.
// Stage wraps a State as a pipeline.Stage that turns Document records into
// Features records and can swap in a newer State while it runs (Swap,
// WatchStates).
//
// FeaturizeFiles is the offline featurization (`pipeline embed --in`): the
// documents of input files into a Parquet features file (FeaturesWriter),
// fitting a featurizer first unless one is given, and tokenizing while the
// files are decoded when the fit is on all of them.
//
// The stage owns its life on Kafka: RunStage fits a featurizer on a sample
// of the input topic when it has none (SampleTexts), shares its state with
// the other processes of the pipeline on router.models (FeaturizerTopic,
// the featurizer half of that control topic: EncodeState bytes under
// FeaturizerKey, verified on every read), reloads newer states, and runs
// the Stage through a Run hook (StageConfig.Run; by default a
// pipeline.Runner), so that a program gives it its own runner, metrics and
// report without this package knowing of them.
//
// Featurizers with a fitted vocabulary also say how much of a text their
// vocabulary covers (VocabularyCoverage, found by a type assertion like
// TermNamer): the out-of-vocabulary share of a document is the strongest
// sign measured so far that it comes from a corpus the fit never saw.
package embed
