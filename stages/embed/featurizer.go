package embed

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// Featurizer turns texts into vectors, one row per text, in input order.
// Implementations are safe for concurrent use once fitted.
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

// Kinds lists the featurizer kinds.
var Kinds = []Kind{KindTfidf, KindHashing, KindLSA, KindHTTP}

// ParseKind checks a featurizer name.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if !slices.Contains(Kinds, k) {
		return "", fmt.Errorf("embed: unknown featurizer %q (want tfidf, hashing, lsa or http)", s)
	}
	return k, nil
}

// LSAFeaturizer is tf-idf followed by an LSA projection: c-BTM's embedding.
type LSAFeaturizer struct {
	Tfidf *Tfidf
	LSA   *LSA
}

// Dim is the LSA dimension.
func (f *LSAFeaturizer) Dim() int { return f.LSA.Dim() }

// Transform featurizes with tf-idf and projects the rows.
func (f *LSAFeaturizer) Transform(ctx context.Context, texts []string) (Vectors, error) {
	v, err := f.Tfidf.Transform(ctx, texts)
	if err != nil {
		return Vectors{}, err
	}
	d, err := f.LSA.Project(ctx, v.Sparse)
	if err != nil {
		return Vectors{}, err
	}
	return Vectors{Dense: d}, nil
}

// FitOptions configure Fit; the part for the chosen kind is used.
type FitOptions struct {
	Tfidf   TfidfConfig   // tfidf and lsa
	Hashing HashingConfig // hashing
	LSA     LSAConfig     // lsa
	HTTP    HTTPConfig    // http (nothing is fitted; the client is built)

	// Rows, when set, is called by FitStream for tfidf and hashing while
	// the rows of the result are weighed, each time more leading rows are
	// final: with the matrix being built (the one FitStream returns) and
	// the number done of its leading rows that will not change; the last
	// call has done == m.Rows. Calls are serialized. The function may hand
	// the rows to another goroutine, which may read rows [0, done) of m
	// (Indptr[:done+1] and their Indices and Data) while the rest is built,
	// to overlap their output with the weighing.
	Rows func(m *CSR, done int)
}

// rowsProgressKey is the context key under which FitStream passes
// FitOptions.Rows to assemble.
type rowsProgressKey struct{}

// Fit fits a featurizer of kind k on texts and also returns the vectors of
// texts, computed in the same pass (for http, nothing is fitted: the client
// is built and the texts embedded).
func Fit(ctx context.Context, k Kind, texts []string, opt FitOptions) (Featurizer, Vectors, error) {
	if k == KindHTTP {
		e, err := NewHTTPEmbedder(opt.HTTP)
		if err != nil {
			return nil, Vectors{}, err
		}
		v, err := e.Transform(ctx, texts)
		return e, v, err
	}
	done := false
	return FitStream(ctx, k, func() ([]string, error) {
		if done {
			return nil, io.EOF
		}
		done = true
		return texts, nil
	}, opt)
}

// FitStream is Fit over texts delivered in chunks by next (io.EOF after the
// last): tokenization overlaps with whatever next does to produce the texts,
// such as reading and decoding a file. The result equals Fit on all chunks.
// The http featurizer is not fitted, so it is not streamed.
func FitStream(ctx context.Context, k Kind, next func() ([]string, error), opt FitOptions) (Featurizer, Vectors, error) {
	if opt.Rows != nil && (k == KindTfidf || k == KindHashing) {
		ctx = context.WithValue(ctx, rowsProgressKey{}, opt.Rows)
	}
	switch k {
	case KindTfidf:
		t := &Tfidf{Config: opt.Tfidf}
		v, err := t.FitTransformStream(ctx, next)
		if err != nil {
			return nil, Vectors{}, err
		}
		return t, v, nil
	case KindHashing:
		h := &Hashing{Config: opt.Hashing}
		v, err := h.FitTransformStream(ctx, next)
		if err != nil {
			return nil, Vectors{}, err
		}
		return h, v, nil
	case KindLSA:
		t := &Tfidf{Config: opt.Tfidf}
		x, err := t.FitTransformStream(ctx, next)
		if err != nil {
			return nil, Vectors{}, err
		}
		l, err := FitLSA(ctx, x.Sparse, opt.LSA)
		if err != nil {
			return nil, Vectors{}, err
		}
		d, err := l.Project(ctx, x.Sparse)
		if err != nil {
			return nil, Vectors{}, err
		}
		return &LSAFeaturizer{Tfidf: t, LSA: l}, Vectors{Dense: d}, nil
	default:
		return nil, Vectors{}, fmt.Errorf("embed: featurizer %q cannot be fitted on a stream", k)
	}
}

// KindOf returns the kind of a featurizer built by this package.
func KindOf(f Featurizer) Kind {
	switch f.(type) {
	case *Tfidf:
		return KindTfidf
	case *Hashing:
		return KindHashing
	case *LSAFeaturizer:
		return KindLSA
	case *HTTPEmbedder:
		return KindHTTP
	default:
		return ""
	}
}
