package e2e

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// runSummary is the part of `pipeline run --json` the test reads.
type runSummary struct {
	DocsIn         int64 `json:"docs_in"`
	DocsRouted     int64 `json:"docs_routed"`
	DocsDeadletter int64 `json:"docs_deadletter"`
	DocsHeldout    int64 `json:"docs_heldout"`
	RawMessages    int64 `json:"raw_messages"`
}

// TestRunResumable: `pipeline run` killed with SIGKILL at random points and
// re-run with the same --out completes; nothing is ingested twice, every
// input record ends routed or dead-lettered, and every expert is
// bit-identical to an uninterrupted run's.
func TestRunResumable(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	testRunResumable(t)
}

// testRunResumable is TestRunResumable with extra arguments to every run.
func testRunResumable(t *testing.T, extra ...string) {
	dir := t.TempDir()
	args := func(out string) []string {
		return append([]string{"run", "--input", "../testdata/mixed-small.jsonl.gz", "--out", out, "--k", "3",
			"--tokens-per-domain", "40000", "--seed-tokens", "20000", "--threads", "2", "--eval-docs", "10", "--json", "--log-level", "warn"}, extra...)
	}
	finish := func(name, out string) runSummary {
		t.Helper()
		p := start(t, name, args(out)...)
		<-p.done
		if p.err != nil {
			t.Fatalf("%s: %v\n%s", name, p.err, p.out.String())
		}
		b, err := os.ReadFile(filepath.Join(out, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s runSummary
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	whole := filepath.Join(dir, "whole")
	sw := finish("run (uninterrupted)", whole)

	killed := filepath.Join(dir, "killed")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	kills := 0
	for range 4 {
		p := start(t, "run (killed)", args(killed)...)
		select {
		case <-p.done:
		case <-time.After(time.Duration(300+rng.IntN(4000)) * time.Millisecond):
			p.kill()
			kills++
		}
	}
	sk := finish("run (final)", killed)
	if kills == 0 {
		t.Fatal("no run was killed")
	}
	for _, s := range []runSummary{sw, sk} {
		if s.DocsIn == 0 || s.DocsRouted+s.DocsDeadletter != s.DocsIn || s.RawMessages != s.DocsIn-s.DocsDeadletter {
			t.Fatalf("summary %+v: records unaccounted for or ingested twice", s)
		}
	}
	if sw != sk {
		t.Fatalf("summaries differ: uninterrupted %+v, killed %+v", sw, sk)
	}
	a, b := expertsOf(t, whole), expertsOf(t, killed)
	if len(a) != 5 || len(a) != len(b) {
		t.Fatalf("experts: %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i]["expert"] != b[i]["expert"] || a[i]["params_sha256"] != b[i]["params_sha256"] || a[i]["tokens"] != b[i]["tokens"] {
			t.Fatalf("after %d kills, expert %v differs: %v vs %v", kills, a[i]["expert"], a[i], b[i])
		}
	}
	t.Logf("%d kills; %d experts bit-identical", kills, len(a))
}

// TestRunResumablePartitions is TestRunResumable with two partitions per
// topic: routing state lives per partition and moves with it, so a run
// killed at random points and resumed places every document as the
// uninterrupted run did, and its experts are bit-identical.
func TestRunResumablePartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	testRunResumable(t, "--partitions", "2")
}
