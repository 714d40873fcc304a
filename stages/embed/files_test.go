package embed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/stages/embed"
)

// filesCorpus writes n documents (and one bad line) as JSON lines and
// returns the path, the good texts and their ids.
func filesCorpus(t testing.TB, n int) (string, []string, []string) {
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon")
	var b strings.Builder
	var texts, ids []string
	for i := range n {
		var ws []string
		for j := range 3 + i%7 {
			ws = append(ws, words[(i*7+j*3)%len(words)], words[(i+j*j)%len(words)])
		}
		text := strings.Join(ws, " ") + fmt.Sprintf(" doc%d", i%13)
		id := fmt.Sprintf("d%03d", i)
		line, _ := json.Marshal(map[string]string{"id": id, "text": text})
		b.Write(line)
		b.WriteByte('\n')
		if i == n/2 {
			b.WriteString("not json\n")
		}
		texts, ids = append(texts, text), append(ids, id)
	}
	path := filepath.Join(t.TempDir(), "corpus.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, texts, ids
}

func TestFeaturizeFiles(t *testing.T) {
	ctx := context.Background()
	in, texts, ids := filesCorpus(t, 200)
	opt := embed.DefaultFitOptions()
	opt.LSA.Dims = 8
	given, _, err := embed.Fit(ctx, embed.KindTfidf, texts[:30], opt)
	if err != nil {
		t.Fatal(err)
	}
	givenState, err := embed.NewState(given, 30)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		kind       embed.Kind
		state      *embed.State
		fitSample  int
		stateDir   bool
		wantFit    bool
		wantVer    int64
		wantFitted int // documents the featurizer is fitted on (0: given)
	}{
		{name: "tfidf, rows written while weighed", kind: embed.KindTfidf, wantFit: true, wantFitted: 200},
		{name: "hashing, rows written while weighed", kind: embed.KindHashing, wantFit: true, wantFitted: 200},
		{name: "lsa", kind: embed.KindLSA, wantFit: true, wantFitted: 200},
		{name: "tfidf saved", kind: embed.KindTfidf, stateDir: true, wantFit: true, wantVer: 1, wantFitted: 200},
		{name: "fit sample", kind: embed.KindTfidf, fitSample: 50, wantFit: true, wantFitted: 50},
		{name: "hashing fit sample saved", kind: embed.KindHashing, fitSample: 70, stateDir: true, wantFit: true, wantVer: 1, wantFitted: 70},
		{name: "given state", state: givenState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := embed.FilesConfig{Inputs: []string{in}, Out: filepath.Join(dir, "features.parquet"), State: tt.state,
				Kind: tt.kind, Options: opt, FitSample: tt.fitSample}
			if tt.stateDir {
				cfg.StateDir = filepath.Join(dir, "state")
			}
			rep, err := embed.FeaturizeFiles(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Docs != 200 || rep.Rejected != 1 || rep.Fitted != tt.wantFit || rep.State.Settings.Version != tt.wantVer {
				t.Errorf("report %+v: want 200 docs, 1 rejected, fitted %v, version %d", rep, tt.wantFit, tt.wantVer)
			}
			var bytes int64
			for _, s := range texts {
				bytes += int64(len(s))
			}
			if rep.Bytes != bytes {
				t.Errorf("Bytes = %d, want %d", rep.Bytes, bytes)
			}
			if tt.stateDir {
				if v, err := embed.LatestStateVersion(cfg.StateDir); err != nil || v != 1 {
					t.Errorf("state dir: latest version %d, %v; want 1", v, err)
				}
			}
			// The vectors: a fit on the same documents, then a transform of
			// them all unless the fit was on all of them.
			fz := rep.State.Featurizer
			if tt.wantFitted > 0 {
				var v embed.Vectors
				if fz, v, err = embed.Fit(ctx, tt.kind, texts[:tt.wantFitted], opt); err != nil {
					t.Fatal(err)
				}
				if tt.wantFitted < len(texts) {
					v = embed.Vectors{}
				}
				if v.Len() > 0 {
					checkFeaturesFile(t, cfg.Out, rep, ids, v)
					return
				}
			}
			v, err := fz.Transform(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			checkFeaturesFile(t, cfg.Out, rep, ids, v)
		})
	}
}

// checkFeaturesFile checks that path is, byte for byte, the file of v
// written at once with the report's settings.
func checkFeaturesFile(t *testing.T, path string, rep *embed.FilesReport, ids []string, v embed.Vectors) {
	t.Helper()
	if rep.Dim != v.Dim() {
		t.Errorf("Dim = %d, want %d", rep.Dim, v.Dim())
	}
	settings, _ := json.Marshal(rep.State.Settings)
	var want bytes.Buffer
	fw := embed.NewFeaturesWriter(&want, string(settings))
	if err := fw.Write(ids, v, rep.State.Settings.Version); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		rows, err := parquet.ReadFile[embed.FeatureRow](path)
		t.Fatalf("%s: %d bytes (%d rows, %v), not the %d bytes of the vectors written at once", path, len(got), len(rows), err, want.Len())
	}
}

func TestFeaturizeFilesErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(empty, []byte("not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.jsonl")
	out := filepath.Join(dir, "out.parquet")
	fz, _, err := embed.Fit(ctx, embed.KindHashing, []string{"some text"}, embed.FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	state, err := embed.NewState(fz, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  embed.FilesConfig
		want string
	}{
		{"no output", embed.FilesConfig{Inputs: []string{empty}}, "embed: no output file"},
		{"missing input", embed.FilesConfig{Inputs: []string{empty, missing}, Out: out}, "embed: open " + missing + ": no such file or directory"},
		// A fit on a stream fails first (an empty vocabulary).
		{"no documents to fit", embed.FilesConfig{Inputs: []string{empty}, Out: out}, "embed: fit: "},
		{"no documents", embed.FilesConfig{Inputs: []string{empty}, Out: out, State: state}, "embed: no documents in [" + empty + "]"},
		{"unknown kind", embed.FilesConfig{Inputs: []string{empty}, Out: out, Kind: "nope"}, "embed: fit: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := embed.FeaturizeFiles(ctx, tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("FeaturizeFiles: %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written", out)
			}
		})
	}
}

func ExampleFeaturizeFiles() {
	dir, err := os.MkdirTemp("", "featurize")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "docs.jsonl")
	lines := `{"id":"a","text":"the cat sat on the mat"}
{"id":"b","text":"a dog and a cat"}
{"id":"c","text":""}
`
	if err := os.WriteFile(in, []byte(lines), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	out := filepath.Join(dir, "features.parquet")
	rep, err := embed.FeaturizeFiles(context.Background(), embed.FilesConfig{
		Inputs: []string{in}, Out: out, Kind: embed.KindTfidf,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d documents (%d rejected), %s of dim %d, fitted %v\n", rep.Docs, rep.Rejected, rep.State.Settings.Kind, rep.Dim, rep.Fitted)
	rows, err := parquet.ReadFile[embed.FeatureRow](out)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rows {
		fmt.Println(r.ID, r.Indices)
	}
	// Output:
	// 2 documents (1 rejected), tfidf of dim 4, fitted true
	// a [0 2 3]
	// b [0 1]
}
