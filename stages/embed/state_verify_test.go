package embed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/domainflow/domainflow/schemas"
	"github.com/domainflow/domainflow/stages/embed"
)

// sameState fails unless a and b are the same state: equal settings (which
// hold the table's checksum) and equal vectors for texts.
func sameState(t *testing.T, what string, a, b *embed.State, texts []string) {
	t.Helper()
	ja, _ := json.Marshal(a.Settings)
	jb, _ := json.Marshal(b.Settings)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("%s: settings differ:\n%s\n%s", what, ja, jb)
	}
	va, err := a.Featurizer.Transform(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Featurizer.Transform(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	sameVectors(t, what, va, vb)
}

// TestEncodeState: the bytes of a state (what router.models carries) are
// those of its Arrow file, decode to the same state, and are made only from
// a state that matches its checksum.
func TestEncodeState(t *testing.T) {
	_, texts := fixtureTexts(t, 100)
	for _, k := range []embed.Kind{embed.KindTfidf, embed.KindHashing, embed.KindLSA} {
		t.Run(string(k), func(t *testing.T) {
			dir := t.TempDir()
			s, _ := embed.NewState(fitKind(t, k, texts[:80]), 80)
			if _, err := embed.EncodeState(s); err == nil {
				t.Fatal("EncodeState of a state never saved (no checksum) succeeded")
			}
			if _, err := embed.SaveState(dir, s); err != nil {
				t.Fatal(err)
			}
			loaded, err := embed.LoadState(dir, 1)
			if err != nil {
				t.Fatal(err)
			}
			b, err := embed.EncodeState(loaded)
			if err != nil {
				t.Fatal(err)
			}
			file, _ := os.ReadFile(embed.StatePath(dir, 1))
			if !bytes.Equal(b, file) {
				t.Fatalf("EncodeState gave %d bytes that differ from the %d of the Arrow file", len(b), len(file))
			}
			got, err := embed.DecodeState(b)
			if err != nil {
				t.Fatal(err)
			}
			sameState(t, "decoded", loaded, got, texts[80:])

			// A state whose values changed after it was loaded is refused.
			switch f := loaded.Featurizer.(type) {
			case *embed.Tfidf:
				f.IDF[0]++
			case *embed.Hashing:
				f.IDF[0]++
			case *embed.LSAFeaturizer:
				f.Tfidf.IDF[0]++
			}
			if _, err := embed.EncodeState(loaded); err == nil {
				t.Fatal("EncodeState of a state that does not match its checksum succeeded")
			}
		})
	}
}

// TestEncodeStateOfDamagedArrow: with a damaged Arrow file, the state loads
// from the Parquet twin, and its encoding is that state, not the damaged
// bytes (issue 13: the damaged bytes were published).
func TestEncodeStateOfDamagedArrow(t *testing.T) {
	_, texts := fixtureTexts(t, 100)
	dir := t.TempDir()
	s, _ := embed.NewState(fitKind(t, embed.KindTfidf, texts[:80]), 80)
	if _, err := embed.SaveState(dir, s); err != nil {
		t.Fatal(err)
	}
	arrowPath := embed.StatePath(dir, 1)
	data, _ := os.ReadFile(arrowPath)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(arrowPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := embed.LoadState(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	twin, err := embed.LoadStateFile(schemas.ParquetTwin(arrowPath))
	if err != nil {
		t.Fatal(err)
	}
	b, err := embed.EncodeState(loaded)
	if err != nil {
		t.Fatal(err)
	}
	got, err := embed.DecodeState(b)
	if err != nil {
		t.Fatalf("the encoding of the state loaded from the Parquet twin does not verify: %v", err)
	}
	sameState(t, "encoded from the twin", twin, got, texts[80:])

	// Saved elsewhere under its version, both files hold it.
	other := t.TempDir()
	if err := embed.SaveStateVersion(other, got); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{embed.StatePath(other, 1), schemas.ParquetTwin(embed.StatePath(other, 1))} {
		st, err := embed.LoadStateFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sameState(t, p, twin, st, texts[80:])
	}
}

// TestDecodeStateDamage flips every byte of an encoded state in turn: each
// result either fails to decode or decodes to the very same state (a byte of
// padding), never to another state. Flips in the settings JSON (a stop word,
// a tokenizer setting) were not caught by the table's checksum.
func TestDecodeStateDamage(t *testing.T) {
	_, texts := fixtureTexts(t, 4)
	texts[0] = texts[0][:min(len(texts[0]), 300)] // a small vocabulary: every byte is flipped in seconds
	dir := t.TempDir()
	s, _ := embed.NewState(fitKind(t, embed.KindTfidf, texts[:1]), 1)
	if _, err := embed.SaveState(dir, s); err != nil {
		t.Fatal(err)
	}
	want, err := embed.LoadState(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := embed.EncodeState(want)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want.Settings)
	stride := 1
	if testing.Short() {
		stride = 5
	}
	accepted := 0
	for i := 0; i < len(b); i += stride {
		d := bytes.Clone(b)
		d[i] ^= 0x01
		got, err := embed.DecodeState(d)
		if err != nil {
			continue
		}
		accepted++
		gotJSON, _ := json.Marshal(got.Settings)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("byte %d flipped: decoded with other settings:\n%s\nwant\n%s", i, gotJSON, wantJSON)
		}
		sameState(t, "flipped byte", want, got, texts[1:])
	}
	// A flip inside the settings JSON is always caught.
	at := bytes.Index(b, []byte(`"number_token":"#NUMBER"`))
	if at < 0 {
		t.Fatal("no number_token in the encoded state")
	}
	d := bytes.Clone(b)
	d[at+len(`"number_token":"#`)] = 'X'
	if _, err := embed.DecodeState(d); err == nil {
		t.Fatal("a state whose number token was changed in its settings decoded")
	}
	t.Logf("%d of %d flipped bytes of %d decoded (to the same state)", accepted, (len(b)+stride-1)/stride, len(b))
}
