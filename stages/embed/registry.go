package embed

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// A kind of featurizer is known to this package through its Factory,
// registered under the kind's name. Each built-in kind's Factory lives in
// its own file (tfidf.go, hashing.go, lsa.go, http.go), registered from
// featurizer.go in the order Kinds lists them; a new featurizer is one file
// with its type, a Kind method and a Register call in an init function.
// Fit, FitStream, NewState, LoadState, DecodeState, Kinds and ParseKind go
// through the registry, so nothing else needs to know the new kind.

// Factory is what Register needs to know of a kind of featurizer: how to fit
// one, how to save and load its state, and what it can do.
//
// A featurizer of the kind names it with a Kind method (see KindOf), so that
// NewState finds the Factory that saves it.
type Factory struct {
	// Fit fits a featurizer on texts and returns it with the vectors of
	// texts, one row per text in order. When nil, Fit calls FitStream with
	// texts as one chunk; one of Fit and FitStream is required.
	Fit func(ctx context.Context, texts []string, opt FitOptions) (Featurizer, Vectors, error)
	// FitStream is Fit over texts delivered in chunks by next (io.EOF after
	// the last); the result must equal Fit on all chunks. Nil for a kind that
	// cannot be fitted on a stream (FitStream then returns an error).
	FitStream func(ctx context.Context, next func() ([]string, error), opt FitOptions) (Featurizer, Vectors, error)

	// Settings fills the part of set that describes f (e.g. set.Tokenizer
	// and set.Tfidf, or set.Extra for a kind of another package); Format,
	// Kind, Version, Created, FitDocs and Checksum are filled by the caller.
	// Required.
	Settings func(f Featurizer, set *Settings) error
	// Table returns the state table of f: what of f is not in its settings.
	// Nil means an empty table (a featurizer made of its settings alone).
	Table func(f Featurizer) StateTable
	// Load rebuilds a featurizer from the settings and table that Settings
	// and Table gave, after their checksums were verified. Its errors are
	// prefixed with the file's path or "featurizer state". Required.
	Load func(set *Settings, t StateTable) (Featurizer, error)

	// RowsProgress says that FitStream calls FitOptions.Rows with the
	// sparse rows of its result as they become final (tf-idf and hashing
	// do; a kind whose rows are computed at the end does not).
	RowsProgress bool
}

// Streams reports whether the kind can be fitted on a stream (FitStream).
func (f Factory) Streams() bool { return f.FitStream != nil }

var (
	regMu    sync.RWMutex
	registry = map[Kind]Factory{}
	kinds    []Kind // in registration order
)

// Register makes a kind of featurizer available to Fit, FitStream, NewState
// and LoadState under kind. Featurizers register themselves from an init
// function; registering a kind twice, an empty kind, or a Factory without
// Settings, Load and one of Fit and FitStream panics.
func Register(kind Kind, f Factory) {
	if kind == "" {
		panic("embed: Register called with an empty kind")
	}
	if (f.Fit == nil && f.FitStream == nil) || f.Settings == nil || f.Load == nil {
		panic("embed: Register called with an incomplete Factory for " + string(kind))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[kind]; dup {
		panic("embed: Register called twice for " + string(kind))
	}
	registry[kind] = f
	kinds = append(kinds, kind)
}

// Lookup returns the Factory registered under kind.
func Lookup(kind Kind) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := registry[kind]
	return f, ok
}

// Kinds lists the registered kinds in the order they were registered: the
// built-in ones first (tfidf, hashing, lsa, http).
func Kinds() []Kind {
	regMu.RLock()
	defer regMu.RUnlock()
	return append([]Kind(nil), kinds...)
}

// ParseKind checks a featurizer name against the registered kinds.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if _, ok := Lookup(k); !ok {
		return "", unknownKind(s)
	}
	return k, nil
}

// unknownKind is the error for a name that no featurizer is registered
// under: "embed: unknown featurizer "x" (want tfidf, hashing, lsa or http)".
func unknownKind(s string) error {
	ks := Kinds()
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = string(k)
	}
	want := strings.Join(names, ", ")
	if n := len(names); n > 1 {
		want = strings.Join(names[:n-1], ", ") + " or " + names[n-1]
	}
	return fmt.Errorf("embed: unknown featurizer %q (want %s)", s, want)
}

// KindOf returns the kind of a featurizer: what its Kind method says, or ""
// for a featurizer without one.
func KindOf(f Featurizer) Kind {
	if k, ok := f.(interface{ Kind() Kind }); ok {
		return k.Kind()
	}
	return ""
}
