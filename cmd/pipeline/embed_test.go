package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/stages/embed"
)

const fixture = "../../testdata/mixed-small.jsonl.gz"

// TestEmbedOffline featurizes the fixture with each fitted featurizer, checks
// the report and the Parquet rows, then reuses the saved state (no refit) and
// gets the same vectors.
func TestEmbedOffline(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"tfidf", "hashing", "lsa"} {
		t.Run(k, func(t *testing.T) {
			dir := t.TempDir()
			out, state := filepath.Join(dir, "f.parquet"), filepath.Join(dir, "state")
			args := []string{"embed", "--in", fixture, "--out", out, "--featurizer", k, "--state", state, "--json", "--dims", "16"}
			var rep embedReport
			decodeOne(t, mustCLI(t, args...).stdout, &rep)
			if rep.Docs != 334 || rep.Bytes != 2495538 || !rep.Fitted || rep.StateVersion != 1 || rep.Featurizer != k || rep.Rejected != 0 {
				t.Fatalf("report = %+v", rep)
			}
			wantDim := map[string]int{"tfidf": rep.Dim, "hashing": 1 << 18, "lsa": 16}[k]
			if rep.Dim != wantDim || rep.NNZ == 0 || rep.PeakRSSBytes == 0 {
				t.Fatalf("report = %+v, want dim %d", rep, wantDim)
			}
			rows, err := parquet.ReadFile[embed.FeatureRow](out)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 334 {
				t.Fatalf("%d feature rows, want 334", len(rows))
			}
			var nnz int64
			for _, r := range rows {
				if r.ID == "" || int(r.Dim) != rep.Dim || r.FeaturizerVersion != 1 {
					t.Fatalf("row %+v", r)
				}
				nnz += int64(len(r.Values))
			}
			if nnz != rep.NNZ {
				t.Fatalf("rows hold %d values, report says %d", nnz, rep.NNZ)
			}

			// Second run: the state is reused, not refitted; same vectors.
			out2 := filepath.Join(dir, "g.parquet")
			var rep2 embedReport
			decodeOne(t, mustCLI(t, "embed", "--in", fixture, "--out", out2, "--state", state, "--json").stdout, &rep2)
			if rep2.Fitted || rep2.StateVersion != 1 {
				t.Fatalf("second run report = %+v, want the saved state reused", rep2)
			}
			rows2, err := parquet.ReadFile[embed.FeatureRow](out2)
			if err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				if rows[i].ID != rows2[i].ID || len(rows[i].Values) != len(rows2[i].Values) {
					t.Fatalf("row %d differs after reloading the state", i)
				}
				for j := range rows[i].Values {
					if rows[i].Values[j] != rows2[i].Values[j] {
						t.Fatalf("row %d value %d differs after reloading the state", i, j)
					}
				}
			}
		})
	}
}

func TestEmbedErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	mustCLI(t, "embed", "--in", fixture, "--out", filepath.Join(dir, "a.parquet"), "--featurizer", "hashing", "--state", state)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"embed", "--in", fixture}, 2, "--out"},
		{[]string{"embed", "--in", fixture, "--out", filepath.Join(dir, "x.parquet"), "--featurizer", "bow"}, 2, "unknown featurizer"},
		{[]string{"embed", "--in", fixture, "--out", filepath.Join(dir, "x.parquet"), "--featurizer", "http"}, 2, "--http-url"},
		{[]string{"embed", "--in", fixture, "--out", filepath.Join(dir, "x.parquet"), "--featurizer", "tfidf", "--state", state}, 2, "holds a hashing featurizer"},
		{[]string{"embed", "--in", filepath.Join(dir, "missing.jsonl"), "--out", filepath.Join(dir, "x.parquet")}, 1, "no such file"},
		{[]string{"embed", "--brokers", "127.0.0.1:1"}, 2, "--state"},
	}
	for _, tt := range tests {
		r := cli(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("pipeline %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.want)
		}
	}
	// --refit replaces the state with a new version.
	var rep embedReport
	decodeOne(t, mustCLI(t, "embed", "--in", fixture, "--out", filepath.Join(dir, "b.parquet"), "--featurizer", "tfidf", "--state", state, "--refit", "--json").stdout, &rep)
	if !rep.Fitted || rep.StateVersion != 2 || rep.Featurizer != "tfidf" {
		t.Fatalf("refit report = %+v", rep)
	}
}

// TestEmbedStage runs `pipeline embed` on Kafka: with an empty --state it
// fits on the head of docs.raw, saves the state, and featurizes every
// document onto docs.features; a state saved later is picked up.
func TestEmbedStage(t *testing.T) {
	t.Parallel()
	addr := startBroker(t)
	mustCLI(t, "ingest", "--brokers", addr, fixture)
	state := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	var stdout, stderr pipetest.LogBuffer
	go func() {
		code := run(ctx, []string{"embed", "--brokers", addr, "--state", state, "--featurizer", "hashing", "--fit-sample", "100",
			"--json", "--watch", "50ms", "--linger", "5ms"}, strings.NewReader(""), &stdout, &stderr)
		done <- result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}()
	waitRows := func(n int) []map[string]any {
		var rows []map[string]any
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if r := cli(t, "inspect", "--brokers", addr, "--topic", "docs.features"); r.code == 0 {
				if rows = jsonLines(t, r.stdout); len(rows) >= n {
					return rows
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("docs.features holds %d rows, want %d; stderr:\n%s", len(rows), n, stderr.String())
		return nil
	}
	rows := waitRows(334)
	for _, m := range rows {
		v := m["value"].(map[string]any)
		if v["dim"] != float64(1<<18) || v["featurizer_version"] != float64(1) || v["id"] == "" {
			t.Fatalf("features row = %v", v)
		}
	}
	if _, err := os.Stat(embed.StatePath(state, 1)); err != nil {
		t.Fatalf("the fitted state was not saved: %v", err)
	}
	// Save version 2 offline; the stage must pick it up.
	mustCLI(t, "embed", "--in", fixture, "--out", filepath.Join(t.TempDir(), "x.parquet"), "--featurizer", "tfidf", "--state", state, "--refit")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "featurizer reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("the stage did not reload version 2; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustCLI(t, "ingest", "--brokers", addr, fixture)
	rows = waitRows(668)
	v2 := 0 // inspect lists partition by partition, so count over all rows
	for _, m := range rows {
		if m["value"].(map[string]any)["featurizer_version"] == float64(2) {
			v2++
		}
	}
	cancel()
	res := <-done
	if res.code != 0 {
		t.Fatalf("embed stage: exit %d: %s", res.code, res.stderr)
	}
	if v2 != 334 {
		t.Fatalf("%d of the second 334 rows were featurized by version 2", v2)
	}
	var rep stageReport
	decodeOne(t, res.stdout, &rep)
	if rep.In != 668 || rep.Out != 668 || rep.Dead != 0 {
		t.Fatalf("stage report = %+v", rep)
	}
}

func TestBenchFeaturize(t *testing.T) {
	t.Parallel()
	var rep benchFeaturizeReport
	decodeOne(t, mustCLI(t, "bench", "featurize", "--in", fixture, "--runs", "2", "--dims", "8", "--json").stdout, &rep)
	if rep.Docs != 334 || rep.Bytes != 2495538 || len(rep.Results) != 3 {
		t.Fatalf("report = %+v", rep)
	}
	for _, r := range rep.Results {
		if len(r.Seconds) != 2 || r.Median <= 0 || r.MBPerS <= 0 || r.Dim == 0 {
			t.Errorf("result = %+v", r)
		}
	}
	if r := cli(t, "bench", "featurize", "--in", fixture, "--featurizers", "http"); r.code != 2 {
		t.Errorf("bench featurize --featurizers http: exit %d, want 2", r.code)
	}
}
