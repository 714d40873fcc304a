package embed

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Featurizer turns texts into vectors, one row per text, in input order.
// Implementations are safe for concurrent use once fitted. One of a
// registered kind also has a Kind() Kind method (see KindOf and Register),
// and may have optional capabilities found by type assertion (TermNamer).
type Featurizer interface {
	// Dim is the number of columns of the output (0 while unknown, for an
	// embedding service that has not answered yet).
	Dim() int
	Transform(ctx context.Context, texts []string) (Vectors, error)
}

var (
	_ Featurizer = (*Tfidf)(nil)
	_ Featurizer = (*Hashing)(nil)
	_ Featurizer = (*LSAFeaturizer)(nil)
	_ Featurizer = (*HTTPEmbedder)(nil)
)

// Kind names a featurizer.
type Kind string

// The featurizers.
const (
	KindTfidf   Kind = "tfidf"   // tf-idf over a vocabulary fitted on a sample (c-BTM's)
	KindHashing Kind = "hashing" // tf-idf over 2^18 hashed buckets: an unbounded vocabulary
	KindLSA     Kind = "lsa"     // tf-idf → randomized truncated SVD → L2 normalize (c-BTM's embedding)
	KindHTTP    Kind = "http"    // an embedding service speaking /v1/embeddings
)

// The built-in kinds register in this order, which Kinds keeps; each
// Factory lives in its kind's file.
func init() {
	Register(KindTfidf, tfidfFactory)
	Register(KindHashing, hashingFactory)
	Register(KindLSA, lsaFactory)
	Register(KindHTTP, httpFactory)
}

// FitOptions configure Fit; the part for the chosen kind is used.
type FitOptions struct {
	Tfidf   TfidfConfig   // tfidf and lsa
	Hashing HashingConfig // hashing
	LSA     LSAConfig     // lsa
	HTTP    HTTPConfig    // http (nothing is fitted; the client is built)

	// Rows, when set, is called by FitStream for the kinds whose Factory
	// has RowsProgress (tfidf and hashing) while the rows of the result are
	// weighed, each time more leading rows are final: with the matrix being
	// built (the one FitStream returns) and the number done of its leading
	// rows that will not change; the last call has done == m.Rows. Calls are
	// serialized. The function may hand the rows to another goroutine, which
	// may read rows [0, done) of m (Indptr[:done+1] and their Indices and
	// Data) while the rest is built, to overlap their output with the
	// weighing.
	Rows func(m *CSR, done int)
}

// rowsProgressKey is the context key under which FitStream passes
// FitOptions.Rows to assemble.
type rowsProgressKey struct{}

// Fit fits a featurizer of kind k on texts and also returns the vectors of
// texts, computed in the same pass (for http, nothing is fitted: the client
// is built and the texts embedded).
func Fit(ctx context.Context, k Kind, texts []string, opt FitOptions) (Featurizer, Vectors, error) {
	f, ok := Lookup(k)
	if !ok {
		return nil, Vectors{}, unknownKind(string(k))
	}
	if f.Fit != nil {
		return f.Fit(ctx, texts, opt)
	}
	return FitStream(ctx, k, oneChunk(texts), opt)
}

// oneChunk is the next of FitStream that delivers texts at once.
func oneChunk(texts []string) func() ([]string, error) {
	done := false
	return func() ([]string, error) {
		if done {
			return nil, io.EOF
		}
		done = true
		return texts, nil
	}
}

// FitStream is Fit over texts delivered in chunks by next (io.EOF after the
// last): tokenization overlaps with whatever next does to produce the texts,
// such as reading and decoding a file. The result equals Fit on all chunks.
// A kind without Factory.FitStream (http: nothing is fitted) is not streamed.
func FitStream(ctx context.Context, k Kind, next func() ([]string, error), opt FitOptions) (Featurizer, Vectors, error) {
	f, ok := Lookup(k)
	if !ok || f.FitStream == nil {
		return nil, Vectors{}, fmt.Errorf("embed: featurizer %q cannot be fitted on a stream", k)
	}
	return f.FitStream(ctx, next, opt)
}

// withRowsProgress passes opt.Rows, when set, to the tf-idf weighing of a
// fit (see rowsProgressKey).
func withRowsProgress(ctx context.Context, opt FitOptions) context.Context {
	if opt.Rows == nil {
		return ctx
	}
	return context.WithValue(ctx, rowsProgressKey{}, opt.Rows)
}

// DefaultFitOptions are the options of every featurizer when nothing is
// said (the `pipeline` commands' flag defaults): c-BTM's tokenizer
// (lowercase, tokens of 2+ word characters, #NUMBER, English stop words),
// min-df and max-df 1, 2^18 hashing buckets, 100 LSA dimensions (clamped
// to the sample) with 5 power iterations and seed 0, and an HTTP client of
// 64 texts per request, 4 in flight, 30 s timeouts and normalized vectors.
func DefaultFitOptions() FitOptions {
	tok := DefaultTokenizer()
	return FitOptions{
		Tfidf:   TfidfConfig{Tokenizer: tok, MinDF: 1, MaxDF: 1},
		Hashing: HashingConfig{Tokenizer: tok, Features: 1 << 18},
		LSA:     LSAConfig{Dims: 100, PowerIters: 5, ClampDims: true},
		HTTP:    HTTPConfig{BatchSize: 64, Concurrency: 4, Timeout: 30 * time.Second, Normalize: true},
	}
}
