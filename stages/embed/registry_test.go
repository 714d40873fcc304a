package embed_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/domainflow/domainflow/stages/embed"
)

// TestRegistry: the built-in kinds come first in their order, a kind
// registered from another package (keywords, registry_example_test.go)
// follows, and ParseKind lists them all when a name is unknown.
func TestRegistry(t *testing.T) {
	want := []embed.Kind{embed.KindTfidf, embed.KindHashing, embed.KindLSA, embed.KindHTTP, "keywords"}
	if got := embed.Kinds(); !slices.Equal(got, want) {
		t.Fatalf("Kinds() = %v, want %v", got, want)
	}
	for _, k := range want {
		if got, err := embed.ParseKind(string(k)); got != k || err != nil {
			t.Errorf("ParseKind(%q) = %q, %v, want %q, nil", k, got, err, k)
		}
	}
	_, err := embed.ParseKind("bow")
	if w := `embed: unknown featurizer "bow" (want tfidf, hashing, lsa, http or keywords)`; err == nil || err.Error() != w {
		t.Errorf("ParseKind(%q) error = %v, want %s", "bow", err, w)
	}
	if _, _, err := embed.Fit(context.Background(), "bow", []string{"x"}, embed.FitOptions{}); err == nil || !strings.Contains(err.Error(), "unknown featurizer") {
		t.Errorf("Fit(bow) error = %v, want an unknown featurizer", err)
	}
	// What callers choose a path by.
	for _, c := range []struct {
		k                     embed.Kind
		streams, rowsProgress bool
	}{
		{embed.KindTfidf, true, true},
		{embed.KindHashing, true, true},
		{embed.KindLSA, true, false},
		{embed.KindHTTP, false, false},
		{"keywords", false, false},
	} {
		f, ok := embed.Lookup(c.k)
		if !ok || f.Streams() != c.streams || f.RowsProgress != c.rowsProgress {
			t.Errorf("Lookup(%q): found %v, Streams %v, RowsProgress %v; want true, %v, %v", c.k, ok, f.Streams(), f.RowsProgress, c.streams, c.rowsProgress)
		}
	}
	if _, _, err := embed.FitStream(context.Background(), "keywords", nil, embed.FitOptions{}); err == nil {
		t.Error("FitStream of a kind without Factory.FitStream succeeded")
	}
}

func TestRegisterPanics(t *testing.T) {
	full := embed.Factory{
		Fit: func(context.Context, []string, embed.FitOptions) (embed.Featurizer, embed.Vectors, error) {
			return nil, embed.Vectors{}, nil
		},
		Settings: func(embed.Featurizer, *embed.Settings) error { return nil },
		Load:     func(*embed.Settings, embed.StateTable) (embed.Featurizer, error) { return nil, nil },
	}
	noLoad := full
	noLoad.Load = nil
	for _, c := range []struct {
		name string
		kind embed.Kind
		f    embed.Factory
	}{
		{"twice", embed.KindTfidf, full},
		{"empty kind", "", full},
		{"no Load", "never-registered", noLoad},
		{"no fit", "never-registered", embed.Factory{Settings: full.Settings, Load: full.Load}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register (%s) did not panic", c.name)
				}
			}()
			embed.Register(c.kind, c.f)
		}()
	}
	if _, ok := embed.Lookup("never-registered"); ok {
		t.Error("a Register call that panicked registered its kind")
	}
}

// TestRegisteredKindState: a registered kind's state round-trips through
// both files and through EncodeState/DecodeState.
func TestRegisteredKindState(t *testing.T) {
	ctx := context.Background()
	texts := []string{"red fish blue fish", "one fish two fish", "red blue red"}
	f, v, err := embed.Fit(ctx, "keywords", texts, embed.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := embed.NewState(f, v.Len())
	if err != nil {
		t.Fatal(err)
	}
	if s.Settings.Kind != "keywords" || string(s.Settings.Extra) != `{"words":3}` {
		t.Fatalf("NewState: kind %q, extra %s", s.Settings.Kind, s.Settings.Extra)
	}
	dir := t.TempDir()
	if _, err := embed.SaveState(dir, s); err != nil {
		t.Fatal(err)
	}
	arrow := embed.StatePath(dir, 1)
	parquet := strings.TrimSuffix(arrow, filepath.Ext(arrow)) + ".parquet"
	for _, path := range []string{arrow, parquet} {
		got, err := embed.LoadStateFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Featurizer, f) {
			t.Errorf("%s: loaded %+v, want %+v", filepath.Base(path), got.Featurizer, f)
		}
		sameState(t, filepath.Base(path), s, got, texts)
	}
	loaded, err := embed.LoadState(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := embed.EncodeState(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if file, _ := os.ReadFile(arrow); !slices.Equal(b, file) {
		t.Error("EncodeState differs from the Arrow file")
	}
	dec, err := embed.DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "decoded", s, dec, texts)
}

// TestCentroidTerms: tfidf names a vector by its own columns, lsa through
// the SVD basis, and the kinds without terms give nil.
func TestCentroidTerms(t *testing.T) {
	_, texts := fixtureTexts(t, 80)
	tf := fitKind(t, embed.KindTfidf, texts).(*embed.Tfidf)
	c := make([]float32, 2*tf.Dim())
	for j := range c {
		c[j] = float32(j%97) / 97
	}
	got := embed.CentroidTerms(tf, c, 2, 5)
	for j := range 2 {
		if w := embed.TopTerms(c[j*tf.Dim():(j+1)*tf.Dim()], tf.Vocabulary, 5); !slices.Equal(got[j], w) {
			t.Errorf("tfidf centroid %d: %q, want %q", j, got[j], w)
		}
	}

	lsa := fitKind(t, embed.KindLSA, texts).(*embed.LSAFeaturizer)
	d := lsa.Dim()
	lc := make([]float32, 2*d)
	for j := range lc {
		lc[j] = float32(j%5) - 1.5
	}
	got = embed.CentroidTerms(lsa, lc, 2, 4)
	comp := lsa.LSA.Components
	for j := range 2 {
		back := make([]float32, comp.Cols) // centroid · Components, term by term
		for term := range comp.Cols {
			for k := range d {
				back[term] += lc[j*d+k] * comp.Data[k*comp.Cols+term]
			}
		}
		if w := embed.TopTerms(back, lsa.Tfidf.Vocabulary, 4); !slices.Equal(got[j], w) {
			t.Errorf("lsa centroid %d: %q, want %q", j, got[j], w)
		}
	}

	h := fitKind(t, embed.KindHashing, texts)
	if got := embed.CentroidTerms(h, make([]float32, h.Dim()), 1, 3); got != nil {
		t.Errorf("hashing: %q, want nil", got)
	}
}
