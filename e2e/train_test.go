package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/domainflow/domainflow/pipeline"
)

// expertsOf runs `pipeline experts list --json` on out.
func expertsOf(t *testing.T, out string) []map[string]any {
	t.Helper()
	b, err := exec.Command(binary(t), "experts", "list", "--out", out, "--json").Output()
	if err != nil {
		t.Fatalf("experts list %s: %v", out, err)
	}
	var rep struct {
		Experts []map[string]any `json:"experts"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("experts list %s: %v: %s", out, err, b)
	}
	return rep.Experts
}

// TestTrainExactlyOnce: a training consumer on a durable broker, killed with
// SIGKILL at random points and restarted each time, ends with parameters
// bit-identical to an uninterrupted run on the same input: every document is
// applied exactly once and the resumed runs read in the same order.
func TestTrainExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	broker := startKfake(t)
	cc := pipeline.ClientConfig{Brokers: []string{broker.addr()}}
	// Three partitions: the reader's round robin must resume in place.
	if err := pipeline.EnsureTopics(context.Background(), cc, pipeline.TopicSpec{Name: pipeline.TopicRaw, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	in := start(t, "ingest", "ingest", "--brokers", broker.addr(), "--log-level", "warn", "../testdata/mixed-small.jsonl.gz")
	<-in.done
	if in.err != nil {
		t.Fatalf("ingest: %v\n%s", in.err, in.out.String())
	}
	dir := t.TempDir()
	args := func(out string) []string {
		return []string{"train", "--brokers", broker.addr(), "--topic", pipeline.TopicRaw, "--name", "dense",
			"--out", out, "--expert", "tiny", "--threads", "2", "--tokens", "180000", "--checkpoint-steps", "7",
			"--exit-on-idle", "2s", "--log-level", "warn"}
	}
	whole := filepath.Join(dir, "whole")
	p := start(t, "train (uninterrupted)", args(whole)...)
	<-p.done
	if p.err != nil {
		t.Fatalf("uninterrupted train: %v\n%s", p.err, p.out.String())
	}

	killed := filepath.Join(dir, "killed")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for range 5 {
		p := start(t, "train (killed)", args(killed)...)
		d := time.Duration(200+rng.IntN(1000)) * time.Millisecond
		select {
		case <-p.done:
		case <-time.After(d):
			p.kill()
			kills++
		}
	}
	p = start(t, "train (final)", args(killed)...)
	<-p.done
	if p.err != nil {
		t.Fatalf("final train: %v\n%s", p.err, p.out.String())
	}
	if kills < 2 {
		t.Fatalf("only %d of the runs were killed before they finished", kills)
	}
	a, b := expertsOf(t, whole), expertsOf(t, killed)
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("experts: %v and %v", a, b)
	}
	for _, k := range []string{"params_sha256", "step", "tokens", "docs"} {
		if a[0][k] != b[0][k] {
			t.Fatalf("after %d kills, %s differs: uninterrupted %v, killed and resumed %v", kills, k, a[0][k], b[0][k])
		}
	}
	t.Logf("%d kills; both runs end at step %v with params_sha256 %v", kills, a[0]["step"], a[0]["params_sha256"])
}
