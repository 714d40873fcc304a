package embed_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

// fixtureTexts returns the texts of the first n documents of the demo corpus.
func fixtureTexts(t testing.TB, n int) (ids, texts []string) {
	t.Helper()
	r, err := schemas.OpenInput("../../testdata/mixed-small.jsonl.gz", schemas.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for len(texts) < n {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.Doc.ID)
		texts = append(texts, rec.Doc.Text)
	}
	return ids, texts
}

func fitKind(t *testing.T, k embed.Kind, texts []string) embed.Featurizer {
	t.Helper()
	f, _, err := embed.Fit(context.Background(), k, texts, embed.FitOptions{
		Hashing: embed.HashingConfig{Features: 1 << 12},
		LSA:     embed.LSAConfig{Dims: 8, Seed: 3},
	})
	if err != nil {
		t.Fatalf("fit %s: %v", k, err)
	}
	return f
}

func sameVectors(t *testing.T, what string, a, b embed.Vectors) {
	t.Helper()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%s: vectors differ (dims %d vs %d, rows %d vs %d)", what, a.Dim(), b.Dim(), a.Len(), b.Len())
	}
}

// TestStateRoundTrip saves each fitted featurizer and loads it back from the
// Arrow file, from the Parquet twin when the Arrow file is damaged or gone,
// and refuses a state whose two files are both damaged.
func TestStateRoundTrip(t *testing.T) {
	_, texts := fixtureTexts(t, 120)
	ctx := context.Background()
	for _, k := range []embed.Kind{embed.KindTfidf, embed.KindHashing, embed.KindLSA} {
		t.Run(string(k), func(t *testing.T) {
			f := fitKind(t, k, texts[:80])
			want, err := f.Transform(ctx, texts[80:])
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			s, err := embed.NewState(f, 80)
			if err != nil {
				t.Fatal(err)
			}
			v, err := embed.SaveState(dir, s)
			if err != nil || v != 1 {
				t.Fatalf("SaveState = %d, %v; want version 1", v, err)
			}
			check := func(what string) {
				t.Helper()
				got, err := embed.LoadState(dir, 0)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if got.Settings.Kind != k || got.Settings.Version != 1 || got.Settings.FitDocs != 80 {
					t.Fatalf("%s: settings %+v", what, got.Settings)
				}
				gv, err := got.Featurizer.Transform(ctx, texts[80:])
				if err != nil {
					t.Fatal(err)
				}
				sameVectors(t, what, want, gv)
			}
			check("arrow")
			arrowPath := embed.StatePath(dir, 1)
			data, _ := os.ReadFile(arrowPath)
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(arrowPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			check("parquet fallback after a damaged arrow file")
			parquetPath := arrowPath[:len(arrowPath)-len(".arrow")] + ".parquet"
			pdata, _ := os.ReadFile(parquetPath)
			if err := os.WriteFile(parquetPath, pdata[:len(pdata)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := embed.LoadState(dir, 1); err == nil {
				t.Fatal("a state whose arrow and parquet files are both damaged was loaded")
			}
		})
	}
}

func TestStateVersionsAndWatch(t *testing.T) {
	_, texts := fixtureTexts(t, 60)
	dir := t.TempDir()
	if v, err := embed.LatestStateVersion(dir); v != 0 || err != nil {
		t.Fatalf("empty dir: version %d, %v", v, err)
	}
	if _, err := embed.LoadState(dir, 0); err == nil {
		t.Fatal("LoadState of an empty dir succeeded")
	}
	for want := int64(1); want <= 2; want++ {
		s, _ := embed.NewState(fitKind(t, embed.KindTfidf, texts[:30*int(want)]), 30*int(want))
		if v, err := embed.SaveState(dir, s); v != want || err != nil {
			t.Fatalf("SaveState = %d, %v; want %d", v, err, want)
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"featurizer-000001.arrow", "featurizer-000001.parquet", "featurizer-000002.arrow", "featurizer-000002.parquet"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("state dir holds %v, want %v (no temp files left)", names, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan int64, 4)
	go embed.WatchStates(ctx, dir, 1, 10*time.Millisecond, func(s *embed.State) { got <- s.Settings.Version }, func(err error) { t.Error(err) })
	select {
	case v := <-got:
		if v != 2 {
			t.Fatalf("watch loaded version %d, want 2", v)
		}
	case <-ctx.Done():
		t.Fatal("watch did not pick up version 2")
	}
	s, _ := embed.NewState(fitKind(t, embed.KindHashing, texts), len(texts))
	if _, err := embed.SaveState(dir, s); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != 3 {
			t.Fatalf("watch loaded version %d, want 3", v)
		}
	case <-ctx.Done():
		t.Fatal("watch did not pick up version 3")
	}
	if _, err := os.Stat(filepath.Join(dir, "featurizer-000003.parquet")); err != nil {
		t.Fatal(err)
	}
}
