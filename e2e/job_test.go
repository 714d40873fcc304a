package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
	"github.com/domainflow/domainflow/pipeline/pipetest"
	"github.com/domainflow/domainflow/stages/cluster"
	"github.com/domainflow/domainflow/stages/train"
)

// TestJobProcesses runs the job as separate processes on the embedded broker
// process; see testJob.
func TestJobProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	testJob(t, startKfake(t).addr())
}

// testJob runs the whole job as separate processes against the broker at
// addr, with continuous ingestion: `pipeline embed` fits its featurizer on
// the stream, `pipeline cluster` fits a router on a sample of the stream,
// `pipeline train --domain all` trains one expert per domain while documents
// keep arriving; mid-stream a domain is split (added), a refit with a new
// featurizer version is saved, and a domain is removed. Every stage picks up
// each change, domain ids stay stable across the refit, every input record is
// routed (nothing lost) and every expert applied its domain's documents
// exactly once. Finally `pipeline eval` scores the experts.
func testJob(t *testing.T, addr string) {
	dir := t.TempDir()
	cc := pipeline.ClientConfig{Brokers: []string{addr}}
	state, router, out := filepath.Join(dir, "state"), filepath.Join(dir, "router"), filepath.Join(dir, "out")
	var files []string
	good := 0
	for w := range 4 {
		f := filepath.Join(dir, "wave"+strconv.Itoa(w)+".jsonl")
		good, _ = reliabilityCorpus(t, f, 60, false)
		files = append(files, f)
	}
	pipetest.CreateTopics(t, cc, 2, pipeline.TopicRaw, pipeline.TopicDeadLetter)
	run := func(name string, args ...string) []byte {
		t.Helper()
		b, err := exec.Command(binary(t), args...).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("%s: %v\n%s", name, err, msg)
		}
		return b
	}
	ingest := func(i int) { run("ingest", "ingest", "--brokers", addr, "--log-level", "warn", files[i]) }
	ingest(0)
	embed := start(t, "embed", "embed", "--brokers", addr, "--state", state, "--fit-min", "50", "--watch", "200ms", "--linger", "20ms", "--log-level", "warn")
	clus := start(t, "cluster", "cluster", "--brokers", addr, "--router", router, "--k", "3", "--fit-sample", "100", "--fit-wait", "1s",
		"--watch", "200ms", "--linger", "20ms", "--log-level", "info")
	trainer := start(t, "train", "train", "--brokers", addr, "--domain", "all", "--out", out, "--expert", "tiny", "--threads", "1",
		"--checkpoint-steps", "5", "--log-level", "warn")

	routedTotal := func() (map[int]map[origin]bool, int) {
		r, err := routedOrigins(t, cc)
		if err != nil {
			return nil, 0
		}
		n := 0
		for _, m := range r {
			n += len(m)
		}
		return r, n
	}
	waitRouted := func(want int, what string) map[int]map[origin]bool {
		t.Helper()
		var r map[int]map[origin]bool
		waitFor(t, 90*time.Second, what, func() bool {
			var n int
			r, n = routedTotal()
			if n > want {
				t.Fatalf("%s: %d records routed, only %d went in", what, n, want)
			}
			return n == want
		})
		return r
	}
	waitRouted(good, "the first wave to be routed")
	v1, err := cluster.LoadRouter(router, 1)
	if err != nil {
		t.Fatalf("the stream-fitted router was not saved: %v", err)
	}

	// Add a domain (split), with documents arriving.
	run("domains split", "domains", "split", "--router", router, "--domain", strconv.Itoa(v1.IDs[0]), "--in", files[0], "--brokers", addr, "--log-level", "warn")
	waitFor(t, 30*time.Second, "the stage to take router v2", func() bool { return containsAll(clus.out.String(), "router reloaded", "version=2") })
	ingest(1)
	r := waitRouted(2*good, "the second wave")
	if len(r) != 4 || len(r[v1.NextID]) == 0 {
		t.Fatalf("after the split: domains %v, the new domain %d got nothing", keysOf(r), v1.NextID)
	}

	// A refit: a new featurizer version and router, saved into the router
	// dir; the embedding stage takes the featurizer from router.models.
	run("cluster fit", "cluster", "fit", "--in", files[0]+","+files[1], "--k", "4", "--out", router, "--seed", "2", "--log-level", "warn")
	v3, err := cluster.LoadRouter(router, 3)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := cluster.LoadRouter(router, 2)
	if !slices.Equal(slices.Sorted(slices.Values(v3.IDs)), slices.Sorted(slices.Values(v2.IDs))) || v3.FeaturizerVersion == v2.FeaturizerVersion {
		t.Fatalf("refit ids %v (featurizer v%d), before %v (v%d): ids must stay, the featurizer must be new", v3.IDs, v3.FeaturizerVersion, v2.IDs, v2.FeaturizerVersion)
	}
	waitFor(t, 30*time.Second, "the embedding stage to take the new featurizer", func() bool {
		return containsAll(embed.out.String(), "featurizer reloaded") || fileExists(filepath.Join(state, "featurizer-000002.arrow"))
	})
	ingest(2)
	waitRouted(3*good, "the third wave")

	// Remove a domain.
	gone := v3.IDs[1]
	run("domains remove", "domains", "remove", "--router", router, "--domain", strconv.Itoa(gone), "--brokers", addr, "--log-level", "warn")
	waitFor(t, 30*time.Second, "the stage to take router v4", func() bool { return containsAll(clus.out.String(), "version=4") })
	before := len(waitRouted(3*good, "still the third wave")[gone])
	ingest(3)
	r = waitRouted(4*good, "the fourth wave")
	if len(r[gone]) != before {
		t.Fatalf("removed domain %d grew from %d to %d", gone, before, len(r[gone]))
	}

	// Trainers: stop, then one run finishes the rest; each expert applied
	// each of its domain's documents exactly once.
	trainer.stop(t)
	fin := start(t, "train (final)", "train", "--brokers", addr, "--domain", "all", "--out", out, "--expert", "tiny", "--threads", "1",
		"--exit-on-idle", "3s", "--log-level", "warn")
	<-fin.done
	if fin.err != nil {
		t.Fatalf("final train: %v", fin.err)
	}
	for id, docs := range r {
		c, _, err := train.LoadLatestCheckpoint(filepath.Join(out, "experts", strconv.Itoa(id)))
		if err != nil || c == nil {
			t.Fatalf("expert %d: %v", id, err)
		}
		if c.Meta.Docs != int64(len(docs)) {
			t.Fatalf("expert %d applied %d documents; its domain holds %d", id, c.Meta.Docs, len(docs))
		}
	}
	var ev struct {
		MixtureBPB map[string]float64 `json:"mixture_bpb"`
	}
	b := run("eval", "eval", "--out", out, "--router", router, "--in", files[3], "--max-docs", "10", "--json", "--log-level", "warn")
	if err := json.Unmarshal(b, &ev); err != nil || len(ev.MixtureBPB) != 3 {
		t.Fatalf("eval: %v %s", err, b)
	}
	embed.stop(t)
	clus.stop(t)
}
